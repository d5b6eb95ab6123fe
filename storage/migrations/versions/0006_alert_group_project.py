"""Alert groups may belong to a project (docs/security.md): ``alert_group.project_code``, nullable
(NULL: a global group, which only administrators change), indexed for the per-project listing.

Revision ID: 0006_alert_group_project
Revises: 0005_ds_projects_unified
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_alert_group_project"
down_revision = "0005_ds_projects_unified"
branch_labels = None
depends_on = None

TABLE, COLUMN, INDEX = "alert_group", "project_code", "ix_alert_group_project_code"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if COLUMN not in {c["name"] for c in inspector.get_columns(TABLE)}:
        op.add_column(TABLE, sa.Column(COLUMN, sa.BigInteger(), nullable=True))
    if INDEX not in {i["name"] for i in inspector.get_indexes(TABLE)}:
        op.create_index(INDEX, TABLE, [COLUMN])


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_index(INDEX)
        batch.drop_column(COLUMN)
