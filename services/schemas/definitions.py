"""Workflow definitions as the API shows them: submit answers, the list, versions, one definition.

:class:`DefinitionView` is :class:`model.definition.WorkflowDefinition` (Porpoise's normalised form)
camelCase on the wire; ``taskParams`` keep DS's keys as stored (``rawScript``, ``httpMethod``, ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from model.definition import ExecutionType, FailureStrategy, Priority, Property, TimeoutStrategy, WarningType

from .base import ApiModel
from .schedules import ScheduleView


class DefinitionSummary(ApiModel):
    """What ``POST /definitions`` answers per definition: its code and stored version."""

    code: int
    version: int
    name: str
    project_code: int
    created_version: bool | None = Field(None, description="false: the same content as the latest version")
    runnable: bool = True
    not_runnable_tasks: list[str] = Field(default_factory=list)


class SubmittedDefinition(DefinitionSummary):
    """One definition of a ``POST /definitions`` answer, with its schedule (an imported block, or
    the existing schedule now moved to this version)."""

    schedule: ScheduleView | None = None


class DefinitionListItem(ApiModel):
    """One row of ``GET /definitions``: the latest version of a definition."""

    code: int
    name: str
    project_code: int
    version: int
    updated_at: datetime | None = None


class DefinitionVersion(ApiModel):
    """One stored version of a definition."""

    version: int
    created_at: datetime | None = None
    name: str | None = None


class TaskView(ApiModel):
    """A task definition (model.definition.TaskDefinition); units are DS's (minutes)."""

    code: int
    name: str
    version: int = 1
    task_type: str
    task_params: dict[str, Any] = Field(default_factory=dict, description="DS's task parameters, keys as stored")
    local_params: list[Property] = Field(default_factory=list)
    description: str = ""
    enabled: bool = True
    task_priority: Priority = Priority.MEDIUM
    worker_group: str = "default"
    environment_code: int = -1
    fail_retry_times: int = 0
    fail_retry_interval: int = 1
    timeout_enabled: bool = False
    timeout_strategy: TimeoutStrategy | None = None
    timeout: int = 0
    delay_time: int = 0
    task_group_id: int = 0
    task_group_priority: int = 0
    cpu_quota: int = -1
    memory_max: int = -1
    is_cache: bool = False
    task_execute_type: str = "BATCH"


class RelationView(ApiModel):
    pre_task_code: int = Field(description="0: a root task")
    post_task_code: int


class ScheduleBlockView(ApiModel):
    """The ``schedule`` block a DS export carried (model.definition.Schedule)."""

    crontab: str
    timezone_id: str = "UTC"
    start_time: str | None = None
    end_time: str | None = None
    failure_strategy: FailureStrategy = FailureStrategy.CONTINUE
    warning_type: WarningType = WarningType.NONE
    warning_group_id: int = 0
    instance_priority: Priority = Priority.MEDIUM
    worker_group: str = "default"
    tenant_code: str = "default"
    environment_code: int = -1


class DefinitionView(ApiModel):
    """One version of a workflow definition, normalised (model.definition.WorkflowDefinition)."""

    code: int
    name: str
    version: int = 1
    project_code: int = 0
    project_name: str = ""
    description: str = ""
    global_params: list[Property] = Field(default_factory=list)
    timeout: int = 0
    execution_type: ExecutionType = ExecutionType.PARALLEL
    warning_group_id: int = 0
    tasks: list[TaskView]
    relations: list[RelationView]
    schedule: ScheduleBlockView | None = None
    source_format: str = ""


class ValidatedDefinition(DefinitionView):
    """``POST /definitions/validate``: the normalised definition and the tasks this Porpoise cannot run."""

    not_runnable_tasks: list[str] = Field(default_factory=list)
