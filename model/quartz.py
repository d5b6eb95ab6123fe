"""DolphinScheduler's Quartz cron expressions, and their exact translation to Temporal calendar specs.

DS stores a schedule's ``crontab`` in Quartz syntax (reference §1.1, §4.18)::

    second minute hour day-of-month month day-of-week [year]

Temporal's cron strings look alike but are not the same language (temporal-notes B9): a 6-field
string is read as ``minute hour dom month dow year``, ``?`` is refused, day-of-week counts 0-6 from
Sunday where Quartz counts 1-7 from Sunday, ``L``/``W`` do not exist and **everything after ``#`` is a
comment**. So nothing is passed through as text. :func:`parse` reads the Quartz expression the way
Quartz 2.3 ``CronExpression`` does (and refuses what Quartz refuses); :func:`to_calendar_specs` turns
it into structured calendar specs (a union of ANDed field ranges, which is what Temporal evaluates);
:func:`to_temporal_cron` gives the equivalent 7-field Temporal cron string for expressions that need
no calendar tricks.

How the Quartz-only constructs become calendar specs. Every day-of-month rule Quartz has (``L``,
``L-n``, ``nW``, ``LW``, ``L-nW``, ``nL``, ``n#k``, plain lists) picks the days of a month from only
two facts: the month's length and the weekday of its 1st. For each month length (31, 30, 29 =
February of a leap year, 28) and each weekday of the 1st we list the firing days; day ``d`` with
weekday ``w`` then fires exactly when ``w`` is in the set collected for ``d``. Days with the same
weekday set share one spec (``day_of_month`` x ``day_of_week``), and month lengths whose lists agree
share their specs (days past the end of a shorter month are "don't care": Temporal never matches
them). February is split by leap year with explicit year ranges, which Temporal accepts only within
2000-2100 (its calendar horizon: the server computes no time after 2100). Examples: ``6#3`` (third
Friday) is one spec, days 15-21 on Fridays; ``L`` is four (day 31 of the 31-day months, 30 of the
30-day months, 29 of February in leap years, 28 of February otherwise); ``15W`` is three (the 15th on
Monday-Friday, the 14th on a Friday, the 16th on a Monday).

Refused, with a :class:`QuartzError` naming the field: what Quartz itself refuses (both or neither
of day-of-month and day-of-week given, ``W`` on a range or list, ``L`` or ``#`` in a list, ...), a step
after a month or day name (Quartz silently ignores it), ``nW`` and ``L-n`` where some selected month
is too short for the day to exist (Quartz's answer there is an accident of lenient
``java.util.Calendar`` arithmetic), explicit years after 2100 and expressions that can no longer fire.

:func:`fire_times` is a reference evaluator, independent of Temporal: it walks the calendar day by
day, applies the Quartz rules to each real date and resolves wall-clock times in the zone. It is
what the tests compare Temporal's reported times with. Daylight saving: Quartz skips a wall time that
does not exist (spring forward) and fires once, at the first occurrence, for a repeated one (fall
back); Temporal skips the same times but fires at *both* occurrences of a repeated time, and no
calendar spec can tell the two apart (``repeated_hour="both"`` models Temporal).

Pure: standard library only; no Temporal import (the adapter is :mod:`core.quartz_temporal`).
"""

from __future__ import annotations

import calendar
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "FIELDS",
    "TEMPORAL_MAX_YEAR",
    "TEMPORAL_MIN_YEAR",
    "CalendarSpec",
    "QuartzCron",
    "QuartzError",
    "Range",
    "fire_times",
    "parse",
    "to_calendar_specs",
    "to_temporal_cron",
]

FIELDS = ("second", "minute", "hour", "day-of-month", "month", "day-of-week", "year")

# Temporal validates structured-calendar years against [2000, 2100] and computes no time after 2100
# (server ``calendar.go``: minCalendarYear/maxCalendarYear).
TEMPORAL_MIN_YEAR = 2000
TEMPORAL_MAX_YEAR = 2100

# Quartz value bounds. Quartz's upper year is "this year + 100"; Temporal stops at 2100 anyway.
_BOUNDS: dict[str, tuple[int, int]] = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (1, 7),
    "year": (1970, TEMPORAL_MAX_YEAR),
}
# Modulus Quartz uses for wrapping ranges such as ``FRI-MON`` or ``22-2`` (``CronExpression.addToSet``).
_WRAP = {"second": 60, "minute": 60, "hour": 24, "day-of-month": 31, "month": 12, "day-of-week": 7}

