"""The DS workflow instance's contract: its input, its status, and the task activities' request/result.

The API starts :class:`RunInput` workflows; the workflow sends :class:`TaskRequest` to activities,
which answer :class:`TaskResult`. All are pydantic models, serialised by temporalio's pydantic data
converter. Keep them small: they land in every run's history.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from model.definition import (
    DataType,
    FailureStrategy,
    Priority,
    Property,
    TaskDependType,
    WarningType,
    WorkflowDefinition,
)
from model.states import TaskState, WorkflowState

from .names import WorkflowTypes

WORKFLOW_TYPE = WorkflowTypes.DS
# A workflow task may need a full replay of a long history on a busy worker: give it room.
WORKFLOW_TASK_TIMEOUT = timedelta(seconds=60)


def instance_summary(name: str, version: int, command_type: str = "START_PROCESS", run_times: int = 1) -> str:
    """The static summary the Temporal UI shows for a workflow instance the API starts: which
    definition and version, which DS command, which run of the instance."""
    return f"{name} v{version} ({command_type}, run {run_times})"


class LostAttempt(BaseModel):
    """The last heartbeat of an attempt whose worker stopped answering."""

    attempt: int
    host: str = ""
    pid: int | None = None
    log_path: str = ""
    details: dict[str, Any] = Field(default_factory=dict)  # the whole last heartbeat (e.g. a DataX k8s_job)


class LostAttemptQuery(BaseModel):
    """Which attempt to look up: the started event of the activity attempt that timed out."""

    workflow_id: str
    run_id: str
    started_event_id: int


class AttemptOrigin(BaseModel):
    """Where and which an attempt was, as the server recorded when a worker took it (its started
    event): Temporal's attempt number of the schedule and the host of the worker's identity."""

    attempt: int
    host: str


class TaskRequest(BaseModel):
    """What an activity needs to run one task instance. No secrets: those resolve inside the activity."""

    instance_id: str
    task_code: int
    task_name: str
    task_type: str
    task_params: dict[str, Any]  # raw DS taskParams; read with model.task_params (e.g. SqlParams.of(...))
    params: dict[str, str] = Field(default_factory=dict)  # prepared parameters (reference §6.2)
    param_types: dict[str, DataType] = Field(default_factory=dict)  # non-VARCHAR types, for SQL binding
    out_params: list[Property] = Field(default_factory=list)  # declared OUT localParams
    log_dir: str  # directory; the attempt's log file is <log_dir>/<task_code>.<attempt>.log
    dry_run: bool = False
    timezone: str = "UTC"  # the run's timezone, for $[...] in scripts, urls and bodies
    kill_grace_seconds: float = 5.0
    # Who the task belongs to, for task-instance events.
    project_code: int = 0
    definition_code: int = 0
    definition_version: int = 0
    definition_name: str = ""
    run_times: int = 1
    is_sub_process: bool = False
    # A lost worker (docs/reliability.md): attempts of this task before this schedule of it, and the
    # attempt whose worker died, which this one re-attaches to instead of running the task again.
    attempt_offset: int = 0
    lost_attempt: LostAttempt | None = None


class TaskResult(BaseModel):
    """What a finished task attempt reports back to the workflow."""

    attempt: int
    host: str
    pid: int | None = None
    log_path: str
    exit_code: int | None = None
    var_pool: list[Property] = Field(default_factory=list)  # exported OUT params
    stats: dict[str, Any] | None = None  # DATAX: records, bytes, failures, duration (activities/datax/stats.py)
    recovery: str | None = None  # after a lost worker: re-attached, took the recorded exit, or ran again


class NodeStatus(BaseModel):
    """The live state of one node of the definition, whether or not it got a task instance."""

    code: int
    name: str
    task_type: str
    state: TaskState
    attempts: int = 0
    max_attempts: int = 1
    start_time: datetime | None = None
    end_time: datetime | None = None
    host: str | None = None
    pid: int | None = None
    log_path: str | None = None
    error: str | None = None
    recovery: str | None = None  # how the task came through a lost worker (docs/reliability.md)
    timeout_warned: bool = False
    var_pool: list[Property] = Field(default_factory=list)
    sub_instance_id: str | None = None  # SUB_PROCESS: the child workflow instance
    branch: list[int] | None = None  # CONDITIONS/SWITCH: the targets chosen
    worker_group: str | None = None  # the task's worker group when not default (core/worker_groups.py)
    waiting: str | None = None  # set by the API: dispatched and no worker took it yet (which group, polled?)


class AlertNote(BaseModel):
    """How one alert of the run went (docs/alerts.md): a failing channel shows in the run's state."""

    kind: str  # WORKFLOW_END, TASK_TIMEOUT, TASK_FAILURE
    task_code: int | None = None
    ok: bool
    summary: str


