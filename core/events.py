"""Lifecycle events: the messages other modules consume to follow runs (schema version 1).

Four kinds, mirroring DS's lifecycle annotations: workflow instance created, workflow instance state
changed, task instance created, task instance state changed. Every event has a stable ``event_id``
(the same on every re-send, so consumers dedupe by it) and the ordering key ``instance_id``.
The JSON Schema is exported to docs/events/ by ``porpoise events schema``.
No task parameters and no secrets are ever part of an event.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1


class EventType(StrEnum):
    WORKFLOW_INSTANCE_CREATED = "WORKFLOW_INSTANCE_CREATED"
    WORKFLOW_INSTANCE_STATE_CHANGED = "WORKFLOW_INSTANCE_STATE_CHANGED"
    TASK_INSTANCE_CREATED = "TASK_INSTANCE_CREATED"
    TASK_INSTANCE_STATE_CHANGED = "TASK_INSTANCE_STATE_CHANGED"


class EventNode(BaseModel):
    """One node of the run's canvas, whether or not it ran (forbidden, skipped, never reached...)."""

    code: int
    name: str
    task_type: str
    state: str
    attempts: int = 0
    start_time: datetime | None = None
    end_time: datetime | None = None
    host: str | None = None
    pid: int | None = None
    log_path: str | None = None


class EventTask(BaseModel):
    """The task instance a task event is about."""

    code: int
    name: str
    task_type: str
    attempt: int
    host: str | None = None
    pid: int | None = None
    log_path: str | None = None
    error: str | None = None
    stats: dict[str, Any] | None = Field(default=None, description="DATAX: the run's statistics (docs/datax.md)")


class LifecycleEvent(BaseModel):
    event_id: str = Field(description="stable across re-sends; dedupe by it")
    event_type: EventType
    schema_version: int = SCHEMA_VERSION
    timestamp: datetime
    project_code: int
    definition_code: int
    definition_version: int
    definition_name: str = ""
    instance_id: str = Field(description="the ordering key: one instance's events arrive in order")
    workflow_id: str
    run_id: str
    run_times: int = 1
    is_sub_process: bool = False
    old_state: str | None = None
    new_state: str
    nodes: list[EventNode] | None = Field(
        default=None, description="every node of the run: on WORKFLOW_INSTANCE_CREATED and on the final state")
    task: EventTask | None = None