_MONTH_NAMES = {
    n: i + 1 for i, n in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
}
_DOW_NAMES = {n: i + 1 for i, n in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}  # Quartz: 1 = SUN
_NAMES = {"month": _MONTH_NAMES, "day-of-week": _DOW_NAMES}

_SAT, _SUN = 7, 1  # Quartz day-of-week numbers

# The shortest each month can be (February: 28), to know whether "day n" always exists.
_MIN_MONTH_LENGTH = {m: (28 if m == 2 else calendar.monthrange(2001, m)[1]) for m in range(1, 13)}


class QuartzError(ValueError):
    """A Quartz expression that is invalid, or valid but not translatable to Temporal exactly.

    ``field`` is one of :data:`FIELDS`, or ``"expression"`` for the expression as a whole.
    """

    def __init__(self, field: str, reason: str, expression: str = "") -> None:
        self.field = field
        self.reason = reason
        self.expression = expression
        where = f" in {expression!r}" if expression else ""
        super().__init__(f"{field}: {reason}{where}")


_Err = Callable[[str, str], QuartzError]  # parse()'s error factory, bound to the expression


# --------------------------------------------------------------------------------------------------
# Parsed form


@dataclass(frozen=True)
class QuartzCron:
    """A parsed Quartz expression. Exactly one of the two day fields is ``?`` (``None`` here).

    Day-of-week numbers are Quartz's: 1 = Sunday ... 7 = Saturday.
    """

    expression: str  # as given
    fields: tuple[str, ...]  # the 7 fields, upper-cased, year ``*`` appended when absent
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int] | None  # None: every year; else within 2000-2100 (earlier years dropped)
    # day-of-month side: plain days, or L / L-n (last_day_offset), optionally with W
    days_of_month: frozenset[int] | None
    last_day_offset: int | None = None
    nearest_weekday: bool = False
    # day-of-week side: plain weekdays, or one weekday with #k or L
    days_of_week: frozenset[int] | None = None
    nth_of_month: int | None = None  # n#k -> k
    last_of_month: bool = False  # nL

    @property
    def needs_calendars(self) -> bool:
        """True when the expression uses ``L``, ``W`` or ``#``, which no Temporal cron string can say."""
        return (
            self.last_day_offset is not None
            or self.nearest_weekday
            or self.nth_of_month is not None
            or self.last_of_month
        )

    def month_days(self, length: int, first_weekday: int) -> frozenset[int]:
        """The days that fire in a month of ``length`` days whose 1st is Quartz weekday ``first_weekday``.

        Quartz's rules (``CronExpression.getTimeAfter``); month and year are checked elsewhere.
        """

        def weekday(d: int) -> int:
            return (first_weekday - 1 + d - 1) % 7 + 1

        def nearest_weekday(d: int) -> int:  # never crosses the month's boundaries
            w = weekday(d)
            if w == _SAT:
                return d + 2 if d == 1 else d - 1
            if w == _SUN:
                return d - 2 if d == length else d + 1
            return d

        if self.days_of_week is None:  # the day-of-month side decides
            if self.last_day_offset is not None:
                target = length - self.last_day_offset
                if target < 1:
                    return frozenset()
                return frozenset({nearest_weekday(target) if self.nearest_weekday else target})
            assert self.days_of_month is not None
            if self.nearest_weekday:
                (target,) = self.days_of_month
                return frozenset({nearest_weekday(target)}) if target <= length else frozenset()
            return frozenset(d for d in self.days_of_month if d <= length)
        matching = [d for d in range(1, length + 1) if weekday(d) in self.days_of_week]
        if self.nth_of_month is not None:
            k = self.nth_of_month
            return frozenset(matching[k - 1 : k])
        if self.last_of_month:
            return frozenset(matching[-1:])
        return frozenset(matching)

    def fire_days(self, year: int, month: int) -> frozenset[int]:
        """The days of this real month on which the expression fires (empty outside its months/years)."""
        if month not in self.months or (self.years is not None and year not in self.years):
            return frozenset()
        first_weekday, length = calendar.monthrange(year, month)  # Python: Monday = 0
        return self.month_days(length, (first_weekday + 1) % 7 + 1)

    def times_of_day(self) -> list[tuple[int, int, int]]:
        return sorted(itertools.product(self.hours, self.minutes, self.seconds))