class InstanceStatus(BaseModel):
    """A workflow instance as DS shows it, with every node of the canvas."""

    instance_id: str
    definition_code: int
    definition_name: str
    definition_version: int
    project_code: int
    state: WorkflowState
    failure_strategy: FailureStrategy
    start_time: datetime | None = None
    end_time: datetime | None = None
    schedule_time: datetime | None = None
    dry_run: bool = False
    timeout_warned: bool = False
    nodes: list[NodeStatus] = Field(default_factory=list)
    var_pool: list[Property] = Field(default_factory=list)
    run_times: int = 1
    is_sub_process: bool = False
    alerts: list[AlertNote] = Field(default_factory=list)
    # Set when Porpoise had to end the run itself (a stop nobody answered): what happened and why.
    end_reason: str | None = None


class CarriedState(BaseModel):
    """What a run hands to its continuation when history grows too long (continue-as-new)."""

    nodes: list[NodeStatus]  # every node not still WAITING
    never_skip: list[int] = Field(default_factory=list)
    end_requested: bool = False
    stopping: bool = False
    start_time: datetime
    timeout_warned: bool = False
    continued: int = 1
    alerts: list[AlertNote] = Field(default_factory=list)
    dependent_started: dict[int, datetime] = Field(default_factory=dict)  # DEPENDENT code -> first start


class RunInput(BaseModel):
    """One workflow instance: the pinned definition version and the start command's options.

    A large definition travels by reference (``definition`` None, code and version set) and the
    workflow loads that exact version, so history stays small (temporal-notes B8).
    """

    definition: WorkflowDefinition | None
    definition_code: int = 0
    definition_version: int = 0
    instance_id: str  # = the Temporal workflow id
    start_params: dict[str, str] = Field(default_factory=dict)
    failure_strategy: FailureStrategy = FailureStrategy.CONTINUE
    warning_type: WarningType = WarningType.NONE
    warning_group_id: int = 0
    dry_run: bool = False
    schedule_time: datetime | None = None  # business time for system.biz.date and $[...]
    timezone: str = "UTC"
    start_node_list: list[int] = Field(default_factory=list)
    task_depend_type: TaskDependType = TaskDependType.TASK_POST
    log_dir: str = ""  # the worker's task-log root, chosen by the API from settings
    command_type: str = "START_PROCESS"
    # Seconds in a DS "minute" (retry interval, delay, timeouts). 60 in production; the test suite
    # shrinks it so that minute-based semantics are exercised in seconds.
    minute_seconds: float = 60.0
    run_times: int = 1  # DS runTimes: 1, then +1 on every recover or rerun of the instance
    # Recover (reference §4.14): the previous run's nodes; successful ones are kept, the rest re-run.
    prior_nodes: list[NodeStatus] = Field(default_factory=list)
    var_pool: list[Property] = Field(default_factory=list)  # seeds root tasks (sub-process children)
    is_sub_process: bool = False  # children never alert (reference §4.9)
    parent_instance_id: str | None = None
    # SUB_PROCESS nesting (model/sub_process.py): the definition codes from the root instance down to
    # this one's parent, and how deep children may nest; a node that would go deeper or call back up
    # the chain fails instead of starting its child.
    call_chain: list[int] = Field(default_factory=list)
    max_sub_process_depth: int = 10
    max_parallel_tasks: int = 1000  # below Temporal's 2,000 pending activities per workflow
    instance_priority: Priority = Priority.MEDIUM  # processInstancePriority (§4.16)
    task_group_sizes: dict[int, int] = Field(default_factory=dict)  # task group id -> groupSize
    carried: CarriedState | None = None
    # Worker groups (core/worker_groups.py): the instance's group (start command, schedule row, or the
    # parent's SUB_PROCESS task), and the group heavy DataX jobs of the default group go to ("" = none).
    worker_group: str = "default"
    datax_worker_group: str = ""
    datax_heavy_xmx_gb: int = 4
