"""Schedules as the API shows them (DS's schedule fields, and what Temporal's schedule reports)."""

from __future__ import annotations

from pydantic import Field

from .base import ApiModel


class RecentFire(ApiModel):
    schedule_time: str
    started_at: str
    instance_id: str | None = None


class TemporalScheduleInfo(ApiModel):
    """What the Temporal schedule reports (``GET /schedules/{id}`` only)."""

    paused: bool
    note: str | None = None
    catchup_window_seconds: int
    overlap: str
    next_fire_times: list[str]
    num_actions: int
    num_skipped_overlap: int
    num_missed_catchup_window: int
    running_instances: list[str | None]
    recent_fires: list[RecentFire]


class ScheduleView(ApiModel):
    """A DS schedule: DS's field names (``processDefinitionCode``, ``timezoneId``, ...)."""

    id: int
    process_definition_code: int
    process_definition_name: str | None = None
    process_definition_version: int
    project_code: int
    crontab: str
    timezone_id: str
    start_time: str | None = None
    end_time: str | None = None
    failure_strategy: str
    warning_type: str
    warning_group_id: int
    process_instance_priority: str
    worker_group: str
    tenant_code: str
    environment_code: int
    release_state: str
    misfire_policy: str
    misfire_threshold_seconds: int
    overlap_policy: str
    synced: bool
    create_time: str | None = None
    update_time: str | None = None
    temporal_schedule_id: str
    temporal_ui_url: str
    runs_url: str
    temporal: TemporalScheduleInfo | None = Field(None, description="set by GET /schedules/{id}")


class ScheduleRun(ApiModel):
    """One instance a schedule started."""

    instance_id: str
    definition_code: int | None = None
    definition_version: int | None = None
    state: str | None = None
    schedule_time: str | None = None
    temporal_status: str
    start_time: str | None = None
    close_time: str | None = None
    temporal_ui_url: str


class ScheduleDeleted(ApiModel):
    id: int
    deleted: bool


class ScheduleTriggered(ApiModel):
    id: int
    triggered: bool
    runs_url: str


class SchedulePreview(ApiModel):
    crontab: str
    timezone_id: str
    fire_times: list[str]