# --------------------------------------------------------------------------------------------------
# Parsing

_NUM_OR_NAME = r"(?:\d+|[A-Z]{3})"
_ITEM = re.compile(rf"^(?P<start>{_NUM_OR_NAME})(?:-(?P<end>{_NUM_OR_NAME}))?(?:/(?P<step>\d+))?$")
_ALL = re.compile(r"^(?:\*|\*?/(?P<step>\d+))$")
_DOM_LAST = re.compile(r"^L(?:-(?P<offset>\d+))?(?P<w>W)?$")
_DOM_W = re.compile(r"^(?P<day>\d+)W$")
_DOW_SPECIAL = re.compile(rf"^(?P<dow>{_NUM_OR_NAME})(?:#(?P<nth>\d+)|(?P<last>L))$")


def parse(expression: str) -> QuartzCron:
    """Parse a DS (Quartz) cron expression; raise :class:`QuartzError` naming the field at fault."""
    if not isinstance(expression, str) or not expression.strip():
        raise QuartzError("expression", "empty cron expression", str(expression))
    parts = expression.upper().split()
    if len(parts) not in (6, 7):
        raise QuartzError(
            "expression",
            f"Quartz needs 6 or 7 fields (second minute hour day-of-month month day-of-week [year]), "
            f"got {len(parts)}",
            expression,
        )
    if len(parts) == 6:
        parts.append("*")

    def err(field: str, reason: str) -> QuartzError:
        return QuartzError(field, reason, expression)

    sec, mnt, hr, dom, mon, dow, yr = parts
    seconds = _parse_set("second", sec, err)
    minutes = _parse_set("minute", mnt, err)
    hours = _parse_set("hour", hr, err)
    months = _parse_set("month", mon, err)
    years: frozenset[int] | None = None
    if yr != "*":
        listed = _parse_set("year", yr, err)
        years = frozenset(y for y in listed if y >= TEMPORAL_MIN_YEAR)
        if not years:
            raise err("year", f"no year from {TEMPORAL_MIN_YEAR} on: the schedule can never fire again")

    if (dom == "?") == (dow == "?"):
        raise err(
            "day-of-week" if dom == "?" else "day-of-month",
            "Quartz needs '?' in exactly one of day-of-month and day-of-week "
            f"(got day-of-month {dom!r}, day-of-week {dow!r})",
        )
    if "?" in dom and dom != "?":
        raise err("day-of-month", "'?' must stand alone")
    if "?" in dow and dow != "?":
        raise err("day-of-week", "'?' must stand alone")

    side = _parse_dom(dom, months, err) if dow == "?" else _parse_dow(dow, err)
    result = QuartzCron(
        expression=expression,
        fields=tuple(parts),
        seconds=seconds,
        minutes=minutes,
        hours=hours,
        months=months,
        years=years,
        days_of_month=side.days_of_month,
        last_day_offset=side.last_day_offset,
        nearest_weekday=side.nearest_weekday,
        days_of_week=side.days_of_week,
        nth_of_month=side.nth_of_month,
        last_of_month=side.last_of_month,
    )
    if not _ever_fires(result):
        raise err("expression", "the day, month and year fields never coincide: the schedule can never fire")
    return result


def _ever_fires(c: QuartzCron) -> bool:
    """Some selected month/year has a firing day (e.g. ``30 2 ?`` never does)."""
    years = sorted(c.years) if c.years is not None else range(2000, 2028)  # a full 28-year cycle
    return any(c.fire_days(y, m) for y in years for m in c.months)


