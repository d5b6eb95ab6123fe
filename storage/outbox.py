"""The `event_outbox` table: durable, ordered, deduplicated by event_id."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import queue
import socket
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, DateTime, Integer, String, Text, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
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
        # Built once: a worker appends a dozen times per run, and building it was a quarter of that.
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        self._insert = insert(OutboxRow).on_conflict_do_nothing(index_elements=["event_id"])

    def append(self, events: Sequence[LifecycleEvent], connection: Connection | None = None) -> None:
        """Commit events; an event_id already present is skipped (re-sends are harmless). On
        ``connection`` if given (a writer that keeps one, :class:`GroupCommit`), else on a pooled one."""
        if not events:
            return
        now = datetime.now(UTC)
        rows = [{"event_id": e.event_id, "instance_id": e.instance_id, "event_type": e.event_type.value,
                 "body": e.model_dump_json(), "created_at": now} for e in events]
        if connection is None:
            with self.engine.begin() as c:
                c.execute(self._insert, rows)
            return
        with connection.begin():
            connection.execute(self._insert, rows)

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
    """Batches concurrent appends into one transaction (group commit), on one writer thread of its own.

    Hundreds of activities recording events at once would otherwise each pay a commit; here each
    caller still returns only after *its* events are committed, so nothing is acknowledged early.

    Why a thread of its own: a commit is ~0.14 ms of CPU, and the hops around it cost more. An
    activation's thread (instance events, :meth:`append_blocking`) hands its events straight to this
    thread and waits on a future, instead of going through the worker's event loop and its executor;
    async callers (task events, :meth:`append`) are woken with one loop callback per batch, not one
    per caller (docs/performance.md, "... where the events' cost is not", item 2).
    """

    def __init__(self, outbox: Outbox, max_batch: int = 500) -> None:
        self.outbox, self.max_batch = outbox, max_batch
        self._queue: queue.SimpleQueue[_Append | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._connection: Connection | None = None  # the writer thread's own (see _commit)

    async def append(self, events: Sequence[LifecycleEvent]) -> None:
        """Commit ``events``; cancelling the wait does not withdraw them (a re-send is harmless)."""
        await self.append_soon(events)

    def append_soon(self, events: Sequence[LifecycleEvent]) -> asyncio.Future[None]:
        """Queue ``events`` for the writer; the future, of the running event loop, is done when they
        are committed. Cancelling it, or setting its result first, does not withdraw them."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._submit(events, done)
        return done

    def append_blocking(self, events: Sequence[LifecycleEvent], timeout: float) -> None:
        """Commit ``events`` from any thread but an event loop's, waiting at most ``timeout`` seconds
        (TimeoutError; the write is then left to the writer)."""
        self.append_nowait(events).result(timeout)

    def append_nowait(self, events: Sequence[LifecycleEvent]) -> concurrent.futures.Future[None]:
        """Queue ``events`` for the writer without waiting; the future says when and how it went."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._submit(events, done)
        return done

    def close(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then stop the writer thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def _submit(self, events: Sequence[LifecycleEvent], done: _Waiter) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._start:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._write_loop, name="outbox-writer", daemon=True)
                    self._thread.start()
        self._queue.put((events, done))

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._disconnect()
                return
            batch = [first]
            closing = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    closing = True
                    break
                batch.append(item)
            error: BaseException | None = None
            try:
                self._commit([e for evs, _ in batch for e in evs])
            except Exception as e:
                error = e
            _settle([done for _, done in batch], error)
            if closing:
                self._disconnect()
                return

    def _commit(self, events: list[LifecycleEvent]) -> None:
        """Commit on the writer's own connection, kept between batches (a pool checkout per batch was
        a fifth of its CPU). When a kept connection fails, the batch is tried once more on a new one,
        as the pool's pre-ping would have done: a database restart costs no events."""
        kept = self._connection is not None
        try:
            self._append_connected(events)
        except Exception:
            if not kept:
                raise
            self._append_connected(events)

    def _append_connected(self, events: list[LifecycleEvent]) -> None:
        """One try on the writer's connection (opened if it has none); a failed one is dropped."""
        if self._connection is None:
            self._connection = self.outbox.engine.connect()
        try:
            self.outbox.append(events, self._connection)
        except Exception:
            self._disconnect(invalidate=True)
            raise

    def _disconnect(self, *, invalidate: bool = False) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                if invalidate:
                    self._connection.invalidate()
                self._connection.close()
            self._connection = None


_Waiter = asyncio.Future[None] | concurrent.futures.Future[None]
_Append = tuple[Sequence[LifecycleEvent], _Waiter]


def _settle(waiters: list[_Waiter], error: BaseException | None) -> None:
    """Resolve each waiter: a thread's directly, a coroutine's in one callback per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for w in waiters:
        if isinstance(w, asyncio.Future):
            by_loop.setdefault(w.get_loop(), []).append(w)
        elif not w.done():
            w.set_exception(error) if error else w.set_result(None)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a loop closed meanwhile: nobody waits any more
            loop.call_soon_threadsafe(_settle_on_loop, futures, error)


def _settle_on_loop(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for f in futures:
        if not f.done():  # a cancelled wait
            f.set_exception(error) if error else f.set_result(None)
