"""model.sql: statement splitting, ${} -> bound parameters, OUT params from results (reference §3 SQL)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError

from activities.sql_task import build_plan, param_types
from core.contracts import TaskRequest
from model.definition import DataType, Direct, Property
from model.sql import (
    MYSQL,
    POSTGRESQL,
    SQLITE,
    SqlParamError,
    bind,
    dialect_for,
    format_table,
    out_values,
    split_statements,
    substitute_raw,
    to_text,
    update_count_out,
)

# -- splitting --------------------------------------------------------------------------------------


def test_split_on_semicolons_dropping_blanks_and_comments() -> None:
    sql = """
        -- set up; not a statement
        create table t (a int); /* a; b */ insert into t values (1);;
        select * from t -- trailing; comment
    """
    assert split_statements(sql) == ["create table t (a int)", "insert into t values (1)", "select * from t"]


def test_semicolons_inside_literals_and_identifiers_do_not_split() -> None:
    sql = """insert into "we;ird" values ('a;b', 'it''s; fine'); select ';'"""
    assert split_statements(sql) == ["""insert into "we;ird" values ('a;b', 'it''s; fine')""", "select ';'"]


def test_comment_markers_inside_strings_are_text() -> None:
    sql = "select '-- no', '/* no */' ; select 1"
    assert split_statements(sql) == ["select '-- no', '/* no */'", "select 1"]


def test_a_removed_comment_leaves_a_space() -> None:
    assert split_statements("select/**/1") == ["select 1"]


def test_postgres_dollar_quoted_bodies_are_one_literal() -> None:
    sql = """create function f() returns int as $body$ begin return 1; end; $body$ language plpgsql;
             do $$ begin perform 1; end $$; select 2"""
    parts = split_statements(sql, POSTGRESQL)
    assert len(parts) == 3
    assert parts[0].endswith("language plpgsql") and "return 1; end;" in parts[0]
    assert parts[1] == "do $$ begin perform 1; end $$"


def test_postgres_escape_strings_take_backslashes() -> None:
    assert split_statements(r"select E'a\'; b'; select 2", POSTGRESQL) == [r"select E'a\'; b'", "select 2"]
    # a standard string has no backslash escape: the quote closes it
    assert split_statements(r"select 'a\'; select 2", POSTGRESQL) == [r"select 'a\'", "select 2"]


def test_mysql_rules() -> None:
    sql = r"""select 'a\';b', "c;d" # hash comment; still comment
              ; select 5--1; select `x;y` from t"""
    assert split_statements(sql, MYSQL) == ["select 'a\\';b', \"c;d\"", "select 5--1", "select `x;y` from t"]
    assert split_statements("select 1 -- c\n; select 2", MYSQL) == ["select 1", "select 2"]


def test_sqlite_brackets_and_backticks() -> None:
    assert split_statements("select [a;b], `c;d` from t; select 2", SQLITE) == ["select [a;b], `c;d` from t",
                                                                               "select 2"]


def test_unterminated_literal_runs_to_the_end() -> None:
    assert split_statements("select 'oops; select 2") == ["select 'oops; select 2"]


def test_dialects_by_ds_type() -> None:
    assert dialect_for("postgresql") is POSTGRESQL
    assert dialect_for("MARIADB") is MYSQL and dialect_for("MYSQL") is MYSQL
    assert dialect_for("HIVE").name == "generic"


# -- binding ----------------------------------------------------------------------------------------


def test_placeholders_become_bound_parameters_never_text() -> None:
    evil = "x'); drop table t; --"
    b = bind("select * from t where name = ${name} and id = '${id}'", {"name": evil, "id": "7"},
             {"id": DataType.INTEGER})
    assert b.sql == "select * from t where name = %s and id = %s"
    assert b.values == (evil, 7) and b.names == ("name", "id")
    assert "drop" not in b.sql


def test_qmark_style_and_percent_escaping() -> None:
    params = {"p": "1"}
    assert bind("select '100%', ${p}", params, paramstyle="qmark").sql == "select '100%', ?"
    assert bind("select '100%', 5 % 2, ${p}", params, paramstyle="format").sql == "select '100%%', 5 %% 2, %s"


def test_list_params_expand_to_one_placeholder_per_element() -> None:
    types = {"ids": DataType.LIST}
    b = bind("select * from t where id in (${ids})", {"ids": "[1, 2, 3]"}, types)
    assert b.sql == "select * from t where id in (%s,%s,%s)" and b.values == (1, 2, 3)
    single = bind("select * from t where id in (${ids})", {"ids": "abc"}, types, paramstyle="qmark")
    assert single.sql == "select * from t where id in (?)" and single.values == ("abc",)
    empty = bind("select * from t where id in (${ids})", {"ids": "[]"}, types)
    assert empty.sql == "select * from t where id in (NULL)" and empty.values == ()


def test_typed_values() -> None:
    types = {"i": DataType.INTEGER, "f": DataType.DOUBLE, "b": DataType.BOOLEAN, "e": DataType.LONG,
             "d": DataType.DATE}
    b = bind("select ${i}, ${f}, ${b}, ${e}, ${d}", {"i": " 42 ", "f": "1.5", "b": "TRUE", "e": "", "d": "2024-01-02"},
             types)
    assert b.values == (42, 1.5, True, None, "2024-01-02")
    assert "i=42 (INTEGER)" in b.describe_params()
    with pytest.raises(SqlParamError, match="'i' of type INTEGER"):
        bind("select ${i}", {"i": "forty"}, types)


def test_unknown_parameter_is_a_clear_error() -> None:
    with pytest.raises(SqlParamError, match=r"unknown parameter \$\{nope\}"):
        bind("select ${nope}", {})


def test_placeholder_inside_a_longer_literal_is_refused_with_a_hint() -> None:
    with pytest.raises(SqlParamError, match=r"concat\('%', \$\{x\}, '%'\)"):
        bind("select * from t where a like '%${x}%'", {"x": "v"})


def test_placeholder_in_a_dollar_quoted_body_is_refused() -> None:
    with pytest.raises(SqlParamError):
        bind("do $$ begin perform ${x}; end $$", {"x": "1"}, dialect=POSTGRESQL)


def test_raw_substitution_is_textual_and_only_for_bang_braces() -> None:
    params = {"table": "events_2024", "v": "1"}
    text = substitute_raw("insert into !{table} values (${v}); select '!{table}'", params)
    assert text == "insert into events_2024 values (${v}); select events_2024"
    with pytest.raises(SqlParamError, match="unknown parameter"):
        substitute_raw("select !{missing}", params)


def test_placeholder_names_with_dots() -> None:
    b = bind("select ${system.biz.date}", {"system.biz.date": "20240101"}, paramstyle="qmark")
    assert b.sql == "select ?" and b.values == ("20240101",)


# -- results ----------------------------------------------------------------------------------------


def out(name: str, type_: DataType = DataType.VARCHAR, value: str = "") -> Property:
    return Property(prop=name, direct=Direct.OUT, type=type_, value=value)


def test_one_row_fills_out_params_by_column_name() -> None:
    declared = [out("total"), out("Name"), out("missing", value="dflt"), Property(prop="in_only")]
    got = out_values(declared, ["total", "name", "in_only"], [(3, None, "x")])
    assert got == {"total": "3", "Name": "null"}  # case-insensitive match; missing keeps its default


def test_several_rows_fill_only_list_params_as_json_arrays() -> None:
    declared = [out("id", DataType.LIST), out("label")]
    got = out_values(declared, ["id", "label"], [(1, "a"), (2, "b")])
    assert got == {"id": json.dumps(["1", "2"])}


def test_no_rows_gives_empty_values() -> None:
    assert out_values([out("a"), out("z")], ["a"], []) == {"a": ""}


def test_non_query_count_goes_to_the_first_out_param() -> None:
    assert update_count_out([Property(prop="x"), out("n"), out("m")], 5) == {"n": "5"}
    assert update_count_out([], 5) == {}


def test_to_text() -> None:
    assert to_text(None) == "null" and to_text(True) == "true" and to_text(Decimal("1.50")) == "1.50"
    assert to_text(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02 03:04:05"
    assert to_text(date(2024, 1, 2)) == "2024-01-02"
    assert to_text(b"\xff\x00") == "0xff00" and to_text(memoryview(b"ok")) == "ok"
    assert to_text({"a": 1}) == '{"a": 1}'


def test_format_table() -> None:
    lines = format_table(["id", "name"], [(1, "alpha"), (22, None), (3, "x" * 100)], max_width=10)
    assert lines[1] == "| id | name       |"
    assert lines[4] == "| 22 | NULL       |"
    assert lines[5] == "| 3  | xxxxxxxxx… |"
    assert lines[0] == lines[2] == lines[-1] == "+----+------------+"


# -- the activity's plan (pure: no connection) ------------------------------------------------------


def _request(**task_params: object) -> TaskRequest:
    params = {"system.datetime": "20240315101500", "day": "$[yyyyMMdd]", "tbl": "events", "n": "3"}
    return TaskRequest(instance_id="i", task_code=1, task_name="t", task_type="SQL", log_dir="/tmp",
                       task_params={"datasource": 1, **task_params}, params=params, timezone="UTC")


def test_plan_binds_every_statement_and_labels_them() -> None:
    req = _request(sql="insert into !{tbl} values (${n}, '$[yyyyMMdd-1]'); delete from !{tbl} where n > ${n}",
                   sqlType="1", preStatements='["create table if not exists !{tbl} (n int, d text)"]',
                   postStatements=["analyze"],
                   localParams=[{"prop": "n", "direct": "IN", "type": "INTEGER", "value": "3"}])
    plan = build_plan(req, "POSTGRESQL", "format")
    assert [s.label for s in plan.pre + plan.main + plan.post] == [
        "pre-statement 1", "statement 1", "statement 2", "post-statement 1"]
    assert plan.main[0].bound.sql == "insert into events values (%s, '20240314')"
    assert plan.main[0].bound.values == (3,) and not plan.query
    assert (plan.limit, plan.display_rows) == (10000, 10)


def test_plan_query_runs_the_first_statement_only_as_ds_does() -> None:
    plan = build_plan(_request(sql="select 1; select 2", sqlType=0, limit=5, displayRows=2), "SQLITE", "qmark")
    assert plan.query and len(plan.main) == 1 and plan.ignored == 1
    assert (plan.limit, plan.display_rows) == (5, 2)


@pytest.mark.parametrize(("params", "message"), [
    ({"sql": "  -- only a comment"}, "no statement"),
    ({"sql": ""}, "sql is empty"),
    ({"sql": "select 1", "sqlType": "2"}, "sqlType must be"),
    ({"sql": "select 1", "limit": "many"}, "limit must be a number"),
    ({"sql": "select ${missing}"}, "statement 1: unknown parameter"),
    ({"sql": "select 1", "preStatements": [1]}, "preStatements must be a list"),
])
def test_plan_refuses_what_cannot_run(params: dict[str, object], message: str) -> None:
    with pytest.raises(ApplicationError, match=message) as e:
        build_plan(_request(**params), "SQLITE", "qmark")
    assert e.value.non_retryable and e.value.type == "InvalidTaskParams"


def test_param_types_come_from_local_params() -> None:
    req = _request(sql="x", localParams=[{"prop": "ids", "direct": "IN", "type": "LIST", "value": "[1]"},
                                         {"prop": "bad", "type": "NOPE"}])
    assert param_types(req) == {"ids": DataType.LIST}
