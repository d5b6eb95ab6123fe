"""The worker's events interceptor: wires task events (an activity interceptor, :mod:`activities.events`)
and instance events (a workflow interceptor, :mod:`workflows.lifecycle`) into one Temporal
``Interceptor``. It lives with the worker wiring because it is the one place that needs both layers.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.worker import (
    ActivityInboundInterceptor,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from activities.events.interceptor import TaskEvents
from storage.outbox import GroupCommit, Outbox
from workflows.lifecycle import lifecycle_interceptor


class EventsInterceptor(Interceptor):
    """Worker interceptor: task events here, instance events through the workflow interceptor."""

    def __init__(self, outbox: Outbox, bound_seconds: float = 30.0) -> None:
        self.outbox = outbox
        self.bound_seconds = bound_seconds
        # One writer for the whole worker: the SDK builds the activity interceptor chain for every
        # activity execution, and group commit only batches if every attempt shares the queue.
        self.writer = GroupCommit(outbox)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return TaskEvents(next, self.writer, self.bound_seconds)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return lifecycle_interceptor(timedelta(seconds=self.bound_seconds))
