"""Users' password hashes and DS login sessions (storage/login.py, docs/security.md).

Two new tables; no change to the tables of 0003. Each is created only when missing.

Revision ID: 0004_users_login
Revises: 0003_security
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_users_login"
down_revision = "0003_security"
branch_labels = None
depends_on = None


def tables() -> sa.MetaData:
    """A frozen copy of the two tables as this revision makes them (not the live models)."""
    meta = sa.MetaData()
    sa.Table(
        "porpoise_user_passwords", meta,
        sa.Column("user_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    sa.Table(
        "porpoise_sessions", meta,
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False, index=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    return meta


def upgrade() -> None:
    tables().create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    tables().drop_all(op.get_bind(), checkfirst=True)