def _parse_set(field: str, text: str, err: _Err) -> frozenset[int]:
    lo, hi = _BOUNDS[field]
    if text in ("", "?"):
        raise err(field, "'?' is only allowed in day-of-month or day-of-week")
    values: set[int] = set()
    for item in text.split(","):
        m = _ALL.match(item)
        if m:
            step = _step(field, m["step"], err) if m["step"] is not None else 1
            values.update(range(lo, hi + 1, step))
            continue
        m = _ITEM.match(item)
        if not m:
            raise err(field, f"cannot read {item!r}" + _hint(field, item))
        named = not m["start"].isdigit() or (m["end"] is not None and not m["end"].isdigit())
        if named and m["step"] is not None:
            raise err(field, f"{item!r}: Quartz ignores a step after a month or day name; write numbers")
        start = _value(field, m["start"], err)
        step = _step(field, m["step"], err) if m["step"] is not None else 1
        if m["end"] is not None:
            end = _value(field, m["end"], err)
        elif m["step"] is not None:
            end = hi  # "a/b": from a to the field's maximum
        else:
            end = start
        if end < start:
            if field == "year":
                raise err(field, f"{item!r}: the start year must not be after the end year")
            wrap = _WRAP[field]  # Quartz wraps: 22-2 = 22,23,0,1,2; FRI-MON = 6,7,1,2
            for i in range(start, end + wrap + 1, step):
                v = i % wrap
                values.add(wrap if v == 0 and field in ("day-of-month", "month", "day-of-week") else v)
        else:
            values.update(range(start, end + 1, step))
    return frozenset(values)


def _hint(field: str, item: str) -> str:
    if "#" in item:
        return " ('#' is only valid in day-of-week, as n#k)"
    if "W" in item and field != "day-of-month":
        return " ('W' is only valid in day-of-month)"
    if "L" in item and field not in ("day-of-month", "day-of-week"):
        return " ('L' is only valid in day-of-month and day-of-week)"
    return ""


def _value(field: str, text: str, err: _Err) -> int:
    lo, hi = _BOUNDS[field]
    if text.isdigit():
        v = int(text)
    else:
        names = _NAMES.get(field)
        if names is None or text not in names:
            kind = {"month": "month name (JAN-DEC)", "day-of-week": "day name (SUN-SAT)"}.get(field, "number")
            raise err(field, f"{text!r} is not a {kind}")
        v = names[text]
    if not lo <= v <= hi:
        if field == "year" and v > hi:
            raise err(field, f"year {v} is after {TEMPORAL_MAX_YEAR}, where Temporal's calendar ends")
        raise err(field, f"{v} is out of range {lo}-{hi}")
    return v


def _step(field: str, text: str | None, err: _Err) -> int:
    step = int(text) if text else 0
    lo, hi = _BOUNDS[field]
    if step < 1:
        raise err(field, "a step ('/n') must be at least 1")
    if field != "year" and step > hi:
        raise err(field, f"step {step} is larger than {hi}")
    return step


@dataclass(frozen=True)
class _DaySide:
    days_of_month: frozenset[int] | None = None
    last_day_offset: int | None = None
    nearest_weekday: bool = False
    days_of_week: frozenset[int] | None = None
    nth_of_month: int | None = None
    last_of_month: bool = False


def _parse_dom(text: str, months: frozenset[int], err: _Err) -> _DaySide:
    field = "day-of-month"
    shortest = min(_MIN_MONTH_LENGTH[m] for m in months)
    m = _DOM_LAST.match(text)
    if m:
        offset = int(m["offset"]) if m["offset"] is not None else 0
        if offset > 30:
            raise err(field, f"{text!r}: the offset from the last day must be at most 30")
        if offset >= shortest:
            raise err(
                field,
                f"{text!r}: L-{offset} is before the 1st in a month of {shortest} days, and Quartz's "
                "result there is an accident of Java calendar arithmetic; restrict the months",
            )
        return _DaySide(last_day_offset=offset, nearest_weekday=m["w"] is not None)
    m = _DOM_W.match(text)
    if m:
        day = int(m["day"])
        if not 1 <= day <= 31:
            raise err(field, f"{text!r}: 'W' needs a day between 1 and 31")
        if day > shortest:
            raise err(
                field,
                f"{text!r}: day {day} does not exist in every selected month, and Quartz's nearest "
                "weekday there is an accident of Java calendar arithmetic; restrict the months",
            )
        return _DaySide(days_of_month=frozenset({day}), nearest_weekday=True)
    if "," in text and ("L" in text or "W" in text):
        raise err(field, f"{text!r}: 'L' and 'W' cannot be combined with other days (Quartz refuses it)")
    if "W" in text:
        raise err(field, f"{text!r}: 'W' works only on a single day (nW) or with L (LW), as in Quartz")
    if "L" in text:
        raise err(field, f"{text!r}: write L, L-n, LW or L-nW")
    return _DaySide(days_of_month=_parse_set(field, text, err))


