"""SQL tasks end to end on real SQLite, PostgreSQL and MariaDB (reference §3 SQL).

Each test builds a DS 3.2 definition, runs it through the API on the Temporal dev server and the
Porpoise worker, and checks both what the run reports and what the database holds afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import dsbuild
from tests.integration.conftest_sql import (
    DATABASES,
    SERVERS,
    admin,
    create_datasource,
    datasource_fields,
    in_param,
    out_param,
    scalar,
    shell_task,
    sql_task,
    unique,
)
from tests.integration.helpers import nodes, run, start, submit, wait


async def _log(api: httpx.AsyncClient, status: dict[str, Any], task: str) -> str:
    r = await api.get(f"/runs/{status['instanceId']}/tasks/{nodes(status)[task]['code']}/log")
    assert r.status_code == 200, r.text
    return r.text


def _var(status: dict[str, Any], task: str, name: str) -> str | None:
    return next((p["value"] for p in nodes(status)[task]["varPool"] if p["prop"] == name), None)


@pytest.mark.parametrize("db", DATABASES)
async def test_shell_out_param_into_sql_and_sql_out_params_into_shell(api: httpx.AsyncClient, tmp_path: Path,
                                                                       db: str) -> None:
    """The issue's DAG: shell OUT -> create + insert (bound) -> query OUT params -> shell uses them."""
    sqlite_file = tmp_path / "dag.db"
    ds = await create_datasource(api, datasource_fields(db, sqlite_file))
    table = unique("sqltest_t")
    tasks = [
        shell_task("gen", "echo '${setValue(amount=42)}'", [out_param("amount")]),
        sql_task("load", f"insert into {table} values (1, ${{amount}}, 'a');\n"
                         f"-- a comment; with a semicolon\n"
                         f"insert into {table} values (2, ${{amount}} + 1, 'b');"
                         f"insert into {table} values (3, 0, '${{label}}')",
                 ds["id"], query=False,
                 pre=[f"create table {table} (id int primary key, amount int, label varchar(40))"],
                 post=[f"update {table} set label = upper(label) where id = 1"],
                 local_params=[in_param("label", "c;d"), out_param("inserted")]),
        sql_task("total", f"select sum(amount) as total, count(*) as n from {table}", ds["id"],
                 local_params=[out_param("total"), out_param("n")]),
        sql_task("ids", f"select id as ids, label from {table} where amount > ${{min}} order by id", ds["id"],
                 local_params=[in_param("min", "0", "INTEGER"), out_param("ids", "LIST")]),
        sql_task("matched", f"select count(*) as matched from {table} where id in (${{id_list}})", ds["id"],
                 local_params=[in_param("id_list", "${ids}", "LIST"), out_param("matched")]),
        shell_task("use", 'test "${total}" = 85 && test "${n}" = 3 && test "${matched}" = 2 '
                          """&& test '${ids}' = '["1", "2"]' && echo "used total=${total} n=${n}" """),
    ]
    doc = dsbuild.export(unique("sql_dag"), tasks, [(None, "gen"), ("gen", "load"), ("load", "total"),
                                                    ("load", "ids"), ("ids", "matched"), ("total", "use"),
                                                    ("matched", "use")])
    try:
        status = await run(api, doc)
        assert status["state"] == "SUCCESS", {n["name"]: (n["state"], n["error"]) for n in status["nodes"]}
        assert _var(status, "load", "inserted") == "1"  # non-query: the last statement's count
        assert (_var(status, "total", "total"), _var(status, "total", "n")) == ("85", "3")
        assert json.loads(_var(status, "ids", "ids") or "") == ["1", "2"]
        assert "used total=85 n=3" in await _log(api, status, "use")

        log = await _log(api, status, "total")
        assert "| total | n |" in log and "| 85    | 3 |" in log
        load_log = await _log(api, status, "load")
        assert "pre-statement 1:" in load_log and "post-statement 1:" in load_log
        assert "label='c;d' (VARCHAR)" in load_log  # bound, so the ';' never split anything
        assert "matched" in await _log(api, status, "matched")
        with admin(db, sqlite_file) as engine:
            assert scalar(engine, f"select label from {table} where id = 3") == "c;d"
            assert scalar(engine, f"select label from {table} where id = 1") == "A"
    finally:
        with admin(db, sqlite_file) as engine, engine.connect() as c:
            c.exec_driver_sql(f"drop table if exists {table}")


