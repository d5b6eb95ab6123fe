"""Task-instance events from an activity inbound interceptor, one set per attempt.

The worker's :class:`api.interceptors.EventsInterceptor` installs it, next to the workflow
interceptor for instance events (:mod:`workflows.lifecycle`): activities never import workflows.

Around every task activity (a TaskRequest argument) it records TASK_INSTANCE_CREATED on the first
attempt, RUNNING_EXECUTION when the attempt starts, and the attempt's end state (SUCCESS, FAILURE or
KILL, with host, PID and log location). Writes go to the durable outbox, bounded in time: a slow or
broken outbox is logged and never fails or blocks the task beyond the bound.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
)

from core.contracts import TaskRequest, TaskResult
from core.events import EventTask, EventType, LifecycleEvent
from model.states import TaskState
from storage.outbox import GroupCommit

log = logging.getLogger("porpoise.events")
HEARTBEAT_EVERY = 2.0  # seconds between heartbeats while an attempt waits on the outbox


# The attempt's last heartbeat details (pid, host, log_path), so a killed attempt's event says where.
_heartbeat: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("porpoise_heartbeat", default=None)


class _HeartbeatTap(ActivityOutboundInterceptor):
    def heartbeat(self, *details: Any) -> None:
        seen = _heartbeat.get()
        if seen is not None and details and isinstance(details[0], dict):
            seen.update({k: v for k, v in details[0].items() if v is not None})
        super().heartbeat(*details)


class TaskEvents(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, writer: GroupCommit, bound_seconds: float) -> None:
        super().__init__(next)
        self.writer, self.bound = writer, bound_seconds

    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        super().init(_HeartbeatTap(outbound))

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        request = input.args[0] if input.args else None
        if not isinstance(request, TaskRequest):
            return await super().execute_activity(input)
        info = activity.info()
        attempt = info.attempt
        events = []
        if attempt == 1:
            events.append(self._event(request, EventType.TASK_INSTANCE_CREATED, None,
                                      TaskState.SUBMITTED_SUCCESS, attempt))
        before = TaskState.SUBMITTED_SUCCESS if attempt == 1 else TaskState.FAILURE
        events.append(self._event(request, EventType.TASK_INSTANCE_STATE_CHANGED, before,
                                  TaskState.RUNNING_EXECUTION, attempt))
        await self._record(events)
        seen: dict[str, Any] = {}
        _heartbeat.set(seen)
        try:
            result = await super().execute_activity(input)
        except (asyncio.CancelledError, Exception) as e:
            killed = isinstance(e, asyncio.CancelledError) or type(e).__name__ == "CancelledError"
            details = e.details[0] if isinstance(e, ApplicationError) and e.details else {}
            details = seen | (details if isinstance(details, dict) else {})
            await self._record([self._event(
                request, EventType.TASK_INSTANCE_STATE_CHANGED, TaskState.RUNNING_EXECUTION,
                TaskState.KILL if killed else TaskState.FAILURE, attempt,
                host=details.get("host"), pid=details.get("pid"), log_path=details.get("log_path"),
                error="killed" if killed else (e.message if isinstance(e, ApplicationError) else type(e).__name__),
            )], seen)
            raise
        if isinstance(result, TaskResult):
            await self._record([self._event(request, EventType.TASK_INSTANCE_STATE_CHANGED,
                                             TaskState.RUNNING_EXECUTION, TaskState.SUCCESS, attempt,
                                             host=result.host, pid=result.pid, log_path=result.log_path,
                                             stats=result.stats)], seen)
        return result

    def _event(self, r: TaskRequest, kind: EventType, old: TaskState | None, new: TaskState, attempt: int,
               **task: Any) -> LifecycleEvent:
        info = activity.info()
        return LifecycleEvent(
            event_id=f"{info.workflow_id}/{info.workflow_run_id}/task/{info.activity_id}/{attempt}/{new.value}",
            event_type=kind, timestamp=datetime.now(UTC), project_code=r.project_code,
            definition_code=r.definition_code, definition_version=r.definition_version,
            definition_name=r.definition_name, instance_id=r.instance_id, workflow_id=info.workflow_id or "",
            run_id=info.workflow_run_id or "", run_times=r.run_times, is_sub_process=r.is_sub_process,
            old_state=old.value if old else None, new_state=new.value,
            task=EventTask(code=r.task_code, name=r.task_name, task_type=r.task_type, attempt=attempt, **task),
        )

    async def _record(self, events: list[LifecycleEvent], heartbeat: dict[str, Any] | None = None) -> None:
        """Commit the events, waiting at most the bound. The attempt keeps heartbeating meanwhile (with
        its last details): a slow outbox must not look like a dead worker and time the task out.

        The wait is the writer's future and one timer, which fires only if the commit takes longer
        than a heartbeat interval (a task and ``asyncio.wait`` per record cost 3x the CPU, twice per
        attempt)."""
        committed = self.writer.append_soon(events)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.bound
        timer: asyncio.TimerHandle

        def tick() -> None:  # runs in the attempt's context (call_later copies it): heartbeat works
            nonlocal timer
            if committed.done():
                return
            left = deadline - loop.time()
            if left <= 0:
                committed.set_exception(TimeoutError(f"the outbox did not commit within {self.bound:g}s"))
                return
            activity.heartbeat(*([heartbeat] if heartbeat else []))
            timer = loop.call_later(min(HEARTBEAT_EVERY, left), tick)

        timer = loop.call_later(min(HEARTBEAT_EVERY, self.bound), tick)
        try:
            await committed  # a cancelled wait cancels the future only: the writer still commits them
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("task events %s not recorded", [e.event_id for e in events], exc_info=True)
        finally:
            timer.cancel()
