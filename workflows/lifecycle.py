"""Workflow-instance lifecycle events, emitted by a workflow interceptor (no I/O here).

The interceptor wraps `DsWorkflow.run`: once the DAG is built it emits WORKFLOW_INSTANCE_CREATED with
every node, then a WORKFLOW_INSTANCE_STATE_CHANGED for each state the instance passes through
(RUNNING_EXECUTION, READY_PAUSE, READY_STOP, and the final state with every node).

How an event reaches the durable outbox: the interceptor hands it to the worker (``handoff``, never
during a replay), and the worker commits it after the activation that emitted it and before that
activation's commands go to Temporal (api/interceptors.py, ``InstanceEventHandoff``). So the created
event is committed before the first task is scheduled, and the final one before the run closes, as
with a local activity, without one: a local activity per event was an activity execution, an extra
activation and a history marker carrying the event, three times per run (docs/performance.md).
Event ids are deterministic, so a workflow task retried after a commit re-sends the same ids and the
outbox keeps one. Runs recorded before this (no ``instance-events-by-worker`` marker,
workflows/patches.py) keep the local activity ``append_events``. The DAG waits a bounded time for an
emission and never fails because of one.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Protocol

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import ExecuteWorkflowInput, WorkflowInboundInterceptor

with workflow.unsafe.imports_passed_through():
    from core.contracts import Activities, InstanceStatus, RunInput, WorkflowTypes
    from core.events import EventNode, EventType, LifecycleEvent
    from model.states import WorkflowState

    from . import patches


class EventHandoff(Protocol):
    """Takes an instance event from workflow code; the worker commits it after the activation."""

    def __call__(self, run_id: str, event: LifecycleEvent) -> None: ...


def lifecycle_interceptor(bound: timedelta, handoff: EventHandoff) -> type[WorkflowInboundInterceptor]:
    class _Lifecycle(LifecycleInbound):
        emit_bound = bound
        give = handoff

    return _Lifecycle


class LifecycleInbound(WorkflowInboundInterceptor):
    emit_bound = timedelta(seconds=30)
    give: EventHandoff

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        if workflow.info().workflow_type != WorkflowTypes.DS or not input.args:
            return await super().execute_workflow(input)
        run_input: RunInput = input.args[0]
        self._seq = 0
        self._last: str | None = None
        self._lock = asyncio.Lock()
        self._by_worker = patches.patched(patches.INSTANCE_EVENTS_BY_WORKER)
        instance = workflow.instance()
        watcher = asyncio.create_task(self._watch(instance, run_input))
        try:
            result = await super().execute_workflow(input)
        except ApplicationError as e:
            watcher.cancel()
            if e.type == "WorkflowInstanceFailure" and e.details:
                await self._final(InstanceStatus.model_validate(e.details[0]))
            raise
        except BaseException:
            watcher.cancel()  # continue-as-new, eviction: the instance goes on elsewhere
            raise
        watcher.cancel()
        if isinstance(result, InstanceStatus):
            await self._final(result)
        return result

    async def _watch(self, instance: Any, run_input: RunInput) -> None:
        await workflow.wait_condition(lambda: instance.current_state is not None)
        status: InstanceStatus = instance.created_status or instance.status()
        if run_input.carried is None:  # a continuation is the same instance going on
            if run_input.run_times == 1:
                await self._emit(status, EventType.WORKFLOW_INSTANCE_CREATED, None,
                                 WorkflowState.SUBMITTED_SUCCESS.value, nodes=True)
                await self._emit(status, EventType.WORKFLOW_INSTANCE_STATE_CHANGED,
                                 WorkflowState.SUBMITTED_SUCCESS.value, WorkflowState.RUNNING_EXECUTION.value)
            else:  # recover / rerun: the instance runs again
                await self._emit(status, EventType.WORKFLOW_INSTANCE_STATE_CHANGED, None,
                                 WorkflowState.RUNNING_EXECUTION.value, nodes=True)
        self._last = WorkflowState.RUNNING_EXECUTION.value
        while True:
            last = self._last

            def moved(last: str | None = last) -> bool:
                return bool(instance.current_state.value != last)

            await workflow.wait_condition(moved)
            state = instance.current_state
            if state.is_finished:
                return  # the final event carries the node list; execute_workflow sends it
            await self._emit(instance.status(), EventType.WORKFLOW_INSTANCE_STATE_CHANGED, self._last, state.value)
            self._last = state.value

    async def _final(self, status: InstanceStatus) -> None:
        await self._emit(status, EventType.WORKFLOW_INSTANCE_STATE_CHANGED, self._last, status.state.value,
                         nodes=True)

    async def _emit(self, status: InstanceStatus, kind: EventType, old: str | None, new: str,
                    nodes: bool = False) -> None:
        async with self._lock:  # one instance's events are recorded in order
            self._seq += 1
            if self._by_worker and workflow.unsafe.is_replaying():
                return  # handed over when this part of the run first ran; the node list is not built again
            info = workflow.info()
            event = LifecycleEvent(
                event_id=f"{info.workflow_id}/{info.run_id}/wf/{self._seq}",
                event_type=kind, timestamp=workflow.now(), project_code=status.project_code,
                definition_code=status.definition_code, definition_version=status.definition_version,
                definition_name=status.definition_name, instance_id=status.instance_id,
                workflow_id=info.workflow_id, run_id=info.run_id, run_times=status.run_times,
                is_sub_process=status.is_sub_process, old_state=old, new_state=new,
                nodes=[EventNode.model_validate(n.model_dump()) for n in status.nodes] if nodes else None,
            )
            if self._by_worker:
                self.give(info.run_id, event)
                return
            try:
                await workflow.execute_local_activity(
                    Activities.APPEND_EVENTS, [event], schedule_to_close_timeout=self.emit_bound,
                    retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200),
                                             maximum_interval=timedelta(seconds=5)),
                    summary=f"event {kind.value} {new}",
                )
            except ActivityError:
                # The outbox did not take the event within the bound: the run goes on regardless.
                workflow.logger.warning("lifecycle event %s not recorded within %s", event.event_id, self.emit_bound)
