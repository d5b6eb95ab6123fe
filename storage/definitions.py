"""Workflow definitions, every version kept, stored through SQLAlchemy.

SQLite is the embedded default; PostgreSQL is used when ``DATABASE_URL`` says so. A definition is
identified by its DS code; each change adds a version and old versions stay readable, because a
running instance pins the version it started with (reference §4.1).
"""

from __future__ import annotations

import builtins
import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import BigInteger, DateTime, Integer, String, Text, bindparam, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from model.definition import WorkflowDefinition

from .db import Base, engine_for


class DefinitionRow(Base):
    __tablename__ = "workflow_definition"
    code: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    project_code: Mapped[int] = mapped_column(BigInteger, index=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    latest_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DefinitionVersionRow(Base):
    __tablename__ = "workflow_definition_version"
    code: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# Built once: a run start reads a definition, and making the statement cost as much as running it.
_VERSION_BODY = select(DefinitionVersionRow.body).where(DefinitionVersionRow.code == bindparam("code"),
                                                        DefinitionVersionRow.version == bindparam("version"))
_LATEST_BODY = (select(DefinitionVersionRow.body)
                .join(DefinitionRow, (DefinitionRow.code == DefinitionVersionRow.code)
                      & (DefinitionRow.latest_version == DefinitionVersionRow.version))
                .where(DefinitionVersionRow.code == bindparam("code")))

PARSED_MAX_CHARS = 32 * 1024  # bigger versions are parsed each time: the cache stays under ~30 MB


def parse(body: str) -> WorkflowDefinition:
    """The definition a version's stored JSON holds. Small ones are kept by their text (the same text
    is the same frozen model, so nothing can go stale): every start of a definition read and
    validated the same JSON again, a third of a load's CPU."""
    return _parse_small(body) if len(body) <= PARSED_MAX_CHARS else WorkflowDefinition.model_validate_json(body)


@lru_cache(maxsize=128)
def _parse_small(body: str) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate_json(body)


class ForcedSuccessRow(Base):
    """Force-success marks on finished instances, applied by the next recover (reference §4.14)."""

    __tablename__ = "forced_success"
    instance_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    task_code: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TaskGroupRow(Base):
    """A DS task group (§4.17): `group_size` slots shared by every task naming it, across instances."""

    __tablename__ = "task_group"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255))
    project_code: Mapped[int] = mapped_column(BigInteger, default=0)
    group_size: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class Saved:
    definition: WorkflowDefinition
    created_version: bool  # False when the submission equals the latest version


_code_lock = threading.Lock()
_last_code = 0


def new_code() -> int:
    """A 13+ digit, time-ordered code like DS's snowflake codes (always above 2^31, see samples/INDEX)."""
    global _last_code
    with _code_lock:
        code = (int(time.time() * 1000) << 8) | random.randrange(256)
        _last_code = max(code, _last_code + 1)
        return _last_code


