"""The pure half of the SQL task (reference §3 SQL): split, bind, read results. No I/O, no drivers.

DolphinScheduler's ``SqlTask`` does, per statement (3.2 ``getSqlAndSqlParamsMap``):

1. split the text into statements, comments removed (``splitAndRemoveComment``) -> :func:`split_statements`;
2. replace ``$[...]`` time expressions textually (``replaceScheduleTime``);
3. replace ``!{name}`` textually with the raw value (``replaceOriginalValue``: not bound, for identifiers);
4. turn every ``${name}`` (with any quotes right around it, ``'${name}'``) into a JDBC ``?`` bound to
   the parameter's typed value, a ``LIST`` expanding to ``?,?,...`` (``ParameterUtils.expandListParameter``)
   -> :func:`bind`;

and after the query it fills OUT parameters from the result (``SqlParameters.dealOutParam``) ->
:func:`out_values`. Here the scanning is done by a small lexer that knows strings, quoted
identifiers, comments and PostgreSQL dollar quotes, so a ``;`` or a ``${`` inside a literal or a
comment is never mistaken for code. Where DS would build broken SQL (a ``${x}`` inside a longer
literal, an unknown parameter) we fail with a message that says why, before touching the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal

from model.definition import DataType, Direct, Property

__all__ = [
    "BoundStatement",
    "Dialect",
    "SqlParamError",
    "bind",
    "dialect_for",
    "format_table",
    "out_values",
    "split_statements",
    "substitute_raw",
    "to_text",
]

Paramstyle = Literal["qmark", "format"]  # sqlite3: ?, psycopg / PyMySQL: %s


class SqlParamError(ValueError):
    """A statement cannot be bound: unknown parameter, bad typed value, placeholder inside a literal."""


@dataclass(frozen=True)
class Dialect:
    """What the lexer must know about a database's SQL to find statement ends and placeholders."""

    name: str
    backslash_escapes: bool = False  # MySQL: '\'' is a quote inside a string
    double_quote_strings: bool = False  # MySQL: "..." is a string, not an identifier
    hash_comments: bool = False  # MySQL: # to end of line
    dash_comment_needs_space: bool = False  # MySQL: "--" starts a comment only before whitespace
    backticks: bool = False  # MySQL, SQLite: `identifier`
    brackets: bool = False  # SQLite, SQL Server: [identifier]
    dollar_quotes: bool = False  # PostgreSQL: $$...$$, $tag$...$tag$
    escape_strings: bool = False  # PostgreSQL: E'...' takes backslash escapes


GENERIC = Dialect("generic")
POSTGRESQL = Dialect("postgresql", dollar_quotes=True, escape_strings=True)
MYSQL = Dialect("mysql", backslash_escapes=True, double_quote_strings=True, hash_comments=True,
                dash_comment_needs_space=True, backticks=True)
SQLITE = Dialect("sqlite", backticks=True, brackets=True)
SQLSERVER = Dialect("sqlserver", brackets=True)

_DIALECTS = {
    "POSTGRESQL": POSTGRESQL, "REDSHIFT": POSTGRESQL, "GREENPLUM": POSTGRESQL,
    "MYSQL": MYSQL, "MARIADB": MYSQL, "DORIS": MYSQL, "STARROCKS": MYSQL, "OCEANBASE": MYSQL,
    "CLICKHOUSE": GENERIC, "SQLITE": SQLITE, "SQLSERVER": SQLSERVER, "AZURESQL": SQLSERVER,
}


def dialect_for(db_type: str) -> Dialect:
    """The lexer rules for a DS datasource type (``GENERIC`` for the ones we do not special-case)."""
    return _DIALECTS.get(db_type.upper(), GENERIC)


# --------------------------------------------------------------------------------------------------
# Lexing and splitting
# --------------------------------------------------------------------------------------------------

Kind = Literal["code", "string", "ident", "comment", "end"]
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\uffff]")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")


