"""Datasource helpers for the SQL and DataX adapters: an engine for a datasource, a connection check.

The registry itself (rows, the encrypted passwords, :class:`~storage.datasources.ConnectionInfo`)
is :mod:`storage.datasources`; a task names a datasource by id and the activity resolves it on the
worker, at run time, so nothing secret reaches Temporal or the task log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from storage.datasources import EXECUTABLE, ConnectionInfo, DatasourceStore


def create_engine_for(info: ConnectionInfo, *, pool_size: int = 5, max_overflow: int = 10,
                      pooled: bool = True) -> Engine:
    """A SQLAlchemy engine for an executable datasource.

    SQLite connections run in driver autocommit mode (``isolation_level=None``) so the SQL task's
    explicit ``BEGIN`` covers DDL too; the other drivers open a transaction on the first statement.
    """
    url, connect_args, _ = info.driver_config()
    kwargs: dict[str, Any] = {"connect_args": connect_args, "pool_pre_ping": True}
    if not pooled:
        kwargs["poolclass"] = NullPool
    elif info.type != "SQLITE":
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=60, pool_recycle=3600)
    engine = create_engine(url, **kwargs)
    if info.type == "SQLITE":

        @event.listens_for(engine, "connect")
        def _autocommit(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

    return engine


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str
    elapsed_ms: int
    server_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "message": self.message, "elapsedMs": self.elapsed_ms}
        if self.server_version:
            out["serverVersion"] = self.server_version
        return out


def check_connection(info: ConnectionInfo) -> ConnectionCheck:
    """Connect once (no pool) and run a trivial query. Blocking; messages have the password masked."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    if not info.executable:
        return ConnectionCheck(False, f"{info.type} is stored for DataX and other tools, but Porpoise has no Python "
                                  f"driver to connect to it (SQL tasks run on {', '.join(sorted(EXECUTABLE))})", 0)
    if info.type == "SQLITE" and not Path(info.database).exists():
        return ConnectionCheck(False, f"SQLite database file {info.database} does not exist", 0)
    engine = create_engine_for(info, pooled=False)
    try:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            query = {"SQLITE": "select sqlite_version()", "POSTGRESQL": "select version()"}.get(info.type,
                                                                                              "select version()")
            cur.execute(query)
            row = cur.fetchone()
            version = str(row[0]) if row else ""
            cur.close()
        finally:
            raw.close()
        return ConnectionCheck(True, f"connected to {info.where()}", elapsed(), version)
    except Exception as e:  # any driver error is the answer to "does it connect?"
        cause = getattr(e, "orig", None) or e
        return ConnectionCheck(False, info.mask(f"{type(cause).__name__}: {cause}".strip()), elapsed())
    finally:
        engine.dispose()


def resolve_datasource(store: DatasourceStore, datasource_id: int) -> ConnectionInfo:
    """Inside an activity, at run time: the datasource ``datasource_id`` with its credentials."""
    return store.resolve(datasource_id)