def _parse_dow(text: str, err: _Err) -> _DaySide:
    field = "day-of-week"
    if text == "L":  # a lone L in day-of-week is Saturday (Quartz: addToSet(7, 7))
        return _DaySide(days_of_week=frozenset({_SAT}))
    m = _DOW_SPECIAL.match(text)
    if m:
        dow = _value(field, m["dow"], err)
        if m["last"]:
            return _DaySide(days_of_week=frozenset({dow}), last_of_month=True)
        nth = int(m["nth"])
        if not 1 <= nth <= 5:
            raise err(field, f"{text!r}: '#' must be followed by a number between 1 and 5")
        return _DaySide(days_of_week=frozenset({dow}), nth_of_month=nth)
    if "#" in text:
        if "," in text:
            raise err(field, f"{text!r}: Quartz supports only one n#k, not a list")
        raise err(field, f"{text!r}: write n#k, one weekday (1-7 or SUN-SAT) and k in 1-5")
    if "L" in text:
        if "," in text:
            raise err(field, f"{text!r}: 'L' cannot be combined with other days (Quartz refuses it)")
        raise err(field, f"{text!r}: write L (Saturday) or nL, one weekday (1-7 or SUN-SAT) then L")
    return _DaySide(days_of_week=_parse_set(field, text, err))


# --------------------------------------------------------------------------------------------------
# Temporal calendar specs (plain data; core.quartz_temporal builds the SDK objects)


@dataclass(frozen=True, order=True)
class Range:
    """Inclusive range with a step, as Temporal's ``Range``/``ScheduleRange``."""

    start: int
    end: int
    step: int = 1

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.start <= value <= self.end and (value - self.start) % self.step == 0

    def values(self) -> range:
        return range(self.start, self.end + 1, self.step)

    def __str__(self) -> str:
        if self.start == self.end:
            return str(self.start)
        return f"{self.start}-{self.end}" + (f"/{self.step}" if self.step != 1 else "")


@dataclass(frozen=True)
class CalendarSpec:
    """One Temporal structured calendar spec: a time matches when every field matches.

    ``day_of_week`` uses Temporal's numbering (0 = Sunday ... 6 = Saturday). An empty ``year`` means
    every year. Times are wall-clock times in the schedule's time zone.
    """

    second: tuple[Range, ...]
    minute: tuple[Range, ...]
    hour: tuple[Range, ...]
    day_of_month: tuple[Range, ...]
    month: tuple[Range, ...]
    day_of_week: tuple[Range, ...]
    year: tuple[Range, ...] = ()
    comment: str = ""

    def matches_date(self, d: date) -> bool:
        return (
            (not self.year or _within(self.year, d.year))
            and _within(self.month, d.month)
            and _within(self.day_of_month, d.day)
            and _within(self.day_of_week, (d.weekday() + 1) % 7)
        )

    def matches(self, t: datetime) -> bool:
        """Whether wall-clock time ``t`` (its own fields, whatever its tzinfo) matches."""
        return (
            self.matches_date(t.date())
            and _within(self.hour, t.hour)
            and _within(self.minute, t.minute)
            and _within(self.second, t.second)
        )


def _within(ranges: Iterable[Range], value: int) -> bool:
    return any(value in r for r in ranges)


