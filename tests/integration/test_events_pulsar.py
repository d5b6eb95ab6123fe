"""Lifecycle events on a real Apache Pulsar broker (built from Maven Central jars): the relay
publishes the outbox, consumers get every event of an instance in order, through a broker restart and
a worker killed with -9 in the middle of a run. Duplicates are possible and identified by event_id."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pulsar
import pytest
from temporalio.client import Client

from activities.events.relay import OutboxRelay
from activities.events.sinks import PulsarSink
from core.contracts import InstanceStatus
from core.settings import Settings
from model.formats import parse_document
from services.runs import start_run
from services.schemas import StartRun
from storage.outbox import Outbox, Pending
from tests import dsbuild
from tests.integration.helpers import nodes, run, wait
from tests.pulsar_broker import CLIENT_LOG, Broker, start_broker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory)


@pytest.fixture(scope="module")
def topic() -> str:
    return f"persistent://public/default/porpoise-events-it-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def relay(broker: Broker, settings: Settings, topic: str) -> AsyncIterator[None]:
    """The relay the worker runs, publishing the suite's outbox to this module's broker."""
    stop = asyncio.Event()
    outbox = Outbox(settings.resolved_database_url)
    sink = PulsarSink(broker.url, topic, send_timeout_ms=5_000, producer_name=f"it-{uuid.uuid4().hex[:6]}")
    task = asyncio.create_task(OutboxRelay(outbox, sink, idle_seconds=0.1).run(stop))
    yield
    stop.set()
    await task
    await asyncio.to_thread(sink.close)


async def consume(broker: Broker, topic: str, instance: str, until_final: str, timeout: float = 90) -> list[dict]:
    """Every event of `instance` on the topic, in arrival order, deduplicated by event_id."""

    def work() -> list[dict]:
        client = pulsar.Client(broker.url, operation_timeout_seconds=20, logger=CLIENT_LOG)
        consumer = client.subscribe(topic, f"it-{uuid.uuid4().hex[:8]}", consumer_type=pulsar.ConsumerType.KeyShared,
                                    initial_position=pulsar.InitialPosition.Earliest)
        got: list[dict] = []
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    msg = consumer.receive(timeout_millis=1000)
                except pulsar.Timeout:
                    continue
                consumer.acknowledge(msg)
                event = json.loads(msg.data())
                if event["instance_id"] != instance or event["event_id"] in seen:
                    continue
                seen.add(event["event_id"])
                got.append(event)
                if event["event_type"] == "WORKFLOW_INSTANCE_STATE_CHANGED" and event["new_state"] == until_final:
                    return got
            raise AssertionError(f"no final {until_final} event for {instance}; got {[e['event_id'] for e in got]}")
        finally:
            client.close()

    return await asyncio.to_thread(work)


def outbox_ids(settings: Settings, instance: str) -> list[str]:
    return [e["event_id"] for _, e in Outbox(settings.resolved_database_url).tail(0, 10_000, instance)]


def failing_doc() -> list[dict[str, Any]]:
    tasks = [dsbuild.task("fail", "sleep 1; exit 1"), dsbuild.task("after"), dsbuild.task("slow", "sleep 20"),
             dsbuild.task("off", flag="NO")]
    return dsbuild.export("pulsar-events", tasks, [(None, "fail"), ("fail", "after"), (None, "slow"), (None, "off")])


@pytest.mark.parametrize("strategy", ["END", "CONTINUE"])
async def test_every_event_arrives_in_order_with_the_whole_canvas(
        api: httpx.AsyncClient, relay: None, broker: Broker, topic: str, settings: Settings, strategy: str) -> None:
    doc = failing_doc()
    if strategy == "CONTINUE":
        doc[0]["taskDefinitionList"][2]["taskParams"]["rawScript"] = "sleep 1"
    status = await run(api, doc, timeout=90, failureStrategy=strategy)
    instance = status["instanceId"]
    events = await consume(broker, topic, instance, "FAILURE")
    assert [e["event_id"] for e in events] == outbox_ids(settings, instance)  # all of them, in order
    created, final = events[0], events[-1]
    assert created["event_type"] == "WORKFLOW_INSTANCE_CREATED" and len(created["nodes"]) == 4
    assert {n["name"]: n["state"] for n in final["nodes"]}["off"] == "FORBIDDEN"
    assert {n["name"]: n["state"] for n in final["nodes"]}["slow"] == ("KILL" if strategy == "END" else "SUCCESS")


async def test_broker_restart_in_the_middle_of_a_run(api: httpx.AsyncClient, relay: None, broker: Broker,
                                                    topic: str, settings: Settings) -> None:
    doc = dsbuild.export("pulsar-restart", [dsbuild.task("a", "sleep 2"), dsbuild.task("b", "sleep 4"),
                                            dsbuild.task("c")], [(None, "a"), ("a", "b"), ("b", "c")])
    saved = (await api.post("/definitions", json=doc)).json()[0]
    r = await api.post(f"/definitions/{saved['code']}/runs", json={})
    instance = r.json()["instanceId"]
    await wait(api, instance, until=lambda s: nodes(s)["b"]["state"] == "RUNNING_EXECUTION")
    await asyncio.to_thread(broker.stop)  # the broker goes away while the run goes on
    try:
        status = await wait(api, instance, timeout=60)
        assert status["state"] == "SUCCESS"  # the DAG never waited on Pulsar
    finally:
        await asyncio.to_thread(broker.start)
    events = await consume(broker, topic, instance, "SUCCESS")
    assert [e["event_id"] for e in events] == outbox_ids(settings, instance)


async def test_worker_kill_9_loses_no_event(client: Client, settings: Settings, broker: Broker, relay: None,
                                            topic: str, tmp_path: Path) -> None:
    queue = f"porpoise-kill9-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, PORPOISE_TEMPORAL_ADDRESS=settings.temporal_address, PORPOISE_TASK_QUEUE=queue,
               DATABASE_URL=settings.resolved_database_url, PORPOISE_DATA_DIR=str(settings.data_dir),
               PORPOISE_PULSAR_URL=broker.url, PORPOISE_EVENTS_TOPIC=topic)

    def spawn() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"worker-{time.monotonic_ns()}.log").open("wb")
        return subprocess.Popen([sys.executable, "-m", "api", "worker"], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)

    worker = spawn()
    try:
        doc = dsbuild.export("kill9", [dsbuild.task("a"), dsbuild.task("long", "sleep 6", failRetryTimes=2),
                                       dsbuild.task("c")], [(None, "a"), ("a", "long"), ("long", "c")])
        definition = parse_document(doc)[0]
        created = await start_run(client, settings.model_copy(update={"task_queue": queue}), definition, StartRun())
        handle = client.get_workflow_handle(created.instance_id, result_type=InstanceStatus)
        deadline = time.monotonic() + 60
        while True:  # wait until `long` runs on the doomed worker
            outbox = outbox_ids(settings, created.instance_id)
            if any("/task/" in i and i.endswith("/1/RUNNING_EXECUTION") and str(definition.tasks[1].code) in i
                   for i in outbox):
                break
            assert time.monotonic() < deadline, outbox
            await asyncio.sleep(0.2)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        worker = spawn()  # a new worker: the lost attempt comes back to this host and re-attaches
        result = await asyncio.wait_for(handle.result(), 90)
        assert result.state.value == "SUCCESS"
        long_node = next(n for n in result.nodes if n.name == "long")
        assert long_node.attempts == 2
        events = await consume(broker, topic, created.instance_id, "SUCCESS")
        assert [e["event_id"] for e in events] == outbox_ids(settings, created.instance_id)
        long_events = [(e["task"]["attempt"], e["new_state"]) for e in events if e["task"]
                       and e["task"]["name"] == "long"]
        # The lost attempt's process outlived the worker and was re-attached (docs/reliability.md): its
        # one SUCCESS is published, and no FAILURE, for a task that never failed.
        assert (1, "RUNNING_EXECUTION") in long_events
        assert [state for _, state in long_events].count("SUCCESS") == 1
        assert "FAILURE" not in {state for _, state in long_events}
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)


async def test_the_documented_consumer_dedupes_by_event_id(api: httpx.AsyncClient, relay: None, broker: Broker,
                                                          topic: str, settings: Settings) -> None:
    status = await run(api, dsbuild.export("pulsar-consumer", [dsbuild.task("a")], [(None, "a")]))
    instance = status["instanceId"]
    await consume(broker, topic, instance, "SUCCESS")  # published
    # Re-send the instance's events (as a relay retry would): the consumer prints each only once.
    outbox = Outbox(settings.resolved_database_url)
    rows = outbox.tail(0, 10_000, instance)
    sink = PulsarSink(broker.url, topic)
    try:
        sink.publish([Pending(row_id, e["event_id"], instance, e["event_type"], json.dumps(e)) for row_id, e in rows])
    finally:
        sink.close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "docs" / "events" / "consumer.py"), "--url", broker.url, "--topic", topic,
        "--subscription", f"doc-{uuid.uuid4().hex[:6]}", "--idle-seconds", "5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    mine = [json.loads(line) for line in out.decode().splitlines() if json.loads(line)["instance_id"] == instance]
    assert [e["event_id"] for e in mine] == [e["event_id"] for _, e in rows]
