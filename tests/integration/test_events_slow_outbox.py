"""A slow outbox must not fail tasks: while an attempt waits to record its events, it keeps
heartbeating, so Temporal's heartbeat timeout (30 s) does not take a slow disk for a dead worker.

Found by the events benchmark (docs/performance.md): with the relay publishing to Pulsar on a
saturated machine, 5 % of the runs failed because recording the SUCCESS event outlasted the
heartbeat timeout.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from sqlalchemy.engine import Connection
from temporalio.client import Client

from api.app import create_app
from api.worker import build_worker
from core.events import LifecycleEvent
from core.settings import Settings
from storage.outbox import Outbox
from tests import dsbuild

from .helpers import run

STALL_SECONDS = 33.0  # longer than the task heartbeat timeout (workflows/ds_workflow.py: 30 s)


class SlowOutbox(Outbox):
    """The real outbox, stalling on the events that close an attempt (a disk or lock stall)."""

    def append(self, events: Sequence[LifecycleEvent], connection: Connection | None = None) -> None:
        if any(e.task is not None and e.new_state == "SUCCESS" for e in events):
            time.sleep(STALL_SECONDS)
        super().append(events, connection)


@pytest.fixture(scope="module")
async def slow_api(client: Client, settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Outbox]]:
    own = settings.model_copy(update={"task_queue": f"slow-outbox-{uuid.uuid4().hex[:6]}",
                                      "events_emit_bound_seconds": 60.0})  # the stall is within the bound
    outbox = SlowOutbox(own.resolved_database_url)
    async with build_worker(client, own, outbox=outbox):
        app = create_app(own)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://porpoise") as c:
            yield c, outbox


async def test_a_stalled_outbox_does_not_time_the_task_out(slow_api: tuple[httpx.AsyncClient, Outbox]) -> None:
    api, outbox = slow_api
    status = await run(api, dsbuild.export("slow-outbox", [dsbuild.task("t", "echo hi")], [(None, "t")]))
    assert status["state"] == "SUCCESS", status
    assert status["nodes"][0]["attempts"] == 1
    ids = {e["event_id"] for _, e in outbox.tail(0, 10_000, status["instanceId"])}
    assert any(i.endswith("/SUCCESS") and "/task/" in i for i in ids), ids  # recorded after the stall
