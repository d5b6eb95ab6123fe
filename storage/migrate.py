"""Schema migrations (Alembic), run in-process, one process at a time.

Every process that opens Porpoise's database (``porpoise api``, ``porpoise worker``, the CLI)
upgrades it to the newest revision before its first query (:func:`storage.db.engine_for`). Several
processes starting together on a fresh database must not all run ``CREATE TABLE``: the upgrade is
serialised by a lock the database's users share - a file lock next to a SQLite file, an advisory
lock on PostgreSQL, ``GET_LOCK`` on MariaDB/MySQL. The second process then finds the schema at head
and does nothing.

A database made by Porpoise before migrations existed (tables from ``create_all``, no
``alembic_version``) is adopted by revision 0001, which creates only the tables that are missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
LOCK_KEY = 0x706F72706F697365  # "porpoise": the advisory lock id every Porpoise process agrees on
LOCK_TIMEOUT = 600  # seconds to wait for another process's migration


def config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision``, holding the migration lock."""
    with migration_lock(engine):
        with engine.connect() as probe:
            tables = set(inspect(probe).get_table_names())
        if tables and "alembic_version" not in tables:
            log.info("adopting a Porpoise database created before migrations (%d tables)", len(tables))
        cfg = config()
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)


def current(engine: Engine) -> str | None:
    """The database's revision (None before the first migration)."""
    from alembic.migration import MigrationContext

    with engine.connect() as c:
        return MigrationContext.configure(c).get_current_revision()


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    dialect = engine.dialect.name
    if dialect == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:" or database.startswith("file::memory:"):
            yield  # a private in-memory database: nobody to race with
            return
        lock_path = Path(f"{os.path.abspath(database)}.migrate-lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return
    with engine.connect() as lock_conn:
        if dialect == "postgresql":
            lock_conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            lock_conn.commit()
            try:
                yield
            finally:
                lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                lock_conn.commit()
        elif dialect in ("mysql", "mariadb"):
            got = lock_conn.execute(text("SELECT GET_LOCK('porpoise_migrate', :t)"), {"t": LOCK_TIMEOUT}).scalar()
            if got != 1:
                raise RuntimeError(f"another process held the migration lock for over {LOCK_TIMEOUT} s")
            try:
                yield
            finally:
                lock_conn.execute(text("SELECT RELEASE_LOCK('porpoise_migrate')"))
        else:
            yield
