"""DS ``$[...]`` time expressions (reference §6.3), against values worked out by hand.

The base is 2024-03-15 10:30:00 Asia/Shanghai (UTC+8, no DST), a Friday, in a leap year, unless a
case says otherwise.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from model.timeexpr import calculate, evaluate, format_java, replace_time_placeholders

SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE = datetime(2024, 3, 15, 10, 30, 0, tzinfo=SHANGHAI)


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, tz: str = "Asia/Shanghai"
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(tz))


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # plain formats
        ("yyyyMMdd", "20240315"),
        ("yyyy-MM-dd", "2024-03-15"),
        ("HHmmss", "103000"),
        ("yyyyMMddHHmmss", "20240315103000"),
        ("yy/M/d H:m", "24/3/15 10:30"),
        ("yyyy-MM-dd HH:mm:ss.SSS", "2024-03-15 10:30:00.000"),
        ("yyyyMMdd'T'HHmm", "20240315T1030"),
        ("yyyy'年'MM'月'", "2024年03月"),
        ("'o''clock' hh a", "o'clock 10 AM"),
        ("EEE, d MMM yyyy", "Fri, 15 Mar 2024"),
        ("yyyy-MM-dd'T'HH:mm:ssXXX", "2024-03-15T10:30:00+08:00"),
        # day offsets: the last +/- followed by a digit splits format and offset
        ("yyyyMMdd-1", "20240314"),
        ("yyyyMMdd+1", "20240316"),
        ("yyyyMMdd-10", "20240305"),
        ("yyyyMMdd+7*2", "20240329"),
        ("yyyyMMdd+2*(3-1)", "20240319"),
        ("yyyyMMdd-1*(2*3)", "20240309"),
        ("yyyy-MM-dd-1", "2024-03-14"),
        ("yyyy-MM-dd+1", "2024-03-16"),
        ("yyyyMMdd-15", "20240229"),
        # fractions of a day: the divisor is applied to the minutes, 60*24*(1)/24 = 60
        ("HHmmss-1/24", "093000"),
        ("HHmmss-1/24/60", "102900"),
        ("HHmmss+1/24", "113000"),
        ("HH:mm-1/(24*2)", "10:00"),
        ("yyyyMMddHH-11/24", "2024031423"),
        # add_months: Calendar.add(MONTH) semantics
        ("add_months(yyyyMMdd,-1)", "20240215"),
        ("add_months(yyyyMMdd,1)", "20240415"),
        ("add_months(yyyyMMdd,12*2)", "20260315"),
        ("add_months(yyyy-MM,-3)", "2023-12"),
        # month_begin/month_end: first/last day of the month, plus days
        ("month_begin(yyyyMMdd,0)", "20240301"),
        ("month_begin(yyyyMMdd,-1)", "20240229"),
        ("month_begin(yyyyMMdd,2)", "20240303"),
        ("month_end(yyyyMMdd,0)", "20240331"),
        ("month_end(yyyyMMdd,1)", "20240401"),
        ("month_end(yyyy-MM-dd HH:mm,0)", "2024-03-31 10:30"),
        # week_begin/week_end: Monday/Sunday of the Monday-first week, plus days
        ("week_begin(yyyyMMdd,0)", "20240311"),
        ("week_begin(yyyyMMdd,-7)", "20240304"),
        ("week_end(yyyyMMdd,0)", "20240317"),
        ("week_end(yyyyMMdd,1)", "20240318"),
        # this_day / last_day
        ("this_day(yyyy-MM-dd)", "2024-03-15"),
        ("last_day(yyyy-MM-dd)", "2024-03-14"),
        # month_first_day / month_last_day with optional month offset
        ("month_first_day(yyyy-MM-dd)", "2024-03-01"),
        ("month_first_day(yyyy-MM-dd,-1)", "2024-02-01"),
        ("month_first_day(yyyyMMdd,10)", "20250101"),
        ("month_last_day(yyyy-MM-dd)", "2024-03-31"),
        ("month_last_day(yyyy-MM-dd,-1)", "2024-02-29"),
        ("month_last_day(yyyy-MM-dd,1)", "2024-04-30"),
        ("month_last_day(yyyyMMdd,-13)", "20230228"),
        # week_first_day / week_last_day with optional week offset
        ("week_first_day(yyyy-MM-dd)", "2024-03-11"),
        ("week_first_day(yyyy-MM-dd,-1)", "2024-03-04"),
        ("week_last_day(yyyy-MM-dd)", "2024-03-17"),
        ("week_last_day(yyyy-MM-dd,1)", "2024-03-24"),
        # year_week: Jan 1 2024 is a Monday, so 15 March (day 75) is in week 11
        ("year_week(yyyy-MM-dd)", "2024-11"),
        ("year_week(yyyyMMdd)", "202411"),
        ("year_week(yyyyMMdd,7)", "202411"),
        # timestamp: epoch seconds; 2024-03-15 10:30 +08:00 = 02:30 UTC = 1710460800 + 9000
        ("timestamp(yyyyMMddHHmmss)", "1710469800"),
        ("timestamp(yyyyMMdd00mmss)", "1710433800"),
        ("timestamp(yyyyMMddHHmmss-1)", "1710383400"),
        ("timestamp(add_months(yyyyMMddHHmmss,1))", "1713148200"),
        ("timestamp(month_begin(yyyyMMdd000000,0))", "1709222400"),
    ],
)
def test_expressions_at_base(expr: str, expected: str) -> None:
    assert evaluate(expr, BASE) == expected


@pytest.mark.parametrize(
    ("base", "expr", "expected"),
    [
        # add_months clamps the day like Java LocalDate / Calendar
        (at(2024, 3, 31), "add_months(yyyyMMdd,-1)", "20240229"),
        (at(2023, 3, 31), "add_months(yyyyMMdd,-1)", "20230228"),
        (at(2024, 1, 31), "add_months(yyyyMMdd,1)", "20240229"),
        (at(2024, 2, 29), "add_months(yyyyMMdd,12)", "20250228"),
        # month_end across February
        (at(2024, 2, 10), "month_end(yyyyMMdd,0)", "20240229"),
        (at(2023, 2, 10), "month_end(yyyyMMdd,0)", "20230228"),
        (at(2024, 2, 10), "month_begin(yyyyMMdd,-1)", "20240131"),
        (at(2024, 3, 1), "last_day(yyyyMMdd)", "20240229"),
        (at(2024, 3, 1), "yyyyMMdd-1", "20240229"),
        (at(2024, 1, 31), "month_last_day(yyyyMMdd,1)", "20240229"),
        # a Sunday belongs to the week that started the Monday before
        (at(2024, 3, 17), "week_begin(yyyyMMdd,0)", "20240311"),
        (at(2024, 3, 17), "week_end(yyyyMMdd,0)", "20240317"),
        (at(2024, 3, 11), "week_begin(yyyyMMdd,0)", "20240311"),
        (at(2024, 3, 11), "week_end(yyyyMMdd,0)", "20240317"),
        (at(2024, 1, 3), "week_first_day(yyyyMMdd)", "20240101"),
        (at(2025, 1, 1), "week_first_day(yyyyMMdd)", "20241230"),
        # year_week around new year: DS prints the calendar year next to the week number
        (at(2024, 12, 30), "year_week(yyyy-MM-dd)", "2024-01"),  # ISO 2025-W01
        (at(2021, 1, 1), "year_week(yyyyMMdd)", "202153"),  # ISO 2020-W53
        (at(2023, 1, 1), "year_week(yyyyMMdd)", "202352"),  # a Sunday: ISO 2022-W52
        (at(2023, 1, 1), "year_week(yyyyMMdd,7)", "202301"),  # Sunday-first week starts that day
        (at(2026, 1, 1), "year_week(yyyy-MM-dd)", "2026-01"),  # a Thursday: week 1
        (at(2027, 1, 1), "year_week(yyyyMMdd)", "202753"),  # a Friday: 2026 has 53 ISO weeks
        (at(2025, 12, 28), "year_week(yyyyMMdd)", "202552"),  # a Sunday ending ISO week 52
        # 12-hour clock and midnight
        (at(2024, 3, 15, 22, 5), "hh:mm a", "10:05 PM"),
        (at(2024, 3, 15, 0, 5), "hh:mm a|K|k", "12:05 AM|0|24"),
        # the offset crosses midnight and month boundaries
        (at(2024, 3, 1, 0, 30), "yyyyMMddHHmm-1/24", "202402292330"),
        # timestamp is timezone-aware: the same wall clock in UTC is 8 hours later
        (at(2024, 3, 15, 10, 30, tz="UTC"), "timestamp(yyyyMMddHHmmss)", "1710498600"),
    ],
)
def test_expressions_at_other_bases(base: datetime, expr: str, expected: str) -> None:
    assert evaluate(expr, base) == expected


def test_minute_offsets_are_elapsed_time_but_day_steps_are_calendar_days() -> None:
    # 2024-03-10 12:00 EDT: DST began at 02:00 that day, so the day was 23 hours long.
    base = at(2024, 3, 10, 12, 0, tz="America/New_York")
    assert evaluate("yyyyMMddHH-1", base) == "2024030911"  # 1440 minutes before = 11:00 EST
    assert evaluate("last_day(yyyyMMddHH)", base) == "2024030912"  # Calendar.add(DAY, -1)


def test_day_step_into_dst_gap_moves_forward() -> None:
    base = at(2024, 3, 11, 2, 30, tz="America/New_York")
    assert evaluate("last_day(yyyyMMdd HH:mm)", base) == "20240310 03:30"


@pytest.mark.parametrize(
    "expr",
    [
        "yyyyMMdd+",  # nothing after the sign
        "nope",  # 'n' is not a pattern letter
        "yyyyMMddTHH",  # 'T' is not a pattern letter unless quoted
        "ddd",  # too many letters
        "yyyy#MM",  # reserved character
        "'unterminated",
        "month_begin(yyyyMMdd)",  # needs exactly two arguments
        "add_months(yyyyMMdd,1,2)",
        "week_end(yyyyMMdd,)",
        "yyyyMMdd-1/0",
        "add_months(yyyyMMdd,x)",
        "timestamp(yyyyMMdd)",  # not 14 digits, cannot be re-parsed as yyyyMMddHHmmss
        "month_first_day(yyyyMMdd,)",
        # DS splits at the last '+', so the offset is "2)" and the format "yyyyMMdd-(1"
        "yyyyMMdd-(1+2)",
    ],
)
def test_invalid_expressions_raise(expr: str) -> None:
    with pytest.raises(ValueError):
        evaluate(expr, BASE)


def test_plus_without_digit_means_no_offset_even_with_a_minus() -> None:
    # DS only looks at the last '+' when there is one; 'yyyy+MM-1' has no offset at all,
    # so the whole text is the format: '+' and '-' are literals and '1' is a literal digit.
    assert evaluate("yyyy+MM-1", BASE) == "2024+03-1"


def test_naive_base_is_rejected() -> None:
    with pytest.raises(TypeError):
        evaluate("yyyyMMdd", datetime(2024, 3, 15))
    with pytest.raises(TypeError):
        replace_time_placeholders("$[yyyyMMdd]", datetime(2024, 3, 15))


def test_replace_time_placeholders() -> None:
    text = "dt=$[yyyyMMdd-1] t=$[HHmmss] ym=$[add_months(yyyyMM,-1)] keep=$[1] bad=$[nope] ${x} $[ok"
    assert replace_time_placeholders(text, BASE) == ("dt=20240314 t=103000 ym=202402 keep=$[1] bad=$[nope] ${x} $[ok")


def test_replace_handles_adjacent_and_repeated_placeholders() -> None:
    text = "$[yyyy]$[MM]$[dd]/$[yyyy]"
    assert replace_time_placeholders(text, BASE) == "20240315/2024"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("1+2*3", 7),
        ("(1+2)*3", 9),
        ("10-2-3", 5),
        ("2*3-4/2", 4),
        ("7/2", 3),
        ("60*24*(1)/24", 60),
        ("60*24*(1)/24/60", 1),
        (" 12 ", 12),
        ("-1", -1),
        ("+1", 1),
        ("-12*2", -24),
        ("(-7)/2", -3),  # Java truncates toward zero
        ("-7/2", -3),
        # DS quirk: a unary sign covers everything to its right up to ')' or the end
        ("-3+2", -5),
        ("2*-3+4", -14),
        ("(-3+2)*2", -10),
    ],
)
def test_calculate(expr: str, expected: int) -> None:
    assert calculate(expr) == expected


@pytest.mark.parametrize("expr", ["", "1 + 2", "1+", "(1+2", "1+2)", "1a", "2147483648"])
def test_calculate_rejects(expr: str) -> None:
    with pytest.raises(ValueError):
        calculate(expr)


def test_calculate_wraps_like_java_int() -> None:
    assert calculate("2147483647+1") == -2147483648


def test_format_java_letter_counts() -> None:
    dt = at(2024, 3, 5, 7, 8, 9)
    assert format_java(dt, "y yy yyy yyyy yyyyy") == "2024 24 2024 2024 02024"
    assert format_java(dt, "M MM MMM MMMM MMMMM") == "3 03 Mar March M"
    assert format_java(dt, "d dd D DD DDD") == "5 05 65 65 065"
    assert format_java(dt, "H HH m mm s ss") == "7 07 8 08 9 09"
    assert format_java(dt, "E EEEE Q QQQ QQQQ G") == "Tue Tuesday 1 Q1 1st quarter AD"
    assert format_java(dt, "[yyyy]-MM") == "2024-03"
    assert format_java(dt, "Z ZZZZZ X xx") == "+0800 +08:00 +08 +0800"
    assert format_java(dt.replace(tzinfo=ZoneInfo("UTC")), "X XXX x") == "Z Z +00"
