"""DS state names for workflow instances and task instances (reference §5).

DS codes are not contiguous, so states are string enums keyed by name, never by ordinal. Nodes that
DS keeps no task instance for (forbidden, skipped, depend-failed, never reached) get node-only states
here, because a consumer of a run wants to see the whole canvas (reference §11 "Skip vs failure").
"""

from __future__ import annotations

from enum import StrEnum


class WorkflowState(StrEnum):
    SUBMITTED_SUCCESS = "SUBMITTED_SUCCESS"
    RUNNING_EXECUTION = "RUNNING_EXECUTION"
    READY_PAUSE = "READY_PAUSE"
    PAUSE = "PAUSE"
    READY_STOP = "READY_STOP"
    STOP = "STOP"
    FAILURE = "FAILURE"
    SUCCESS = "SUCCESS"
    SERIAL_WAIT = "SERIAL_WAIT"
    WAIT_TO_RUN = "WAIT_TO_RUN"

    @property
    def is_finished(self) -> bool:
        return self in _FINISHED_WORKFLOW


_FINISHED_WORKFLOW = {WorkflowState.SUCCESS, WorkflowState.FAILURE, WorkflowState.STOP, WorkflowState.PAUSE}


class TaskState(StrEnum):
    # DS task-instance states (TaskExecutionStatus)
    SUBMITTED_SUCCESS = "SUBMITTED_SUCCESS"
    DELAY_EXECUTION = "DELAY_EXECUTION"
    DISPATCH = "DISPATCH"
    RUNNING_EXECUTION = "RUNNING_EXECUTION"
    PAUSE = "PAUSE"
    STOP = "STOP"
    FAILURE = "FAILURE"
    SUCCESS = "SUCCESS"
    NEED_FAULT_TOLERANCE = "NEED_FAULT_TOLERANCE"
    KILL = "KILL"
    FORCED_SUCCESS = "FORCED_SUCCESS"
    # Node-only states: DS keeps no task instance for these.
    WAITING = "WAITING"  # not reached yet: predecessors still running
    NOT_RUN = "NOT_RUN"  # the instance ended (END strategy, stop, pause) before the node was reached
    FORBIDDEN = "FORBIDDEN"  # flag=NO
    SKIPPED = "SKIPPED"  # not on the branch a CONDITIONS/SWITCH node chose
    DEPEND_FAILED = "DEPEND_FAILED"  # an upstream task failed, so DS never creates this instance

    @property
    def is_finished(self) -> bool:
        return self in _FINISHED_TASK

    @property
    def is_success(self) -> bool:
        return self in (TaskState.SUCCESS, TaskState.FORCED_SUCCESS)

    @property
    def is_failure(self) -> bool:
        """DS 'failed': FAILURE (retries exhausted), KILL or STOP (reference §4.3)."""
        return self in (TaskState.FAILURE, TaskState.KILL, TaskState.STOP, TaskState.NEED_FAULT_TOLERANCE)

    @property
    def has_instance(self) -> bool:
        return self not in _NODE_ONLY


_FINISHED_TASK = {
    TaskState.SUCCESS,
    TaskState.FORCED_SUCCESS,
    TaskState.FAILURE,
    TaskState.KILL,
    TaskState.PAUSE,
    TaskState.STOP,
    TaskState.NEED_FAULT_TOLERANCE,
    TaskState.NOT_RUN,
    TaskState.FORBIDDEN,
    TaskState.SKIPPED,
    TaskState.DEPEND_FAILED,
}
_NODE_ONLY = {
    TaskState.WAITING,
    TaskState.NOT_RUN,
    TaskState.FORBIDDEN,
    TaskState.SKIPPED,
    TaskState.DEPEND_FAILED,
}
