"""Lifecycle events: a durable outbox in Porpoise's database, a relay to a sink (Pulsar), and the
activity interceptor that records task-instance events.

Why an outbox: the DAG must never wait on the broker nor fail because of it, yet no event may be lost,
not even on a worker's kill -9. Every event is first committed to the `event_outbox` table (local,
fast, in the same database as the definitions); a relay publishes committed rows to the sink in id
order and marks them published, retrying until the broker is back. Instance-level events are handed
by the workflow interceptor to its worker, which commits them after the activation that emitted them
(api/interceptors.py); task-level events are written by the activity interceptor around each attempt.
"""
