"""The DS REST API's tables: DS ids of instances and task instances, definitions' DS fields, and DS's
project registry (revision 0002).

A frozen copy of :mod:`storage.ds_ids`'s tables as this revision made them. Each table is created
only when missing: a database the DS REST branch made with ``create_all`` before this revision
existed keeps its rows. That build called the project registry ``ds_project``; its rows move to
``ds_project_registry`` and the old table is dropped.

Revision ID: 0002_ds_ids
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_ds_ids"
down_revision = "0001"
branch_labels = None
depends_on = None


def tables() -> sa.MetaData:
    meta = sa.MetaData()
    sa.Table(
        "ds_instance_id", meta,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.String(length=255), nullable=False, index=True, unique=True),
        sa.Column("project_code", sa.BigInteger(), nullable=False, index=True),
        sa.Column("definition_code", sa.BigInteger(), nullable=False, index=True),
        sa.Column("trigger_code", sa.BigInteger(), nullable=False, index=True),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Table(
        "ds_task_instance_id", meta,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workflow_id", sa.String(length=255), nullable=False, index=True),
        sa.Column("run_times", sa.Integer(), nullable=False),
        sa.Column("task_code", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id", "run_times", "task_code", "attempt"),
    )
    sa.Table(
        "ds_definition_meta", meta,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.BigInteger(), nullable=False, index=True, unique=True),
        sa.Column("release_state", sa.String(length=16), nullable=False),
        sa.Column("locations", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    sa.Table(
        "ds_project_registry", meta,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.BigInteger(), nullable=False, index=True, unique=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    return meta


COLUMNS = "id, code, name, description, user_name, created_at, updated_at"


def upgrade() -> None:
    bind = op.get_bind()
    had = set(sa.inspect(bind).get_table_names())
    tables().create_all(bind, checkfirst=True)
    if "ds_project" in had and "ds_project_registry" not in had:
        op.execute(f"INSERT INTO ds_project_registry ({COLUMNS}) SELECT {COLUMNS} FROM ds_project")
        op.drop_table("ds_project")
        if bind.dialect.name == "postgresql":  # explicit ids do not move the id sequence there
            op.execute("SELECT setval(pg_get_serial_sequence('ds_project_registry', 'id'), "
                       "(SELECT COALESCE(MAX(id), 0) + 1 FROM ds_project_registry), false)")


def downgrade() -> None:
    tables().drop_all(op.get_bind(), checkfirst=True)
