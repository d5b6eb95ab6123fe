"""A real Apache Pulsar broker, built from Maven Central jars by deploy/pulsar/pulsar.sh.

The module starts its own standalone broker (broker + bookie + RocksDB metadata in one JVM) on free
127.0.0.1 ports with a temporary data dir, publishes through the real `pulsar-client`, consumes with
real consumers, restarts the broker on the same data and checks that the backlog survived.

Skipped when deploy/pulsar/target/lib has not been built (`deploy/pulsar/pulsar.sh build`), unless
PORPOISE_REQUIRE_PULSAR=1, which turns the skip into a failure.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator

import pulsar
import pytest

from tests.pulsar_broker import Broker, start_broker


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory)


def _topic(name: str) -> str:
    return f"persistent://public/default/porpoise-it-{name}-{uuid.uuid4().hex[:8]}"


def _drain(consumer: pulsar.Consumer, expect: int, timeout: float = 20) -> list[bytes]:
    """Receive and ack until `expect` messages came, then wait a little longer for extras."""
    seen: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = consumer.receive(timeout_millis=1000 if len(seen) >= expect else 5000)
        except pulsar.Timeout:
            if len(seen) >= expect:
                break
            continue
        seen.append(msg.data())
        consumer.acknowledge(msg)
    return seen


def test_broker_listens_on_loopback_only(broker: Broker) -> None:
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True, check=False).stdout
    ports = {broker.env["PULSAR_BROKER_PORT"], broker.env["PULSAR_WEB_PORT"], broker.env["PULSAR_BOOKIE_PORT"]}
    listening = {line.split()[3] for line in out.splitlines() if line.split()[3].rsplit(":", 1)[-1] in ports}
    assert listening == {f"127.0.0.1:{p}" for p in ports}, listening


def test_keyed_messages_arrive_once_on_key_shared(broker: Broker) -> None:
    topic = _topic("keyed")
    client = broker.client()
    try:
        consumers = [
            client.subscribe(topic, "porpoise-events", consumer_type=pulsar.ConsumerType.KeyShared,
                             consumer_name=f"c{i}", initial_position=pulsar.InitialPosition.Earliest)
            for i in range(2)
        ]
        producer = client.create_producer(
            topic, producer_name=f"porpoise-it-{uuid.uuid4().hex[:8]}", block_if_queue_full=True,
            batching_enabled=True, batching_type=pulsar.BatchingType.KeyBased)
        results: list[pulsar.Result] = []
        keys = [f"run-{i % 7}" for i in range(100)]
        for i, key in enumerate(keys):
            producer.send_async(f"event-{i}".encode(), lambda res, _mid: results.append(res),
                                partition_key=key, properties={"event_id": str(i)})
        producer.flush()
        deadline = time.monotonic() + 20
        while len(results) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert results == [pulsar.Result.Ok] * 100

        got: dict[int, tuple[str, str]] = {}  # event index -> (consumer, key)
        order: dict[str, list[int]] = {}
        deadline = time.monotonic() + 30
        while len(got) < 100 and time.monotonic() < deadline:
            for c in consumers:
                try:
                    msg = c.receive(timeout_millis=200)
                except pulsar.Timeout:
                    continue
                i = int(msg.properties()["event_id"])
                assert msg.data() == f"event-{i}".encode()
                assert i not in got, f"event {i} delivered twice"
                got[i] = (c.consumer_name(), msg.partition_key())
                order.setdefault(msg.partition_key(), []).append(i)
                c.acknowledge(msg)
        assert sorted(got) == list(range(100)), f"missing: {sorted(set(range(100)) - set(got))}"
        assert all(got[i][1] == keys[i] for i in range(100))
        # KeyShared: one consumer per key, and per-key order is the publish order.
        for key, idx in order.items():
            assert len({got[i][0] for i in idx}) == 1, key
            assert idx == sorted(idx), key
        producer.close()
        for c in consumers:
            c.close()
    finally:
        client.close()


def test_broker_deduplicates_by_producer_sequence(broker: Broker) -> None:
    topic = _topic("dedup")
    name = f"porpoise-dedup-{uuid.uuid4().hex[:8]}"
    client = broker.client()
    try:
        consumer = client.subscribe(topic, "dedup", consumer_type=pulsar.ConsumerType.Shared)
        producer = client.create_producer(topic, producer_name=name)
        for seq in range(5):
            producer.send(f"m{seq}".encode(), sequence_id=seq)
        producer.close()
        # The same producer again (a retried activity): the broker knows where it left off and
        # drops what it already stored.
        producer = client.create_producer(topic, producer_name=name)
        assert producer.last_sequence_id() == 4
        producer.send(b"m3", sequence_id=3)
        producer.send(b"m5", sequence_id=5)
        producer.close()
        seen = _drain(consumer, expect=6)
        assert seen == [b"m0", b"m1", b"m2", b"m3", b"m4", b"m5"]
    finally:
        client.close()


def test_unacked_messages_survive_a_broker_restart(broker: Broker) -> None:
    topic = _topic("durable")
    client = broker.client()
    try:
        consumer = client.subscribe(topic, "durable", consumer_type=pulsar.ConsumerType.Shared,
                                    initial_position=pulsar.InitialPosition.Earliest)
        producer = client.create_producer(topic, producer_name=f"porpoise-durable-{uuid.uuid4().hex[:8]}")
        for i in range(20):
            producer.send(f"job-{i}".encode(), partition_key=f"run-{i % 3}")
        acked = set()
        for _ in range(5):  # ack five, leave the rest unacknowledged (some received, some not)
            msg = consumer.receive(timeout_millis=10000)
            consumer.acknowledge(msg)
            acked.add(msg.data())
        consumer.close()  # flushes the pending acks
        producer.close()
    finally:
        client.close()

    pid = broker.pid()
    broker.stop()
    broker.start()
    assert broker.pid() != pid  # a new JVM on the same data dir

    client = broker.client()
    try:
        consumer = client.subscribe(topic, "durable", consumer_type=pulsar.ConsumerType.Shared)
        seen = _drain(consumer, expect=15)
        expected = {f"job-{i}".encode() for i in range(20)} - acked
        assert set(seen) == expected, f"after restart got {sorted(seen)}\n{broker.log_tail()}"
        assert len(seen) == len(expected)
    finally:
        client.close()
