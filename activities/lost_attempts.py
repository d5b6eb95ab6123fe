"""Where an attempt that lost its worker ran, read from the server's own record of it.

A SHELL or PYTHON attempt used to heartbeat its host before starting its process, so that a worker
killed a moment later still sent the next attempt back to that host (docs/reliability.md). That was
one heartbeat RPC and one execution update per task, on every run, to cover a rare fault
(docs/performance.md). The server already knows the host: when a worker takes an activity task, the
attempt's started event records the worker's identity (``pid@host``, core/temporal.py:
``worker_identity``) and Temporal's attempt number. So the workflow asks for them only when an
attempt is lost: this local activity reads that one event from the run's history.

It also knows more than a heartbeat could: the attempt number is the server's, not the last one that
happened to heartbeat.
"""

from __future__ import annotations

from temporalio import activity

from core.contracts import Activities, AttemptOrigin, LostAttemptQuery
from core.temporal import identity_host


@activity.defn(name=Activities.FIND_LOST_ATTEMPT)
async def find_lost_attempt(query: LostAttemptQuery) -> AttemptOrigin | None:
    """The started event ``query`` names: its attempt and its worker's host. None when the history
    holds no such event or its identity names no host (the workflow then keeps its old link)."""
    handle = activity.client().get_workflow_handle(query.workflow_id, run_id=query.run_id)
    async for event in handle.fetch_history_events():
        if event.event_id < query.started_event_id:
            continue
        if event.event_id == query.started_event_id and event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            host = identity_host(started.identity)
            return AttemptOrigin(attempt=started.attempt, host=host) if host else None
        break
    return None
