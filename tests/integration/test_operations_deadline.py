"""Every operation ends (issue 16, item 5): with no worker to answer, pause answers 503 within the bound
and stop terminates the run as a last resort, with the reason in the DS status and in Temporal."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from api.app import create_app
from api.worker import build_worker
from core.settings import Settings
from tests import dsbuild
from tests.integration.helpers import start, submit, wait


@pytest.mark.timeout(240)
async def test_stop_of_a_run_whose_worker_is_gone_ends_within_the_bound(client: Client, settings: Settings) -> None:
    own = settings.model_copy(update={"task_queue": f"porpoise-gone-{uuid.uuid4().hex[:6]}",
                                      "operation_answer_seconds": 3.0, "events_enabled": False})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(own)), base_url="http://porpoise",
                                 timeout=60) as api:
        worker = build_worker(client, own)
        async with worker:
            saved = await submit(api, dsbuild.export("orphaned", [dsbuild.task("long", "sleep 120")],
                                                     [(None, "long")]))
            instance = await start(api, saved["code"])
            await wait(api, instance, timeout=60,
                       until=lambda s: any(n["state"] == "RUNNING_EXECUTION" for n in s["nodes"]))
        # The worker is gone; the run is still RUNNING on the server.
        handle = client.get_workflow_handle(instance)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

        began = time.monotonic()
        r = await api.post(f"/runs/{instance}/pause")
        assert r.status_code == 503, r.text
        assert "no worker answered" in r.json()["detail"]

        r = await api.post(f"/runs/{instance}/stop")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "STOP"
        assert time.monotonic() - began < 30

        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.TERMINATED
        status = (await api.get(f"/runs/{instance}")).json()
        assert status["state"] == "STOP"
        assert "no worker answered within 3 s" in status["endReason"]
        history = await handle.fetch_history()
        terminated = [e.workflow_execution_terminated_event_attributes.reason for e in history.events
                      if e.HasField("workflow_execution_terminated_event_attributes")]
        assert terminated and "no worker answered" in terminated[0]
