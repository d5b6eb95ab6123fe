"""Workflow instances: the start command, and what the run routes answer (``/runs``, ``/definitions/{code}/runs``).

:class:`RunStatus` is the API's view of :class:`core.contracts.InstanceStatus` (the workflow's status
query, whose field names running workflows depend on): the same fields, camelCase on the wire.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, ConfigDict, Field, field_validator

from model.definition import FailureStrategy, Priority, Property, TaskDependType, WarningType
from model.json_limits import JsonLimitError, loads
from model.states import TaskState, WorkflowState

from .base import ApiModel, Long


class StartRun(ApiModel):
    """The DS start command (``POST /executors/start-process-instance``), the fields Porpoise uses."""

    model_config = ConfigDict(extra="ignore")

    start_params: dict[str, str] = Field(default_factory=dict, alias="startParams")
    failure_strategy: FailureStrategy = Field(FailureStrategy.CONTINUE, alias="failureStrategy")
    warning_type: WarningType = Field(WarningType.NONE, alias="warningType")
    warning_group_id: Long = Field(0, alias="warningGroupId")
    dry_run: bool = Field(False, alias="dryRun")
    schedule_time: datetime | None = Field(None, alias="scheduleTime")
    timezone: str | None = Field(None, alias="timezone")
    version: Long | None = None
    start_node_list: list[Long] = Field(default_factory=list, alias="startNodeList")
    task_depend_type: TaskDependType = Field(TaskDependType.TASK_POST, alias="taskDependType")
    instance_priority: Priority = Field(
        Priority.MEDIUM, validation_alias=AliasChoices("processInstancePriority", "workflowInstancePriority",
                                                       "instancePriority", "instance_priority"))
    # DS start-process-instance ``workerGroup``: tasks left in ``default`` run in this group (core/worker_groups.py).
    worker_group: str | None = Field(None, alias="workerGroup")

    @field_validator("worker_group")
    @classmethod
    def _worker_group(cls, v: str | None) -> str | None:
        from core.worker_groups import check_name, normalise

        return check_name(normalise(v)) if v is not None else None

    @field_validator("start_params", mode="before")
    @classmethod
    def _start_params(cls, v: Any) -> Any:
        """DS 3.2 sends a JSON map (maybe as a string); 3.3 a list of Property. Values are scalars."""
        if isinstance(v, str):
            try:
                v = loads(v) if v.strip() else {}
            except JsonLimitError as e:
                raise ValueError(f"startParams: {e.message}") from None
        if isinstance(v, list):
            if not all(isinstance(p, dict) and isinstance(p.get("prop"), str) and p["prop"] for p in v):
                raise ValueError("startParams as a list must hold {\"prop\": name, \"value\": value} objects")
            v = {p["prop"]: p.get("value") for p in v}
        if isinstance(v, dict):
            bad = [k for k, val in v.items() if isinstance(val, dict | list)]
            if bad:
                raise ValueError(f"startParams values must be strings, numbers or null: {', '.join(map(str, bad))}")
            return {str(k): "" if val is None else str(val) for k, val in v.items()}
        return v

    @field_validator("start_node_list", mode="before")
    @classmethod
    def _nodes(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return [int(x) for x in v.split(",") if x.strip()]
            except ValueError:
                raise ValueError("startNodeList must be task codes, as a list or comma-separated") from None
        return v

    @field_validator("dry_run", mode="before")
    @classmethod
    def _dry(cls, v: Any) -> Any:
        return bool(int(v)) if isinstance(v, int | str) and str(v) in ("0", "1") else v

    @field_validator("schedule_time", mode="before")
    @classmethod
    def _sched(cls, v: Any) -> Any:
        # DS sends "yyyy-MM-dd HH:mm:ss"; pydantic parses it with a space too.
        return None if v == "" else v


class RunCreated(ApiModel):
    """A started run (start, recover, rerun): where to follow it."""

    instance_id: str
    workflow_id: str
    run_id: str | None
    definition_code: int
    definition_version: int
    temporal_ui_url: str
    status_url: str


class RunSummary(ApiModel):
    """One row of ``GET /runs`` (Temporal visibility: search attributes, no node detail)."""

    instance_id: str
    definition_code: int | None
    definition_name: str | None
    state: str | None
    temporal_status: str
    start_time: datetime | None
    close_time: datetime | None
    temporal_ui_url: str


class NodeView(ApiModel):
    """One node of the canvas, whether or not it got a task instance (core.contracts.NodeStatus)."""

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
    recovery: str | None = Field(None, description="how the task came through a lost worker")
    timeout_warned: bool = False
    var_pool: list[Property] = Field(default_factory=list)
    sub_instance_id: str | None = Field(None, description="SUB_PROCESS: the child workflow instance")
    branch: list[int] | None = Field(None, description="CONDITIONS/SWITCH: the targets chosen")
    worker_group: str | None = Field(None, description="the task's worker group when not default")
    waiting: str | None = Field(None, description="dispatched and no worker took it yet: which group, polled or not")


class AlertNoteView(ApiModel):
    """How one alert of the run went (core.contracts.AlertNote)."""

    kind: str
    task_code: int | None = None
    ok: bool
    summary: str


class RunStatus(ApiModel):
    """``GET /runs/{id}``: a workflow instance with every node (core.contracts.InstanceStatus), plus
    its Temporal execution status and where to see it in the Temporal UI."""

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
    nodes: list[NodeView] = Field(default_factory=list)
    var_pool: list[Property] = Field(default_factory=list)
    run_times: int = 1
    is_sub_process: bool = False
    alerts: list[AlertNoteView] = Field(default_factory=list)
    end_reason: str | None = Field(None, description="set when Porpoise had to end the run itself, and why")
    temporal_status: str
    temporal_ui_url: str


class RunOperation(ApiModel):
    """The answer to stop and pause: the instance and the state the workflow reported."""

    instance_id: str
    state: str | None


class ForcedSuccess(ApiModel):
    instance_id: str
    task_code: int
    state: str