def compress(values: Iterable[int]) -> tuple[Range, ...]:
    """Sorted arithmetic runs covering exactly ``values`` (e.g. 0,15,30,45 -> 0-45/15)."""
    vs = sorted(set(values))
    out: list[Range] = []
    i = 0
    while i < len(vs):
        j = i
        if i + 1 < len(vs):
            step = vs[i + 1] - vs[i]
            j = i + 1
            while j + 1 < len(vs) and vs[j + 1] - vs[j] == step:
                j += 1
            if j - i < 2 and step != 1:  # two values far apart: keep them separate
                j = i
        out.append(Range(vs[i], vs[j], (vs[j] - vs[i]) // (j - i) if j > i else 1))
        i = j + 1
    return tuple(out)


def _compress_years(values: Iterable[int]) -> tuple[Range, ...]:
    """Like :func:`compress`, but also tries runs of step 4 (leap years and their complement)."""
    vs = sorted(set(values))
    plain = compress(vs)
    by_residue = tuple(sorted(r for k in range(4) for r in compress(v for v in vs if v % 4 == k)))
    return by_residue if len(by_residue) < len(plain) else plain


# Month-length classes: (length, months, leap-year constraint for February)
_MONTH_CLASSES: tuple[tuple[int, frozenset[int], bool | None, str], ...] = (
    (31, frozenset({1, 3, 5, 7, 8, 10, 12}), None, "31-day months"),
    (30, frozenset({4, 6, 9, 11}), None, "30-day months"),
    (29, frozenset({2}), True, "February, leap years"),
    (28, frozenset({2}), False, "February, common years"),
)


@dataclass
class _Bucket:
    lengths: list[int]
    parts: list[tuple[frozenset[int], frozenset[int] | None, str]]  # (months, years or None=any, label)
    pattern: dict[int, frozenset[int]]  # day -> Temporal weekdays on which that day fires


def to_calendar_specs(expression: str | QuartzCron) -> tuple[CalendarSpec, ...]:
    """The Temporal calendar specs whose union fires exactly when the Quartz expression does."""
    c = parse(expression) if isinstance(expression, str) else expression
    all_years = frozenset(range(TEMPORAL_MIN_YEAR, TEMPORAL_MAX_YEAR + 1))
    buckets: list[_Bucket] = []
    for length, class_months, leap, label in _MONTH_CLASSES:
        months = class_months & c.months
        years: frozenset[int] | None = None
        if leap is not None:
            years = frozenset(y for y in (c.years or all_years) if calendar.isleap(y) == leap)
        elif c.years is not None:
            years = c.years
        if not months or (years is not None and not years):
            continue
        pattern = _month_pattern(c, length)
        for b in buckets:
            merged = _merge(b, length, pattern)
            if merged is not None:
                b.lengths.append(length)
                b.pattern = merged
                b.parts.append((months, years, label))
                break
        else:
            if pattern:  # a month class that never fires only joins a bucket, to drop year limits
                buckets.append(_Bucket([length], [(months, years, label)], pattern))

    time_fields = dict(second=compress(c.seconds), minute=compress(c.minutes), hour=compress(c.hours))
    specs: list[CalendarSpec] = []
    for b in buckets:
        for months, years, label in _join_parts(b.parts, c.years):
            by_weekdays: dict[frozenset[int], list[int]] = {}
            for day, weekdays in sorted(b.pattern.items()):
                by_weekdays.setdefault(weekdays, []).append(day)
            for weekdays, days in sorted(by_weekdays.items(), key=lambda kv: kv[1][0]):
                specs.append(
                    CalendarSpec(
                        **time_fields,
                        day_of_month=compress(days),
                        month=compress(months),
                        day_of_week=compress(weekdays),
                        year=_compress_years(years) if years is not None else (),
                        comment=f"quartz {c.expression}" + (f" ({label})" if label else ""),
                    )
                )
    return tuple(specs)


def _month_pattern(c: QuartzCron, length: int) -> dict[int, frozenset[int]]:
    pattern: dict[int, set[int]] = {}
    for first in range(1, 8):  # Quartz weekday of the 1st
        for d in c.month_days(length, first):
            pattern.setdefault(d, set()).add((first - 1 + d - 1) % 7)  # Temporal weekday of day d
    return {d: frozenset(w) for d, w in pattern.items()}


def _merge(b: _Bucket, length: int, pattern: Mapping[int, frozenset[int]]) -> dict[int, frozenset[int]] | None:
    """One pattern serving both, if they agree on every day that exists in both; else None."""
    longest = max(b.lengths)
    merged: dict[int, frozenset[int]] = {}
    for d in range(1, 32):
        mine = b.pattern.get(d) if d <= longest else None
        theirs = pattern.get(d) if d <= length else None
        if d <= longest and d <= length and mine != theirs:
            return None
        value = mine if d <= longest else theirs
        if value is not None:
            merged[d] = value
    return merged


def _join_parts(
    parts: list[tuple[frozenset[int], frozenset[int] | None, str]], quartz_years: frozenset[int] | None
) -> list[tuple[frozenset[int], frozenset[int] | None, str]]:
    """Rejoin February's leap/common halves, then merge the parts that share a year constraint."""
    febs = [p for p in parts if p[2].startswith("February")]
    rest = [p for p in parts if p not in febs]
    if len(febs) == 2:
        rest.append((frozenset({2}), quartz_years, "February"))
    else:
        rest.extend(febs)
    joined: dict[frozenset[int] | None, tuple[set[int], list[str]]] = {}
    for months, years, label in rest:
        entry = joined.setdefault(years, (set(), []))
        entry[0].update(months)
        entry[1].append(label)
    out = [
        (frozenset(months), years, labels[0] if len(labels) == 1 else "")
        for years, (months, labels) in joined.items()
    ]
    return sorted(out, key=lambda p: (min(p[0]), min(p[1]) if p[1] else 0))


def to_temporal_cron(expression: str | QuartzCron) -> str:
    """The 7-field Temporal cron string (``sec min hour dom month dow year``) for the expression.

    ``?`` becomes ``*``, weekdays are renumbered 0-6 from Sunday, lists/ranges/steps are rewritten
    from the values they select. Expressions with ``L``, ``W`` or ``#`` have no cron-string form.
    """
    c = parse(expression) if isinstance(expression, str) else expression
    if c.needs_calendars:
        field = "day-of-month" if c.days_of_week is None else "day-of-week"
        text = c.fields[FIELDS.index(field)]
        raise QuartzError(
            field,
            f"{text!r} has no Temporal cron-string form (Temporal has no L/W, and reads '#' as a comment); "
            "use the calendar specs",
            c.expression,
        )

    def render(values: frozenset[int] | None, full: range, shift: int = 0) -> str:
        if values is None or set(values) >= set(full):
            return "*"
        return ",".join(str(r) for r in compress(v - shift for v in values))

    return " ".join(
        [
            render(c.seconds, range(60)),
            render(c.minutes, range(60)),
            render(c.hours, range(24)),
            render(c.days_of_month, range(1, 32)),
            render(c.months, range(1, 13)),
            render(c.days_of_week, range(1, 8), shift=1),
            render(c.years, range(TEMPORAL_MIN_YEAR, TEMPORAL_MAX_YEAR + 1)),
        ]
    )


# --------------------------------------------------------------------------------------------------
# Reference evaluator


def fire_times(
    expression: str | QuartzCron,
    start: datetime,
    end: datetime,
    tz: str | tzinfo = "UTC",
    *,
    limit: int | None = None,
    repeated_hour: Literal["first", "both"] = "first",
) -> list[datetime]:
    """Fire times ``t`` with ``start < t <= end`` (aware datetimes), in zone ``tz``, in order.

    Brute force over every local date in the window, with Quartz's rules applied to the real
    calendar. A wall time skipped by a DST change never fires; a repeated one fires at its first
    occurrence (Quartz) or at both (``repeated_hour="both"``, what Temporal does).

    The times are returned in ``tz``. Compare them with other zones' times after ``astimezone(UTC)``:
    Python (PEP 495) never finds a repeated local time equal to a time in another zone.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    c = parse(expression) if isinstance(expression, str) else expression
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    times = c.times_of_day()
    out: list[datetime] = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date() + timedelta(days=1)
    month_cache: dict[tuple[int, int], frozenset[int]] = {}
    while day <= last:
        if c.years is not None and day.year > max(c.years):
            break
        key = (day.year, day.month)
        if key not in month_cache:
            month_cache[key] = c.fire_days(*key)
        if day.day in month_cache[key]:
            todays: list[datetime] = []
            for h, m, s in times:
                naive = datetime(day.year, day.month, day.day, h, m, s)
                todays.extend(_instants(naive, zone, repeated_hour == "both"))
            for t in sorted(todays):
                if start < t <= end:
                    out.append(t.astimezone(zone))
                    if limit is not None and len(out) >= limit:
                        return out
        day += timedelta(days=1)
    return out


def _instants(naive: datetime, zone: tzinfo, both: bool) -> list[datetime]:
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) != naive:
        return []  # skipped by a DST change
    second = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return [first, second] if both and second != first else [first]