def _tokens(sql: str, d: Dialect) -> Iterator[tuple[Kind, str]]:
    """Split ``sql`` into code, string literals, quoted identifiers, comments and ``;`` ("end").

    Unterminated literals and comments run to the end of the text (the database will say what is
    wrong with them; we only must not split inside them).
    """
    n = len(sql)
    i = 0
    code_start = 0

    def flush(upto: int) -> Iterator[tuple[Kind, str]]:
        if upto > code_start:
            yield "code", sql[code_start:upto]

    while i < n:
        c = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        end = -1
        kind: Kind | None = None
        if c == ";":
            yield from flush(i)
            yield "end", ";"
            i += 1
            code_start = i
            continue
        if c == "$" and nxt == "{":  # a DS placeholder is code, whatever its name contains
            close = sql.find("}", i + 2)
            i = n if close < 0 else close + 1
            continue
        dash_comment = c == "-" and nxt == "-" and (
            not d.dash_comment_needs_space or i + 2 >= n or sql[i + 2] in " \t\r\n")
        if dash_comment or (c == "#" and d.hash_comments):
            kind, end = "comment", _line_end(sql, i)
        elif c == "/" and nxt == "*":
            close = sql.find("*/", i + 2)
            kind, end = "comment", (n if close < 0 else close + 2)
        elif c == "'":
            backslash = d.backslash_escapes or (
                d.escape_strings and i > 0 and sql[i - 1] in "eE" and (i < 2 or not _IDENT_CHAR.match(sql[i - 2]))
            )
            kind, end = "string", _quoted_end(sql, i, "'", backslash)
        elif c == '"':
            kind = "string" if d.double_quote_strings else "ident"
            end = _quoted_end(sql, i, '"', d.double_quote_strings and d.backslash_escapes)
        elif c == "`" and d.backticks:
            kind, end = "ident", _quoted_end(sql, i, "`", False)
        elif c == "[" and d.brackets:
            close = sql.find("]", i + 1)
            kind, end = "ident", (n if close < 0 else close + 1)
        elif c == "$" and d.dollar_quotes and (i == 0 or not _IDENT_CHAR.match(sql[i - 1])):
            m = _DOLLAR_TAG.match(sql, i)
            if m:
                close = sql.find(m.group(0), m.end())
                kind, end = "string", (n if close < 0 else close + len(m.group(0)))
        if kind is None:
            i += 1
            continue
        yield from flush(i)
        yield kind, sql[i:end]
        i = code_start = end
    yield from flush(n)


def _line_end(sql: str, i: int) -> int:
    """End of a line comment: up to, not including, the line break (which stays as whitespace)."""
    m = re.compile(r"\r\n|\r|\n").search(sql, i)
    return m.start() if m else len(sql)


def _quoted_end(sql: str, i: int, quote: str, backslash: bool) -> int:
    """Index just past the literal starting at ``sql[i] == quote``; a doubled quote is an escape."""
    j = i + 1
    n = len(sql)
    while j < n:
        ch = sql[j]
        if backslash and ch == "\\":
            j += 2
            continue
        if ch == quote:
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return n


def split_statements(sql: str, dialect: Dialect = GENERIC) -> list[str]:
    """The statements of ``sql``: split at ``;`` outside literals and comments, comments removed.

    A removed comment leaves a space (so ``a/**/b`` stays two words), blank statements are dropped,
    and each statement is stripped. A ``;`` inside a string, quoted identifier, comment or
    PostgreSQL dollar-quoted body does not split.
    """
    statements: list[str] = []
    current: list[str] = []
    for kind, text in _tokens(sql, dialect):
        if kind == "end":
            statements.append("".join(current))
            current = []
        elif kind == "comment":
            current.append(" ")
        else:
            current.append(text)
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


# --------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------

_RAW = re.compile(r"""['"]*!\{(.*?)\}['"]*""")  # DS replaceOriginalValue's regex, quotes included
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_QUOTED_PLACEHOLDER = re.compile(r"""^['"]\$\{([^}]*)\}['"]$""")


