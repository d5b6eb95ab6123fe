"""The one declarative base, one engine per database URL, and the CRUD helpers the stores share.

SQLite is the embedded default; PostgreSQL (or MariaDB/MySQL) when ``DATABASE_URL`` says so. Every
store of one process shares the engine of its URL (one pool, one set of SQLite pragmas), and the
schema is migrated once per URL before the engine is handed out (:func:`engine_for`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session

from core.private_files import private_file, sqlite_file


class Base(DeclarativeBase):
    """The base of every Porpoise table (one metadata: what the migrations must match)."""


SQLITE_POOL_SIZE = 40  # anyio's default thread limiter: the most threads that use one engine at once


def open_engine(url: str) -> Engine:
    """A new engine for Porpoise's own database. SQLite gets WAL and synchronous=NORMAL: many workers'
    small commits (events, definitions) would otherwise queue behind one fsync each."""
    # A server connection can drop while pooled, so it is pinged before use; a SQLite file cannot, and
    # the ping was one more statement per commit (a worker commits events several times per task).
    kwargs: dict[str, object] = {"pool_pre_ping": not url.startswith("sqlite")}
    if (db_file := sqlite_file(url)) is not None:
        private_file(db_file)  # 0600; SQLite gives its -wal and -shm files the same mode
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        # Keep as many connections as threads use them at once (the API's thread pool is 40): past
        # the default 5, each request opened a new connection, set its pragmas and closed it again,
        # a third of the CPU of a run start. A pooled SQLite connection is a file handle and a
        # small page cache.
        kwargs["pool_size"] = SQLITE_POOL_SIZE
    engine = create_engine(url, **kwargs)  # type: ignore[arg-type]
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()


def url_key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def engine_for(url: str) -> Engine:
    """The process's engine for ``url``, its schema migrated to the newest revision."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = open_engine(url)
    ensure_schema(engine)
    return engine


def ensure_schema(engine: Engine) -> None:
    """Bring ``engine``'s database to the newest schema, once per process and URL."""
    key = url_key(engine)
    if key in _migrated:
        return
    from .migrate import upgrade  # alembic is imported only by processes that open a database

    with _lock:
        if key not in _migrated:
            upgrade(engine)
            _migrated.add(key)


def aware(value: datetime) -> datetime:
    """SQLite gives back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


Row = TypeVar("Row", bound=Base)


def next_id(s: Session, column: InstrumentedAttribute[int]) -> int:
    """The next free id of a table whose ids are chosen by the caller (DS keeps exported ids)."""
    return int(s.scalar(select(func.max(column))) or 0) + 1


def delete_by_id(engine: Engine, row_type: type[Base], key: Any) -> bool:
    """Delete the row with primary key ``key``; False when there was none."""
    with Session(engine) as s, s.begin():
        row = s.get(row_type, key)
        if row is None:
            return False
        s.delete(row)
        return True


def get_view(engine: Engine, row_type: type[Row], key: Any, view: Callable[[Row], Any]) -> Any:
    """``view(row)`` of the row with primary key ``key``, or None."""
    with Session(engine) as s:
        row = s.get(row_type, key)
        return view(row) if row is not None else None
