"""The relay: publishes committed outbox rows to the sink in id order, retrying until it works."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from temporalio import activity

from core.contracts import Activities
from core.events import LifecycleEvent
from storage.outbox import GroupCommit, Outbox

from .sinks import EventSink

log = logging.getLogger("porpoise.events")
LEASE = timedelta(seconds=30)  # a dead relay's lease expires after this; the live one renews it well before


class EventActivities:
    def __init__(self, writer: GroupCommit) -> None:
        self.writer = writer

    @activity.defn(name=Activities.APPEND_EVENTS)
    async def append_events(self, events: list[LifecycleEvent]) -> None:
        """Commit instance events to the outbox (a local activity of the lifecycle interceptor).

        Through the worker's one group-commit writer, shared with the task events: one SQLite writer
        per worker instead of one per activity thread, which starved each other under load."""
        await self.writer.append(events)


class OutboxRelay:
    def __init__(self, outbox: Outbox, sink: EventSink, *, batch: int = 500, idle_seconds: float = 0.2,
                 retention: timedelta = timedelta(days=7)) -> None:
        self.outbox, self.sink, self.batch, self.idle = outbox, sink, batch, idle_seconds
        self.retention = retention
        self._renew_at = 0.0  # loop time after which the lease is renewed (0: not held)

    async def run(self, stop: asyncio.Event) -> None:
        backoff = self.idle
        purged_at = datetime.min.replace(tzinfo=UTC)
        while not stop.is_set():
            try:
                published = await self.step()
                backoff = self.idle
                if datetime.now(UTC) - purged_at > timedelta(hours=1):
                    await asyncio.to_thread(self.outbox.purge, datetime.now(UTC) - self.retention)
                    purged_at = datetime.now(UTC)
            except Exception:
                log.warning("event relay: publish failed, retrying in %.1fs", backoff, exc_info=True)
                published = 0
                backoff = min(backoff * 2, 10.0)
            # Only a full batch says more is waiting. After a partial one the relay waits too: at a
            # steady trickle of events it otherwise spun, reading and marking a few rows per step,
            # and that loop was most of what lifecycle events cost the worker (docs/performance.md).
            if published < self.batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)

    async def step(self) -> int:
        """Publish one batch if this relay holds the lease; returns how many were published.

        The lease (30 s) is renewed once a third of it has passed, not at every step: the renewal is a
        write transaction, and at a step every 0.2 s it cost the worker as much CPU as reading the
        batch, while taking the database's one writer from the events being recorded."""
        loop = asyncio.get_running_loop()
        if loop.time() >= self._renew_at:
            self._renew_at = 0.0
            if not await asyncio.to_thread(self.outbox.take_lease, LEASE):
                return 0
            self._renew_at = loop.time() + LEASE.total_seconds() / 3
        pending = await asyncio.to_thread(self.outbox.pending, self.batch)
        if not pending:
            return 0
        await asyncio.to_thread(self.sink.publish, pending)
        await asyncio.to_thread(self.outbox.mark_published, [p.id for p in pending])
        return len(pending)
