"""Writer columns from the reader's SELECT list, as DS ``DataxTask.parsingSqlColumnNames`` does.

DS parses the SELECT with Druid: an alias wins, a plain or qualified column gives its name, ``*`` is
refused; when the parser cannot name a column it asks the source database for the result's metadata
(``SELECT t.* FROM (sql) t WHERE 0 = 1``). The names are then quoted for the *target* database
(``DataxUtils.doConvertKeywordsColumns``). We do the same with the lexer of :mod:`model.sql`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from model.sql import _tokens, dialect_for  # the SQL task's lexer: one notion of quotes and comments

_WORD = re.compile(r"[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*|\d+(?:\.\d+)?|\S")


class ColumnError(ValueError):
    """The SELECT list cannot give writer columns (a ``*``, no SELECT...)."""


def _unquote(token: str) -> str:
    if len(token) >= 2 and token[0] in "`\"[" and token[-1] in "`\"]":
        return token[1:-1].replace(token[0] * 2, token[0]) if token[0] != "[" else token[1:-1]
    return token


def _pieces(sql: str, db_type: str) -> list[tuple[str, str]]:
    """(kind, text) of the first statement, code split into words and punctuation, no comments."""
    out: list[tuple[str, str]] = []
    for kind, text in _tokens(sql, dialect_for(db_type)):
        if kind == "end":
            break
        if kind == "comment":
            continue
        if kind == "code":
            out += [("code", w) for w in _WORD.findall(text)]
        else:
            out.append((kind, text))
    return out


def select_items(sql: str, db_type: str) -> list[list[tuple[str, str]]]:
    """The top-level items between SELECT and FROM (each a list of pieces)."""
    pieces = _pieces(sql, db_type)
    start = next((i for i, (k, t) in enumerate(pieces) if k == "code" and t.lower() == "select"), None)
    if start is None:
        raise ColumnError("the sql is not a SELECT: writer columns come from its SELECT list")
    depth, items, current = 0, [], []  # type: ignore[var-annotated]
    i = start + 1
    while i < len(pieces) and pieces[i][0] == "code" and pieces[i][1].lower() in ("distinct", "all"):
        i += 1
    for kind, text in pieces[i:]:
        low = text.lower() if kind == "code" else ""
        if low == "(":
            depth += 1
        elif low == ")":
            depth -= 1
        elif depth == 0 and low == "from":
            break
        elif depth == 0 and low == ",":
            items.append(current)
            current = []
            continue
        current.append((kind, text))
    items.append(current)
    return [item for item in items if item]


_NOT_ALIASES = {"end", "null", "true", "false", "distinct", "all", "and", "or", "not", "is", "as", "case", "when",
                "then", "else", "in", "like", "between", "over", "by"}


def _is_name(kind: str, text: str) -> bool:
    if kind == "ident":
        return True
    return kind == "code" and (text[0].isalpha() or text[0] == "_") and text.lower() not in _NOT_ALIASES


def item_name(item: list[tuple[str, str]]) -> str | None:
    """The column name of one SELECT item: its alias, or the column it names; None when unnamed."""
    texts = [t for _, t in item]
    if texts[-1] == "*":
        raise ColumnError(f"the sql selects {''.join(texts)}: name the columns (DS refuses * too)")
    kind, last = item[-1]
    if len(item) >= 2 and kind == "string" and item[-2][1].lower() == "as":  # MySQL: AS "alias" / AS 'alias'
        return last[1:-1]
    if not _is_name(kind, last):
        return None
    if len(item) == 1:
        return _unquote(last)
    before_kind, before = item[-2]
    if before_kind == "code" and before.lower() == "as":
        return _unquote(last)
    if before == ".":  # t.col, schema.t.col: the column's own name
        dotted = all(t == "." if i % 2 else _is_name(k, t) for i, (k, t) in enumerate(item))
        return _unquote(last) if dotted else None
    if before == ")" or before_kind in ("ident", "string") or _is_name(before_kind, before) or before[0].isdigit():
        return _unquote(last)  # "expr alias" without AS
    return None


def select_columns(sql: str, db_type: str, describe: Callable[[str], list[str]] | None = None) -> list[str]:
    """Column names of ``sql``'s result, for the writer. ``describe`` asks the source database (the DS
    fallback) when an item has no name (``count(*)`` without alias); without it, that is an error."""
    names = [item_name(item) for item in select_items(sql, db_type)]
    if all(names):
        return [n for n in names if n]
    if describe is not None:
        return describe(f"SELECT t.* FROM ({sql.strip().rstrip(';')}) t WHERE 0 = 1")
    missing = [i + 1 for i, n in enumerate(names) if not n]
    raise ColumnError(f"select item(s) {missing} have no name: give them an alias (AS name)")


# DS DataxUtils.doConvertKeywordsColumns: the target database's identifier quotes.
_QUOTES = {
    "MYSQL": ("`", "`"), "MARIADB": ("`", "`"), "HIVE": ("`", "`"), "SPARK": ("`", "`"), "CLICKHOUSE": ("`", "`"),
    "DORIS": ("`", "`"), "STARROCKS": ("`", "`"), "OCEANBASE": ("`", "`"), "DATABEND": ("`", "`"),
    "POSTGRESQL": ('"', '"'), "ORACLE": ('"', '"'), "REDSHIFT": ('"', '"'), "DAMENG": ('"', '"'),
    "DB2": ('"', '"'), "SQLSERVER": ("[", "]"), "AZURESQL": ("[", "]"),
}


def quote_column(name: str, db_type: str) -> str:
    """``name`` quoted for ``db_type`` (unchanged for types DS does not quote)."""
    opening, closing = _QUOTES.get(db_type.upper(), ("", ""))
    if not opening:
        return name
    return f"{opening}{name.replace(closing, closing * 2)}{closing}"
