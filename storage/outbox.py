"""The `event_outbox` table: durable, ordered, deduplicated by event_id."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, DateTime, Integer, String, Text, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.events import LifecycleEvent

from .db import Base, engine_for, ensure_schema

_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY only


class OutboxRow(Base):
    __tablename__ = "event_outbox"
    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(500), unique=True)
    instance_id: Mapped[str] = mapped_column(String(255), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True, nullable=True)


class LeaseRow(Base):
    """Which relay may publish: one at a time keeps each instance's events in order."""

    __tablename__ = "event_outbox_lease"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Pending:
    id: int
    event_id: str
    instance_id: str
    event_type: str
    body: str


class Outbox:
    def __init__(self, url: str | Engine) -> None:
        self.engine = engine_for(url) if isinstance(url, str) else url
        ensure_schema(self.engine)
        self.owner = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"

    def append(self, events: Sequence[LifecycleEvent]) -> None:
        """Commit events; an event_id already present is skipped (re-sends are harmless)."""
        if not events:
            return
        now = datetime.now(UTC)
        rows = [{"event_id": e.event_id, "instance_id": e.instance_id, "event_type": e.event_type.value,
                 "body": e.model_dump_json(), "created_at": now} for e in events]
        dialect = self.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        with self.engine.begin() as c:
            c.execute(insert(OutboxRow).on_conflict_do_nothing(index_elements=["event_id"]), rows)

    def pending(self, limit: int = 500) -> list[Pending]:
        # Columns, not ORM objects: the relay reads every event once, and the identity map was a
        # good part of its CPU.
        q = (select(OutboxRow.id, OutboxRow.event_id, OutboxRow.instance_id, OutboxRow.event_type, OutboxRow.body)
             .where(OutboxRow.published_at.is_(None)).order_by(OutboxRow.id).limit(limit))
        with self.engine.connect() as c:
            return [Pending(*row) for row in c.execute(q)]

    def mark_published(self, ids: Sequence[int]) -> None:
        with self.engine.begin() as c:
            c.execute(update(OutboxRow).where(OutboxRow.id.in_(ids)).values(published_at=datetime.now(UTC)))

    def tail(self, after_id: int = 0, limit: int = 100, instance_id: str | None = None) -> list[tuple[int, dict]]:
        with Session(self.engine) as s:
            q = select(OutboxRow).where(OutboxRow.id > after_id).order_by(OutboxRow.id).limit(limit)
            if instance_id:
                q = q.where(OutboxRow.instance_id == instance_id)
            return [(r.id, json.loads(r.body)) for r in s.scalars(q)]

    def last_id(self) -> int:
        with Session(self.engine) as s:
            row = s.scalars(select(OutboxRow.id).order_by(OutboxRow.id.desc()).limit(1)).first()
            return int(row or 0)

    def purge(self, published_before: datetime) -> int:
        """Retention: drop rows published before the cut-off."""
        with self.engine.begin() as c:
            res = c.execute(delete(OutboxRow).where(OutboxRow.published_at < published_before))
            return int(res.rowcount or 0)

    def take_lease(self, ttl: timedelta, name: str = "relay") -> bool:
        """Become (or stay) the one relay; a dead relay's lease expires after `ttl`."""
        now = datetime.now(UTC)
        with self.engine.begin() as c:
            res = c.execute(update(LeaseRow).where(LeaseRow.name == name)
                            .where(or_(LeaseRow.owner == self.owner, LeaseRow.expires_at < now))
                            .values(owner=self.owner, expires_at=now + ttl))
            if res.rowcount:
                return True
            exists = c.execute(select(LeaseRow.name).where(LeaseRow.name == name)).first()
            if exists:
                return False
            insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
            res = c.execute(insert(LeaseRow).values(name=name, owner=self.owner, expires_at=now + ttl)
                            .on_conflict_do_nothing(index_elements=["name"]))
            return bool(res.rowcount)

    def dispose(self) -> None:
        self.engine.dispose()


class GroupCommit:
    """Batches concurrent appends into one transaction (group commit), in the caller's event loop.

    Hundreds of activities recording events at once would otherwise each pay a commit; here each
    caller still returns only after *its* events are committed, so nothing is acknowledged early.
    """

    def __init__(self, outbox: Outbox, max_batch: int = 500) -> None:
        self.outbox, self.max_batch = outbox, max_batch
        self._queue: asyncio.Queue[tuple[Sequence[LifecycleEvent], asyncio.Future[None]]] | None = None
        self._writer: asyncio.Task[None] | None = None

    async def append(self, events: Sequence[LifecycleEvent]) -> None:
        if self._queue is None or self._writer is None or self._writer.done():
            self._queue = asyncio.Queue()
            self._writer = asyncio.create_task(self._write_loop(self._queue))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((events, done))
        await done

    async def _write_loop(self, queue: asyncio.Queue[tuple[Sequence[LifecycleEvent], asyncio.Future[None]]]) -> None:
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < self.max_batch:
                batch.append(queue.get_nowait())
            events = [e for evs, _ in batch for e in evs]
            try:
                await asyncio.to_thread(self.outbox.append, events)
            except Exception as e:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            for _, fut in batch:
                if not fut.done():
                    fut.set_result(None)
