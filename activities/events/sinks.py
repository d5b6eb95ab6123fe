"""Where the relay sends events. One small interface; Pulsar in production and tests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from storage.outbox import Pending

log = logging.getLogger("porpoise.events")

TopicFn = Callable[[str], str]  # message body -> topic (e.g. one topic per project)


class EventSink(Protocol):
    def publish(self, events: Sequence[Pending]) -> None:
        """Deliver every event or raise; the relay retries the whole batch (consumers dedupe)."""

    def close(self) -> None: ...


class OutboxOnlySink:
    """The embedded default: events stay in the outbox, read with `porpoise events tail`."""

    def publish(self, events: Sequence[Pending]) -> None:
        return None

    def close(self) -> None:
        return None


class PulsarSink:
    """Plain JSON messages (schema in docs/events/), key = instance id for KeyShared/Failover order.

    Producer settings for at-least-once without blocking the DAG (the relay, not the DAG, waits):
    block_if_queue_full, a send timeout, batching by key, a stable producer name so broker-side
    deduplication (when enabled) can use sequence ids; every message also carries event_id.
    """

    def __init__(self, service_url: str, topic_for: dict[str, str] | str | TopicFn, *, send_timeout_ms: int = 30_000,
                 producer_name: str | None = None) -> None:
        import pulsar

        self._pulsar = pulsar
        # The client's C++ log goes straight to standard error: a Python logger here can abort the
        # worker at exit (SIGABRT, apache/pulsar-client-python#256), as it did the example consumer.
        self.client = pulsar.Client(service_url, operation_timeout_seconds=30,
                                    logger=pulsar.FileLogger(pulsar.LoggerLevel.Warn, "/dev/stderr"))
        self.topic_for = topic_for
        self.send_timeout_ms = send_timeout_ms
        self.producer_name = producer_name
        self.producers: dict[str, object] = {}

    def _topic(self, event: Pending) -> str:
        if isinstance(self.topic_for, str):
            return self.topic_for
        if isinstance(self.topic_for, dict):
            return self.topic_for.get(event.event_type) or self.topic_for["default"]
        return self.topic_for(event.body)

    def _producer(self, topic: str):  # type: ignore[no-untyped-def]
        if topic not in self.producers:
            name = f"{self.producer_name}-{topic.rsplit('/', 1)[-1]}" if self.producer_name else None
            self.producers[topic] = self.client.create_producer(
                topic,
                producer_name=name,
                block_if_queue_full=True,
                send_timeout_millis=self.send_timeout_ms,
                batching_enabled=True,
                batching_type=self._pulsar.BatchingType.KeyBased,
                batching_max_publish_delay_ms=5,
            )
        return self.producers[topic]

    def publish(self, events: Sequence[Pending]) -> None:
        errors: list[object] = []

        def done(result: object, _msg_id: object) -> None:
            if result != self._pulsar.Result.Ok:
                errors.append(result)

        producers = set()
        for e in events:
            producer = self._producer(self._topic(e))
            producers.add(producer)
            producer.send_async(e.body.encode(), done, partition_key=e.instance_id,  # type: ignore[attr-defined]
                                properties={"event_id": e.event_id, "event_type": e.event_type})
        for p in producers:
            p.flush()  # type: ignore[attr-defined]
        if errors:
            raise RuntimeError(f"pulsar refused {len(errors)} of {len(events)} events: {errors[0]}")

    def close(self) -> None:
        for p in self.producers.values():
            try:
                p.close()  # type: ignore[attr-defined]
            except Exception:  # closing a producer of a dead broker must not hide the real error
                log.debug("closing producer failed", exc_info=True)
        self.client.close()
