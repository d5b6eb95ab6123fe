"""The worker's events interceptor: wires task events (an activity interceptor, :mod:`activities.events`)
and instance events (a workflow interceptor, :mod:`workflows.lifecycle`) into one Temporal
``Interceptor``, and commits the instance events the workflows hand over (:class:`InstanceEventHandoff`,
through the runner of :class:`EventCommitRunner`). It lives with the worker wiring because it is the one
place that needs both layers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
from collections.abc import Sequence
from datetime import timedelta

from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.worker import (
    ActivityInboundInterceptor,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowRunner,
)
from temporalio.worker._workflow_instance import WorkflowInstance, WorkflowInstanceDetails

from activities.events.interceptor import TaskEvents
from core.events import LifecycleEvent
from storage.outbox import GroupCommit, Outbox
from workflows.lifecycle import lifecycle_interceptor

from .delegating_runner import DelegatingInstance, DelegatingRunner

log = logging.getLogger("porpoise.events")
# The longest an activation waits for its instance events to commit. Under Temporal's workflow task
# timeout (10 s), which a blocked activation would otherwise outlast and have its task re-dispatched.
COMMIT_WAIT_SECONDS = 5.0


class EventsInterceptor(Interceptor):
    """Worker interceptor: task events here, instance events through the workflow interceptor."""

    def __init__(self, outbox: Outbox, bound_seconds: float = 30.0) -> None:
        self.outbox = outbox
        self.bound_seconds = bound_seconds
        # One writer for the whole worker: the SDK builds the activity interceptor chain for every
        # activity execution, and group commit only batches if every attempt shares the queue.
        self.writer = GroupCommit(outbox)
        self.handoff = InstanceEventHandoff(self.writer, min(bound_seconds, COMMIT_WAIT_SECONDS))

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return TaskEvents(next, self.writer, self.bound_seconds)

    def close(self) -> None:
        """At worker shutdown, after the workers stopped: commit what is still queued (instance events
        queued without a wait, in the SDK's debug mode) and stop the writer thread."""
        self.writer.close()

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return lifecycle_interceptor(timedelta(seconds=self.bound_seconds), self.handoff)

    def runner(self, inner: WorkflowRunner) -> WorkflowRunner:
        """``inner`` (the worker's sandboxed runner), committing each activation's instance events."""
        return EventCommitRunner(inner, self.handoff)


class InstanceEventHandoff:
    """Instance events from workflow code, kept per run until the activation that emitted them ends.

    Workflow code cannot do I/O, so :mod:`workflows.lifecycle` only hands an event over (outside a
    replay); :class:`EventCommitRunner` then commits the run's events through the worker's one
    group-commit writer (a thread of its own) before it returns the activation's completion.
    Activations of different runs run on different threads at once; each touches only its own key."""

    def __init__(self, writer: GroupCommit, wait_seconds: float) -> None:
        self.writer, self.wait = writer, wait_seconds
        self._pending: dict[str, list[LifecycleEvent]] = {}

    def __call__(self, run_id: str, event: LifecycleEvent) -> None:
        self._pending.setdefault(run_id, []).append(event)

    def take(self, run_id: str) -> list[LifecycleEvent]:
        return self._pending.pop(run_id, [])

    def commit(self, events: Sequence[LifecycleEvent]) -> None:
        """Commit ``events``, retrying a failed write, for at most ``wait`` seconds (on the calling
        activation's thread). Past that the run goes on: a write still in progress is left to finish,
        and one that keeps failing is logged, the same bound the local activity had."""
        if _on_event_loop():  # the SDK's debug mode activates on the loop: waiting would hold the worker
            self.writer.append_nowait(events).add_done_callback(functools.partial(_log_failure, events))
            return
        deadline = time.monotonic() + self.wait
        pause = 0.2
        while True:
            try:
                self.writer.append_blocking(events, max(0.0, deadline - time.monotonic()))
                return
            except TimeoutError:
                log.warning("instance events %s not committed within %gs; left to the writer",
                            [e.event_id for e in events], self.wait)
                return
            except Exception:
                if time.monotonic() + pause >= deadline:
                    log.warning("instance events %s not recorded", [e.event_id for e in events], exc_info=True)
                    return
                time.sleep(pause)
                pause = min(pause * 2, 2.0)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _log_failure(events: Sequence[LifecycleEvent], done: concurrent.futures.Future[None]) -> None:
    if done.exception() is not None:
        log.warning("instance events %s not recorded", [e.event_id for e in events], exc_info=done.exception())


class EventCommitRunner(DelegatingRunner):
    """Delegates to ``inner``; after each activation, commits the instance events it handed over.

    A failed activation's events are dropped: its workflow task is retried and emits them again (the
    same deterministic ids), so nothing is recorded for commands Temporal never accepted."""

    def __init__(self, inner: WorkflowRunner, handoff: InstanceEventHandoff) -> None:
        super().__init__(inner)
        self.handoff = handoff

    def wrap(self, instance: WorkflowInstance, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _CommittingInstance(instance, self.handoff)


class _CommittingInstance(DelegatingInstance):
    def __init__(self, inner: WorkflowInstance, handoff: InstanceEventHandoff) -> None:
        super().__init__(inner)
        self.handoff = handoff

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        completion = self.inner.activate(act)
        events = self.handoff.take(act.run_id)
        if events and not completion.HasField("failed"):
            self.handoff.commit(events)
        return completion
