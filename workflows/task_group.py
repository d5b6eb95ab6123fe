"""A durable, global priority semaphore as a Temporal workflow, for DS task groups and executionType.

One :class:`SemaphoreWorkflow` runs per key (its workflow id): ``semaphore:taskgroup:<id>`` for a DS
task group (reference §4.17), ``semaphore:serial:<definition code>:<version>`` for a definition whose
``executionType`` is serial (§4.12). It keeps a capacity, the holders and a priority queue of waiters.
Requesters are workflows (DsWorkflow); they use :class:`SemaphoreClient`, a deterministic helper.

Protocol (all signals, because a workflow can only signal another workflow):

* requester -> semaphore ``semaphore_acquire(AcquireRequest)`` and ``semaphore_release(request_id)``;
* semaphore -> requester ``semaphore_granted(SemaphoreGrant)`` (granted True, or False for a refused
  try-acquire, a preempted waiter, a resume that lost its slot), and ``stop_signal`` to holders
  preempted by SERIAL_PRIORITY (DsWorkflow already has that handler);
* operators -> semaphore: update ``set_capacity(n)`` (groupSize edited), update ``force_grant(request_id)``
  (DS "force start" of a waiting task), query ``state()``. Every acquire also carries the capacity, so
  an edited groupSize takes effect with the next acquire even without the update.

Design choices
--------------
*Creating the semaphore on first use.* :meth:`SemaphoreClient.acquire` first signals the semaphore
with ``workflow.get_external_workflow_handle(key).signal(...)`` (two history events, no activity). That
signal fails only when no run of the key is open (never started, or ended idle); then the activity
``semaphore_signal_with_start`` does ``client.start_workflow(..., start_signal=...)`` with
``id_conflict_policy=USE_EXISTING``: signal-with-start is atomic on the server, so the acquire lands
exactly once whether the run was missing or was started by someone else meanwhile. The common case
(semaphore already running) costs no activity; the rare case is still atomic. A retried activity can
deliver the same acquire twice; the semaphore deduplicates by request id. The requester waits for the
activity to finish before it may send a release, so a release never overtakes its acquire. Signals
never get lost to a semaphore that is ending: Temporal refuses to complete (or continue-as-new) a
run that has unprocessed signals, and a signal sent after the end fails and takes the activity path.

*Holders that end without releasing.* The normal path is the holder releasing in a ``finally``. A
terminated, timed-out or reset holder runs no ``finally``, so the semaphore also validates holders
itself: while it has holders, every ``check_interval_seconds`` it runs the ``semaphore_dead_holders``
activity, which describes each holder workflow id and reports those no longer RUNNING, or whose
running run belongs to another execution chain (a DS rerun reuses the instance id: the first run id
differs). Their slots are freed and waiters promoted. A grant signal that cannot be delivered (the
requester is gone) frees the slot at once, and a try-acquire about to be refused validates the
holders first, so SERIAL_DISCARD is never refused because of a dead holder. Heartbeats from holders
were rejected: they would cost every holder history events for the whole time it holds.

*Request identity.* A request id is ``<requester first_execution_run_id>:<tag>``: stable across the
requester's continue-as-new (same chain), distinct across DS reruns of the same instance id. The
serial permit is therefore re-attached after a DsWorkflow continue-as-new with mode RESUME (granted
if still held or if a slot is free, refused if another instance took it, e.g. by preemption) without
carrying any state.
A grant that reaches a requester not waiting for it (a late duplicate) is released straight back.

*History.* The semaphore continues as new when the server suggests it or after
``max_history_events``, carrying capacity, holders, waiters (with their arrival numbers, so FIFO
survives) and options, after all grant signals went out and ``workflow.all_handlers_finished()``.
With nobody holding or waiting it lingers ``idle_timeout_seconds`` and then ends; the next acquire
starts a new run through the activity path.

Ordering: waiters are granted by priority, higher first, then by arrival at the semaphore (FIFO).
DS orders task-group waiters by ``priority DESC`` and serial waiters by instance id (§4.12, §4.17).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from core.contracts.task_group import (  # the contract; re-exported for requesters
        ACTIVITY_DEAD_HOLDERS,
        ACTIVITY_SIGNAL_WITH_START,
        SIGNAL_ACQUIRE,
        SIGNAL_GRANTED,
        SIGNAL_RELEASE,
        SIGNAL_STOP,
        WORKFLOW_TYPE,
        AcquireRequest,
        Entry,
        SemaphoreGrant,
        SemaphoreInput,
        SemaphoreMode,
        SemaphoreOptions,
        SemaphoreState,
        SignalWithStartRequest,
        serial_key,
        serial_mode,
        task_group_key,
    )


@dataclass
class _Release:
    request_id: str


def _order(e: Entry) -> tuple[int, int]:
    return (-e.priority, e.seq)


@workflow.defn(name=WORKFLOW_TYPE)
class SemaphoreWorkflow:
    def __init__(self) -> None:
        self._key = ""
        self._capacity = 1
        self._holders: list[Entry] = []
        self._waiters: list[Entry] = []  # kept sorted by (-priority, seq)
        self._seq = 0
        self._options = SemaphoreOptions()
        self._generation = 0
        self._granted_total = 0
        self._inbox: list[AcquireRequest | _Release] = []
        self._busy = False  # the main loop is processing the inbox
        self._dirty = False  # capacity changed or a slot freed outside the inbox
        self._check_due = False
        self._checker: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()

    @workflow.run
    async def run(self, input: SemaphoreInput) -> SemaphoreState:
        self._key = input.key or workflow.info().workflow_id
        self._capacity = max(1, input.capacity)
        self._holders = list(input.holders)
        self._waiters = sorted(input.waiters, key=_order)
        self._seq = input.seq
        self._options = input.options
        self._generation = input.generation
        self._granted_total = input.granted_total
        while True:
            await self._process_inbox()
            self._dirty = False
            self._dispatch()
            if self._check_due:
                self._check_due = False
                await self._drop_dead_holders()
                continue
            if self._should_continue_as_new():
                if await self._quiet():
                    workflow.continue_as_new(self._carry())
                continue
            if not self._holders and not self._waiters:
                with contextlib.suppress(asyncio.TimeoutError):
                    await workflow.wait_condition(
                        lambda: bool(self._inbox) or self._dirty,
                        timeout=timedelta(seconds=self._options.idle_timeout_seconds),
                        timeout_summary="idle",
                    )
                if not self._inbox and not self._dirty and await self._quiet() and not self._holders \
                        and not self._waiters:
                    return self.state()  # idle: the next acquire starts a new run
                continue
            self._ensure_checker()
            await workflow.wait_condition(lambda: bool(self._inbox) or self._dirty or self._check_due)

    # -- messages --------------------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_ACQUIRE)
    def acquire(self, request: AcquireRequest) -> None:
        self._inbox.append(request)

    @workflow.signal(name=SIGNAL_RELEASE)
    def release(self, request_id: str) -> None:
        self._inbox.append(_Release(request_id))

    @workflow.update
    async def set_capacity(self, capacity: int) -> int:
        """DS groupSize edited: more slots grant waiters now; fewer let current holders finish."""
        await self._settled()
        self._capacity = capacity
        self._dirty = True
        return capacity

    @set_capacity.validator
    def _validate_capacity(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")

    @workflow.update
    async def force_grant(self, request_id: str) -> bool:
        """DS "force start" of a waiting task: granted now, even beyond the capacity."""
        await self._settled()
        for w in self._waiters:
            if w.request_id == request_id:
                self._waiters.remove(w)
                self._grant(w, "forced")
                self._dirty = True
                return True
        return False

    async def _settled(self) -> None:
        """Updates act on the state after every earlier message was processed. Without this, a handler
        could see a signal delivered in the same activation as still unprocessed, and how Temporal
        batches jobs into activations is not guaranteed to be the same on replay."""
        await workflow.wait_condition(lambda: not self._inbox and not self._busy)

    @workflow.query
    def state(self) -> SemaphoreState:
        return SemaphoreState(key=self._key, capacity=self._capacity, holders=list(self._holders),
                              waiters=list(self._waiters), generation=self._generation,
                              granted_total=self._granted_total)

    # -- the state machine -----------------------------------------------------------------------

    async def _process_inbox(self) -> None:
        self._busy = True
        try:
            while self._inbox:
                msg = self._inbox.pop(0)
                if isinstance(msg, _Release):
                    self._remove(msg.request_id)
                else:
                    await self._on_acquire(msg)
        finally:
            self._busy = False

    async def _on_acquire(self, req: AcquireRequest) -> None:
        if req.capacity > 0:
            self._capacity = req.capacity
        if req.options is not None:
            self._options = req.options
        self._drop_superseded(req)
        held = self._find(self._holders, req.request_id)
        if held is not None:
            self._send_grant(held, True, "already held")  # a duplicate, or a resume after continue-as-new
            return
        if self._find(self._waiters, req.request_id) is not None:
            return  # a duplicate of a queued request
        self._seq += 1
        entry = Entry(request_id=req.request_id, workflow_id=req.workflow_id, first_run_id=req.first_run_id,
                      priority=req.priority, seq=self._seq)
        if req.mode is SemaphoreMode.RESUME:  # not held any more: a free slot is still fine
            if self._free():
                self._grant(entry, "resume")
            else:
                self._send_grant(entry, False, "not held")
        elif req.mode is SemaphoreMode.WAIT:
            bisect.insort(self._waiters, entry, key=_order)
        elif req.mode is SemaphoreMode.PREEMPT:
            for h in self._holders:
                self._send(h.workflow_id, SIGNAL_STOP)
                workflow.logger.info("semaphore %s: %s preempted by %s", self._key, h.workflow_id, req.workflow_id)
            for w in self._waiters:
                self._send_grant(w, False, "preempted")
            self._holders, self._waiters = [], []
            self._grant(entry, "preempt")
        else:  # TRY
            if not self._free() and self._holders and not self._waiters:
                await self._drop_dead_holders()  # never refuse because of a holder that is gone
            if self._free():
                self._grant(entry, "try")
            else:
                self._send_grant(entry, False, "busy")

    def _drop_superseded(self, req: AcquireRequest) -> None:
        """Entries of an earlier execution chain of the requester's workflow id (a DS rerun reuses the
        instance id) belong to a run that has ended, since only one run of an id can be open. Dropping
        them now also keeps PREEMPT from sending stop_signal to the requester itself."""
        def stale(e: Entry) -> bool:
            return e.workflow_id == req.workflow_id and e.first_run_id != req.first_run_id

        if any(stale(e) for e in self._holders) or any(stale(e) for e in self._waiters):
            workflow.logger.info("semaphore %s: dropping entries of an ended run of %s", self._key, req.workflow_id)
            self._holders = [e for e in self._holders if not stale(e)]
            self._waiters = [e for e in self._waiters if not stale(e)]

    def _free(self) -> bool:
        return len(self._holders) < self._capacity and not self._waiters

    def _dispatch(self) -> None:
        while self._waiters and len(self._holders) < self._capacity:
            self._grant(self._waiters.pop(0), "queued")

    def _grant(self, entry: Entry, reason: str) -> None:
        self._holders.append(entry)
        self._granted_total += 1
        self._send_grant(entry, True, reason)

    def _remove(self, request_id: str) -> None:
        self._holders = [h for h in self._holders if h.request_id != request_id]
        self._waiters = [w for w in self._waiters if w.request_id != request_id]

    @staticmethod
    def _find(entries: list[Entry], request_id: str) -> Entry | None:
        return next((e for e in entries if e.request_id == request_id), None)

    # -- outgoing signals ------------------------------------------------------------------------

    def _track(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    def _send_grant(self, entry: Entry, granted: bool, reason: str) -> None:
        self._track(self._deliver_grant(entry, SemaphoreGrant(self._key, entry.request_id, granted, reason)))

    async def _deliver_grant(self, entry: Entry, grant: SemaphoreGrant) -> None:
        try:
            await workflow.get_external_workflow_handle(entry.workflow_id).signal(SIGNAL_GRANTED, grant)
        except Exception as e:  # the requester is gone: its slot is free again
            if grant.granted and any(h is entry for h in self._holders):
                workflow.logger.info("semaphore %s: %s is gone (%s), slot freed", self._key, entry.workflow_id, e)
                self._holders = [h for h in self._holders if h is not entry]
                self._dirty = True

    def _send(self, workflow_id: str, signal: str) -> None:
        async def send() -> None:
            with contextlib.suppress(Exception):  # a holder that already ended needs no stop
                await workflow.get_external_workflow_handle(workflow_id).signal(signal)

        self._track(send())

    # -- dead holders ----------------------------------------------------------------------------

    def _ensure_checker(self) -> None:
        if self._holders and (self._checker is None or self._checker.done()):
            self._checker = asyncio.create_task(self._check_loop())

    async def _check_loop(self) -> None:
        while self._holders:
            await workflow.sleep(timedelta(seconds=self._options.check_interval_seconds), summary="check holders")
            if self._holders:
                self._check_due = True

    async def _drop_dead_holders(self) -> None:
        holders = list(self._holders)
        if not holders:
            return
        try:
            dead: list[str] = await workflow.execute_activity(
                ACTIVITY_DEAD_HOLDERS, holders, result_type=list[str],
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary=f"check {len(holders)} holders",
            )
        except ActivityError as e:
            workflow.logger.warning("semaphore %s: holder check failed: %s", self._key, e)
            return
        if dead:
            workflow.logger.info("semaphore %s: reclaiming slots of ended holders %s", self._key, dead)
            gone = set(dead)
            self._holders = [h for h in self._holders if h.request_id not in gone]

    # -- continue-as-new -------------------------------------------------------------------------

    async def _quiet(self) -> bool:
        """Wait for the grant signals to go out and the update handlers to finish; False when new work
        arrived meanwhile (then the loop must run again before the run may end or continue)."""
        await workflow.wait_condition(
            lambda: bool(self._inbox) or self._dirty or (not self._sends and workflow.all_handlers_finished()))
        return not self._inbox and not self._dirty and not self._sends and workflow.all_handlers_finished()

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= \
            self._options.max_history_events

    def _carry(self) -> SemaphoreInput:
        return SemaphoreInput(key=self._key, capacity=self._capacity, holders=list(self._holders),
                              waiters=list(self._waiters), seq=self._seq, options=self._options,
                              generation=self._generation + 1, granted_total=self._granted_total)


class SemaphoreClient:
    """The requester side, used inside a host workflow (deterministic, no I/O of its own).

    The host must define the grant signal and route it here; a helper cannot add handlers::

        @workflow.signal(name=SIGNAL_GRANTED)   # "semaphore_granted"
        def semaphore_granted(self, grant: SemaphoreGrant) -> None:
            self._semaphores.on_grant(grant)

    and, for SERIAL_PRIORITY, a ``stop_signal`` handler (DsWorkflow has one). The host's worker must
    register :class:`SemaphoreWorkflow` on the semaphores' task queue (by default the host's) and the
    activities ``semaphore_signal_with_start`` and ``semaphore_dead_holders`` (activities.task_group).

    A permit is named by ``(key, tag)``: the tag tells apart several permits of one workflow on one
    semaphore (a task code for task groups); the default tag "" fits the one-per-run serial permit.
    """

    def __init__(self, *, options: SemaphoreOptions | None = None, task_queue: str | None = None) -> None:
        self._options = options
        self._task_queue = task_queue
        self._pending: dict[tuple[str, str], bool | None] = {}  # None = waiting, else the answer
        self._held: set[tuple[str, str]] = set()
        self._strays: set[asyncio.Task[None]] = set()

    @staticmethod
    def request_id(tag: str = "") -> str:
        return f"{workflow.info().first_execution_run_id}:{tag or 'run'}"

    def held(self, key: str, tag: str = "") -> bool:
        return (key, self.request_id(tag)) in self._held

    async def acquire(
        self,
        key: str,
        capacity: int = 0,
        priority: int = 0,
        mode: SemaphoreMode = SemaphoreMode.WAIT,
        *,
        tag: str = "",
        abort: Callable[[], bool] | None = None,
        options: SemaphoreOptions | None = None,
    ) -> bool:
        """True once the permit is granted. False when refused (TRY busy, PREEMPTed while waiting,
        RESUME of a permit another request took) or when ``abort()`` turns true while waiting; an aborted
        request is withdrawn. ``capacity`` > 0 sets the semaphore's capacity (DS groupSize)."""
        info = workflow.info()
        rid = self.request_id(tag)
        k = (key, rid)
        req = AcquireRequest(request_id=rid, workflow_id=info.workflow_id, first_run_id=info.first_execution_run_id,
                             capacity=capacity, priority=priority, mode=mode, options=options or self._options)
        self._pending[k] = None
        send = asyncio.ensure_future(self._send_acquire(key, req))
        try:
            await asyncio.shield(send)
            await workflow.wait_condition(lambda: self._pending.get(k) is not None or (abort is not None and abort()))
        except asyncio.CancelledError:
            self._pending.pop(k, None)
            with contextlib.suppress(BaseException):
                await send  # the acquire must land before its release
            await self._signal_release(key, rid)
            raise
        answer = self._pending.pop(k, None)
        if answer is None or (answer and abort is not None and abort()):
            await self._signal_release(key, rid)  # aborted: withdraw the request, or hand back the grant
            return False
        if answer:
            self._held.add(k)
        return answer

    async def release(self, key: str, tag: str = "") -> None:
        """Give the permit back (or withdraw a waiting request). Safe to call when not held."""
        rid = self.request_id(tag)
        k = (key, rid)
        self._held.discard(k)
        if k in self._pending and self._pending[k] is None:
            self._pending[k] = False  # a concurrent acquire() returns False
        await self._signal_release(key, rid)

    async def release_all(self) -> None:
        for key, rid in sorted(self._held):
            self._held.discard((key, rid))
            await self._signal_release(key, rid)

    def on_grant(self, grant: SemaphoreGrant) -> None:
        """Route the host's ``semaphore_granted`` signal here."""
        k = (grant.key, grant.request_id)
        if k in self._pending and self._pending[k] is None:
            self._pending[k] = grant.granted
        elif grant.granted and k not in self._held:
            # A late or duplicate grant for a request this run no longer wants: hand it back.
            task = asyncio.create_task(self._signal_release(grant.key, grant.request_id))
            self._strays.add(task)
            task.add_done_callback(self._strays.discard)

    async def _send_acquire(self, key: str, req: AcquireRequest) -> None:
        try:
            await workflow.get_external_workflow_handle(key).signal(SIGNAL_ACQUIRE, req)
            return
        except Exception:
            pass  # no open run for this key: start one, atomically with the signal
        await workflow.execute_activity(
            ACTIVITY_SIGNAL_WITH_START,
            SignalWithStartRequest(key=key, task_queue=self._task_queue or workflow.info().task_queue,
                                   request=req),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
            summary=f"start {key}",
        )

    async def _signal_release(self, key: str, request_id: str) -> None:
        with contextlib.suppress(Exception):  # no open semaphore run: nothing is held there
            await workflow.get_external_workflow_handle(key).signal(SIGNAL_RELEASE, request_id)


__all__ = [
    "AcquireRequest", "Entry", "SemaphoreClient", "SemaphoreGrant", "SemaphoreInput", "SemaphoreMode",
    "SemaphoreOptions", "SemaphoreState", "SemaphoreWorkflow", "SignalWithStartRequest", "serial_key",
    "serial_mode", "task_group_key",
]
