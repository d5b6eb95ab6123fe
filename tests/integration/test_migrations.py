"""Schema migrations: a database made by Porpoise before Alembic is adopted and its rows read back;
a fresh database matches the models; processes starting together on a fresh data dir do not race.

The old schema is ``tests/fixtures/main_schema_<dialect>.sql``: the DDL that main's ``create_all``
issued (generated from that code's metadata), so the test keeps meaning something after main moves.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

import storage.ds_ids  # noqa: F401  (its tables, revision 0002, must be on Base for the comparison)
from model.formats import parse_document
from storage.alerts import AlertStore
from storage.crypto import Cipher
from storage.datasources import DatasourceStore
from storage.db import Base
from storage.definitions import DefinitionStore
from storage.migrate import config, current
from storage.schedules import ScheduleStore
from storage.security import SecurityStore
from tests import dsbuild

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PG_URL = os.environ.get("PORPOISE_TEST_POSTGRES_URL")
KEY = Fernet.generate_key().decode()
CODE = 7_100_000_000_001


def head() -> str | None:
    return ScriptDirectory.from_config(config()).get_current_head()


def old_rows(engine: Engine) -> None:
    """Rows as main's stores wrote them: a definition (two versions), its schedule, a datasource with
    an encrypted password, an alert group with a webhook channel whose URL is a secret."""
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    cipher = Cipher([KEY])
    doc = dsbuild.export("migrated", [dsbuild.task("a")], [(None, "a")], code=CODE)
    d = parse_document(doc)[0]
    v1 = d.model_copy(update={"version": 1}).model_dump_json()
    v2 = d.model_copy(update={"version": 2, "description": "second"}).model_dump_json()
    with engine.begin() as c:
        c.execute(text("insert into workflow_definition (code, project_code, name, latest_version, updated_at) "
                       "values (:c, :p, 'migrated', 2, :t)"), {"c": CODE, "p": d.project_code, "t": now})
        for v, body in ((1, v1), (2, v2)):
            c.execute(text("insert into workflow_definition_version (code, version, body, created_at) "
                           "values (:c, :v, :b, :t)"), {"c": CODE, "v": v, "b": body, "t": now})
        c.execute(text(
            "insert into ds_schedule (definition_code, project_code, definition_name, definition_version, crontab, "
            "timezone_id, start_time, end_time, failure_strategy, warning_type, warning_group_id, instance_priority, "
            "worker_group, tenant_code, environment_code, release_state, misfire_policy, misfire_threshold_seconds, "
            "overlap_policy, synced, created_at, updated_at) values (:c, 1, 'migrated', 2, '0 0 * * * ? *', "
            "'Asia/Shanghai', '2026-01-01 00:00:00', null, 'END', 'FAILURE', 7, 'HIGH', 'default', 'default', -1, "
            "'ONLINE', 'SKIP', 60, 'SKIP', :y, :t, :t)"), {"c": CODE, "t": now, "y": True})
        c.execute(text(
            "insert into datasource (id, name, type, host, port, database, user_name, password_enc, params, note, "
            "version, created_at, updated_at) values (3, 'warehouse', 'POSTGRESQL', 'db.example', 5432, 'dw', "
            "'etl', :pw, '{\"sslmode\": \"require\"}', 'old', 4, :t, :t)"),
            {"pw": cipher.encrypt("s3cret"), "t": now})
        c.execute(text("insert into alert_group (id, name, description, created_at, updated_at) "
                       "values (7, 'oncall', 'pager', :t, :t)"), {"t": now})
        c.execute(text(
            "insert into alert_channel (id, group_id, name, type, params, secrets_enc, templates, events, enabled, "
            "version, created_at, updated_at) values (1, 7, 'hook', 'WEBHOOK', :p, :s, '{}', '', :y, 1, :t, :t)"),
            {"p": json.dumps({"method": "POST", "headers": {}, "bodyParams": {}, "format": "text",
                              "verifyTls": True, "timeout": 10.0}),
             "s": cipher.encrypt(json.dumps({"url": "https://hooks.example/abc"})), "t": now, "y": True})


def read_back(url: str) -> None:
    store = DefinitionStore(url)
    try:
        assert current(store.engine) == head()
        latest = store.get(CODE)
        assert latest is not None and latest.version == 2 and latest.description == "second"
        assert [v["version"] for v in store.versions(CODE)] == [1, 2]
        schedule = ScheduleStore(store.engine).by_definition(CODE)
        assert schedule is not None
        assert (schedule.crontab, schedule.timezone_id, schedule.warning_group_id, schedule.online) == \
            ("0 0 * * * ? *", "Asia/Shanghai", 7, True)
        ds = DatasourceStore(url, Cipher([KEY]))
        info = ds.resolve(3)
        assert (info.name, info.host, info.user, info.password, info.params) == \
            ("warehouse", "db.example", "etl", "s3cret", {"sslmode": "require"})
        alerts = AlertStore(url, Cipher([KEY]))
        group = alerts.get_group(7)
        assert group is not None and group.name == "oncall" and [c.name for c in group.channels] == ["hook"]
        resolved = alerts.resolve_channels(7)
        assert resolved is not None and getattr(resolved[0].params, "url", None) == "https://hooks.example/abc"
        # New rows still get ids after the adopted ones.
        saved = store.save(parse_document(dsbuild.export("after", [dsbuild.task("b")], [(None, "b")]))[0])
        assert saved.created_version
        security = SecurityStore(store.engine)  # 0003_security's tables on the adopted database
        _, token = security.issue_token("migrated-admin", admin=True, projects=[CODE])
        principal = security.principal(token)
        assert principal is not None and principal.is_admin and principal.may_use_project(CODE)
        with store.engine.connect() as c:
            assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    finally:
        store.dispose()


def run_script(engine: Engine, sql: str) -> None:
    with engine.begin() as c:
        for statement in sql.split(";\n"):
            if statement.strip() and not all(line.startswith("--") for line in statement.strip().splitlines()):
                c.execute(text(statement))


def test_sqlite_database_from_before_migrations_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as c:
        c.executescript((FIXTURES / "main_schema_sqlite.sql").read_text())
    old = create_engine(f"sqlite:///{path}")
    old_rows(old)
    with old.connect() as c:
        assert "alembic_version" not in {r[0] for r in c.execute(text("select name from sqlite_master"))}
    old.dispose()
    read_back(f"sqlite:///{path}")


def test_fresh_sqlite_database_matches_the_models(tmp_path: Path) -> None:
    store = DefinitionStore(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert current(store.engine) == head()
        with store.engine.connect() as c:
            assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    finally:
        store.dispose()


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("PORPOISE_TEST_POSTGRES_URL not set (.ci/run sets it)")
    schema = f"mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f"create schema {schema}"))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as c:
            c.execute(text(f"drop schema {schema} cascade"))
        admin.dispose()


@pytest.mark.postgres
def test_postgres_database_from_before_migrations_is_adopted(pg_schema_url: str) -> None:
    old = create_engine(pg_schema_url)
    run_script(old, (FIXTURES / "main_schema_postgresql.sql").read_text())
    old_rows(old)
    old.dispose()
    read_back(pg_schema_url)


def _open_store(url: str, barrier: Any, results: Any) -> None:
    """In a child process: wait for the others, then open the database as every Porpoise process does."""
    try:
        barrier.wait(60)
        DefinitionStore(url).dispose()
        results.put("ok")
    except Exception as e:  # reported to the parent, which names it
        results.put(f"{type(e).__name__}: {e}")


def _open_together(url: str, processes: int = 4) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_open_store, args=(url, barrier, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    try:
        return [results.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()


def test_processes_opening_a_fresh_sqlite_database_at_once_all_succeed(tmp_path: Path) -> None:
    """Before migrations each process ran create_all: opened at the same instant, all but one died
    with "table workflow_definition already exists". The migration lock serialises them."""
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / f'race{round_}.db'}"
        assert _open_together(url) == ["ok"] * 4
        engine = create_engine(url)
        assert current(engine) == head()
        engine.dispose()


@pytest.mark.postgres
def test_processes_opening_a_fresh_postgres_schema_at_once_all_succeed(pg_schema_url: str) -> None:
    assert _open_together(pg_schema_url) == ["ok"] * 4
    engine = create_engine(pg_schema_url)
    assert current(engine) == head()
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_api_and_workers_started_together_on_a_fresh_data_dir(tmp_path: Path, temporal_address: str) -> None:
    """Before migrations, each process ran CREATE TABLE and the loser crashed ("table ... already
    exists"). Two rounds, each an API and two workers started at the same instant on a new dir."""
    for round_ in range(2):
        data = tmp_path / f"round{round_}"
        data.mkdir()  # an empty data dir, as a deployment (or `porpoise up`) prepares it
        port = _free_port()
        env = {**os.environ, "PORPOISE_DATA_DIR": str(data), "PORPOISE_TEMPORAL_ADDRESS": temporal_address,
               "PORPOISE_API_PORT": str(port), "PORPOISE_TASK_QUEUE": f"mig-{uuid.uuid4().hex[:6]}",
               "PORPOISE_DATABASE_URL": "", "DATABASE_URL": ""}
        logs = [(data.parent / f"{round_}-{n}.log") for n in ("api", "worker1", "worker2")]
        procs: list[subprocess.Popen[bytes]] = []
        try:
            for log, cmd in zip(logs, ("api", "worker", "worker"), strict=True):
                procs.append(subprocess.Popen([sys.executable, "-m", "api", cmd], env=env, cwd=tmp_path,
                                              stdout=log.open("wb"), stderr=subprocess.STDOUT))
            deadline = time.monotonic() + 60
            api_up = workers_up = False
            while time.monotonic() < deadline and not (api_up and workers_up):
                for p, log in zip(procs, logs, strict=True):
                    assert p.poll() is None, f"{log.name} exited {p.returncode}:\n{log.read_text()[-3000:]}"
                try:
                    api_up = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
                except httpx.HTTPError:
                    api_up = False
                workers_up = all("polling task queues" in log.read_text() for log in logs[1:])
                time.sleep(0.3)
            assert api_up and workers_up, "\n".join(f"{log.name}: {log.read_text()[-2000:]}" for log in logs)
            assert current(create_engine(f"sqlite:///{data / 'porpoise.db'}")) == head()
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
