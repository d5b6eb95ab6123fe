"""Committing the instance events an activation handed over (api/interceptors.py, InstanceEventHandoff):
on a real SQLite outbox, through the worker's group-commit writer (storage/outbox.py), called from a
thread as the SDK's workflow threads call it, or from the event loop in the SDK's debug mode. A
failing write is retried within the wait, and a stalled one lets the activation go on after the wait
without losing the event."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection

from api.interceptors import InstanceEventHandoff
from core.events import EventType, LifecycleEvent
from storage.outbox import GroupCommit, Outbox


class FlakyOutbox(Outbox):
    """The real outbox; the first ``failures`` writes raise, and while ``stall`` is set writes wait."""

    def __init__(self, url: str, failures: int = 0) -> None:
        super().__init__(url)
        self.failures, self.stall = failures, threading.Event()

    def append(self, events: Sequence[LifecycleEvent], connection: Connection | None = None) -> None:
        while self.stall.is_set():
            time.sleep(0.05)
        if self.failures > 0:
            self.failures -= 1
            raise OSError("disk I/O error")
        super().append(events, connection)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The worker's event loop, running in its own thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop

    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def event(n: int) -> LifecycleEvent:
    return LifecycleEvent(event_id=f"wf/run/wf/{n}", event_type=EventType.WORKFLOW_INSTANCE_STATE_CHANGED,
                          timestamp=datetime.now(UTC), project_code=1, definition_code=2, definition_version=1,
                          instance_id="wf", workflow_id="wf", run_id="run", new_state="RUNNING_EXECUTION")


def recorded(outbox: Outbox) -> list[str]:
    return [e["event_id"] for _, e in outbox.tail(0, 100)]


@pytest.mark.timeout(30)
def test_events_handed_over_are_committed_in_order_per_run(tmp_path: Path) -> None:
    outbox = FlakyOutbox(f"sqlite:///{tmp_path / 'o.db'}")
    handoff = InstanceEventHandoff(GroupCommit(outbox), 5.0)
    handoff("run", event(1))
    handoff("other", event(9))
    handoff("run", event(2))
    handoff.commit(handoff.take("run"))
    assert recorded(outbox) == ["wf/run/wf/1", "wf/run/wf/2"]
    assert handoff.take("run") == []
    assert [e.event_id for e in handoff.take("other")] == ["wf/run/wf/9"]  # another run's stay its own


@pytest.mark.timeout(30)
def test_a_failing_write_is_retried_within_the_wait(tmp_path: Path) -> None:
    outbox = FlakyOutbox(f"sqlite:///{tmp_path / 'o.db'}", failures=2)
    handoff = InstanceEventHandoff(GroupCommit(outbox), 5.0)
    handoff.commit([event(1)])
    assert recorded(outbox) == ["wf/run/wf/1"]
    handoff.commit([event(1)])  # a workflow task retried after the commit re-sends the same id
    assert recorded(outbox) == ["wf/run/wf/1"]


@pytest.mark.timeout(30)
def test_a_stalled_outbox_holds_the_activation_only_for_the_wait(tmp_path: Path) -> None:
    outbox = FlakyOutbox(f"sqlite:///{tmp_path / 'o.db'}")
    outbox.stall.set()
    handoff = InstanceEventHandoff(GroupCommit(outbox), 0.5)
    started = time.monotonic()
    handoff.commit([event(1)])
    assert 0.4 < time.monotonic() - started < 3
    assert recorded(outbox) == []
    outbox.stall.clear()  # the write left to the writer still lands
    deadline = time.monotonic() + 10
    while recorded(outbox) != ["wf/run/wf/1"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.timeout(30)
def test_an_activation_on_the_loop_itself_does_not_block_its_write(tmp_path: Path,
                                                                   loop: asyncio.AbstractEventLoop) -> None:
    """The SDK's debug mode runs activations on the worker's event loop: waiting there for the write
    would hold every workflow and activity of the worker for as long as the write takes."""
    outbox = FlakyOutbox(f"sqlite:///{tmp_path / 'o.db'}")
    handoff = InstanceEventHandoff(GroupCommit(outbox), 5.0)

    async def activation() -> float:
        started = time.monotonic()
        handoff.commit([event(1)])
        return time.monotonic() - started

    assert asyncio.run_coroutine_threadsafe(activation(), loop).result(10) < 1
    deadline = time.monotonic() + 10
    while recorded(outbox) != ["wf/run/wf/1"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
