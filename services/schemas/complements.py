"""Complement data (backfill) as the API shows it: the start answer, the progress view, the list.

:class:`ComplementView` is the API's view of :class:`core.contracts.complement.ComplementStatus`
(the Complement workflow's query), with each date's instance and state.
"""

from __future__ import annotations

from pydantic import Field

from .base import ApiModel


class ComplementCreated(ApiModel):
    complement_id: str
    workflow_id: str
    run_id: str | None
    definition_code: int
    definition_version: int
    run_mode: str
    chains: int
    execution_order: str
    timezone: str
    crontab: str | None = Field(None, description="the online schedule's crontab, or daily; none for a date list")
    dates: list[str]
    temporal_ui_url: str
    status_url: str


class ComplementDate(ApiModel):
    schedule_time: str
    instance_id: str | None = Field(None, description="none until the date's run starts")
    state: str = Field(description="the run's DS state, WAITING before it starts, NOT_RUN if it never will")
    chain: int


class ComplementView(ApiModel):
    complement_id: str
    definition_code: int
    definition_version: int
    definition_name: str
    project_code: int
    state: str
    temporal_status: str
    run_mode: str
    chains: int
    execution_order: str
    continue_on_failure: bool
    counts: dict[str, int] = Field(description="how many dates are in each state")
    start_time: str | None = None
    end_time: str | None = None
    continued: int = 0
    dates: list[ComplementDate]
    temporal_ui_url: str


class ComplementSummary(ApiModel):
    """One row of ``GET /complements`` (Temporal visibility)."""

    complement_id: str
    definition_code: int | None = None
    definition_name: str | None = None
    state: str | None = None
    temporal_status: str
    start_time: str | None = None
    close_time: str | None = None
    temporal_ui_url: str


class ComplementStopped(ApiModel):
    complement_id: str
    state: str
