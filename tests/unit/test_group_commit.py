"""The outbox's group-commit writer (storage/outbox.py, GroupCommit), on a real SQLite outbox: callers
on event loops and on plain threads at once, each answered only once its own events are committed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection

from core.events import EventType, LifecycleEvent
from storage.outbox import GroupCommit, Outbox


class CountingOutbox(Outbox):
    """The real outbox, counting transactions; ``fail`` makes writes raise, ``gate`` holds them."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.transactions: list[int] = []
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()

    def append(self, events: Sequence[LifecycleEvent], connection: Connection | None = None) -> None:
        self.gate.wait(10)
        if self.fail:
            raise OSError("disk I/O error")
        super().append(events, connection)
        self.transactions.append(len(events))


def event(run: str, n: int) -> LifecycleEvent:
    return LifecycleEvent(event_id=f"{run}/{n}", event_type=EventType.WORKFLOW_INSTANCE_STATE_CHANGED,
                          timestamp=datetime.now(UTC), project_code=1, definition_code=2, definition_version=1,
                          instance_id=run, workflow_id=run, run_id=run, new_state="RUNNING_EXECUTION")


def committed(outbox: Outbox) -> list[str]:
    return [e["event_id"] for _, e in outbox.tail(0, 1000)]


@pytest.fixture
def outbox(tmp_path: Path) -> CountingOutbox:
    return CountingOutbox(f"sqlite:///{tmp_path / 'o.db'}")


@pytest.mark.timeout(30)
def test_callers_waiting_together_share_a_transaction_and_keep_their_order(outbox: CountingOutbox) -> None:
    writer = GroupCommit(outbox)
    outbox.gate.clear()  # the first write holds the writer while the others queue up behind it

    async def attempts() -> None:
        first = asyncio.ensure_future(writer.append([event("r0", 0)]))
        await asyncio.sleep(0.1)
        await asyncio.gather(first, *(writer.append([event(f"r{i}", 1), event(f"r{i}", 2)]) for i in range(1, 50)),
                             asyncio.to_thread(writer.append_blocking, [event("t", 1), event("t", 2)], 10))

    def release() -> None:
        time.sleep(0.3)
        outbox.gate.set()

    threading.Thread(target=release).start()
    asyncio.run(attempts())
    ids = committed(outbox)
    assert len(ids) == 1 + 49 * 2 + 2
    for run in [f"r{i}" for i in range(1, 50)] + ["t"]:
        assert ids.index(f"{run}/1") + 1 == ids.index(f"{run}/2")  # one caller's events stay in order
    assert outbox.transactions[0] == 1
    assert len(outbox.transactions) <= 3, outbox.transactions  # not one transaction per caller
    writer.close()


@pytest.mark.timeout(30)
def test_a_failed_write_fails_every_caller_of_its_batch_and_the_writer_goes_on(outbox: CountingOutbox) -> None:
    writer = GroupCommit(outbox)
    outbox.fail = True
    with pytest.raises(OSError, match="disk I/O error"):
        asyncio.run(writer.append([event("a", 1)]))
    with pytest.raises(OSError, match="disk I/O error"):
        writer.append_blocking([event("b", 1)], 10)
    outbox.fail = False
    writer.append_blocking([event("c", 1)], 10)
    asyncio.run(writer.append([event("a", 1)]))  # a re-send after a failure
    assert committed(outbox) == ["c/1", "a/1"]
    writer.close()


@pytest.mark.timeout(30)
def test_a_blocking_caller_waits_only_its_timeout_and_the_write_still_lands(outbox: CountingOutbox) -> None:
    writer = GroupCommit(outbox)
    outbox.gate.clear()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        writer.append_blocking([event("a", 1)], 0.3)
    assert time.monotonic() - started < 3
    outbox.gate.set()
    writer.close()  # commits what is queued before the thread ends
    assert committed(outbox) == ["a/1"]


@pytest.mark.timeout(30)
def test_a_cancelled_wait_does_not_withdraw_the_events(outbox: CountingOutbox) -> None:
    writer = GroupCommit(outbox)
    outbox.gate.clear()

    async def cancelled() -> None:
        waiting = asyncio.ensure_future(writer.append([event("a", 1)]))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(cancelled())  # its loop is closed before the write ends: settling it must not fail
    outbox.gate.set()
    writer.append_blocking([event("b", 1)], 10)
    assert committed(outbox) == ["a/1", "b/1"]
    writer.close()


@pytest.mark.timeout(30)
def test_a_broken_writer_connection_is_replaced_and_loses_nothing(outbox: CountingOutbox) -> None:
    """The writer keeps one connection between batches; when it breaks (a database restart, here
    its SQLite handle closed under it), the batch is committed on a new one and no caller sees it."""
    writer = GroupCommit(outbox)
    writer.append_blocking([event("r", 1)], timeout=5)
    held = writer._connection
    assert held is not None
    raw = held.connection.dbapi_connection
    assert raw is not None
    raw.close()
    writer.append_blocking([event("r", 2)], timeout=5)
    assert writer._connection is not held
    writer.append_blocking([event("r", 3)], timeout=5)
    writer.close()
    assert committed(outbox) == ["r/1", "r/2", "r/3"]
    assert writer._connection is None  # closed with the writer