@pytest.mark.parametrize("db", DATABASES)
async def test_failures_roll_back_and_say_where(api: httpx.AsyncClient, tmp_path: Path, db: str) -> None:
    sqlite_file = tmp_path / "fail.db"
    table = unique("sqltest_f")
    with admin(db, sqlite_file) as engine, engine.connect() as c:
        c.exec_driver_sql(f"create table {table} (id int)")
    ds = await create_datasource(api, datasource_fields(db, sqlite_file))
    tasks = [
        sql_task("rollback", f"insert into {table} values (2); insert into no_such_table_x values (3)", ds["id"],
                 query=False, pre=[f"insert into {table} values (1)"], post=[f"insert into {table} values (4)"]),
        sql_task("bad_sql", "selec 1", ds["id"]),
        sql_task("unknown_param", "select ${nope}", ds["id"], failRetryTimes=2),
        sql_task("missing_datasource", "select 1", 987654321),
        sql_task("literal", "select * from t where a like '%${x}%'", ds["id"], local_params=[in_param("x", "1")]),
    ]
    doc = dsbuild.export(unique("sql_failures"), tasks, [(None, t["name"]) for t in tasks])
    try:
        status = await run(api, doc)
        by = nodes(status)
        assert status["state"] == "FAILURE"
        assert all(n["state"] == "FAILURE" for n in by.values()), {k: n["state"] for k, n in by.items()}
        rollback = by["rollback"]["error"]
        assert ds["name"] in rollback and f"id {ds['id']}" in rollback and "statement 2 failed" in rollback
        assert "no_such_table_x" in rollback
        assert "statement 1 failed" in by["bad_sql"]["error"] and "syntax" in by["bad_sql"]["error"].lower()
        assert "unknown parameter ${nope}" in by["unknown_param"]["error"]
        assert by["unknown_param"]["attempts"] == 1  # bad params are not retried
        assert "datasource 987654321 does not exist" in by["missing_datasource"]["error"]
        assert "concat('%', ${x}, '%')" in by["literal"]["error"]
        log = await _log(api, status, "rollback")
        assert "transaction rolled back" in log and "post-statement" not in log
        with admin(db, sqlite_file) as engine:
            assert scalar(engine, f"select count(*) from {table}") == 0  # pre + statement 1 rolled back
    finally:
        with admin(db, sqlite_file) as engine, engine.connect() as c:
            c.exec_driver_sql(f"drop table if exists {table}")


def _running_query_count(db: str, marker: str) -> int:
    with admin(db) as engine:
        if db == "postgres":
            sql = ("select count(*) from pg_stat_activity where state = 'active' and pid <> pg_backend_pid() "
                   "and query like :m")
        else:
            sql = ("select count(*) from information_schema.processlist where id <> connection_id() "
                   "and info like :m")
        return int(scalar(engine, sql, m=f"%{marker}%") or 0)


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def _sleep_sql(db: str, seconds: int, marker: str) -> str:
    return f"select pg_sleep({seconds}), '{marker}'" if db == "postgres" else f"select sleep({seconds}), '{marker}'"


@pytest.mark.parametrize("db", SERVERS)
async def test_stop_cancels_the_running_statement_server_side(api: httpx.AsyncClient, db: str) -> None:
    table = unique("sqltest_c")
    marker = unique("cancel_marker")
    with admin(db) as engine, engine.connect() as c:
        c.exec_driver_sql(f"create table {table} (id int)")
    try:
        ds = await create_datasource(api, datasource_fields(db))
        task = sql_task("sleepy", _sleep_sql(db, 60, marker), ds["id"], query=False,
                        pre=[f"insert into {table} values (1)"])
        saved = await submit(api, dsbuild.export(unique("sql_cancel"), [task], [(None, "sleepy")]))
        instance = await start(api, saved["code"])
        await _until(lambda: _running_query_count(db, marker) == 1, 20, "the statement to run")
        started = time.monotonic()
        r = await api.post(f"/runs/{instance}/stop")
        assert r.status_code in (200, 202), r.text
        status = await wait(api, instance, 30)
        assert status["state"] == "STOP" and nodes(status)["sleepy"]["state"] == "KILL"
        await _until(lambda: _running_query_count(db, marker) == 0, 10, "the statement to stop")
        assert time.monotonic() - started < 15
        log = await _log(api, status, "sleepy")
        assert "cancelled: sent" in log and "transaction rolled back" in log
        with admin(db) as engine:
            assert scalar(engine, f"select count(*) from {table}") == 0
    finally:
        with admin(db) as engine, engine.connect() as c:
            c.exec_driver_sql(f"drop table if exists {table}")


@pytest.mark.parametrize("db", SERVERS[:1])
async def test_timeout_interrupts_the_statement(api: httpx.AsyncClient, db: str) -> None:
    marker = unique("timeout_marker")
    ds = await create_datasource(api, datasource_fields(db))
    task = sql_task("slow", _sleep_sql(db, 60, marker), ds["id"], timeoutFlag="OPEN", timeout=2,
                    timeoutNotifyStrategy="FAILED")
    status = await run(api, dsbuild.export(unique("sql_timeout"), [task], [(None, "slow")]), timeout=30)
    assert status["state"] == "FAILURE" and "timed out" in (nodes(status)["slow"]["error"] or "")
    await _until(lambda: _running_query_count(db, marker) == 0, 15, "the timed-out statement to stop")
