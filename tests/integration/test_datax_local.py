"""DATAX tasks on the local path, end to end: Temporal dev server, the Porpoise worker, real databases.

DataX itself is replaced by its contract stand-in (tests/datax_stub/datax.py, a test double: the real
CLI, output shapes and exit codes; for JDBC on PostgreSQL/MariaDB it really connects with the job's
credentials and copies the rows). What is real: the workflow, the activity, the registry, the job
file handling, the process runner, the databases and their passwords.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url, text
from temporalio.client import Client

from core.settings import Settings
from tests import dsbuild
from tests.integration.conftest_sql import (
    MARIADB_URL,
    SERVERS,
    admin,
    admin_url,
    checks_passwords,
    out_param,
    scalar,
    unique,
)
from tests.integration.datax_support import (
    assert_run_keeps_secrets,
    datax_stack,
    datax_task,
    private_job_dirs,
    recorded_jobs,
    stream_job,
)
from tests.integration.helpers import nodes, start, submit, wait
from tests.integration.test_secrets import db_user, kick, lifecycle_events, set_password
from tests.samples import SAMPLES

SAMPLE = SAMPLES / "ds-pyds-task_datax_example.create-api.json"


@pytest.fixture(scope="module")
async def stack(client: Client, settings: Settings, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    async with datax_stack(client, settings, tmp_path_factory.mktemp("datax-local")) as pair:
        yield pair


def errors(status: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {n["name"]: (n["state"], n["error"]) for n in status["nodes"]}


async def task_log(api: httpx.AsyncClient, status: dict[str, Any], task: str) -> str:
    r = await api.get(f"/runs/{status['instanceId']}/tasks/{nodes(status)[task]['code']}/log")
    assert r.status_code == 200, r.text
    return r.text


# --------------------------------------------------------------------------------------------------
# The shared sample, with its datasource id registered, on a real MariaDB
# --------------------------------------------------------------------------------------------------


@contextmanager
def sample_databases() -> Iterator[None]:
    """What the sample names: source_db/target_db with source_table/target_table, login usr/pwd."""
    with admin("mariadb") as engine, engine.connect() as c:
        for db in ("source_db", "target_db"):
            c.execute(text(f"create database if not exists {db}"))
            c.execute(text(f"create table if not exists {db}.target_table "
                           "(id int, name varchar(40), code varchar(40), description varchar(200))"))
        c.execute(text("create table if not exists source_db.source_table "
                       "(id int, name varchar(40), code varchar(40), description varchar(200))"))
        c.execute(text("delete from source_db.source_table"))
        c.execute(text("insert into source_db.source_table values (1, 'a', 'A1', 'first'), (2, 'b', 'B2', 'second'),"
                       " (3, 'c', 'C3', null)"))
        c.execute(text("create user if not exists 'usr'@'%' identified by 'pwd'"))
        c.execute(text("grant all on source_db.* to 'usr'@'%'"))
        c.execute(text("grant all on target_db.* to 'usr'@'%'"))
    try:
        yield
    finally:
        with admin("mariadb") as engine, engine.connect() as c:
            c.execute(text("drop database if exists source_db"))
            c.execute(text("drop database if exists target_db"))
            c.execute(text("drop user if exists 'usr'@'%'"))


async def register_sample_datasources(api: httpx.AsyncClient) -> None:
    """The sample's datasource id 1 (source_db), and 2 (target_db) for the fixed custom task's writer."""
    for ds, database in ((1, "source_db"), (2, "target_db")):
        r = await api.post("/datasources", json={"id": ds, "name": unique("sample_mysql"), "type": "MYSQL",
                                                 "host": "127.0.0.1", "port": 3306, "database": database,
                                                 "userName": "usr", "password": "pwd"})
        assert r.status_code == 201, r.text


def sample_document(fix_custom: bool) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SAMPLE.read_text())
    doc["name"] = unique("task_datax_example")
    if fix_custom:
        tasks = json.loads(doc["taskDefinitionJson"])
        custom = next(t for t in tasks if t["name"] == "task_custom_datax")
        job = json.loads(custom["taskParams"]["json"])
        reader = job["job"]["content"][0]["reader"]["parameter"]
        writer = job["job"]["content"][0]["writer"]["parameter"]
        reader["datasourceId"] = 1  # the marker: connection filled in from the registry at every run
        writer["datasourceId"] = 2  # target_db, registered as datasource 2
        writer["column"] = reader["column"]
        job["core"] = {"transport": {"channel": {"speed": {"record": 1000}}}}  # as DS's UI mode writes it
        custom["taskParams"]["json"] = json.dumps(job)
        doc["taskDefinitionJson"] = json.dumps(tasks)
    return doc


@pytest.mark.skipif(not MARIADB_URL, reason="PORPOISE_TEST_MARIADB_URL not set (.ci/run sets it)")
async def test_the_shared_sample_runs_with_its_datasource_registered(stack: tuple[Settings, httpx.AsyncClient]) -> None:
    own, api = stack
    before = private_job_dirs()
    with sample_databases():
        await register_sample_datasources(api)
        try:
            # As published: the two UI-mode tasks copy the rows. The custom task's own job sets a record
            # limit without the per-channel cap, which DataX refuses (Framework-03, notes §4.1), and it
            # reads 4 columns to write 2 (DBUtilErrorCode-00): the sample is wrong there, not us.
            saved = await submit(api, sample_document(fix_custom=False))
            status = await wait(api, await start(api, saved["code"]), 90)
            by = errors(status)
            assert by["task_datax"][0] == "SUCCESS" and by["resource_limit"][0] == "SUCCESS", by
            assert by["task_custom_datax"][0] == "FAILURE" and "Framework-03" in (by["task_custom_datax"][1] or "")
            with admin("mariadb") as engine:
                assert scalar(engine, "select count(*) from source_db.target_table") == 6  # 3 rows, twice
                assert scalar(engine, "select description from source_db.target_table where id = 2 limit 1") == "second"
            log = await task_log(api, status, "task_datax")
            assert "runs local: no Kubernetes cluster configured" in log
            assert "mysqlreader -> mysqlwriter" in log and "'records': 3" in log
            events = lifecycle_events(own, status["instanceId"]) or ""
            assert '"stats": {' in events and '"records": 3' in events  # the task's final event carries them

            # With the writer columns fixed and the datasource marker in the template: all green.
            saved = await submit(api, sample_document(fix_custom=True))
            status = await wait(api, await start(api, saved["code"]), 90)
            assert status["state"] == "SUCCESS", errors(status)
            with admin("mariadb") as engine:
                assert scalar(engine, "select count(*) from target_db.target_table") == 3
            custom_log = await task_log(api, status, "task_custom_datax")
            assert "reader mysqlreader: connection of datasource 1 (MYSQL) filled in" in custom_log
            assert "writer mysqlwriter: connection of datasource 2 (MYSQL) filled in" in custom_log
        finally:
            for ds in (1, 2):
                await api.delete(f"/datasources/{ds}")
    assert private_job_dirs() <= before  # every job file and its directory deleted


# --------------------------------------------------------------------------------------------------
# Dynamic password: a new password applies to the next run without editing the workflow
# --------------------------------------------------------------------------------------------------


@contextmanager
def tables(db: str, src: str, dst: str) -> Iterator[None]:
    """A source table with two rows and an empty target, dropped after (before their grantee is)."""
    with admin(db) as engine, engine.connect() as c:
        c.execute(text(f"create table {src} (id int, label varchar(20))"))
        c.execute(text(f"create table {dst} (id int, label varchar(20))"))
        c.execute(text(f"insert into {src} values (1, 'one'), (2, 'two')"))
    try:
        yield
    finally:
        with admin(db) as engine, engine.connect() as c:
            c.execute(text(f"drop table if exists {src}"))
            c.execute(text(f"drop table if exists {dst}"))


def grant_tables(db: str, user: str, *tables: str) -> None:
    with admin(db) as engine, engine.connect() as c:
        for t in tables:
            if db == "postgres":
                c.execute(text(f"grant select, insert, delete on {t} to {user}"))
            else:
                c.execute(text(f"grant select, insert, delete on porpoise.{t} to '{user}'@'%'"))


@pytest.mark.parametrize("db", SERVERS)
async def test_a_changed_password_applies_to_the_next_run(stack: tuple[Settings, httpx.AsyncClient], client: Client,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          db: str) -> None:
    own, api = stack
    monkeypatch.setenv("DATAX_STUB_RECORD_DIR", str(tmp_path))
    first, second = f"D1x{uuid.uuid4().hex}", f"D2x{uuid.uuid4().hex}"
    src, dst = unique("dx_src"), unique("dx_dst")
    with db_user(db, first) as user, tables(db, src, dst):
        grant_tables(db, user, src, dst)
        url = make_url(admin_url(db))  # host/port/database of the test server
        ds_type = "POSTGRESQL" if db == "postgres" else "MARIADB"
        r = await api.post("/datasources", json={"name": unique("dx"), "type": ds_type, "host": url.host,
                                                 "port": url.port, "database": url.database, "userName": user,
                                                 "password": first})
        assert r.status_code == 201, r.text
        ds = r.json()
        custom = {"job": {"content": [{
            "reader": {"name": "rdbmsreader", "parameter": {"datasourceId": ds["id"], "column": ["id", "label"],
                                                            "connection": [{"table": [src]}]}},
            "writer": {"name": "rdbmswriter", "parameter": {"datasourceId": ds["id"], "column": ["id", "label"],
                                                            "connection": [{"table": [dst]}]}}}],
            "setting": {"speed": {"channel": 1}}}}
        tasks = [
            datax_task("ui", dsType=ds_type, dataSource=ds["id"], dtType=ds_type, dataTarget=ds["id"],
                       sql=f"select id, label from {src} where id >= ${{min_id}}", targetTable=dst,
                       local_params=[{"prop": "min_id", "direct": "IN", "type": "INTEGER", "value": "1"},
                                     out_param("datax_records")]),
            datax_task("custom", customConfig=1, json=json.dumps(custom)),
        ]
        saved = await submit(api, dsbuild.export(unique("dx_rotation"), tasks, [(None, "ui"), (None, "custom")]))

        async def once() -> dict[str, Any]:
            return await wait(api, await start(api, saved["code"]), 60)

        status = await once()
        assert status["state"] == "SUCCESS", errors(status)
        assert nodes(status)["ui"]["varPool"][-1] == {**out_param("datax_records"), "value": "2"}
        jobs = recorded_jobs(tmp_path)
        assert len(jobs) == 2 and all(first in j for j in jobs)

        set_password(db, user, second)  # on the real database...
        kick(db, user)
        if checks_passwords(db):
            stale = await once()
            assert stale["state"] == "FAILURE"
            assert "DBUtilErrorCode-10" in (nodes(stale)["ui"]["error"] or "")  # DataX: cannot connect
        r = await api.put(f"/datasources/{ds['id']}", json={"password": second})  # ...and in the registry
        assert r.status_code == 200, r.text
        for path in tmp_path.glob("job-*.json"):
            path.unlink()
        fresh = await once()  # the same definition, not edited
        assert fresh["state"] == "SUCCESS", errors(fresh)
        jobs = recorded_jobs(tmp_path)
        assert len(jobs) == 2 and all(second in j and first not in j for j in jobs)
        with admin(db) as engine:
            assert scalar(engine, f"select count(*) from {dst}") >= 8  # 2 rows x 2 tasks x 2 green runs

        for run_status in (status, fresh):
            await assert_run_keeps_secrets(client, own, run_status["instanceId"], [first, second])


# --------------------------------------------------------------------------------------------------
# Outcomes: statistics, dirty data, failures, killed, timeout
# --------------------------------------------------------------------------------------------------


async def test_outcomes_exit_codes_and_statistics(stack: tuple[Settings, httpx.AsyncClient]) -> None:
    own, api = stack
    before = private_job_dirs()
    stats_out = [out_param(n) for n in ("datax_records", "datax_failed_records", "datax_duration_seconds")]
    tasks = [
        datax_task("ok", customConfig=1, json=stream_job("ok", records=7), local_params=stats_out),
        datax_task("dirty_ok", customConfig=1, json=stream_job("dirty-within-limit", error_limit=2),
                   local_params=stats_out),
        datax_task("dirty_over", customConfig=1, json=stream_job("dirty-limit-exceeded", error_limit=1)),
        datax_task("fails", customConfig=1, json=stream_job("fail")),
        datax_task("killed", customConfig=1, json=stream_job("killed")),
        datax_task("hangs", customConfig=1, json=stream_job("hang"), fields={"timeoutFlag": "OPEN", "timeout": 2,
                                                                              "timeoutNotifyStrategy": "FAILED"}),
        datax_task("no_speed", customConfig=1, json=json.dumps({"job": {"content": [
            {"reader": {"name": "streamreader", "parameter": {}}, "writer": {"name": "streamwriter", "parameter": {}}}],
            "setting": {}}})),
        datax_task("bad_params", dsType="STREAM", sourceConfig={}, dtType="STREAM"),
    ]
    doc = dsbuild.export(unique("dx_outcomes"), tasks, [(None, t["name"]) for t in tasks])
    saved = await submit(api, doc)
    status = await wait(api, await start(api, saved["code"]), 60)
    by = errors(status)
    assert by["ok"][0] == "SUCCESS" and by["dirty_ok"][0] == "SUCCESS", by
    values = {n: {p["prop"]: p["value"] for p in nodes(status)[n]["varPool"]} for n in ("ok", "dirty_ok")}
    assert values["ok"]["datax_records"] == "7" and values["ok"]["datax_failed_records"] == "0"
    assert values["dirty_ok"]["datax_failed_records"] == "2"
    assert int(values["ok"]["datax_duration_seconds"]) >= 1
    assert "exited with code 1" in by["dirty_over"][1] and "Framework-14" in by["dirty_over"][1]
    assert "exited with code 1" in by["fails"][1] and "Framework-02" in by["fails"][1]
    assert "exited with code 143" in by["killed"][1]
    assert by["hangs"][0] == "FAILURE" and "timed out" in (by["hangs"][1] or ""), by["hangs"]
    assert "Framework-03" in by["no_speed"][1]  # DataX's own config check, the stand-in keeps it
    assert "sourceConfig.column is required for a STREAM reader" in by["bad_params"][1]
    assert "DATAX task 'bad_params'" in by["bad_params"][1] and nodes(status)["bad_params"]["attempts"] == 1

    # A timeout does not wait for the kill to finish: the log's footer says when it has.
    hang_path = own.resolved_log_dir / status["instanceId"] / f"{nodes(status)['hangs']['code']}.1.log"
    for _ in range(100):
        if b"[porpoise] end exit=" in hang_path.read_bytes():
            break
        await asyncio.sleep(0.1)
    hang_log = hang_path.read_text()
    assert "cancelled: sending SIGTERM to process group" in hang_log
    assert "StandAloneJobContainerCommunicator" in hang_log
    ok_log = await task_log(api, status, "ok")
    assert "任务总计耗时" in ok_log and "DataX statistics: {" in ok_log
    assert "任务总计耗时" not in await task_log(api, status, "fails")  # no block on failure
    assert private_job_dirs() <= before
