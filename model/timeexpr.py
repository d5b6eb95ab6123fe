"""DolphinScheduler ``$[...]`` time expressions (DS ``TimePlaceholderUtils``), as pure functions.

Reference §6.3. Every expression is evaluated against a *base time* that the caller passes in: the
schedule (or complement) time, otherwise the time the parameters were prepared. This module never
reads the clock and imports only the standard library, because it runs inside the Temporal workflow
sandbox where it must be deterministic.

What DS does, and therefore what we do (ported from the 3.2 source, not from the docs):

* ``timestamp(expr)`` formats ``expr`` and re-parses the result as ``yyyyMMddHHmmss`` in the base
  timezone, giving epoch **seconds**. An inner format that does not produce 14 digits fails.
* ``year_week(fmt[,d])`` is handled next; all other functions (``add_months``, ``month_begin``, ...)
  pick a date and a format; anything else is a plain format with an optional day offset.
* Offsets (``calcMinutes``): if the text contains ``+``, only the *last* ``+`` is considered, and if
  it is not followed by a digit there is no offset at all (a ``-`` is then not looked at). Otherwise
  the last ``-`` is considered the same way. The offset ``e`` is turned into minutes as
  ``60*24*(e)``, except that the text from the first ``/`` on is appended *outside* the parentheses:
  ``1/24`` becomes ``60*24*(1)/24`` = 60 minutes. Minute offsets are applied to the instant (Java
  ``Date`` arithmetic), while day/week/month steps are calendar steps on the wall clock (Java
  ``Calendar``), so they differ only across a DST change.
* The integer calculator is DS's own shunting-yard port, quirks included (see :func:`calculate`).
* Formatting follows ``java.time.DateTimeFormatter.ofPattern`` (which DS 3.2 uses, not
  ``SimpleDateFormat``; the common letters agree) in an English locale. Letters we do not support
  raise :class:`ValueError`, like letters Java rejects.

Errors are :class:`ValueError`. DS fails the task on a bad expression; :func:`replace_time_placeholders`
instead leaves the unparseable ``$[...]`` untouched (documented in docs/compatibility.md).
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import NoReturn

__all__ = ["calculate", "evaluate", "format_java", "replace_time_placeholders"]

# Function names, in the order DS's ``calculateTime``/``calcTimeExpression`` test them with startsWith.
_TIMESTAMP = "timestamp"
_YEAR_WEEK = "year_week"
_ADD_MONTHS = "add_months"
_MONTH_BEGIN = "month_begin"
_MONTH_END = "month_end"
_WEEK_BEGIN = "week_begin"
_WEEK_END = "week_end"
_MONTH_FIRST_DAY = "month_first_day"
_MONTH_LAST_DAY = "month_last_day"
_THIS_DAY = "this_day"
_LAST_DAY = "last_day"
_WEEK_FIRST_DAY = "week_first_day"
_WEEK_LAST_DAY = "week_last_day"

# ParameterUtils.DATE_PARSE_PATTERN in DS 3.2: no nesting, no '$' or ']' inside.
_PLACEHOLDER = re.compile(r"\$\[([^$\]]+)\]")
_DIGITS = "0123456789"

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def evaluate(expr: str, base: datetime) -> str:
    """Evaluate the inside of one ``$[...]`` against ``base`` (reference §6.3).

    ``base`` must be timezone-aware, in the schedule's timezone: the output is that wall clock.
    Raises :class:`ValueError` for an expression DS would reject (DS then fails the task).
    """
    _require_aware(base)
    if expr.startswith(_TIMESTAMP):
        inner = _function_body(expr, _TIMESTAMP)
        when, fmt = _time_expression(inner, base)
        return str(_parse_parameter_time(format_java(when, fmt), base.tzinfo))
    if expr.startswith(_YEAR_WEEK):
        return _year_week(expr, base)
    when, fmt = _time_expression(expr, base)
    return format_java(when, fmt)


def replace_time_placeholders(text: str, base: datetime) -> str:
    """Replace every ``$[...]`` in ``text``; unparseable ones are left as they are.

    Uses DS 3.2's pattern ``\\$\\[([^$\\]]+)]`` (no nesting) and, like DS, skips a body that is one
    single digit: ``$[1]`` is far more likely shell than a date format.
    """
    _require_aware(base)

    def repl(m: re.Match[str]) -> str:
        body = m.group(1)
        if len(body) == 1 and body in _DIGITS:
            return m.group(0)
        try:
            return evaluate(body, base)
        except ValueError:
            return m.group(0)

    return _PLACEHOLDER.sub(repl, text)


def calculate(expression: str) -> int:
    """DS ``TimePlaceholderUtils.calculate``: integer ``+ - * /`` and parentheses, Java ``int`` semantics.

    Faithful to DS, including its quirks, because users' expressions were tuned against it:

    * division truncates toward zero and arithmetic wraps at 32 bits;
    * a unary sign (``-`` or ``+`` at the start or after ``+ - * / (``) applies to *everything up to
      the enclosing closing parenthesis or the end*, not just the next number: ``-3+2`` is ``-5`` and
      ``2*-3+4`` is ``-14``. ``-1`` and ``-12*2`` give the obvious answers.

    Only digits, the four operators and parentheses are accepted; leading and trailing whitespace is
    trimmed. Anything else raises :class:`ValueError` (DS would compute garbage or throw).
    """
    expr = expression.strip()
    bad = set(expr) - set(_DIGITS + "+-*/()")
    if bad:
        raise ValueError(f"unexpected character(s) {sorted(bad)} in arithmetic expression {expression!r}")
    tokens = _tokenize(_mark_unary(expr))
    return _eval_postfix(_to_postfix(tokens))


# --------------------------------------------------------------------------------------------------
# Expression dispatch (calcTimeExpression and friends)
# --------------------------------------------------------------------------------------------------


def _require_aware(base: datetime) -> None:
    if base.tzinfo is None or base.utcoffset() is None:
        raise TypeError("base time must be timezone-aware (the schedule's timezone)")


def _function_body(expr: str, name: str) -> str:
    """``name(body)`` -> ``body``. DS slices blindly; we insist on the parentheses."""
    if len(expr) < len(name) + 2 or expr[len(name)] != "(" or not expr.endswith(")"):
        raise ValueError(f"malformed {name}(...) expression: {expr!r}")
    return expr[len(name) + 1 : -1]


def _java_split(text: str, sep: str) -> list[str]:
    """Java ``String.split`` for a literal separator: trailing empty strings are dropped."""
    if text == "":
        return [""]
    parts = text.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _two_args(expr: str, name: str) -> tuple[str, int]:
    """``name(fmt,intExpr)`` with exactly two arguments, as DS's calcMonthBegin & co. require."""
    params = _java_split(_function_body(expr, name), ",")
    if len(params) != 2:
        raise ValueError(f"{name} needs exactly two arguments: {expr!r}")
    return params[0], calculate(params[1])


def _optional_arg(expr: str, name: str) -> tuple[str, int | None]:
    """``name(fmt[,intExpr])`` as DS's calcCustomDay reads it: a third argument is ignored."""
    body = _function_body(expr, name)
    if "," not in body:
        return body, None
    params = _java_split(body, ",")
    if len(params) < 2:
        raise ValueError(f"missing argument after ',' in {expr!r}")
    return params[0], calculate(params[1])


def _time_expression(expr: str, base: datetime) -> tuple[datetime, str]:
    """DS ``calcTimeExpression``: return the target time and the format to print it with."""
    if expr.startswith(_ADD_MONTHS):
        fmt, n = _two_args(expr, _ADD_MONTHS)
        return _add_months(base, n), fmt
    if expr.startswith(_MONTH_BEGIN):
        fmt, n = _two_args(expr, _MONTH_BEGIN)
        return _add_days(base.replace(day=1), n), fmt
    if expr.startswith(_MONTH_END):
        fmt, n = _two_args(expr, _MONTH_END)
        return _add_days(_last_day_of_month(base), n), fmt
    if expr.startswith(_WEEK_BEGIN):
        fmt, n = _two_args(expr, _WEEK_BEGIN)
        return _add_days(_monday(base), n), fmt
    if expr.startswith(_WEEK_END):
        fmt, n = _two_args(expr, _WEEK_END)
        return _add_days(_sunday(base), n), fmt
    if expr.startswith(_MONTH_FIRST_DAY):
        fmt, opt = _optional_arg(expr, _MONTH_FIRST_DAY)
        return _add_months(base.replace(day=1), opt or 0), fmt
    if expr.startswith(_MONTH_LAST_DAY):
        # DS shifts the base by N months first, then takes that month's last day.
        fmt, opt = _optional_arg(expr, _MONTH_LAST_DAY)
        return _last_day_of_month(_add_months(base, opt or 0)), fmt
    if expr.startswith(_THIS_DAY):
        # No argument parsing: a comma would simply be part of the format, as in DS.
        return _normalize(base), _function_body(expr, _THIS_DAY)
    if expr.startswith(_LAST_DAY):
        return _add_days(base, -1), _function_body(expr, _LAST_DAY)
    if expr.startswith(_WEEK_FIRST_DAY):
        fmt, opt = _optional_arg(expr, _WEEK_FIRST_DAY)
        return _add_days(_monday(base), 7 * (opt or 0)), fmt
    if expr.startswith(_WEEK_LAST_DAY):
        fmt, opt = _optional_arg(expr, _WEEK_LAST_DAY)
        return _add_days(_sunday(base), 7 * (opt or 0)), fmt
    return _calc_minutes(expr, base)


def _calc_minutes(expr: str, base: datetime) -> tuple[datetime, str]:
    """DS ``calcMinutes(String, Date)``: split a trailing day offset off a plain format.

    Mirrors DS exactly: with a ``+`` anywhere, only the last ``+`` is examined, and ``-`` is never
    examined; ``yyyy-MM-dd`` has no offset because its last ``-`` is followed by a letter.
    """
    for sign in ("+", "-"):
        if sign in expr:
            index = expr.rindex(sign)
            if index + 1 >= len(expr):
                raise ValueError(f"offset missing after {sign!r} in {expr!r}")
            if expr[index + 1] in _DIGITS:
                minutes = _offset_minutes(expr[index + 1 :])
                if sign == "-":
                    minutes = -minutes
                return _add_minutes(base, minutes), expr[:index]
            return base, expr
    return base, expr


def _offset_minutes(offset: str) -> int:
    """DS ``calcMinutes(String)``: days to minutes, with the divisor appended *after* the ``60*24*(..)``.

    ``1/24`` -> ``60*24*(1)/24`` = 60, so ``$[HHmmss-1/24]`` is exactly one hour earlier; truncating
    ``1/24`` to 0 first would be wrong (reference §6.3).
    """
    slash = offset.find("/")
    if slash == -1:
        return calculate(f"60*24*({offset})")
    return calculate(f"60*24*({offset[:slash]}){offset[slash:]}")


def _year_week(expr: str, base: datetime) -> str:
    """DS ``calculateYearWeek``: ``yyyyww`` or ``yyyy-ww`` (when the format contains ``-``).

    Java ``Calendar`` with minimal days in first week = 4 and the given first day of week (1 =
    Monday ... 7 = Sunday, anything else Monday). DS prints ``Calendar.YEAR``, the *calendar* year,
    next to ``WEEK_OF_YEAR``, so the days that belong to week 1 of the next year print as week 01 of
    the current one (2024-12-30 -> ``202401``) and early-January days in the previous year's last
    week print that week number with the new year (2021-01-01 -> ``202153``). Faithful to DS.
    """
    fmt, opt = _optional_arg(expr, _YEAR_WEEK)
    first_day = opt if opt is not None and 2 <= opt <= 7 else 1
    local = _normalize(base)
    week = _week_of_year(local.date(), first_day - 1)
    if "-" in fmt:
        return f"{local.year}-{week:02d}"
    return f"{local.year}{week:02d}"


def _week_of_year(day: date, first_weekday: int) -> int:
    """``Calendar.WEEK_OF_YEAR`` for minimalDaysInFirstWeek = 4; ``first_weekday`` 0 = Monday."""

    def week1_start(year: int) -> date:
        jan1 = date(year, 1, 1)
        lead = (jan1.weekday() - first_weekday) % 7  # days of the week that fall in December
        start = jan1 - timedelta(days=lead)
        return start if 7 - lead >= 4 else start + timedelta(days=7)

    this_start = week1_start(day.year)
    if day >= week1_start(day.year + 1):
        return 1
    if day < this_start:
        return (day - week1_start(day.year - 1)).days // 7 + 1
    return (day - this_start).days // 7 + 1


# --------------------------------------------------------------------------------------------------
# Date arithmetic with Java semantics
# --------------------------------------------------------------------------------------------------


def _normalize(dt: datetime) -> datetime:
    """Resolve a wall-clock time that falls in a DST gap forward, as lenient ``Calendar`` does."""
    tz = dt.tzinfo
    assert tz is not None
    return dt.astimezone(UTC).astimezone(tz)


def _add_minutes(dt: datetime, minutes: int) -> datetime:
    """``DateUtils.addMinutes`` on a ``Date``: elapsed time, not wall-clock time."""
    tz = dt.tzinfo
    assert tz is not None
    return (dt.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(tz)


def _add_days(dt: datetime, days: int) -> datetime:
    """``Calendar.add(DAY_OF_MONTH)``: keep the wall-clock time of day."""
    return _normalize(dt + timedelta(days=days))


def _add_months(dt: datetime, months: int) -> datetime:
    """``Calendar.add(MONTH)``: the day is clamped to the target month (Jan 31 + 1 -> Feb 28/29)."""
    total = dt.year * 12 + (dt.month - 1) + months
    year, month0 = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise ValueError("date out of range")
    day = min(dt.day, calendar.monthrange(year, month0 + 1)[1])
    return _normalize(dt.replace(year=year, month=month0 + 1, day=day))


def _last_day_of_month(dt: datetime) -> datetime:
    return _normalize(dt.replace(day=calendar.monthrange(dt.year, dt.month)[1]))


def _monday(dt: datetime) -> datetime:
    """DS ``getMonday``: the Monday of the Monday-to-Sunday week containing ``dt``."""
    return _add_days(dt, -dt.weekday())


def _sunday(dt: datetime) -> datetime:
    """DS ``getSunday``: the Sunday that ends the Monday-to-Sunday week (a Sunday maps to itself)."""
    return _add_days(dt, 6 - dt.weekday())


def _parse_parameter_time(text: str, tz: tzinfo | None) -> int:
    """Parse ``yyyyMMddHHmmss`` in ``tz`` (DS ``PARAMETER_FORMAT_TIME``) to epoch seconds."""
    if len(text) != 14 or any(c not in _DIGITS for c in text):
        raise ValueError(f"timestamp(): {text!r} is not yyyyMMddHHmmss")
    local = datetime(
        int(text[0:4]),
        int(text[4:6]),
        int(text[6:8]),
        int(text[8:10]),
        int(text[10:12]),
        int(text[12:14]),
        tzinfo=tz,
    )
    return int(local.timestamp())


# --------------------------------------------------------------------------------------------------
# The integer calculator
# --------------------------------------------------------------------------------------------------

_UNARY_PLUS = "P"
_UNARY_MINUS = "N"
_BINARY = "+-*/"


def _mark_unary(expr: str) -> str:
    """DS ``convert``: a sign at the start or after an operator or ``(`` is unary."""
    chars = list(expr)
    for i, c in enumerate(chars):
        if c in "+-" and (i == 0 or expr[i - 1] in "+-*/("):
            chars[i] = _UNARY_MINUS if c == "-" else _UNARY_PLUS
    return "".join(chars)


def _tokenize(expr: str) -> list[str]:
    tokens: list[str] = []
    num = ""
    for c in expr:
        if c in _DIGITS:
            num += c
            continue
        if num:
            tokens.append(num)
            num = ""
        tokens.append(c)
    if num:
        tokens.append(num)
    if not tokens:
        raise ValueError("empty arithmetic expression")
    return tokens


def _pops_before(peek: str, cur: str) -> bool:
    """DS ``compare``: unary markers never pop and are never popped by an operator."""
    if peek in "*/":
        return cur in _BINARY
    if peek in "+-":
        return cur in "+-"
    return False


def _to_postfix(tokens: list[str]) -> list[str]:
    out: list[str] = []
    stack: list[str] = []
    for tok in tokens:
        if tok[0] in _DIGITS:
            out.append(tok)
        elif tok == "(":
            stack.append(tok)
        elif tok == ")":
            while stack and stack[-1] != "(":
                out.append(stack.pop())
            if not stack:
                raise ValueError("unbalanced ')'")
            stack.pop()
        else:
            while stack and _pops_before(stack[-1], tok):
                out.append(stack.pop())
            stack.append(tok)
    while stack:
        tok = stack.pop()
        if tok == "(":
            raise ValueError("unbalanced '('")
        out.append(tok)
    return out


def _i32(value: int) -> int:
    return (value - _INT_MIN) % 2**32 + _INT_MIN


def _eval_postfix(postfix: list[str]) -> int:
    stack: list[int] = []
    for tok in postfix:
        if tok[0] in _DIGITS:
            value = int(tok)
            if value > _INT_MAX:
                raise ValueError(f"{tok} does not fit in a Java int")
            stack.append(value)
            continue
        if not stack:
            raise ValueError("malformed arithmetic expression")
        back = stack.pop()
        if tok == _UNARY_PLUS:
            stack.append(back)
            continue
        if tok == _UNARY_MINUS:
            stack.append(_i32(-back))
            continue
        if not stack:
            raise ValueError("malformed arithmetic expression")
        front = stack.pop()
        if tok == "+":
            res = front + back
        elif tok == "-":
            res = front - back
        elif tok == "*":
            res = front * back
        else:
            if back == 0:
                raise ValueError("division by zero")
            res = abs(front) // abs(back) * (1 if (front < 0) == (back < 0) else -1)
        stack.append(_i32(res))
    if not stack:
        raise ValueError("malformed arithmetic expression")
    return stack[-1]


# --------------------------------------------------------------------------------------------------
# DateTimeFormatter.ofPattern, the subset that matters
# --------------------------------------------------------------------------------------------------

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_QUARTERS = ("1st quarter", "2nd quarter", "3rd quarter", "4th quarter")
# Letters java.time knows but we do not implement (locale week fields, zone names, ...).
_KNOWN_UNSUPPORTED = set("YwWecFAnNVvzOpBg")


def format_java(dt: datetime, pattern: str) -> str:
    """Format ``dt`` with a Java ``DateTimeFormatter.ofPattern`` pattern, English locale.

    Supported letters: ``G y u M L d D Q q E a H k K h m s S X x Z``, with Java's letter-count rules
    (``yy`` is the two-digit year, ``MMM`` ``Mar``, ``MMMM`` ``March``, ``ddd`` is an error, ...).
    Text in ``'single quotes'`` is literal and ``''`` is a quote; every other non-letter is literal,
    ``[``/``]`` (optional sections) are dropped and ``# { }`` are rejected, as Java does. ``S`` is
    limited to millisecond precision because DS formats a ``java.util.Date``.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "'":
            i += 1
            literal: list[str] = []
            while True:
                if i >= n:
                    raise ValueError("pattern ends with an incomplete string literal")
                if pattern[i] == "'":
                    if i + 1 < n and pattern[i + 1] == "'":
                        literal.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                literal.append(pattern[i])
                i += 1
            out.append("".join(literal) if literal else "'")
            continue
        if ("a" <= c <= "z") or ("A" <= c <= "Z"):
            j = i
            while j < n and pattern[j] == c:
                j += 1
            out.append(_format_field(dt, c, j - i))
            i = j
            continue
        if c in "#{}":
            raise ValueError(f"pattern includes reserved character {c!r}")
        if c not in "[]":
            out.append(c)
        i += 1
    return "".join(out)


def _pad(value: int, width: int) -> str:
    return f"{value:0{width}d}"


def _too_many(letter: str) -> ValueError:
    return ValueError(f"too many pattern letters: {letter}")


def _format_field(dt: datetime, letter: str, count: int) -> str:
    if letter in "yu":
        if count == 2:
            return _pad(dt.year % 100, 2)
        return _pad(dt.year, count)
    if letter in "ML":
        if count <= 2:
            return _pad(dt.month, count)
        name = _MONTHS[dt.month - 1]
        return {3: name[:3], 4: name, 5: name[:1]}.get(count) or _raise(_too_many(letter))
    if letter == "d":
        return _numeric(dt.day, letter, count, 2)
    if letter == "D":
        return _numeric(dt.timetuple().tm_yday, letter, count, 3)
    if letter == "H":
        return _numeric(dt.hour, letter, count, 2)
    if letter == "k":
        return _numeric(dt.hour or 24, letter, count, 2)
    if letter == "K":
        return _numeric(dt.hour % 12, letter, count, 2)
    if letter == "h":
        return _numeric(dt.hour % 12 or 12, letter, count, 2)
    if letter == "m":
        return _numeric(dt.minute, letter, count, 2)
    if letter == "s":
        return _numeric(dt.second, letter, count, 2)
    if letter == "S":
        if count > 9:
            raise _too_many(letter)
        nanos = (dt.microsecond // 1000) * 1_000_000
        return _pad(nanos, 9)[:count]
    if letter == "a":
        if count > 1:
            raise _too_many(letter)
        return "AM" if dt.hour < 12 else "PM"
    if letter == "E":
        name = _DAYS[dt.weekday()]
        if count <= 3:
            return name[:3]
        return {4: name, 5: name[:1]}.get(count) or _raise(_too_many(letter))
    if letter in "Qq":
        q = (dt.month - 1) // 3 + 1
        forms = {1: str(q), 2: _pad(q, 2), 3: f"Q{q}", 4: _QUARTERS[q - 1], 5: str(q)}
        return forms.get(count) or _raise(_too_many(letter))
    if letter == "G":
        forms = {1: "AD", 2: "AD", 3: "AD", 4: "Anno Domini", 5: "A"}
        return forms.get(count) or _raise(_too_many(letter))
    if letter in "XxZ":
        return _format_offset(dt, letter, count)
    if letter in _KNOWN_UNSUPPORTED:
        raise ValueError(f"pattern letter {letter!r} is not supported")
    raise ValueError(f"unknown pattern letter: {letter}")


def _raise(exc: ValueError) -> NoReturn:
    raise exc


def _numeric(value: int, letter: str, count: int, max_count: int) -> str:
    if count > max_count:
        raise _too_many(letter)
    return _pad(value, count)


def _format_offset(dt: datetime, letter: str, count: int) -> str:
    offset = dt.utcoffset()
    assert offset is not None
    total = int(offset.total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    hh, mm = divmod(abs(total), 60)
    if letter == "Z":
        if count <= 3:
            return f"{sign}{hh:02d}{mm:02d}"
        if count == 4:
            return "GMT" if total == 0 else f"GMT{sign}{hh:02d}:{mm:02d}"
        if count == 5:
            return "Z" if total == 0 else f"{sign}{hh:02d}:{mm:02d}"
        raise _too_many(letter)
    if count > 5:
        raise _too_many(letter)
    if letter == "X" and total == 0:
        return "Z"
    if count == 1:
        return f"{sign}{hh:02d}" + (f"{mm:02d}" if mm else "")
    if count in (2, 4):
        return f"{sign}{hh:02d}{mm:02d}"
    return f"{sign}{hh:02d}:{mm:02d}"
