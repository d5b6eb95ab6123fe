"""Pulsar restart while lifecycle events flow (issue 16 item 9): a burst of runs on a real ``porpoise
worker`` whose relay publishes to a real Pulsar standalone broker; the broker JVM is killed with
``kill -9`` (or SIGTERM) mid-burst and started again on the same data directory and ports. Afterwards every event
of the outbox is on the topic (0 lost), duplicates are counted apart (same event_id: the documented
consumer, docs/events/consumer.py, prints each once), each instance's events arrive in commit order,
and every run ends SUCCESS.

The broker is this test's own (tests/pulsar_broker.py: its own data directory and free ports), never
the shared one on 6650; teardown stops it (SIGKILL if it does not go) even when the test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import psutil
import pulsar
import pytest

from storage.outbox import Outbox
from tests.chaos.conftest import (
    ChaosStack,
    a_fifth_done,
    assert_all_succeeded,
    final_states,
    hard_limit,
    start_with_burst,
    successes,
    wait_until,
)
from tests.pulsar_broker import CLIENT_LOG, Broker, start_broker

ROOT = Path(__file__).resolve().parents[2]
RUNS = 60
# Long enough that runs still record events while the broker is down: a SIGTERM'd broker takes a few
# seconds to stop and restart, and with 1 s tasks the whole burst could end first (it did once task
# supervisors were forked from a zygote: 60 runs in 12.6 s).
TASK_SECONDS = 3
LIMIT = 200.0  # the scenario's hard limit (~140 s at a load average of 20); the first broker start is in the fixture


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """A broker of this test alone; killed outright at teardown if a graceful stop does not end it."""
    monkeypatch.setenv("PULSAR_STOP_TIMEOUT", "10")
    gen = start_broker(tmp_path_factory)
    b = next(gen)
    try:
        yield b
    finally:
        try:
            next(gen, None)  # pulsar.sh stop
        finally:  # also a JVM a `pulsar.sh start` cut short by the time limit launched after all
            for p in psutil.process_iter(["cmdline"]):
                with contextlib.suppress(psutil.Error):
                    if any(f"{b.data}/" in part for part in p.info["cmdline"] or []):
                        p.kill()


def pending_count(outbox: Outbox) -> int:
    return len(outbox.pending(100_000))


def read_topic(url: str, topic: str, want: set[str], timeout: float) -> list[str]:
    """Every message on the topic from the earliest, as event_ids in arrival order (duplicates kept):
    until all of ``want`` were seen and the topic stayed quiet for 3 s, or ``timeout``."""
    client = pulsar.Client(url, operation_timeout_seconds=20, logger=CLIENT_LOG)
    try:
        consumer = client.subscribe(topic, f"chaos-{uuid.uuid4().hex[:8]}", consumer_type=pulsar.ConsumerType.Exclusive,
                                    initial_position=pulsar.InitialPosition.Earliest)
        got: list[str] = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            try:
                msg = consumer.receive(timeout_millis=500)
            except pulsar.Timeout:
                if want <= set(got) and time.monotonic() - quiet_since > 3:
                    break
                continue
            quiet_since = time.monotonic()
            consumer.acknowledge(msg)
            got.append(json.loads(msg.data())["event_id"])
        return got
    finally:
        client.close()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_pulsar_restart_mid_burst_loses_no_event(stack: ChaosStack, broker: Broker, tmp_path: Path,
                                                       sig: signal.Signals) -> None:
    await hard_limit(LIMIT, _scenario(stack, broker, tmp_path, sig))


async def _scenario(stack: ChaosStack, broker: Broker, tmp_path: Path, sig: signal.Signals) -> None:
    topic = f"persistent://public/default/porpoise-chaos-{uuid.uuid4().hex[:8]}"
    stack.env.update(PORPOISE_EVENTS_ENABLED="true", PORPOISE_PULSAR_URL=broker.url, PORPOISE_EVENTS_TOPIC=topic)
    outbox = Outbox(stack.settings.resolved_database_url)
    marks = tmp_path / "finished.txt"
    ids, began = await start_with_burst(stack, "chaos-pulsar", marks, TASK_SECONDS, RUNS)
    total = RUNS * 5
    # Kill when a fifth of the tasks are done: events are being recorded and published then.
    await a_fifth_done(marks, total)
    published_before = outbox.last_id() - pending_count(outbox)
    pid = broker.pid()
    killed = time.monotonic()
    # kill -9: the broker JVM (broker + bookie) dies at once. SIGTERM: the JVM's shutdown hooks run
    # (the bookie's beside the broker's, no graceful unload first), as a plain `kill` or systemd would.
    jvm = psutil.Process(pid)
    jvm.send_signal(sig)
    try:
        await asyncio.to_thread(jvm.wait, 30)
        forced = False
    except psutil.TimeoutExpired:
        jvm.kill()
        await asyncio.to_thread(jvm.wait, 30)
        forced = True
    events_at_kill = outbox.last_id()
    await asyncio.to_thread(broker.start)  # same data directory, same ports
    down = time.monotonic() - killed
    recorded_while_down = outbox.last_id() - events_at_kill
    client = await stack.client()
    states = await final_states(client, ids)
    runs_done = time.monotonic()
    # Every run has ended, so the outbox is complete: wait for the relay to publish all of it.
    await wait_until(lambda: pending_count(outbox) == 0, 60, "the relay to publish the whole outbox")
    caught_up = time.monotonic() - killed
    rows = outbox.tail(0, 1_000_000)
    committed = [e["event_id"] for _, e in rows]
    got = await asyncio.to_thread(read_topic, broker.url, topic, set(committed), 60)
    counts = Counter(got)
    # Each instance's events, first arrivals only, must come in commit order.
    order: dict[str, list[str]] = defaultdict(list)
    for _, e in rows:
        order[e["instance_id"]].append(e["event_id"])
    first_seen: dict[str, list[str]] = defaultdict(list)
    instance_of = {e["event_id"]: e["instance_id"] for _, e in rows}
    seen: set[str] = set()
    for event_id in got:
        if event_id in instance_of and event_id not in seen:
            seen.add(event_id)
            first_seen[instance_of[event_id]].append(event_id)
    out_of_order = sum(1 for i, evs in order.items() if first_seen.get(i) != evs)
    # The documented consumer, on the same topic: each event once.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "docs" / "events" / "consumer.py"), "--url", broker.url, "--topic", topic,
        "--subscription", f"doc-{uuid.uuid4().hex[:6]}", "--idle-seconds", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    printed = [json.loads(line)["event_id"] for line in out.decode().splitlines()]
    figures = {
        "signal": sig.name, "sigkill_after_30s": forced, "runs": RUNS, "tasks": total,
        "success": successes(states),
        "events_in_outbox": len(committed),
        "published_before_kill": published_before,
        "recorded_while_broker_down": recorded_while_down,
        "broker_down_seconds": round(down, 1),
        "relay_caught_up_seconds_after_kill": round(caught_up, 1),
        "messages_on_topic": len(got),
        "events_lost": len(set(committed) - set(counts)),
        "duplicate_messages": sum(n - 1 for n in counts.values()),
        "unknown_messages": len(set(counts) - set(committed)),
        "instances_out_of_order": out_of_order,
        "documented_consumer_printed": len(printed),
        "documented_consumer_duplicates": len(printed) - len(set(printed)),
        "seconds_runs": round(runs_done - began, 1), "seconds_total": round(time.monotonic() - began, 1),
    }
    print(f"CHAOS pulsar-restart {sig.name}", json.dumps(figures))
    (tmp_path.parent / f"chaos-pulsar-restart-{sig.name}.json").write_text(json.dumps(figures))
    assert_all_succeeded(states)
    assert published_before > 0 and recorded_while_down > 0, f"the kill was not mid-flow: {figures}"
    assert len(committed) >= RUNS * 18, figures  # 18 events per 5-task run (docs/events/README.md)
    assert figures["events_lost"] == 0, f"lost: {sorted(set(committed) - set(counts))[:5]}"
    assert figures["unknown_messages"] == 0 and out_of_order == 0, figures
    assert proc.returncode == 0 and sorted(printed) == sorted(committed), figures
