"""The request and response bodies services take and give, with DS's camelCase field names (the API
contract: the HTTP routes and the CLI use the same shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from model.definition import FailureStrategy, Priority, TaskDependType, WarningType
from model.json_limits import INT64_MAX, INT64_MIN, JsonLimitError, loads

Long = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]  # DS ids and codes are Java longs


class DefinitionSummary(BaseModel):
    code: int
    version: int
    name: str
    project_code: int = Field(serialization_alias="projectCode")
    created_version: bool | None = Field(None, serialization_alias="createdVersion")
    runnable: bool = True
    not_runnable_tasks: list[str] = Field(default_factory=list, serialization_alias="notRunnableTasks")


class StartRun(BaseModel):
    """The DS start command (``POST /executors/start-process-instance``), the fields Porpoise uses."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

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
                                                       "instancePriority"))

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


class RunCreated(BaseModel):
    instance_id: str = Field(serialization_alias="instanceId")
    workflow_id: str = Field(serialization_alias="workflowId")
    run_id: str | None = Field(serialization_alias="runId")
    definition_code: int = Field(serialization_alias="definitionCode")
    definition_version: int = Field(serialization_alias="definitionVersion")
    temporal_ui_url: str = Field(serialization_alias="temporalUiUrl")
    status_url: str = Field(serialization_alias="statusUrl")


class RunSummary(BaseModel):
    instance_id: str = Field(serialization_alias="instanceId")
    definition_code: int | None = Field(serialization_alias="definitionCode")
    definition_name: str | None = Field(serialization_alias="definitionName")
    state: str | None
    temporal_status: str = Field(serialization_alias="temporalStatus")
    start_time: datetime | None = Field(serialization_alias="startTime")
    close_time: datetime | None = Field(serialization_alias="closeTime")
    temporal_ui_url: str = Field(serialization_alias="temporalUiUrl")


# -- small responses (field names are the JSON names) ---------------------------------------------------------


class RunOperation(BaseModel):
    """The answer to stop and pause: the instance and the state the workflow reported."""

    instanceId: str  # noqa: N815 - the JSON name
    state: Any


class ForcedSuccess(BaseModel):
    instanceId: str  # noqa: N815
    taskCode: int  # noqa: N815
    state: str


class ScheduleDeleted(BaseModel):
    id: int
    deleted: bool


class ScheduleTriggered(BaseModel):
    id: int
    triggered: bool
    runsUrl: str  # noqa: N815


class SchedulePreview(BaseModel):
    crontab: str
    timezoneId: str  # noqa: N815
    fireTimes: list[str]  # noqa: N815


class ComplementStopped(BaseModel):
    complementId: str  # noqa: N815
    state: str
