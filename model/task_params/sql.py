"""SQL parameters (reference §3 ``SqlParameters``)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field

from .base import DatasourceId, Number, Statements, TaskParams, Text, Upper, field_error, is_null

QUERY, NON_QUERY = 0, 1


def _sql_type(value: Any) -> int:
    """DS sqlType: 0 (or "0", "QUERY") is a query, 1 (or "1", "NON_QUERY") is not; absent is a query."""
    if is_null(value):
        return QUERY
    text = str(value).strip().upper()
    if text in ("0", "QUERY"):
        return QUERY
    if text in ("1", "NON_QUERY"):
        return NON_QUERY
    raise field_error("0 (query) or 1 (non-query)", value)


SqlType = Annotated[int, BeforeValidator(_sql_type)]


class SqlParams(TaskParams):
    """The keys Porpoise uses; the mail keys (``sendEmail``, ``showType``, ``title``, ``groupId``),
    ``connParams``, ``udfs`` and ``segmentSeparator`` are kept as leftovers."""

    task_types: ClassVar[tuple[str, ...]] = ("SQL",)

    db_type: Upper = Field(default=None, alias="type")  # the datasource type the task declares
    datasource: DatasourceId = None
    sql: Text = None
    sql_type: SqlType = Field(default=QUERY, alias="sqlType")
    pre_statements: Statements = Field(default_factory=list, alias="preStatements")
    post_statements: Statements = Field(default_factory=list, alias="postStatements")
    display_rows: Number = Field(default=None, alias="displayRows")
    limit: Number = None

    @property
    def is_query(self) -> bool:
        return self.sql_type == QUERY

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if not (self.sql or "").strip():
            out.append(("sql", "sql is required"))
        if (self.datasource or 0) <= 0:
            out.append(("datasource", "datasource id is required"))
        return out
