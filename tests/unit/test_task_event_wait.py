"""How an attempt waits for its task events (activities/events/interceptor.py, ``TaskEvents._record``),
on a real SQLite outbox and group-commit writer, in the SDK's activity test environment: a quick
commit costs no heartbeat; a stalled one is waited for with heartbeats up to the bound, and the events
are still committed after the attempt went on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.events import interceptor
from activities.events.interceptor import TaskEvents
from storage.outbox import GroupCommit

from .test_group_commit import CountingOutbox, committed, event


def recording(outbox: CountingOutbox, bound: float) -> tuple[TaskEvents, GroupCommit]:
    writer = GroupCommit(outbox)
    return TaskEvents(None, writer, bound), writer  # type: ignore[arg-type]  # no inner chain: _record only


@pytest.mark.timeout(30)
def test_a_quick_commit_returns_at_once_and_sends_no_heartbeat(tmp_path: Path) -> None:
    outbox = CountingOutbox(f"sqlite:///{tmp_path / 'o.db'}")
    events, writer = recording(outbox, bound=30.0)
    beats: list[Any] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    asyncio.run(env.run(events._record, [event("r", 1)], {"pid": 7}))
    assert committed(outbox) == ["r/1"] and beats == []
    writer.close()


@pytest.mark.timeout(30)
def test_a_stalled_commit_is_waited_for_with_heartbeats_up_to_the_bound(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interceptor, "HEARTBEAT_EVERY", 0.05)
    outbox = CountingOutbox(f"sqlite:///{tmp_path / 'o.db'}")
    outbox.gate.clear()  # the disk stalls
    events, writer = recording(outbox, bound=0.4)
    beats: list[Any] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    t0 = time.monotonic()
    asyncio.run(env.run(events._record, [event("r", 1)], {"pid": 7}))
    waited = time.monotonic() - t0
    assert 0.4 <= waited < 2.0, waited  # the bound, not the stall
    assert len(beats) >= 4 and all(b == ({"pid": 7},) for b in beats), beats  # with the last details
    assert committed(outbox) == []
    outbox.gate.set()
    writer.close()  # the stall ends: what the attempt queued is committed, not withdrawn
    assert committed(outbox) == ["r/1"]
