"""One project registry: DS's projects (``ds_project_registry``, revision 0002) move into Porpoise's
``porpoise_projects`` (revision 0003), which gains DS's fields: ``description``, ``updated_at`` and
``ds_id`` (DS's integer project id; unique, given on first sight to projects made elsewhere).

A registry row whose code Porpoise already knows keeps Porpoise's owner and authorized users and adds
DS's fields (and its name, where Porpoise had none); the others become projects owned by the user of
their ``user_name`` (0, nobody, when no such user exists: administrators still see them). The old
table is dropped. Downgrade recreates it from the projects that have a DS id.

Revision ID: 0005_ds_projects_unified
Revises: 0004_users_login
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005_ds_projects_unified"
down_revision = "0004_users_login"
branch_labels = None
depends_on = None

INDEX = "ix_porpoise_projects_ds_id"

projects = sa.table(
    "porpoise_projects",
    sa.column("code", sa.BigInteger()), sa.column("name", sa.String()), sa.column("owner_id", sa.Integer()),
    sa.column("created_at", sa.DateTime(timezone=True)), sa.column("description", sa.Text()),
    sa.column("updated_at", sa.DateTime(timezone=True)), sa.column("ds_id", sa.Integer()),
)
users = sa.table("porpoise_users", sa.column("id", sa.Integer()), sa.column("name", sa.String()))
COLUMNS = ("id", "code", "name", "description", "user_name", "created_at", "updated_at")


def registry(meta: sa.MetaData) -> sa.Table:
    """``ds_project_registry`` as revision 0002 made it."""
    return sa.Table(
        "ds_project_registry", meta,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.BigInteger(), nullable=False, index=True, unique=True),
        sa.Column("name", sa.String(length=255), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("user_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    have = {c["name"] for c in inspector.get_columns("porpoise_projects")}
    if "description" not in have:
        op.add_column("porpoise_projects", sa.Column("description", sa.Text(), nullable=True))
    if "updated_at" not in have:
        op.add_column("porpoise_projects", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    if "ds_id" not in have:
        op.add_column("porpoise_projects", sa.Column("ds_id", sa.Integer(), nullable=True))
    if INDEX not in {i["name"] for i in inspector.get_indexes("porpoise_projects")}:
        op.create_index(INDEX, "porpoise_projects", ["ds_id"], unique=True)
    if "ds_project_registry" not in set(inspector.get_table_names()):
        return
    old = registry(sa.MetaData())
    user_ids = {name: uid for uid, name in bind.execute(sa.select(users.c.id, users.c.name))}
    for r in bind.execute(sa.select(*(old.c[c] for c in COLUMNS))).mappings().all():
        known = bind.execute(sa.select(projects.c.name).where(projects.c.code == r["code"])).first()
        fields = {"description": r["description"], "updated_at": r["updated_at"], "ds_id": r["id"]}
        if known is not None:
            bind.execute(projects.update().where(projects.c.code == r["code"])
                         .values(**fields, name=known[0] or r["name"]))
        else:
            bind.execute(projects.insert().values(code=r["code"], name=r["name"], created_at=r["created_at"],
                                                  owner_id=user_ids.get(r["user_name"], 0), **fields))
    op.drop_table("ds_project_registry")


def downgrade() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    old = registry(meta)
    meta.create_all(bind, checkfirst=True)
    names = {uid: name for uid, name in bind.execute(sa.select(users.c.id, users.c.name))}
    taken: set[str] = set()
    rows = bind.execute(sa.select(projects).where(projects.c.ds_id.is_not(None)).order_by(projects.c.ds_id))
    for p in rows.mappings().all():
        name = p["name"] if p["name"] and p["name"] not in taken else f"project-{p['code']}"
        taken.add(name)
        bind.execute(old.insert().values(
            id=p["ds_id"], code=p["code"], name=name, description=p["description"] or "",
            user_name=names.get(p["owner_id"], ""), created_at=p["created_at"],
            updated_at=p["updated_at"] or p["created_at"] or datetime.now(UTC)))
    if bind.dialect.name == "postgresql":  # explicit ids: move the serial past them
        op.execute("SELECT setval(pg_get_serial_sequence('ds_project_registry', 'id'), "
                   "(SELECT COALESCE(MAX(id), 0) + 1 FROM ds_project_registry), false)")
    op.drop_index(INDEX, table_name="porpoise_projects")
    with op.batch_alter_table("porpoise_projects") as batch:
        batch.drop_column("ds_id")
        batch.drop_column("updated_at")
        batch.drop_column("description")
