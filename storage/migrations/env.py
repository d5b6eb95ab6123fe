"""Alembic environment: run by :func:`storage.migrate.upgrade` on a connection it hands over.

No alembic.ini and no logging configuration: the process that opens the database owns both.
"""

from __future__ import annotations

from alembic import context

from storage.db import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic` on the command line, which Porpoise does not use
    raise RuntimeError("run migrations through storage.migrate.upgrade(engine)")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
