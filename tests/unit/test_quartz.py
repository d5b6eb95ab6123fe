"""DS (Quartz) cron expressions: parsing, the reference evaluator, and the translation to Temporal specs.

The table :data:`CASES` is the ground truth: each row gives a Quartz expression, a zone, a start
(exclusive) and the fire times in the window up to the last one (or up to ``end``), worked out by
hand from the calendar (2026-01-01 is a Thursday; 2028 is a leap year). Where croniter can say the
same schedule, the row also carries a croniter expression written by hand in croniter's dialect
(weekdays 0-6 from Sunday, ``L5`` = last Friday), so the expected times are checked by a second,
independent implementation. ``tests/integration/test_quartz_schedules.py`` replays the same table on
the Temporal dev server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import CroniterBadDateError, croniter
from temporalio.client import ScheduleRange

from core.quartz_temporal import from_schedule_calendar, schedule_spec, schedule_spec_for, to_schedule_calendar
from model.definition import Schedule
from model.quartz import (
    CalendarSpec,
    QuartzError,
    Range,
    fire_times,
    parse,
    to_calendar_specs,
    to_temporal_cron,
)

SH = "Asia/Shanghai"
UTC = "UTC"


@dataclass(frozen=True)
class Case:
    expr: str
    tz: str
    start: str  # local wall time; fire times are strictly after it
    expected: tuple[str, ...]  # local wall times, every fire time in (start, end]
    end: str | None = None  # inclusive window end; default: the last expected time
    croniter: str | None = None  # the same schedule in croniter's dialect (seconds first), by hand

    @property
    def id(self) -> str:
        return f"{self.expr} [{self.tz} {self.start[:10]}]"

    def window(self) -> tuple[datetime, datetime]:
        zone = ZoneInfo(self.tz)
        start = datetime.fromisoformat(self.start).replace(tzinfo=zone)
        end = datetime.fromisoformat(self.end or self.expected[-1]).replace(tzinfo=zone)
        return start, end

    def expected_times(self) -> list[datetime]:
        zone = ZoneInfo(self.tz)
        return [datetime.fromisoformat(t).replace(tzinfo=zone) for t in self.expected]


J1 = "2026-01-01 00:00:00"

CASES: tuple[Case, ...] = (
    # DS defaults and everyday shapes
    Case("0 0 0 * * ? *", SH, J1, ("2026-01-02 00:00:00", "2026-01-03 00:00:00", "2026-01-04 00:00:00"),
         croniter="0 0 0 * * *"),
    Case("0 0 0 1 * ?", SH, J1, ("2026-02-01 00:00:00", "2026-03-01 00:00:00", "2026-04-01 00:00:00"),
         croniter="0 0 0 1 * *"),
    Case("0 5 1 * * ?", SH, J1, ("2026-01-01 01:05:00", "2026-01-02 01:05:00", "2026-01-03 01:05:00"),
         croniter="0 5 1 * * *"),  # 6 fields: seconds first, not Temporal's "min hour dom mon dow year"
    Case("0 0 * * * ? *", SH, "2026-01-01 22:00:00",
         ("2026-01-01 23:00:00", "2026-01-02 00:00:00", "2026-01-02 01:00:00"), croniter="0 0 * * * *"),
    Case("0 0/15 9-17 ? * MON-FRI", SH, "2026-01-02 17:00:00",  # Friday evening, then Monday
         ("2026-01-02 17:15:00", "2026-01-02 17:30:00", "2026-01-02 17:45:00",
          "2026-01-05 09:00:00", "2026-01-05 09:15:00", "2026-01-05 09:30:00"),
         croniter="0 */15 9-17 * * 1-5"),
    Case("0 0 12 ? * 2,4,6", SH, J1,  # Quartz 2,4,6 = MON,WED,FRI
         ("2026-01-02 12:00:00", "2026-01-05 12:00:00", "2026-01-07 12:00:00", "2026-01-09 12:00:00"),
         croniter="0 0 12 * * 1,3,5"),
    Case("0 0 9 ? * MON-FRI", UTC, J1,
         ("2026-01-01 09:00:00", "2026-01-02 09:00:00", "2026-01-05 09:00:00", "2026-01-06 09:00:00"),
         croniter="0 0 9 * * 1-5"),
    # DS day-of-week numbering: 1 = SUN ... 7 = SAT; a lone L is Saturday
    Case("0 0 0 ? * 1", SH, J1, ("2026-01-04 00:00:00", "2026-01-11 00:00:00", "2026-01-18 00:00:00"),
         croniter="0 0 0 * * 0"),
    Case("0 0 0 ? * SUN", SH, J1, ("2026-01-04 00:00:00", "2026-01-11 00:00:00", "2026-01-18 00:00:00"),
         croniter="0 0 0 * * 0"),
    Case("0 0 0 ? * L", SH, J1, ("2026-01-03 00:00:00", "2026-01-10 00:00:00", "2026-01-17 00:00:00"),
         croniter="0 0 0 * * 6"),
    Case("0 0 0 ? * 1-7/3", SH, J1,  # 1,4,7 = SUN,WED,SAT
         ("2026-01-03 00:00:00", "2026-01-04 00:00:00", "2026-01-07 00:00:00", "2026-01-10 00:00:00"),
         croniter="0 0 0 * * 0,3,6"),
    # wrapping ranges, names, lists, steps
    Case("0 0 0 ? * FRI-MON", SH, J1,
         ("2026-01-02 00:00:00", "2026-01-03 00:00:00", "2026-01-04 00:00:00", "2026-01-05 00:00:00",
          "2026-01-09 00:00:00"), croniter="0 0 0 * * 5,6,0,1"),
    Case("0 0 22-2 ? * *", SH, J1,
         ("2026-01-01 01:00:00", "2026-01-01 02:00:00", "2026-01-01 22:00:00", "2026-01-01 23:00:00",
          "2026-01-02 00:00:00"), croniter="0 0 22,23,0,1,2 * * *"),
    Case("0 0 0 1 NOV-FEB ?", SH, J1,
         ("2026-02-01 00:00:00", "2026-11-01 00:00:00", "2026-12-01 00:00:00", "2027-01-01 00:00:00"),
         croniter="0 0 0 1 11,12,1,2 *"),
    Case("0 0 0 1 JAN,APR,JUL,OCT ?", UTC, J1,
         ("2026-04-01 00:00:00", "2026-07-01 00:00:00", "2026-10-01 00:00:00", "2027-01-01 00:00:00"),
         croniter="0 0 0 1 1,4,7,10 *"),
    Case("0 0 0 1/10 * ?", SH, J1,  # 1, 11, 21, 31
         ("2026-01-11 00:00:00", "2026-01-21 00:00:00", "2026-01-31 00:00:00", "2026-02-01 00:00:00",
          "2026-02-11 00:00:00"), croniter="0 0 0 1,11,21,31 * *"),
    Case("15,45 */20 * * * ?", UTC, J1,
         ("2026-01-01 00:00:15", "2026-01-01 00:00:45", "2026-01-01 00:20:15", "2026-01-01 00:20:45",
          "2026-01-01 00:40:15"), croniter="15,45 */20 * * * *"),
    # years
    Case("0 0 0 29 2 ? *", SH, J1, ("2028-02-29 00:00:00", "2032-02-29 00:00:00", "2036-02-29 00:00:00"),
         croniter="0 0 0 29 2 *"),
    Case("0 0 0 1 1 ? 2027-2029", UTC, J1,
         ("2027-01-01 00:00:00", "2028-01-01 00:00:00", "2029-01-01 00:00:00"), end="2035-01-01 00:00:00",
         croniter="0 0 0 1 1 * 2027-2029"),
    Case("0 0 0 1 * ? 2026/2", SH, J1,
         ("2026-02-01 00:00:00", "2026-03-01 00:00:00", "2026-04-01 00:00:00", "2026-05-01 00:00:00",
          "2026-06-01 00:00:00", "2026-07-01 00:00:00", "2026-08-01 00:00:00", "2026-09-01 00:00:00",
          "2026-10-01 00:00:00", "2026-11-01 00:00:00", "2026-12-01 00:00:00", "2028-01-01 00:00:00",
          "2028-02-01 00:00:00"), croniter="0 0 0 1 * * 2026/2"),
    # L in day-of-month: last day, leap years
    Case("0 0 0 L * ?", SH, J1,
         ("2026-01-31 00:00:00", "2026-02-28 00:00:00", "2026-03-31 00:00:00", "2026-04-30 00:00:00"),
         croniter="0 0 0 L * *"),
    Case("0 0 0 L * ?", UTC, "2028-01-15 00:00:00",
         ("2028-01-31 00:00:00", "2028-02-29 00:00:00", "2028-03-31 00:00:00"), croniter="0 0 0 L * *"),
    Case("0 0 0 L 2 ?", UTC, J1,
         ("2026-02-28 00:00:00", "2027-02-28 00:00:00", "2028-02-29 00:00:00", "2029-02-28 00:00:00"),
         croniter="0 0 0 L 2 *"),
    Case("0 0 0 L-3 * ?", SH, J1,  # three days before the last: 28, 25 (Feb), 28, 27
         ("2026-01-28 00:00:00", "2026-02-25 00:00:00", "2026-03-28 00:00:00", "2026-04-27 00:00:00")),
    # nL and n#k in day-of-week
    Case("0 0 0 ? * 6L", SH, J1,  # last Friday
         ("2026-01-30 00:00:00", "2026-02-27 00:00:00", "2026-03-27 00:00:00", "2026-04-24 00:00:00"),
         croniter="0 0 0 * * L5"),
    Case("0 0 0 ? * 1L", SH, J1,  # last Sunday
         ("2026-01-25 00:00:00", "2026-02-22 00:00:00", "2026-03-29 00:00:00"), croniter="0 0 0 * * L0"),
    Case("0 0 0 ? * 6#3", SH, J1,  # third Friday
         ("2026-01-16 00:00:00", "2026-02-20 00:00:00", "2026-03-20 00:00:00", "2026-04-17 00:00:00"),
         croniter="0 0 0 * * 5#3"),
    Case("0 0 0 ? * 6#5", SH, J1,  # fifth Friday: only in months that have one
         ("2026-01-30 00:00:00", "2026-05-29 00:00:00", "2026-07-31 00:00:00", "2026-10-30 00:00:00"),
         croniter="0 0 0 * * 5#5"),
    Case("0 30 8 ? * 2#1 2027", SH, J1,  # first Monday, 2027 only
         ("2027-01-04 08:30:00", "2027-02-01 08:30:00", "2027-03-01 08:30:00", "2027-04-05 08:30:00",
          "2027-05-03 08:30:00", "2027-06-07 08:30:00", "2027-07-05 08:30:00", "2027-08-02 08:30:00",
          "2027-09-06 08:30:00", "2027-10-04 08:30:00", "2027-11-01 08:30:00", "2027-12-06 08:30:00"),
         end="2030-01-01 00:00:00", croniter="0 30 8 * * 1#1 2027"),
    Case("0 30 8 ? * 2#1 2027", UTC, J1,
         ("2027-01-04 08:30:00", "2027-02-01 08:30:00", "2027-03-01 08:30:00"), croniter="0 30 8 * * 1#1 2027"),
    # W: nearest weekday, never crossing the month (croniter has no W)
    Case("0 0 0 15W * ?", SH, J1,  # Feb/Mar 15 are Sundays -> 16; Aug 15 is a Saturday -> 14
         ("2026-01-15 00:00:00", "2026-02-16 00:00:00", "2026-03-16 00:00:00", "2026-04-15 00:00:00",
          "2026-05-15 00:00:00", "2026-06-15 00:00:00", "2026-07-15 00:00:00", "2026-08-14 00:00:00")),
    Case("0 0 0 1W * ?", SH, J1,  # Aug 1 2026 is a Saturday -> Monday the 3rd, not July 31
         ("2026-02-02 00:00:00", "2026-03-02 00:00:00", "2026-04-01 00:00:00", "2026-05-01 00:00:00",
          "2026-06-01 00:00:00", "2026-07-01 00:00:00", "2026-08-03 00:00:00")),
    Case("0 0 0 LW * ?", SH, J1,  # last weekday: Jan 31 Sat -> 30, Feb 28 Sat -> 27, May 31 Sun -> 29
         ("2026-01-30 00:00:00", "2026-02-27 00:00:00", "2026-03-31 00:00:00", "2026-04-30 00:00:00",
          "2026-05-29 00:00:00")),
)

CASE_IDS = [c.id for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fire_times_match_the_table(case: Case) -> None:
    start, end = case.window()
    assert fire_times(case.expr, start, end, case.tz) == case.expected_times()


@pytest.mark.parametrize("case", [c for c in CASES if c.croniter], ids=[c.id for c in CASES if c.croniter])
def test_croniter_agrees_with_the_table(case: Case) -> None:
    start, end = case.window()
    it = croniter(case.croniter, start, second_at_beginning=True)
    got: list[datetime] = []
    try:
        while (t := it.get_next(datetime)) <= end:
            got.append(t)
    except CroniterBadDateError:  # croniter's way of saying "no more fire times" (year lists)
        pass
    assert got == case.expected_times()


def test_the_table_is_big_enough() -> None:
    assert len({c.expr for c in CASES}) >= 25
    assert {c.tz for c in CASES} == {SH, UTC}


# --- the translation, checked without a server ------------------------------------------------------


def spec_times(specs: tuple[CalendarSpec, ...], start: datetime, end: datetime, tz: str) -> list[datetime]:
    """Times in (start, end] that match any spec, the way Temporal evaluates calendars (no DST here)."""
    zone = ZoneInfo(tz)
    out: set[datetime] = set()
    day = start.astimezone(zone).date()
    while day <= end.astimezone(zone).date():
        for s in specs:
            if s.matches_date(day):
                for h in (v for r in s.hour for v in r.values()):
                    for m in (v for r in s.minute for v in r.values()):
                        for sec in (v for r in s.second for v in r.values()):
                            t = datetime(day.year, day.month, day.day, h, m, sec, tzinfo=zone)
                            if start < t <= end:
                                out.add(t)
        day += timedelta(days=1)
    return sorted(out)


EXTRA_SUPPORTED = (
    "0 0 0 L-1W * ?", "0 0 0 L-27 1,3-12 ?", "0 0 0 28W * ?", "0 0 0 31W JAN,MAR ?", "0 0 0 ? 2 6#5",
    "0 0 0 ? * 7L 2028", "0 0 0 L * ? 2027-2029", "0 0 0 30 * ?", "0 0 0 ? * MON#2",
    "0 0 0 ? JUN-AUG FRIL", "0 0 6 10-20/5 * ? 2026,2028,2030", "0 0 0 ? * 2-6/2",
)


@pytest.mark.parametrize("expr", sorted({c.expr for c in CASES} | set(EXTRA_SUPPORTED)))
def test_calendar_specs_fire_exactly_when_quartz_does(expr: str) -> None:
    cron = parse(expr)
    specs = to_calendar_specs(cron)
    # every date of a 28-year cycle (every month length with every weekday of the 1st) and 2100:
    # a spec matches the date exactly when Quartz fires on it
    day, last = date(2024, 1, 1), date(2051, 12, 31)
    while day <= last:
        assert any(s.matches_date(day) for s in specs) == (day.day in cron.fire_days(day.year, day.month)), day
        day += timedelta(days=1)
    for day in (date(2100, 1, 1) + timedelta(days=i) for i in range(365)):  # not a leap year
        assert any(s.matches_date(day) for s in specs) == (day.day in cron.fire_days(day.year, day.month)), day
    # and the times of day, over a stretch with a leap day
    zone = ZoneInfo(SH)
    start, end = datetime(2027, 12, 1, tzinfo=zone), datetime(2028, 3, 31, 23, 59, 59, tzinfo=zone)
    assert spec_times(specs, start, end, SH) == fire_times(cron, start, end, SH)


def test_third_friday_is_one_spec() -> None:
    (spec,) = to_calendar_specs("0 0 0 ? * 6#3")
    assert spec.day_of_month == (Range(15, 21),)
    assert spec.day_of_week == (Range(5, 5),)  # Quartz 6 = FRI = Temporal 5
    assert spec.month == (Range(1, 12),) and spec.year == ()
    assert (spec.second, spec.minute, spec.hour) == ((Range(0, 0),),) * 3


def test_last_day_of_month_is_four_specs_split_by_month_length_and_leap_year() -> None:
    specs = to_calendar_specs("0 0 0 L * ?")
    shapes = {(s.day_of_month, s.month, s.year) for s in specs}
    assert shapes == {
        ((Range(31, 31),), (Range(1, 7, 2), Range(8, 12, 2)), ()),
        ((Range(30, 30),), (Range(4, 4), Range(6, 6), Range(9, 9), Range(11, 11)), ()),
        ((Range(29, 29),), (Range(2, 2),), (Range(2000, 2096, 4),)),
        ((Range(28, 28),), (Range(2, 2),),
         (Range(2001, 2097, 4), Range(2002, 2098, 4), Range(2003, 2099, 4), Range(2100, 2100))),
    }
    assert all(s.day_of_week == (Range(0, 6),) for s in specs)


def test_nearest_weekday_is_three_specs() -> None:
    specs = to_calendar_specs("0 0 0 15W * ?")
    assert {(s.day_of_month, s.day_of_week) for s in specs} == {
        ((Range(15, 15),), (Range(1, 5),)),  # a weekday: the 15th itself
        ((Range(14, 14),), (Range(5, 5),)),  # the 15th is a Saturday: Friday the 14th
        ((Range(16, 16),), (Range(1, 1),)),  # the 15th is a Sunday: Monday the 16th
    }


def test_plain_expressions_are_one_spec() -> None:
    for expr in ("0 0 0 * * ? *", "0 0/15 9-17 ? * MON-FRI", "0 0 0 29 2 ? *", "0 0 0 ? * 6#4"):
        assert len(to_calendar_specs(expr)) == 1, expr


# --- Temporal cron strings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quartz", "temporal"),
    [
        ("0 0 0 * * ? *", "0 0 0 * * * *"),
        ("0 0 0 1 * ?", "0 0 0 1 * * *"),
        ("0 5 1 * * ?", "0 5 1 * * * *"),  # 6 fields in, always 7 out
        ("0 0/15 9-17 ? * MON-FRI", "0 0-45/15 9-17 * * 1-5 *"),
        ("0 0 12 ? * 2,4,6", "0 0 12 * * 1-5/2 *"),  # MON,WED,FRI renumbered
        ("0 0 0 ? * 1", "0 0 0 * * 0 *"),
        ("0 0 0 ? * 7", "0 0 0 * * 6 *"),
        ("0 0 0 ? * L", "0 0 0 * * 6 *"),
        ("0 0 0 ? * 1-7", "0 0 0 * * * *"),
        ("0 0 0 ? * FRI-MON", "0 0 0 * * 0-1,5-6 *"),
        ("0 0 22-2 ? * *", "0 0 0-2,22-23 * * * *"),
        ("0 0 0 1 NOV-FEB ?", "0 0 0 1 1-2,11-12 * *"),
        ("*/10 * * * * ?", "0-50/10 * * * * * *"),
        ("0 30 8 1 * ? 2027", "0 30 8 1 * * 2027"),
        ("0 0 0 1 1 ? 1990,2027-2029", "0 0 0 1 1 * 2027-2029"),  # years before 2000 are past
        ("0 0 0 29 2 ? *", "0 0 0 29 2 * *"),
    ],
)
def test_temporal_cron_string(quartz: str, temporal: str) -> None:
    out = to_temporal_cron(quartz)
    assert out == temporal
    assert len(out.split()) == 7
    assert not set(out) & set("?#LW")


@pytest.mark.parametrize(
    ("expr", "field"),
    [("0 0 0 L * ?", "day-of-month"), ("0 0 0 15W * ?", "day-of-month"), ("0 0 0 ? * 6L", "day-of-week"),
     ("0 0 0 ? * 6#3", "day-of-week")],
)
def test_no_cron_string_for_calendar_only_constructs(expr: str, field: str) -> None:
    with pytest.raises(QuartzError) as e:
        to_temporal_cron(expr)
    assert e.value.field == field
    assert "calendar" in str(e.value) and "comment" in str(e.value)


# --- refusals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "field", "fragment"),
    [
        ("", "expression", "empty"),
        ("0 0 0 * *", "expression", "6 or 7 fields"),
        ("0 0 0 * * ? * 1", "expression", "6 or 7 fields"),
        ("0 0 0 * * *", "day-of-month", "'?' in exactly one"),
        ("0 0 0 ? * ?", "day-of-week", "'?' in exactly one"),
        ("0 0 0 15 * 6#3", "day-of-month", "'?' in exactly one"),
        ("0 0 ? * * ?", "hour", "'?' is only allowed"),
        ("60 0 0 * * ?", "second", "out of range 0-59"),
        ("0 60 0 * * ?", "minute", "out of range 0-59"),
        ("0 0 24 * * ?", "hour", "out of range 0-23"),
        ("0 0 0 32 * ?", "day-of-month", "out of range 1-31"),
        ("0 0 0 1 13 ?", "month", "out of range 1-12"),
        ("0 0 0 ? * 0", "day-of-week", "out of range 1-7"),  # DS counts 1-7; 0 is not Sunday
        ("0 0 0 ? * 8", "day-of-week", "out of range 1-7"),
        ("0 0 0 1 JANUARY ?", "month", "cannot read"),
        ("0 0 0 ? * MO", "day-of-week", "cannot read"),
        ("0 0 0 ? * MON-FRI/2", "day-of-week", "ignores a step after a month or day name"),
        ("0 */0 0 * * ?", "minute", "at least 1"),
        ("0 0 0 1 * ? 2150", "year", "after 2100"),
        ("0 0 0 1 * ? 1999", "year", "never fire"),
        ("0 0 0 1 * ? 2030-2027", "year", "start year"),
        ("0 0 0 31 2 ?", "expression", "never"),
        ("0 0 0 1-15W * ?", "day-of-month", "single day"),
        ("0 0 0 5W,10 * ?", "day-of-month", "cannot be combined"),
        ("0 0 0 L- * ?", "day-of-month", "write L, L-n, LW or L-nW"),
        ("0 0 0 ? * 1-3L", "day-of-week", "write L (Saturday) or nL"),
        ("0 0 0 30W * ?", "day-of-month", "restrict the months"),  # no Feb 30: Quartz's answer is an accident
        ("0 0 0 L-28 * ?", "day-of-month", "before the 1st"),
        ("0 0 0 L-31 * ?", "day-of-month", "at most 30"),
        ("0 0 0 L,15 * ?", "day-of-month", "cannot be combined"),
        ("0 0 0 6#3 * ?", "day-of-month", "'#' is only valid in day-of-week"),
        ("0 0 0 1 1W ?", "month", "'W' is only valid in day-of-month"),
        ("0 0 0 ? * 5W", "day-of-week", "'W' is only valid in day-of-month"),
        ("0 0 0 ? * 2#1,6#3", "day-of-week", "only one n#k"),
        ("0 0 0 ? * 6#6", "day-of-week", "between 1 and 5"),
        ("0 0 0 ? * 6#0", "day-of-week", "between 1 and 5"),
        ("0 0 0 ? * 1L,2", "day-of-week", "cannot be combined"),
        ("0 0 0 ? * 6#3 #", "year", "cannot read"),
    ],
)
def test_refused(expr: str, field: str, fragment: str) -> None:
    with pytest.raises(QuartzError) as e:
        to_calendar_specs(expr)
    assert e.value.field == field
    assert fragment in e.value.reason
    assert str(e.value).startswith(f"{field}: ")


def test_quartz_error_is_a_value_error() -> None:
    assert issubclass(QuartzError, ValueError)


# --- parsing details -----------------------------------------------------------------------------------


def test_six_fields_get_a_year_and_case_is_ignored() -> None:
    c = parse("0 0 0 ? jan-mar mon-fri")
    assert c.fields == ("0", "0", "0", "?", "JAN-MAR", "MON-FRI", "*")
    assert c.months == frozenset({1, 2, 3}) and c.days_of_week == frozenset({2, 3, 4, 5, 6})
    assert c.years is None and not c.needs_calendars


def test_special_day_rules_are_recorded() -> None:
    assert parse("0 0 0 L-2W * ?").last_day_offset == 2 and parse("0 0 0 L-2W * ?").nearest_weekday
    assert parse("0 0 0 ? * FRI#2").nth_of_month == 2
    assert parse("0 0 0 ? * FRIL").last_of_month
    assert parse("0 0 0 ? * 6L").needs_calendars


# --- daylight saving, in the reference evaluator --------------------------------------------------------

NY = "America/New_York"


def test_dst_gap_is_skipped() -> None:
    zone = ZoneInfo(NY)  # 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist
    got = fire_times("0 30 2 * * ?", datetime(2026, 3, 7, tzinfo=zone), datetime(2026, 3, 10, tzinfo=zone), NY)
    assert [t.strftime("%m-%d %H:%M %Z") for t in got] == ["03-07 02:30 EST", "03-09 02:30 EDT"]


def test_dst_repeated_hour_fires_once_in_quartz_and_twice_in_temporal() -> None:
    zone = ZoneInfo(NY)  # 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice
    start, end = datetime(2026, 10, 31, 12, tzinfo=zone), datetime(2026, 11, 2, tzinfo=zone)
    once = fire_times("0 30 1 * * ?", start, end, NY)
    both = fire_times("0 30 1 * * ?", start, end, NY, repeated_hour="both")
    assert [t.strftime("%m-%d %H:%M %Z") for t in once] == ["11-01 01:30 EDT"]
    assert [t.strftime("%m-%d %H:%M %Z") for t in both] == ["11-01 01:30 EDT", "11-01 01:30 EST"]


def test_fire_times_needs_aware_datetimes_and_honours_limit() -> None:
    with pytest.raises(ValueError):
        fire_times("0 0 0 * * ?", datetime(2026, 1, 1), datetime(2026, 2, 1), UTC)
    zone = ZoneInfo(UTC)
    got = fire_times("0 0 0 * * ?", datetime(2026, 1, 1, tzinfo=zone), datetime(2027, 1, 1, tzinfo=zone), UTC, limit=2)
    assert got == [datetime(2026, 1, 2, tzinfo=zone), datetime(2026, 1, 3, tzinfo=zone)]


# --- the Temporal adapter (SDK objects, no server) ------------------------------------------------------


def test_schedule_spec_uses_calendars_and_the_zone() -> None:
    spec = schedule_spec("0 0 0 ? * 6#3", time_zone_name=SH)
    assert spec.cron_expressions == [] and spec.time_zone_name == SH
    (cal,) = spec.calendars
    assert cal.day_of_month == (ScheduleRange(15, 21),)
    assert cal.day_of_week == (ScheduleRange(5),)
    assert cal.second == (ScheduleRange(0),) and cal.year == ()
    assert from_schedule_calendar(cal) == to_calendar_specs("0 0 0 ? * 6#3")[0]
    assert from_schedule_calendar(to_schedule_calendar(to_calendar_specs("0 0 0 L * ?")[3])).year[-1] == Range(
        2100, 2100
    )


def test_schedule_spec_as_cron_string() -> None:
    spec = schedule_spec("0 0 12 ? * 2,4,6", as_cron_string=True)
    assert spec.cron_expressions == ["0 0 12 * * 1-5/2 *"] and spec.calendars == []
    with pytest.raises(QuartzError):
        schedule_spec("0 0 0 L * ?", as_cron_string=True)


def test_schedule_spec_for_a_ds_schedule_block() -> None:
    sched = Schedule(crontab="0 0 0 L * ?", timezone_id=SH, start_time="2026-01-01 00:00:00",
                     end_time="2026-12-31 23:59:59")
    spec = schedule_spec_for(sched)
    assert spec.start_at == datetime(2026, 1, 1, tzinfo=ZoneInfo(SH))
    assert spec.end_at == datetime(2026, 12, 31, 23, 59, 59, tzinfo=ZoneInfo(SH))
    assert spec.time_zone_name == SH and len(spec.calendars) == 4
    with pytest.raises(ValueError, match="timezone"):
        schedule_spec_for(sched.model_copy(update={"timezone_id": "Mars/Olympus"}))
    with pytest.raises(ValueError, match="startTime"):
        schedule_spec_for(sched.model_copy(update={"start_time": "01/01/2026"}))
    with pytest.raises(ValueError, match="before"):
        schedule_spec_for(sched.model_copy(update={"end_time": "2025-01-01 00:00:00"}))