def substitute_raw(statement: str, params: Mapping[str, str]) -> str:
    """DS ``!{name}``: the raw value pasted into the SQL text, quotes right around it dropped.

    Not bound, so only for what cannot be bound (table or column names, a whole clause). An unknown
    name raises :class:`SqlParamError` (DS would throw a NullPointerException).
    """

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in params:
            raise SqlParamError(f"unknown parameter !{{{name}}}")
        return params[name]

    return _RAW.sub(repl, statement)


@dataclass(frozen=True)
class BoundStatement:
    """One statement ready for the driver: ``sql`` with driver placeholders and the ``values``."""

    sql: str
    values: tuple[Any, ...] = ()
    names: tuple[str, ...] = ()  # the parameter behind each value, for the log
    types: tuple[DataType, ...] = ()

    def describe_params(self) -> str:
        """``name=value (TYPE)`` per bound value, as DS's "Sql Params are ..." log line shows them."""
        return ", ".join(f"{n}={v!r} ({t.value})" for n, v, t in zip(self.names, self.values, self.types, strict=True))


def typed_value(name: str, value: str, data_type: DataType) -> Any:
    """A parameter's string value as the Python object its DS type binds as (``setInParameter``).

    Numbers become ``int``/``float``, BOOLEAN ``bool`` (``"true"``, any case, is true; anything else
    false, as ``Boolean.parseBoolean``). An empty value of a non-text type binds SQL NULL. Dates and
    times stay text and the database casts them.
    """
    text = value.strip()
    try:
        if data_type in (DataType.INTEGER, DataType.LONG):
            return int(text) if text else None
        if data_type in (DataType.FLOAT, DataType.DOUBLE):
            return float(text) if text else None
    except ValueError:
        raise SqlParamError(f"parameter {name!r} of type {data_type.value} has value {value!r}, "
                            f"not a number") from None
    if data_type is DataType.BOOLEAN:
        return text.lower() == "true" if text else None
    return value


def list_values(value: str) -> list[Any]:
    """A LIST parameter's elements: a JSON array's items, or the whole value as the one element."""
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, list):
        return [v if v is None or isinstance(v, (str, int, float, bool)) else json.dumps(v) for v in parsed]
    return [value] if value.strip() else []


