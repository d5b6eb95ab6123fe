"""A minimal Porpoise lifecycle-event consumer: KeyShared subscription, dedupe by event_id.

Each workflow instance's events carry the instance id as their key, so a KeyShared (or Failover)
subscription sees one instance's events in order, even with several consumers. Delivery is
at-least-once: a re-sent event has the same event_id, so remember the ids you have handled.

    python docs/events/consumer.py --url pulsar://127.0.0.1:6650 \\
        --topic persistent://public/default/porpoise-events --subscription my-module

It prints one JSON line per new event. `--idle-seconds` stops after that long without messages.
"""

from __future__ import annotations

import argparse
import json
import sys

import pulsar


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--subscription", required=True)
    ap.add_argument("--idle-seconds", type=float, default=0, help="stop after this long idle (0: never)")
    args = ap.parse_args()

    # The client's own log goes straight to standard error from C++. A Python logger here can abort
    # the process at exit now and then (the client logs from its threads while the interpreter is
    # finalising: apache/pulsar-client-python#256), and standard output is the events.
    client = pulsar.Client(args.url, logger=pulsar.FileLogger(pulsar.LoggerLevel.Warn, "/dev/stderr"))
    consumer = client.subscribe(
        args.topic, args.subscription,
        consumer_type=pulsar.ConsumerType.KeyShared,
        initial_position=pulsar.InitialPosition.Earliest,
    )
    seen: set[str] = set()  # a real module keeps this in its own store, next to what the event changed
    timeout_ms = int(args.idle_seconds * 1000) if args.idle_seconds else None
    try:
        while True:
            try:
                msg = consumer.receive(timeout_millis=timeout_ms) if timeout_ms else consumer.receive()
            except pulsar.Timeout:
                break
            event = json.loads(msg.data())
            if event["event_id"] not in seen:
                seen.add(event["event_id"])
                sys.stdout.write(json.dumps(event) + "\n")
                sys.stdout.flush()
            consumer.acknowledge(msg)  # after handling: a crash before this re-delivers, never loses
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
