"""The schema main created with ``create_all`` before migrations existed (revision 0001).

A frozen copy of those tables, not the live models: later revisions change the schema, this one
never does. Each table is created only when missing, so a database main made (some or all of these
tables, no ``alembic_version``) is adopted as it is, and a new database gets all of them.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def tables() -> sa.MetaData:
    meta = sa.MetaData()
    sa.Table(
        'alert_channel', meta,
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=False, index=True),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('type', sa.String(length=32), nullable=False),
        sa.Column('params', sa.Text(), nullable=False),
        sa.Column('secrets_enc', sa.Text(), nullable=False),
        sa.Column('templates', sa.Text(), nullable=False),
        sa.Column('events', sa.Text(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    sa.Table(
        'alert_delivery', meta,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('alert_key', sa.String(length=512), nullable=False, index=True),
        sa.Column('instance_id', sa.String(length=255), nullable=False, index=True),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('channel_id', sa.Integer(), nullable=False),
        sa.Column('channel_name', sa.String(length=255), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('transient', sa.Boolean(), nullable=False),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('template_error', sa.Text(), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    sa.Table(
        'alert_group', meta,
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    sa.Table(
        'datasource', meta,
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('type', sa.String(length=64), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('port', sa.Integer(), nullable=True),
        sa.Column('database', sa.String(length=1024), nullable=False),
        sa.Column('user_name', sa.String(length=255), nullable=False),
        sa.Column('password_enc', sa.Text(), nullable=False),
        sa.Column('params', sa.Text(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    sa.Table(
        'ds_schedule', meta,
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('definition_code', sa.BigInteger(), nullable=False, index=True, unique=True),
        sa.Column('project_code', sa.BigInteger(), nullable=False, index=True),
        sa.Column('definition_name', sa.String(length=255), nullable=False),
        sa.Column('definition_version', sa.Integer(), nullable=False),
        sa.Column('crontab', sa.String(length=255), nullable=False),
        sa.Column('timezone_id', sa.String(length=64), nullable=False),
        sa.Column('start_time', sa.String(length=19), nullable=True),
        sa.Column('end_time', sa.String(length=19), nullable=True),
        sa.Column('failure_strategy', sa.String(length=16), nullable=False),
        sa.Column('warning_type', sa.String(length=16), nullable=False),
        sa.Column('warning_group_id', sa.Integer(), nullable=False),
        sa.Column('instance_priority', sa.String(length=16), nullable=False),
        sa.Column('worker_group', sa.String(length=255), nullable=False),
        sa.Column('tenant_code', sa.String(length=255), nullable=False),
        sa.Column('environment_code', sa.BigInteger(), nullable=False),
        sa.Column('release_state', sa.String(length=16), nullable=False),
        sa.Column('misfire_policy', sa.String(length=32), nullable=False),
        sa.Column('misfire_threshold_seconds', sa.Integer(), nullable=False),
        sa.Column('overlap_policy', sa.String(length=32), nullable=False),
        sa.Column('synced', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    sa.Table(
        'event_outbox', meta,
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('event_id', sa.String(length=500), nullable=False),
        sa.Column('instance_id', sa.String(length=255), nullable=False, index=True),
        sa.Column('event_type', sa.String(length=64), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('published_at', sa.DateTime(timezone=True), nullable=True, index=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('event_id'),
    )
    sa.Table(
        'event_outbox_lease', meta,
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('owner', sa.String(length=255), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    sa.Table(
        'forced_success', meta,
        sa.Column('instance_id', sa.String(length=255), nullable=False),
        sa.Column('task_code', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('instance_id', 'task_code'),
    )
    sa.Table(
        'task_group', meta,
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('project_code', sa.BigInteger(), nullable=False),
        sa.Column('group_size', sa.Integer(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    sa.Table(
        'workflow_definition', meta,
        sa.Column('code', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('project_code', sa.BigInteger(), nullable=False, index=True),
        sa.Column('name', sa.String(length=255), nullable=False, index=True),
        sa.Column('latest_version', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('code'),
    )
    sa.Table(
        'workflow_definition_version', meta,
        sa.Column('code', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('code', 'version'),
    )
        # ### end Alembic commands ###,
    return meta


def upgrade() -> None:
    tables().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    tables().drop_all(op.get_bind(), checkfirst=True)
