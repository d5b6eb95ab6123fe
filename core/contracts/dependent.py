"""The ``check_dependent`` activity's contract (DEPENDENT, reference §4.10): one poll of the items
that have no final result yet, and one :class:`~model.dependent.ItemCheck` per item back."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from model.dependent import DependItem, ItemCheck


class DependentCheckRequest(BaseModel):
    """One poll of the items that have no final result yet. Small: it lands in history every poll."""

    business_date: datetime  # the requester's schedule time, or "now" at task start for a manual run
    timezone: str = "UTC"  # the run's timezone: day, week and month boundaries are taken there
    items: list[DependItem]
    # The requester, for DS's self-dependency rule (first instance of a definition depending on itself).
    instance_id: str = ""
    definition_code: int = 0
    task_code: int = 0
    scheduled: bool = False  # the requester has a schedule time (DsScheduleTime)
    started: datetime | None = None  # the requester's start time


class DependentCheckResponse(BaseModel):
    items: list[ItemCheck] = Field(default_factory=list)
