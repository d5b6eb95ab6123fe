"""DS integer ids for what Porpoise names otherwise, kept durably so they survive restarts.

DolphinScheduler clients address workflow instances and task instances by integer id, projects by a
long code, schedules and definitions also by integer id. Porpoise's instances are Temporal workflow
ids (``ds-<code>-<time>-<random>``) and its task instances are (workflow id, run, task code, attempt).
This module keeps the mapping both ways, plus the few DS fields Porpoise has no other place for yet:
a definition's release state and canvas locations. DS's projects are Porpoise's projects
(:class:`storage.security.ProjectRow`, table ``porpoise_projects``): the project methods here read and
write that one registry, so a project a DS client creates is the one tokens (``--project CODE``) and
Porpoise's routes know, owned by its creator.

The tables are Porpoise's (:class:`storage.db.Base`), created by migrations 0002 and 0004.
"""

from __future__ import annotations

import builtins
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, Text, UniqueConstraint, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import Base, engine_for, ensure_schema, next_id
from .definitions import DefinitionRow, DefinitionVersionRow
from .security import ProjectRow, ProjectUserRow, UserRow

ONLINE, OFFLINE = "ONLINE", "OFFLINE"


class InstanceIdRow(Base):
    """A DS workflow instance id for one Temporal workflow id (all its runs: rerun keeps the id)."""

    __tablename__ = "ds_instance_id"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    project_code: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    definition_code: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    trigger_code: Mapped[int] = mapped_column(BigInteger, default=0, index=True)  # DS 3.2 start answer
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TaskInstanceIdRow(Base):
    """A DS task instance id: one attempt of one task in one run of one workflow instance."""

    __tablename__ = "ds_task_instance_id"
    __table_args__ = (UniqueConstraint("workflow_id", "run_times", "task_code", "attempt"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workflow_id: Mapped[str] = mapped_column(String(255), index=True)
    run_times: Mapped[int] = mapped_column(Integer)
    task_code: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DefinitionMetaRow(Base):
    """DS fields of a workflow definition Porpoise's definition store has no column for."""

    __tablename__ = "ds_definition_meta"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[int] = mapped_column(BigInteger, unique=True, index=True)
    release_state: Mapped[str] = mapped_column(String(16), default=OFFLINE)
    locations: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Project:
    """A project as DS shows it (``t_ds_project``), read from the one project registry."""

    id: int
    code: int
    name: str
    description: str
    user_name: str
    created_at: datetime
    updated_at: datetime
    owner_id: int = 0

    @classmethod
    def of(cls, r: ProjectRow, owner: str = "") -> Project:
        created = _utc(r.created_at)
        return cls(int(r.ds_id or 0), r.code, r.name or "", r.description or "", owner, created,
                   _utc(r.updated_at) if r.updated_at is not None else created, r.owner_id)


@dataclass(frozen=True)
class TaskInstanceKey:
    id: int
    workflow_id: str
    run_times: int
    task_code: int
    attempt: int


@dataclass(frozen=True)
class DefinitionMeta:
    id: int
    code: int
    release_state: str
    locations: str
    created_at: datetime


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t  # SQLite gives naive datetimes back


class NameTaken(Exception):
    """A project of that name exists."""


_code_lock = threading.Lock()
_last_code = 0


def new_code() -> int:
    """A 13+ digit, time-ordered code like DS's snowflake codes."""
    global _last_code
    with _code_lock:
        code = (int(time.time() * 1000) << 8) | random.randrange(256)
        _last_code = max(code, _last_code + 1)
        return _last_code


class DsIds:
    """The mapping tables on Porpoise's database (an engine the stores share, or its URL)."""

    def __init__(self, engine_or_url: Engine | str) -> None:
        if isinstance(engine_or_url, str):
            self.engine = engine_for(engine_or_url)
        else:
            self.engine = engine_or_url
            ensure_schema(engine_or_url)  # a no-op once the process's stores migrated it

    # -- workflow instances ------------------------------------------------------------------------

    def instance_id(self, workflow_id: str, project_code: int = 0, definition_code: int = 0,
                    trigger_code: int = 0) -> int:
        """The DS id of a workflow instance, given one on first sight (idempotent, race-safe)."""
        with Session(self.engine) as s:
            found = s.scalars(select(InstanceIdRow.id).where(InstanceIdRow.workflow_id == workflow_id)).first()
            if found is not None:
                return found
        try:
            with Session(self.engine) as s, s.begin():
                row = InstanceIdRow(workflow_id=workflow_id, project_code=project_code,
                                    definition_code=definition_code, trigger_code=trigger_code,
                                    created_at=datetime.now(UTC))
                s.add(row)
                s.flush()
                return row.id
        except IntegrityError:  # a concurrent request named it first
            with Session(self.engine) as s:
                return s.scalars(select(InstanceIdRow.id).where(InstanceIdRow.workflow_id == workflow_id)).one()

    def instance_ids(self, workflow_ids: builtins.list[str]) -> dict[str, int]:
        return {w: self.instance_id(w) for w in workflow_ids}

    def workflow_id(self, instance_id: int) -> str | None:
        with Session(self.engine) as s:
            row = s.get(InstanceIdRow, instance_id)
            return row.workflow_id if row is not None and not row.deleted else None

    def by_trigger(self, trigger_code: int) -> builtins.list[tuple[int, str]]:
        with Session(self.engine) as s:
            q = select(InstanceIdRow).where(InstanceIdRow.trigger_code == trigger_code, InstanceIdRow.deleted == 0)
            return [(r.id, r.workflow_id) for r in s.scalars(q.order_by(InstanceIdRow.id))]

    def mark_deleted(self, instance_id: int, project_code: int | None = None) -> None:
        with Session(self.engine) as s, s.begin():
            row = s.get(InstanceIdRow, instance_id)
            if row is not None:
                row.deleted = 1
                if project_code:
                    row.project_code = project_code

    def deleted_workflow_ids(self, project_code: int, limit: int = 500) -> builtins.list[str]:
        """The most recently deleted instances of a project (Temporal drops them from visibility later)."""
        q = (select(InstanceIdRow.workflow_id)
             .where(InstanceIdRow.deleted == 1, InstanceIdRow.project_code == project_code)
             .order_by(InstanceIdRow.id.desc()).limit(limit))
        with Session(self.engine) as s:
            return list(s.scalars(q))

    def is_deleted(self, workflow_id: str) -> bool:
        with Session(self.engine) as s:
            d = s.scalars(select(InstanceIdRow.deleted).where(InstanceIdRow.workflow_id == workflow_id)).first()
            return bool(d)

    # -- task instances ----------------------------------------------------------------------------

    def task_instance_id(self, workflow_id: str, run_times: int, task_code: int, attempt: int) -> int:
        where = (TaskInstanceIdRow.workflow_id == workflow_id, TaskInstanceIdRow.run_times == run_times,
                 TaskInstanceIdRow.task_code == task_code, TaskInstanceIdRow.attempt == attempt)
        with Session(self.engine) as s:
            found = s.scalars(select(TaskInstanceIdRow.id).where(*where)).first()
            if found is not None:
                return found
        try:
            with Session(self.engine) as s, s.begin():
                row = TaskInstanceIdRow(workflow_id=workflow_id, run_times=run_times, task_code=task_code,
                                        attempt=attempt, created_at=datetime.now(UTC))
                s.add(row)
                s.flush()
                return row.id
        except IntegrityError:
            with Session(self.engine) as s:
                return s.scalars(select(TaskInstanceIdRow.id).where(*where)).one()

    def task_instance(self, task_instance_id: int) -> TaskInstanceKey | None:
        with Session(self.engine) as s:
            r = s.get(TaskInstanceIdRow, task_instance_id)
            return TaskInstanceKey(r.id, r.workflow_id, r.run_times, r.task_code, r.attempt) if r else None

    # -- definitions -------------------------------------------------------------------------------

    def definition_meta(self, code: int) -> DefinitionMeta:
        """The DS fields of a definition, made (OFFLINE, no locations) on first sight."""
        with Session(self.engine) as s:
            r = s.scalars(select(DefinitionMetaRow).where(DefinitionMetaRow.code == code)).first()
            if r is not None:
                return DefinitionMeta(r.id, r.code, r.release_state, r.locations or "", _utc(r.created_at))
        try:
            with Session(self.engine) as s, s.begin():
                r = DefinitionMetaRow(code=code, release_state=OFFLINE, locations="", created_at=datetime.now(UTC))
                s.add(r)
                s.flush()
                return DefinitionMeta(r.id, r.code, r.release_state, "", _utc(r.created_at))
        except IntegrityError:
            return self.definition_meta(code)

    def set_definition_meta(self, code: int, *, release_state: str | None = None,
                            locations: str | None = None) -> DefinitionMeta:
        self.definition_meta(code)
        with Session(self.engine) as s, s.begin():
            r = s.scalars(select(DefinitionMetaRow).where(DefinitionMetaRow.code == code)).one()
            if release_state is not None:
                r.release_state = release_state
            if locations is not None:
                r.locations = locations
            s.flush()
            return DefinitionMeta(r.id, r.code, r.release_state, r.locations or "", _utc(r.created_at))

    def delete_definition(self, code: int) -> None:
        """DS delete of a definition: every version and its DS fields, in one transaction (Porpoise's
        own API keeps definitions; only DS clients delete them)."""
        with Session(self.engine) as s, s.begin():
            s.execute(delete(DefinitionVersionRow).where(DefinitionVersionRow.code == code))
            s.execute(delete(DefinitionRow).where(DefinitionRow.code == code))
            s.execute(delete(DefinitionMetaRow).where(DefinitionMetaRow.code == code))

    # -- projects (the one registry: storage.security.ProjectRow) -----------------------------------

    @staticmethod
    def _owner(s: Session, r: ProjectRow) -> str:
        u = s.get(UserRow, r.owner_id) if r.owner_id else None
        return u.name if u is not None else ""

    def _with_ds_id(self, code: int) -> None:
        """Give a project made elsewhere (a token's ``--project``, Porpoise's ``/projects``) its DS id."""
        for _ in range(5):
            try:
                with Session(self.engine) as s, s.begin():
                    r = s.get(ProjectRow, code)
                    if r is None or r.ds_id is not None:
                        return
                    r.ds_id = next_id(s, ProjectRow.ds_id)  # type: ignore[arg-type]
                    return
            except IntegrityError:  # a concurrent first sight took that id: take the next
                continue

    def create_project(self, name: str, description: str = "", owner_id: int = 0) -> Project:
        """A new project (code, DS id) owned by user ``owner_id``; NameTaken when the name is in use."""
        now = datetime.now(UTC)
        for _ in range(5):
            try:
                with Session(self.engine) as s, s.begin():
                    if s.scalars(select(ProjectRow.code).where(ProjectRow.name == name)).first() is not None:
                        raise NameTaken(name)
                    r = ProjectRow(code=new_code(), name=name, description=description, owner_id=owner_id,
                                   created_at=now, updated_at=now, ds_id=next_id(s, ProjectRow.ds_id))  # type: ignore[arg-type]
                    s.add(r)
                    s.flush()
                    return Project.of(r, self._owner(s, r))
            except IntegrityError:  # a concurrent create took that DS id: try again
                continue
        raise NameTaken(name)

    def project(self, code: int) -> Project | None:
        self._with_ds_id(code)
        with Session(self.engine) as s:
            r = s.get(ProjectRow, code)
            return Project.of(r, self._owner(s, r)) if r else None

    def update_project(self, code: int, name: str, description: str | None) -> Project | None:
        with Session(self.engine) as s, s.begin():
            r = s.get(ProjectRow, code)
            if r is None:
                return None
            other = s.scalars(select(ProjectRow.code).where(ProjectRow.name == name, ProjectRow.code != code)).first()
            if other is not None:
                raise NameTaken(name)
            r.name = name
            if description is not None:
                r.description = description
            r.updated_at = datetime.now(UTC)
            s.flush()
            return Project.of(r, self._owner(s, r))

    def delete_project(self, code: int) -> bool:
        """Delete the project and its authorizations."""
        with Session(self.engine) as s, s.begin():
            r = s.get(ProjectRow, code)
            if r is None:
                return False
            s.execute(delete(ProjectUserRow).where(ProjectUserRow.project_code == code))
            s.delete(r)
            return True

    def projects(self, search: str | None = None, offset: int = 0, limit: int | None = None,
                 only: frozenset[int] | None = None) -> tuple[builtins.list[Project], int]:
        """Projects, newest first, whose name contains ``search`` (and whose code is in ``only``, when
        given: a general user's projects); and how many match in all."""
        where = []
        if search:
            where.append(ProjectRow.name.like(f"%{search}%"))
        if only is not None:
            where.append(ProjectRow.code.in_(sorted(only)) if only else ProjectRow.code.is_(None))
        q = select(ProjectRow).where(*where)
        c = select(func.count()).select_from(ProjectRow).where(*where)
        q = q.order_by(ProjectRow.created_at.desc(), ProjectRow.code.desc()).offset(offset)
        if limit is not None:
            q = q.limit(limit)
        with Session(self.engine) as s:
            codes = [r.code for r in s.scalars(q) if r.ds_id is None]
        for code in codes:
            self._with_ds_id(code)
        with Session(self.engine) as s:
            return [Project.of(r, self._owner(s, r)) for r in s.scalars(q)], int(s.scalar(c) or 0)
