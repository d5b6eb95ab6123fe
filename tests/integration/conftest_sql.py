"""Helpers for the SQL and datasource tests: the three real databases, datasources, SQL task builders.

PostgreSQL and MariaDB come from ``.ci/run`` (deploy/services/postgres.sh and mariadb.sh), found through
``PORPOISE_TEST_POSTGRES_URL`` and ``PORPOISE_TEST_MARIADB_URL``; a test on a database that is not
configured is skipped. SQLite needs nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine

from tests import dsbuild

PG_URL = os.environ.get("PORPOISE_TEST_POSTGRES_URL", "")
MARIADB_URL = os.environ.get("PORPOISE_TEST_MARIADB_URL", "")

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.skipif(
        not PG_URL, reason="PORPOISE_TEST_POSTGRES_URL not set (.ci/run sets it)")),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.skipif(
        not MARIADB_URL, reason="PORPOISE_TEST_MARIADB_URL not set (.ci/run sets it)")),
]
SERVERS = DATABASES[1:]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def admin_url(db: str, sqlite_file: Path | None = None) -> str:
    if db == "postgres":
        return PG_URL
    if db == "mariadb":
        return MARIADB_URL
    assert sqlite_file is not None
    return f"sqlite:///{sqlite_file}"


@contextmanager
def admin(db: str, sqlite_file: Path | None = None) -> Iterator[Engine]:
    """A direct engine on the test database (as its admin user), to set up and check from outside."""
    engine = create_engine(admin_url(db, sqlite_file), isolation_level="AUTOCOMMIT")
    try:
        yield engine
    finally:
        engine.dispose()


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as c:
        return c.execute(text(sql), params).scalar()


def checks_passwords(db: str) -> bool:
    """Whether the server rejects a wrong password (the test PostgreSQL may run with trust auth)."""
    url = make_url(admin_url(db)).set(password=f"wrong-{uuid.uuid4().hex}")
    engine = create_engine(url)
    try:
        with engine.connect():
            return False
    except Exception:
        return True
    finally:
        engine.dispose()


def datasource_fields(db: str, sqlite_file: Path | None = None, **override: Any) -> dict[str, Any]:
    """The registry entry for the test database, connecting as its admin user unless overridden."""
    if db == "sqlite":
        assert sqlite_file is not None
        fields: dict[str, Any] = {"type": "SQLITE", "database": str(sqlite_file)}
    else:
        url = make_url(admin_url(db))
        fields = {"type": "POSTGRESQL" if db == "postgres" else "MARIADB", "host": url.host, "port": url.port,
                  "database": url.database, "userName": url.username, "password": url.password}
    fields["name"] = unique(f"ds_{db}")
    return fields | override


async def create_datasource(api: httpx.AsyncClient, fields: dict[str, Any]) -> dict[str, Any]:
    r = await api.post("/datasources", json=fields)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def out_param(name: str, type_: str = "VARCHAR", value: str = "") -> dict[str, Any]:
    return {"prop": name, "direct": "OUT", "type": type_, "value": value}


def in_param(name: str, value: str, type_: str = "VARCHAR") -> dict[str, Any]:
    return {"prop": name, "direct": "IN", "type": type_, "value": value}


def sql_task(name: str, sql: str, datasource: int, *, query: bool = True, pre: list[str] | None = None,
             post: list[str] | None = None, local_params: list[dict[str, Any]] | None = None,
             ds_type: str = "", display_rows: int = 10, **fields: Any) -> dict[str, Any]:
    """A DS 3.2 SQL task definition as the UI saves it (sqlType and datasource as the UI sends them)."""
    params = {"localParams": local_params or [], "resourceList": [], "type": ds_type, "datasource": datasource,
              "sql": sql, "sqlType": "0" if query else "1", "preStatements": pre or [], "postStatements": post or [],
              "displayRows": display_rows, "sendEmail": False, "title": "", "groupId": None, "udfs": "",
              "connParams": "", "limit": 0}
    return dsbuild.task(name, task_type="SQL", params=params, **fields)


def shell_task(name: str, script: str, local_params: list[dict[str, Any]] | None = None,
               **fields: Any) -> dict[str, Any]:
    return dsbuild.task(name, task_type="SHELL", params={"localParams": local_params or [], "rawScript": script,
                                                         "resourceList": []}, **fields)
