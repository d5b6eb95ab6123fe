"""The durable semaphore (workflows/task_group.py) on the real dev server.

Each test runs its own Worker on its own task queue with SemaphoreWorkflow, the two semaphore
activities and `Holder`, a test-only host workflow wired the way DsWorkflow is meant to be: it
routes `semaphore_granted` to a SemaphoreClient and has a `stop_signal` handler.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import pytest
    from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
    from temporalio.worker import Replayer, Worker

    from activities.task_group import semaphore_dead_holders, semaphore_signal_with_start
    from workflows.task_group import (
        SIGNAL_GRANTED,
        SemaphoreClient,
        SemaphoreGrant,
        SemaphoreMode,
        SemaphoreOptions,
        SemaphoreState,
        SemaphoreWorkflow,
    )

FAST = SemaphoreOptions(check_interval_seconds=1.0, idle_timeout_seconds=1.0)


@dataclass
class HolderInput:
    key: str
    capacity: int = 1
    priority: int = 0
    mode: SemaphoreMode = SemaphoreMode.WAIT
    options: SemaphoreOptions = field(default_factory=SemaphoreOptions)
    continue_as_new: bool = False  # once granted, continue as new and RESUME the permit, as DsWorkflow does


@dataclass
class HolderResult:
    outcome: str  # refused | released | stopped
    granted_at: float | None = None
    released_at: float | None = None


@workflow.defn(name="SemaphoreTestHolder")
class Holder:
    """Acquire, hold until told to let go (or stopped), release in a finally."""

    def __init__(self) -> None:
        self._sem = SemaphoreClient()
        self._granted: bool | None = None
        self._stopped = False
        self._let_go = False

    @workflow.run
    async def run(self, inp: HolderInput) -> HolderResult:
        self._granted = await self._sem.acquire(inp.key, inp.capacity, inp.priority, inp.mode,
                                                options=inp.options, abort=lambda: self._stopped)
        if not self._granted:
            return HolderResult("stopped" if self._stopped else "refused")
        if inp.continue_as_new:
            workflow.continue_as_new(replace(inp, mode=SemaphoreMode.RESUME, continue_as_new=False))
        granted_at = workflow.now().timestamp()
        try:
            await workflow.wait_condition(lambda: self._let_go or self._stopped)
        finally:
            released_at = workflow.now().timestamp()
            await self._sem.release(inp.key)
        return HolderResult("stopped" if self._stopped else "released", granted_at, released_at)

    @workflow.signal(name=SIGNAL_GRANTED)
    def semaphore_granted(self, grant: SemaphoreGrant) -> None:
        self._sem.on_grant(grant)

    @workflow.signal
    def stop_signal(self) -> None:
        self._stopped = True

    @workflow.signal
    def let_go(self) -> None:
        self._let_go = True

    @workflow.query
    def granted(self) -> bool | None:
        return self._granted


# -- helpers --------------------------------------------------------------------------------------


def _worker(client: Client, task_queue: str) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=[SemaphoreWorkflow, Holder],
                  activities=[semaphore_signal_with_start, semaphore_dead_holders])


@pytest.fixture
async def task_queue(client: Client) -> AsyncIterator[str]:
    tq = f"semaphore-test-{uuid.uuid4().hex[:8]}"
    async with _worker(client, tq):
        yield tq


def _key() -> str:
    return f"semaphore:test:{uuid.uuid4().hex[:8]}"


async def _holder(client: Client, tq: str, inp: HolderInput, name: str) -> WorkflowHandle[Any, HolderResult]:
    return await client.start_workflow(Holder.run, inp, id=f"{inp.key}:{name}", task_queue=tq)


async def _state(client: Client, key: str) -> SemaphoreState | None:
    try:
        return await client.get_workflow_handle(key).query(SemaphoreWorkflow.state)
    except Exception:
        return None  # not started yet


async def _until(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def _holders(client: Client, key: str) -> list[str]:
    s = await _state(client, key)
    return [h.workflow_id for h in s.holders] if s else []


async def _waiting(client: Client, key: str, n: int) -> None:
    async def check() -> bool:
        s = await _state(client, key)
        return s is not None and len(s.waiters) == n

    await _until(check)


async def _granted(h: WorkflowHandle[Any, HolderResult]) -> None:
    async def check() -> bool:
        return bool(await h.query(Holder.granted))

    await _until(check)


# -- tests ----------------------------------------------------------------------------------------


async def test_capacity_priority_and_fifo(client: Client, task_queue: str) -> None:
    key = _key()
    # A tiny history budget forces continue-as-new while holders and waiters exist.
    opts = SemaphoreOptions(check_interval_seconds=30.0, idle_timeout_seconds=1.0, max_history_events=40)
    handles: dict[str, WorkflowHandle[Any, HolderResult]] = {}
    for name in ("a", "b"):
        handles[name] = await _holder(client, task_queue, HolderInput(key, capacity=2, options=opts), name)
        await _granted(handles[name])
    for i, (name, prio) in enumerate([("w1", 1), ("w2", 5), ("w3", 1), ("w4", 5), ("w5", 3)]):
        handles[name] = await _holder(client, task_queue, HolderInput(key, 2, prio, options=opts), name)
        await _waiting(client, key, i + 1)
    s = await _state(client, key)
    assert s is not None and s.capacity == 2
    assert [w.workflow_id.rsplit(":", 1)[1] for w in s.waiters] == ["w2", "w4", "w5", "w1", "w3"]

    order: list[str] = []
    active = ["a", "b"]
    while active:
        name = active.pop(0)
        await handles[name].signal(Holder.let_go)
        assert (await handles[name].result()).outcome == "released"
        expected = len(active) + (1 if len(order) < 5 else 0)

        async def settled(expected: int = expected, gone: str = f"{key}:{name}") -> tuple[list[str]] | None:
            held = await _holders(client, key)
            assert len(held) <= 2
            return (held,) if len(held) == expected and gone not in held else None

        held = [h.rsplit(":", 1)[1] for h in (await _until(settled))[0]]
        for h in held:
            if h not in active:
                active.append(h)
                order.append(h)
    assert order == ["w2", "w4", "w5", "w1", "w3"]  # priority first, FIFO among equals

    # Never more than two holders at once, from the holders' own grant and release times.
    results = {n: await h.result() for n, h in handles.items()}
    spans: list[tuple[float, float]] = []
    for r in results.values():
        assert r.granted_at is not None and r.released_at is not None
        spans.append((r.granted_at, r.released_at))
    for g, _ in spans:
        assert sum(1 for g2, r2 in spans if g2 <= g < r2) <= 2

    final = await _state(client, key)
    assert final is not None and final.generation >= 1 and final.granted_total == 7 and not final.holders
    # The semaphore's last run replays deterministically.
    history = await client.get_workflow_handle(key).fetch_history()
    await Replayer(workflows=[SemaphoreWorkflow], data_converter=client.data_converter).replay_workflow(history)


async def test_try_acquire_refused_when_busy(client: Client, task_queue: str) -> None:
    key = _key()
    inp = HolderInput(key, capacity=1, mode=SemaphoreMode.TRY, options=FAST)
    first = await _holder(client, task_queue, inp, "first")
    await _granted(first)
    second = await _holder(client, task_queue, inp, "second")
    assert (await second.result()).outcome == "refused"
    await first.signal(Holder.let_go)
    assert (await first.result()).outcome == "released"
    third = await _holder(client, task_queue, inp, "third")
    await _granted(third)
    await third.signal(Holder.let_go)
    assert (await third.result()).outcome == "released"

    # Empty, the semaphore ends after its idle time; the next acquire starts a new run.
    sem = client.get_workflow_handle(key)
    await sem.result()
    fourth = await _holder(client, task_queue, inp, "fourth")
    await _granted(fourth)
    await fourth.signal(Holder.let_go)
    assert (await fourth.result()).outcome == "released"


async def test_preempt_stops_the_previous_holder(client: Client, task_queue: str) -> None:
    key = _key()
    inp = HolderInput(key, capacity=1, mode=SemaphoreMode.PREEMPT, options=FAST)
    old = await _holder(client, task_queue, inp, "old")
    await _granted(old)
    new = await _holder(client, task_queue, inp, "new")
    await _granted(new)
    assert (await old.result()).outcome == "stopped"  # told to stop by the semaphore
    assert await _holders(client, key) == [f"{key}:new"]  # its late release did not free the new slot
    await new.signal(Holder.let_go)
    assert (await new.result()).outcome == "released"

    # A DS rerun reuses the instance id. The new run's PREEMPT replaces the permit its terminated
    # predecessor never released, without telling itself to stop (the holder check is far away).
    key = _key()
    slow = HolderInput(key, mode=SemaphoreMode.PREEMPT,
                       options=SemaphoreOptions(check_interval_seconds=600.0, idle_timeout_seconds=1.0))
    crashed = await _holder(client, task_queue, slow, "rerun")
    await _granted(crashed)
    await crashed.terminate("simulated crash")
    rerun = await _holder(client, task_queue, slow, "rerun")
    await _granted(rerun)
    await asyncio.sleep(0.3)  # a stop_signal, had one been sent, would have arrived
    assert await rerun.query(Holder.granted) and (await rerun.describe()).status == WorkflowExecutionStatus.RUNNING
    s = await _state(client, key)
    assert s is not None and [h.first_run_id for h in s.holders] == [rerun.first_execution_run_id]
    await rerun.signal(Holder.let_go)
    assert (await rerun.result()).outcome == "released"


async def test_terminated_holder_slot_is_reclaimed(client: Client, task_queue: str) -> None:
    key = _key()
    inp = HolderInput(key, capacity=1, options=FAST)
    crashed = await _holder(client, task_queue, inp, "crashed")
    await _granted(crashed)
    waiter = await _holder(client, task_queue, inp, "waiter")
    await _waiting(client, key, 1)
    await crashed.terminate("simulated crash: no release")
    await _granted(waiter)  # within a check interval

    # DS "force start": an operator grants a waiting request beyond the capacity.
    forced = await _holder(client, task_queue, inp, "forced")
    await _waiting(client, key, 1)
    s = await _state(client, key)
    assert s is not None
    assert await client.get_workflow_handle(key).execute_update(SemaphoreWorkflow.force_grant, s.waiters[0].request_id)
    await _granted(forced)
    assert sorted(await _holders(client, key)) == sorted([f"{key}:waiter", f"{key}:forced"])
    for h in (waiter, forced):
        await h.signal(Holder.let_go)
        assert (await h.result()).outcome == "released"


async def test_permit_survives_continue_as_new_and_cancel_withdraws(client: Client, task_queue: str) -> None:
    key = _key()
    holder = await _holder(client, task_queue, HolderInput(key, options=FAST, continue_as_new=True), "holder")
    first_run = (await holder.describe()).run_id

    async def resumed() -> bool:
        d = await holder.describe()
        return d.run_id != first_run and bool(await holder.query(Holder.granted))

    await _until(resumed)  # the new run RESUMEd the permit its chain held
    s = await _state(client, key)
    assert s is not None and [h.workflow_id for h in s.holders] == [holder.id] and s.granted_total == 1

    waiter = await _holder(client, task_queue, HolderInput(key, options=FAST), "waiter")
    await _waiting(client, key, 1)
    await waiter.cancel()  # a waiting acquire that is cancelled withdraws its request
    await _waiting(client, key, 0)
    assert [h.workflow_id for h in (await _state(client, key) or s).holders] == [holder.id]
    await holder.signal(Holder.let_go)
    assert (await holder.result()).outcome == "released"

    async def empty() -> bool:
        s = await _state(client, key)
        return s is not None and not s.holders and not s.waiters

    await _until(empty)


async def test_grants_continue_across_a_worker_restart(client: Client) -> None:
    key = _key()
    tq = f"semaphore-test-{uuid.uuid4().hex[:8]}"
    inp = HolderInput(key, capacity=1, options=FAST)
    async with _worker(client, tq):
        first = await _holder(client, tq, inp, "first")
        await _granted(first)
        second = await _holder(client, tq, inp, "second")
        await _waiting(client, key, 1)
        third = await _holder(client, tq, inp, "third")
        await _waiting(client, key, 2)
    # No worker now: the release waits in the server.
    await first.signal(Holder.let_go)
    async with _worker(client, tq):
        assert (await first.result()).outcome == "released"
        await _granted(second)
        assert await third.query(Holder.granted) is None
        await second.signal(Holder.let_go)
        await _granted(third)
        await third.signal(Holder.let_go)
        assert (await third.result()).outcome == "released"
    status = (await client.get_workflow_handle(key).describe()).status
    assert status in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.COMPLETED)
