"""Build Temporal ``ScheduleSpec``s from DS (Quartz) crontabs: the SDK side of :mod:`model.quartz`.

:mod:`model.quartz` does the work (parsing, the exact translation to calendar specs) as plain data;
this module only turns that data into ``temporalio.client`` objects, and reads a DS ``Schedule`` block
(timezone, start and end time). Every error is a :class:`model.quartz.QuartzError` (a ``ValueError``)
or, for a bad timezone or date, a plain ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from temporalio.client import ScheduleCalendarSpec, ScheduleRange, ScheduleSpec

from model.definition import Schedule
from model.quartz import CalendarSpec, QuartzCron, Range, parse, to_calendar_specs, to_temporal_cron

__all__ = [
    "from_schedule_calendar",
    "schedule_spec",
    "schedule_spec_for",
    "to_schedule_calendar",
]

DS_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _ranges(ranges: Sequence[Range]) -> tuple[ScheduleRange, ...]:
    return tuple(ScheduleRange(r.start, r.end, r.step) for r in ranges)


def to_schedule_calendar(spec: CalendarSpec) -> ScheduleCalendarSpec:
    """The SDK object for one plain calendar spec (every field set explicitly: no SDK defaults)."""
    return ScheduleCalendarSpec(
        second=_ranges(spec.second),
        minute=_ranges(spec.minute),
        hour=_ranges(spec.hour),
        day_of_month=_ranges(spec.day_of_month),
        month=_ranges(spec.month),
        year=_ranges(spec.year),
        day_of_week=_ranges(spec.day_of_week),
        comment=spec.comment or None,
    )


def from_schedule_calendar(spec: ScheduleCalendarSpec) -> CalendarSpec:
    """The plain form of an SDK calendar spec (e.g. from ``describe()``), to compare with a translation."""

    def back(ranges: Sequence[ScheduleRange]) -> tuple[Range, ...]:
        return tuple(Range(r.start, max(r.end, r.start), r.step or 1) for r in ranges)

    return CalendarSpec(
        second=back(spec.second),
        minute=back(spec.minute),
        hour=back(spec.hour),
        day_of_month=back(spec.day_of_month),
        month=back(spec.month),
        day_of_week=back(spec.day_of_week),
        year=back(spec.year),
        comment=spec.comment or "",
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown timezone {name!r}") from e


def schedule_spec(
    crontab: str | QuartzCron,
    *,
    time_zone_name: str = "UTC",
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    as_cron_string: bool = False,
) -> ScheduleSpec:
    """A Temporal ``ScheduleSpec`` that fires exactly when the Quartz ``crontab`` does (see model.quartz).

    By default the spec is a list of structured calendars. ``as_cron_string=True`` emits the 7-field
    Temporal cron string instead (only for expressions without ``L``/``W``/``#``; a ``QuartzError``
    otherwise); the server compiles it to the same calendar. ``start_at``/``end_at`` are inclusive,
    as DS's (Quartz's) start and end times are.
    """
    _zone(time_zone_name)
    cron = parse(crontab) if isinstance(crontab, str) else crontab
    if as_cron_string:
        return ScheduleSpec(
            cron_expressions=[to_temporal_cron(cron)],
            start_at=start_at,
            end_at=end_at,
            time_zone_name=time_zone_name,
        )
    return ScheduleSpec(
        calendars=[to_schedule_calendar(c) for c in to_calendar_specs(cron)],
        start_at=start_at,
        end_at=end_at,
        time_zone_name=time_zone_name,
    )


def schedule_spec_for(schedule: Schedule) -> ScheduleSpec:
    """The spec for a DS schedule block: its crontab, ``timezoneId`` and start/end times.

    DS keeps ``startTime``/``endTime`` as ``yyyy-MM-dd HH:mm:ss`` wall-clock times in the schedule's
    timezone (reference §1.1); Quartz fires from ``startTime`` up to and including ``endTime`` (§4.18).
    """
    zone = _zone(schedule.timezone_id)

    def when(text: str | None, what: str) -> datetime | None:
        if not text:
            return None
        try:
            return datetime.strptime(text.strip(), DS_TIME_FORMAT).replace(tzinfo=zone)
        except ValueError as e:
            raise ValueError(f"schedule {what} {text!r} is not 'yyyy-MM-dd HH:mm:ss'") from e

    start, end = when(schedule.start_time, "startTime"), when(schedule.end_time, "endTime")
    if start and end and end < start:
        raise ValueError(f"schedule endTime {schedule.end_time!r} is before startTime {schedule.start_time!r}")
    return schedule_spec(schedule.crontab, time_zone_name=schedule.timezone_id, start_at=start, end_at=end)