class DefinitionStore:
    def __init__(self, url: str) -> None:
        self.engine: Engine = engine_for(url)

    def save(self, definition: WorkflowDefinition) -> Saved:
        """Store a new definition, or a new version of an existing one (matched by code, or by
        project and name when the submission carries no code, as the create-API form does)."""
        now = datetime.now(UTC)
        with Session(self.engine) as s, s.begin():
            row = None
            if definition.code:
                row = s.get(DefinitionRow, definition.code, with_for_update=True)
            else:
                row = s.scalars(
                    select(DefinitionRow).where(
                        DefinitionRow.project_code == definition.project_code,
                        DefinitionRow.name == definition.name,
                    ).with_for_update()
                ).first()
            if row is None:
                code = definition.code or new_code()
                stored = definition.model_copy(update={"code": code, "version": 1})
                s.add(DefinitionRow(code=code, project_code=stored.project_code, name=stored.name,
                                    latest_version=1, updated_at=now))
                s.add(DefinitionVersionRow(code=code, version=1, body=stored.model_dump_json(), created_at=now))
                return Saved(stored, True)
            latest_body = s.get(DefinitionVersionRow, (row.code, row.latest_version))
            assert latest_body is not None
            latest = parse(latest_body.body)
            candidate = definition.model_copy(update={"code": row.code, "version": latest.version})
            if candidate.content_equal(latest):
                return Saved(latest, False)
            stored = candidate.model_copy(update={"version": row.latest_version + 1})
            row.latest_version = stored.version
            row.name = stored.name
            row.project_code = stored.project_code
            row.updated_at = now
            s.add(DefinitionVersionRow(code=row.code, version=stored.version, body=stored.model_dump_json(),
                                       created_at=now))
            return Saved(stored, True)

    def get(self, code: int, version: int | None = None) -> WorkflowDefinition | None:
        """Version ``version`` of the definition, or its latest; None if there is none. One statement,
        built once, and a version read before is not validated again (:func:`parse`): every run start
        reads it."""
        with self.engine.connect() as c:
            if version is None:
                body = c.scalar(_LATEST_BODY, {"code": code})
            else:
                body = c.scalar(_VERSION_BODY, {"code": code, "version": version})
        return parse(body) if body is not None else None

    def versions(self, code: int) -> list[dict[str, object]]:
        with Session(self.engine) as s:
            rows = s.scalars(select(DefinitionVersionRow).where(DefinitionVersionRow.code == code)
                             .order_by(DefinitionVersionRow.version)).all()
            return [{"version": r.version, "created_at": r.created_at,
                     "name": json.loads(r.body).get("name")} for r in rows]

    def list(self, project_code: int | None = None, limit: int = 100, offset: int = 0,
             projects: frozenset[int] | None = None) -> list[DefinitionRow]:
        """Latest versions, newest change first; ``projects``: only these projects (None: all)."""
        with Session(self.engine) as s:
            q = select(DefinitionRow).order_by(DefinitionRow.updated_at.desc()).limit(limit).offset(offset)
            if project_code is not None:
                q = q.where(DefinitionRow.project_code == project_code)
            if projects is not None:
                q = q.where(DefinitionRow.project_code.in_(sorted(projects)))
            rows = list(s.scalars(q).all())
            s.expunge_all()
            return rows

    def force_success(self, instance_id: str, task_code: int) -> None:
        with Session(self.engine) as s, s.begin():
            if s.get(ForcedSuccessRow, (instance_id, task_code)) is None:
                s.add(ForcedSuccessRow(instance_id=instance_id, task_code=task_code, created_at=datetime.now(UTC)))

    def forced_success(self, instance_id: str) -> set[int]:
        with Session(self.engine) as s:
            q = select(ForcedSuccessRow.task_code).where(ForcedSuccessRow.instance_id == instance_id)
            return set(s.scalars(q).all())

    def clear_forced_success(self, instance_id: str) -> None:
        with Session(self.engine) as s, s.begin():
            for row in s.scalars(select(ForcedSuccessRow).where(ForcedSuccessRow.instance_id == instance_id)):
                s.delete(row)

    def put_task_group(self, group_id: int, name: str, group_size: int, project_code: int = 0,
                       description: str = "") -> None:
        with Session(self.engine) as s, s.begin():
            row = s.get(TaskGroupRow, group_id)
            if row is None:
                s.add(TaskGroupRow(id=group_id, name=name, group_size=group_size, project_code=project_code,
                                   description=description))
            else:
                row.name, row.group_size = name, group_size
                row.project_code, row.description = project_code, description

    def task_groups(self) -> builtins.list[dict[str, object]]:
        with Session(self.engine) as s:
            return [{"id": r.id, "name": r.name, "groupSize": r.group_size, "projectCode": r.project_code,
                     "description": r.description} for r in s.scalars(select(TaskGroupRow).order_by(TaskGroupRow.id))]

    def task_group_sizes(self, ids: set[int]) -> dict[int, int]:
        if not ids:
            return {}
        with Session(self.engine) as s:
            rows = s.scalars(select(TaskGroupRow).where(TaskGroupRow.id.in_(ids)))
            return {r.id: r.group_size for r in rows}

    def dispose(self) -> None:
        """Close the pooled connections (the shared engine stays usable; it opens new ones)."""
        self.engine.dispose()
