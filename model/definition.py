"""The normalised, immutable workflow definition.

Every accepted input format (DS export 3.1/3.2/3.3, the create-API form, pydolphinscheduler output)
is parsed by :mod:`model.formats` into these frozen models. Field names are ours (snake_case); the
DS names are kept in comments where they differ. Units are DS units: minutes for retry interval,
timeout and delay (reference §2).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from .task_params import TaskParams


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Direct(StrEnum):
    IN = "IN"
    OUT = "OUT"


class DataType(StrEnum):
    VARCHAR = "VARCHAR"
    INTEGER = "INTEGER"
    LONG = "LONG"
    FLOAT = "FLOAT"
    DOUBLE = "DOUBLE"
    DATE = "DATE"
    TIME = "TIME"
    TIMESTAMP = "TIMESTAMP"
    BOOLEAN = "BOOLEAN"
    LIST = "LIST"
    FILE = "FILE"


class Priority(StrEnum):
    """DS Priority: lower ordinal runs first."""

    HIGHEST = "HIGHEST"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    LOWEST = "LOWEST"

    @property
    def rank(self) -> int:
        """0 for HIGHEST to 4 for LOWEST. Read once per task a run dispatches: a dict lookup, not a
        walk of the enum (which cost ~2 % of a dry-run worker's samples inside the sandbox)."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {p: i for i, p in enumerate(Priority)}


class TimeoutStrategy(StrEnum):
    WARN = "WARN"
    FAILED = "FAILED"
    WARNFAILED = "WARNFAILED"


class ExecutionType(StrEnum):
    PARALLEL = "PARALLEL"
    SERIAL_WAIT = "SERIAL_WAIT"
    SERIAL_DISCARD = "SERIAL_DISCARD"
    SERIAL_PRIORITY = "SERIAL_PRIORITY"


class FailureStrategy(StrEnum):
    END = "END"
    CONTINUE = "CONTINUE"


class WarningType(StrEnum):
    NONE = "NONE"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    ALL = "ALL"


class TaskDependType(StrEnum):
    TASK_ONLY = "TASK_ONLY"
    TASK_PRE = "TASK_PRE"
    TASK_POST = "TASK_POST"


class Property(Frozen):
    """A DS Property: a global, local, startup or varPool parameter."""

    prop: str
    direct: Direct = Direct.IN
    type: DataType = DataType.VARCHAR
    value: str | None = ""


class TaskDefinition(Frozen):
    code: int
    name: str
    version: int = 1
    task_type: str  # taskType, upper-case; SUB_WORKFLOW is normalised to SUB_PROCESS
    # Type-specific, DS keys kept as stored: the form that travels in workflow inputs and activity
    # requests, so recorded histories replay. Read it through :attr:`params` (model/task_params).
    task_params: dict[str, Any] = Field(default_factory=dict)
    local_params: tuple[Property, ...] = ()
    description: str = ""
    enabled: bool = True  # flag: YES = True, NO = forbidden (reference §4.6)
    task_priority: Priority = Priority.MEDIUM
    worker_group: str = "default"
    environment_code: int = -1
    fail_retry_times: int = 0
    fail_retry_interval: int = 1  # minutes
    timeout_enabled: bool = False  # timeoutFlag OPEN
    timeout_strategy: TimeoutStrategy | None = None  # timeoutNotifyStrategy
    timeout: int = 0  # minutes, from task start
    delay_time: int = 0  # minutes, before dispatch
    task_group_id: int = 0
    task_group_priority: int = 0
    cpu_quota: int = -1
    memory_max: int = -1
    is_cache: bool = False
    task_execute_type: str = "BATCH"

    @property
    def params(self) -> TaskParams:
        """The typed parameters of this task's type; TaskParamsError naming a field of a wrong type."""
        from .task_params import parse_params  # model.task_params imports this module

        return parse_params(self.task_type, self.task_params)

    @property
    def out_params(self) -> tuple[Property, ...]:
        return tuple(p for p in self.local_params if p.direct is Direct.OUT)


class Relation(Frozen):
    pre_task_code: int  # 0 = root
    post_task_code: int


class Schedule(Frozen):
    crontab: str
    timezone_id: str = "UTC"
    start_time: str | None = None  # "yyyy-MM-dd HH:mm:ss"
    end_time: str | None = None
    failure_strategy: FailureStrategy = FailureStrategy.CONTINUE
    warning_type: WarningType = WarningType.NONE
    warning_group_id: int = 0
    instance_priority: Priority = Priority.MEDIUM
    worker_group: str = "default"
    tenant_code: str = "default"
    environment_code: int = -1


class WorkflowDefinition(Frozen):
    """One DS workflow (process) definition at one version."""

    code: int
    name: str
    version: int = 1
    project_code: int = 0
    project_name: str = ""
    description: str = ""
    global_params: tuple[Property, ...] = ()
    timeout: int = 0  # minutes; 3.2 only warns (reference §4.5)
    execution_type: ExecutionType = ExecutionType.PARALLEL
    warning_group_id: int = 0
    tasks: tuple[TaskDefinition, ...]
    relations: tuple[Relation, ...]
    schedule: Schedule | None = None
    source_format: str = ""  # which input format it came from, for humans

    def task(self, code: int) -> TaskDefinition:
        for t in self.tasks:
            if t.code == code:
                return t
        raise KeyError(code)

    def content_equal(self, other: WorkflowDefinition) -> bool:
        """True when two definitions differ only in version/source bookkeeping."""
        ignore = {"version", "source_format"}
        return self.model_dump(exclude=ignore) == other.model_dump(exclude=ignore)
