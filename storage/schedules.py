"""DS schedules (reference §1.1, §4.18): the schedule rows, stored through SQLAlchemy.

A row keeps what DS keeps in ``t_ds_schedules`` (crontab, timezone, start and end time, the run
settings) plus Porpoise's per-schedule policies (misfire, overlap) and the definition version the
Temporal schedule currently starts. The Temporal schedule ``ds-schedule-<definition code>`` is the
source of truth for *firing*; this table is the source of truth for the DS fields, which Temporal
has no place for. One schedule per definition, as in DS.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import Conflict

from .db import Base, delete_by_id, ensure_schema

ONLINE, OFFLINE = "ONLINE", "OFFLINE"


class ScheduleRow(Base):
    __tablename__ = "ds_schedule"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    definition_code: Mapped[int] = mapped_column(BigInteger, unique=True, index=True)
    project_code: Mapped[int] = mapped_column(BigInteger, index=True, default=0)
    definition_name: Mapped[str] = mapped_column(String(255), default="")
    definition_version: Mapped[int] = mapped_column(Integer, default=1)  # what the Temporal schedule starts
    crontab: Mapped[str] = mapped_column(String(255))
    timezone_id: Mapped[str] = mapped_column(String(64), default="UTC")
    start_time: Mapped[str | None] = mapped_column(String(19), nullable=True)  # DS "yyyy-MM-dd HH:mm:ss"
    end_time: Mapped[str | None] = mapped_column(String(19), nullable=True)
    failure_strategy: Mapped[str] = mapped_column(String(16), default="CONTINUE")
    warning_type: Mapped[str] = mapped_column(String(16), default="NONE")
    warning_group_id: Mapped[int] = mapped_column(Integer, default=0)
    instance_priority: Mapped[str] = mapped_column(String(16), default="MEDIUM")
    worker_group: Mapped[str] = mapped_column(String(255), default="default")
    tenant_code: Mapped[str] = mapped_column(String(255), default="default")
    environment_code: Mapped[int] = mapped_column(BigInteger, default=-1)
    release_state: Mapped[str] = mapped_column(String(16), default=OFFLINE)
    misfire_policy: Mapped[str] = mapped_column(String(32), default="FIRE_ALL_MISSED")
    misfire_threshold_seconds: Mapped[int] = mapped_column(Integer, default=60)  # late by less: not a misfire
    overlap_policy: Mapped[str] = mapped_column(String(32), default="ALLOW_ALL")
    synced: Mapped[bool] = mapped_column(Boolean, default=True)  # False: the Temporal schedule lags this row
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# The fields a caller may set (everything but the keys and the bookkeeping).
FIELDS = ("project_code", "definition_name", "definition_version", "crontab", "timezone_id", "start_time",
          "end_time", "failure_strategy", "warning_type", "warning_group_id", "instance_priority", "worker_group",
          "tenant_code", "environment_code", "release_state", "misfire_policy", "misfire_threshold_seconds",
          "overlap_policy", "synced")


@dataclass(frozen=True)
class ScheduleRecord:
    """A detached, immutable copy of a row."""

    id: int
    definition_code: int
    project_code: int
    definition_name: str
    definition_version: int
    crontab: str
    timezone_id: str
    start_time: str | None
    end_time: str | None
    failure_strategy: str
    warning_type: str
    warning_group_id: int
    instance_priority: str
    worker_group: str
    tenant_code: str
    environment_code: int
    release_state: str
    misfire_policy: str
    misfire_threshold_seconds: int
    overlap_policy: str
    synced: bool
    created_at: datetime
    updated_at: datetime

    @property
    def online(self) -> bool:
        return self.release_state == ONLINE

    @classmethod
    def of(cls, row: ScheduleRow) -> ScheduleRecord:
        values = {f: getattr(row, f) for f in cls.__dataclass_fields__}
        for f in ("created_at", "updated_at"):  # SQLite gives back naive datetimes: they are UTC
            if values[f] is not None and values[f].tzinfo is None:
                values[f] = values[f].replace(tzinfo=UTC)
        return cls(**values)


class ScheduleExists(Conflict):
    """The definition already has a schedule (DS allows one per definition)."""


class ScheduleStore:
    """Schedule rows on an existing engine (the definition store's)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        ensure_schema(engine)

    def create(self, definition_code: int, **fields: Any) -> ScheduleRecord:
        now = datetime.now(UTC)
        try:
            with Session(self.engine) as s, s.begin():
                if s.scalars(select(ScheduleRow).where(ScheduleRow.definition_code == definition_code)).first():
                    raise ScheduleExists(f"definition {definition_code} already has a schedule")
                row = ScheduleRow(definition_code=definition_code, created_at=now, updated_at=now,
                                  **_only_fields(fields))
                s.add(row)
                s.flush()
                return ScheduleRecord.of(row)
        except IntegrityError:  # a concurrent create won the unique definition code
            raise ScheduleExists(f"definition {definition_code} already has a schedule") from None

    def update(self, schedule_id: int, **fields: Any) -> ScheduleRecord | None:
        with Session(self.engine) as s, s.begin():
            row = s.get(ScheduleRow, schedule_id, with_for_update=True)
            if row is None:
                return None
            for k, v in _only_fields(fields).items():
                setattr(row, k, v)
            row.updated_at = datetime.now(UTC)
            s.flush()
            return ScheduleRecord.of(row)

    def get(self, schedule_id: int) -> ScheduleRecord | None:
        with Session(self.engine) as s:
            row = s.get(ScheduleRow, schedule_id)
            return ScheduleRecord.of(row) if row else None

    def by_definition(self, definition_code: int) -> ScheduleRecord | None:
        with Session(self.engine) as s:
            row = s.scalars(select(ScheduleRow).where(ScheduleRow.definition_code == definition_code)).first()
            return ScheduleRecord.of(row) if row else None

    def delete(self, schedule_id: int) -> bool:
        return delete_by_id(self.engine, ScheduleRow, schedule_id)

    def list(self, *, definition_code: int | None = None, project_code: int | None = None,
             release_state: str | None = None, limit: int = 100, offset: int = 0,
             projects: frozenset[int] | None = None) -> builtins.list[ScheduleRecord]:
        """``projects``: only these projects' schedules (None: all)."""
        q = select(ScheduleRow).order_by(ScheduleRow.id).limit(limit).offset(offset)
        if definition_code is not None:
            q = q.where(ScheduleRow.definition_code == definition_code)
        if project_code is not None:
            q = q.where(ScheduleRow.project_code == project_code)
        if projects is not None:
            q = q.where(ScheduleRow.project_code.in_(sorted(projects)))
        if release_state is not None:
            q = q.where(ScheduleRow.release_state == release_state)
        with Session(self.engine) as s:
            return [ScheduleRecord.of(r) for r in s.scalars(q)]


def _only_fields(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise TypeError(f"not schedule fields: {sorted(unknown)}")
    return fields