def bind(
    statement: str,
    params: Mapping[str, str],
    types: Mapping[str, DataType] | None = None,
    *,
    dialect: Dialect = GENERIC,
    paramstyle: Paramstyle = "format",
) -> BoundStatement:
    """Turn ``${name}`` placeholders into bound parameters (never into SQL text).

    * ``${name}`` in code, or a literal that is exactly ``'${name}'`` / ``"${name}"`` (DS drops the
      quotes right around a placeholder), becomes one driver placeholder bound to the typed value.
    * A LIST parameter expands to one placeholder per element: ``in (${ids})`` with ``[1,2,3]`` gives
      ``in (?,?,?)``. An empty list gives ``NULL`` (DS gives ``in ()``, a syntax error).
    * ``${name}`` inside a longer literal (``'%${x}%'``) raises :class:`SqlParamError`: DS builds a
      statement that cannot run there; write ``concat('%', ${x}, '%')`` or ``'%' || ${x} || '%'``.
    * An unknown name raises :class:`SqlParamError` (DS would run with an unbound ``?``).

    With ``paramstyle="format"`` (psycopg, PyMySQL) every literal ``%`` is doubled, since the driver
    reads ``%`` as a placeholder marker.
    """
    types = types or {}
    marker = "?" if paramstyle == "qmark" else "%s"
    out: list[str] = []
    values: list[Any] = []
    names: list[str] = []
    kinds: list[DataType] = []

    def escape(text: str) -> str:
        return text.replace("%", "%%") if paramstyle == "format" else text

    def emit(name: str) -> None:
        if name not in params:
            raise SqlParamError(f"unknown parameter ${{{name}}}: it is not a global, local, startup, "
                                f"upstream OUT or built-in parameter of this task")
        data_type = types.get(name, DataType.VARCHAR)
        if data_type is DataType.LIST:
            items = list_values(params[name])
            if not items:
                out.append("NULL")
                return
            out.append(",".join([marker] * len(items)))
            values.extend(items)
            names.extend([name] * len(items))
            kinds.extend([data_type] * len(items))
            return
        out.append(marker)
        values.append(typed_value(name, params[name], data_type))
        names.append(name)
        kinds.append(data_type)

    for kind, text in _tokens(statement, dialect):
        if kind == "code":
            pos = 0
            for m in _PLACEHOLDER.finditer(text):
                out.append(escape(text[pos : m.start()]))
                emit(m.group(1))
                pos = m.end()
            out.append(escape(text[pos:]))
        elif kind in ("string", "ident") and (quoted := _QUOTED_PLACEHOLDER.match(text)):
            emit(quoted.group(1))
        elif kind in ("string", "ident") and (inner := _PLACEHOLDER.search(text)):
            name = inner.group(1)
            raise SqlParamError(
                f"${{{name}}} is inside the quoted text {_clip(text)}: a bound parameter cannot be part of a "
                f"literal or a quoted name; write it on its own (e.g. concat('%', ${{{name}}}, '%')), "
                f"or use !{{{name}}} to paste the raw value"
            )
        else:  # literals, identifiers, a ';' or a comment left in a single statement: as written
            out.append(escape(text))
    return BoundStatement("".join(out), tuple(values), tuple(names), tuple(kinds))


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------


def to_text(value: Any) -> str:
    """A result cell as DS hands it on: JSON-ish text, SQL NULL as ``null`` (``String.valueOf``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + bytes(value).hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _column(columns: Sequence[str], name: str) -> int | None:
    """Index of the result column named ``name``: exact label first, then case-insensitively
    (PostgreSQL folds unquoted aliases to lower case; DS would miss those and give ``null``)."""
    if name in columns:
        return list(columns).index(name)
    lowered = [c.lower() for c in columns]
    return lowered.index(name.lower()) if name.lower() in lowered else None


def out_values(declared: Sequence[Property], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[str, str]:
    """OUT parameter values from a query result (``SqlParameters.dealOutParam``).

    * one row: each OUT parameter takes the column of the same name;
    * several rows: only OUT parameters of type LIST are set, to a JSON array of the column's values
      (as text); the others keep their declared value;
    * no row: each OUT parameter with a matching column is set to ``""`` (DS's "empty row").

    A parameter without a matching column is left out, so it keeps its declared value.
    """
    outs = [p for p in declared if p.direct is Direct.OUT]
    produced: dict[str, str] = {}
    for p in outs:
        index = _column(columns, p.prop)
        if index is None:
            continue
        if not rows:
            produced[p.prop] = ""
        elif len(rows) == 1:
            produced[p.prop] = to_text(rows[0][index])
        elif p.type is DataType.LIST:
            produced[p.prop] = json.dumps([to_text(r[index]) for r in rows], ensure_ascii=False)
    return produced


def update_count_out(declared: Sequence[Property], count: int) -> dict[str, str]:
    """Non-query: the first OUT parameter receives the update count (DS ``setNonQuerySqlReturn``)."""
    for p in declared:
        if p.direct is Direct.OUT:
            return {p.prop: str(count)}
    return {}


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, max_width: int = 60) -> list[str]:
    """Rows as a plain-text table for the task log (header, rule, one line per row)."""

    def cell(v: Any) -> str:
        text = "NULL" if v is None else to_text(v)
        text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    header = [cell(c) for c in columns]
    body = [[cell(v) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in body]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "+-" + "-+-".join("-" * w for w in widths) + "-+"
    return [rule, line(header), rule, *[line(r) for r in body], rule]
