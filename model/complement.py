"""The business dates of a complement (backfill, reference §4.13): pure, no I/O.

A range gives the fire times of the definition's online schedule (daily at midnight without one) in
the closed range; a date list is taken as given. ``services.complements`` starts the runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from model.problems import DefinitionError, Problem
from model.quartz import QuartzError, fire_times

DAILY = "0 0 0 * * ? *"  # DS CronUtils.getSelfFireDateList without a schedule
MAX_DATES = 10_000


class ComplementDates(BaseModel):
    """DS's ``scheduleTime`` for a complement."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    start: datetime | None = Field(None, alias="complementStartDate")
    end: datetime | None = Field(None, alias="complementEndDate")
    date_list: list[datetime] | None = Field(None, alias="complementScheduleDateList")

    @field_validator("date_list", mode="before")
    @classmethod
    def _list(cls, v: Any) -> Any:
        if isinstance(v, str):  # DS: "yyyy-MM-dd HH:mm:ss,yyyy-MM-dd HH:mm:ss"
            return [s.strip() for s in v.split(",") if s.strip()]
        return v


def _aware(t: datetime, zone: ZoneInfo) -> datetime:
    return t.replace(tzinfo=zone) if t.tzinfo is None else t


def complement_dates(sel: ComplementDates, zone: ZoneInfo, crontab: str | None,
                     order: str = "DESC_ORDER", max_dates: int = MAX_DATES) -> list[datetime]:
    """The business dates of a complement, in execution order (DS §4.13).

    A range gives the fire times of ``crontab`` (daily at midnight when None) in the *closed* range
    [start, end], evaluated in ``zone``; ``start == end`` gives that one date. A list is taken as given
    (duplicates dropped). Naive times are wall-clock times in ``zone``. Raises DefinitionError.
    """
    if sel.date_list is not None:
        if sel.start is not None or sel.end is not None:
            raise DefinitionError([Problem("/scheduleTime", "give a date range or a date list, not both")])
        if not sel.date_list:
            raise DefinitionError([Problem("/scheduleTime/complementScheduleDateList", "the date list is empty",
                                           code="required")])
        unique = {_aware(t, zone).astimezone(UTC): _aware(t, zone) for t in sel.date_list}
        dates = [unique[k] for k in sorted(unique)]
    else:
        if sel.start is None or sel.end is None:
            raise DefinitionError([Problem("/scheduleTime", "give complementStartDate and complementEndDate, "
                                                            "or complementScheduleDateList", code="required")])
        start, end = _aware(sel.start, zone), _aware(sel.end, zone)
        if end < start:
            raise DefinitionError([Problem("/scheduleTime/complementEndDate",
                                           "complementEndDate is before complementStartDate", code="range")])
        if start == end:
            dates = [start]
        else:
            try:
                dates = fire_times(crontab or DAILY, start - timedelta(microseconds=1), end, zone,
                                   limit=max_dates + 1)
            except QuartzError as e:
                raise DefinitionError([Problem("/crontab", f"the schedule's crontab: {e}", code="crontab")]) from None
    if not dates:
        raise DefinitionError([Problem("/scheduleTime", f"no fire time of '{crontab or DAILY}' in the range",
                                       code="empty")])
    if len(dates) > max_dates:
        raise DefinitionError([Problem("/scheduleTime", f"more than {max_dates} dates; split the complement",
                                       code="too-many")])
    return dates if order == "ASC_ORDER" else list(reversed(dates))
