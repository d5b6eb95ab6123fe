"""CPU starvation never sticks a run (issue 16, item 3).

* The 3,000-task DAG ends SUCCESS while busy processes saturate every core.
* A workflow task that trips the SDK's deadlock detector (an activation held past the window, what a
  starved CPU does) fails, is retried, and the run recovers on the next attempt; the worker is not
  left with a workflow it cannot evict.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

import api.worker as worker_module
from api.app import create_app
from bench.activations import ActivationLog, TimedRunner
from core.settings import Settings
from tests import dsbuild
from tests.integration.helpers import start, submit, wait


@pytest.fixture
def busy_cpus() -> Iterator[list[subprocess.Popen[bytes]]]:
    """One CPU burner per core, plus one: the worker competes for every slice."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range((os.cpu_count() or 2) + 1)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(10)


@pytest.mark.timeout(1500)
async def test_3000_task_dag_succeeds_on_saturated_cpus(api: httpx.AsyncClient, client: Client,
                                                        busy_cpus: list[subprocess.Popen[bytes]]) -> None:
    roots = [dsbuild.task(f"r{i}") for i in range(2500)]
    children = [dsbuild.task(f"c{i}") for i in range(500)]
    edges: list[tuple[str | None, str]] = [(None, t["name"]) for t in roots]
    edges += [(f"r{i}", f"c{i}") for i in range(500)]
    saved = await submit(api, dsbuild.export("starved-three-thousand", roots + children, edges))
    instance = await start(api, saved["code"], dryRun=True)
    assert all(p.poll() is None for p in busy_cpus)  # the cores really are busy
    status = await wait(api, instance, timeout=1200)
    assert status["state"] == "SUCCESS"
    assert {n["state"] for n in status["nodes"]} == {"SUCCESS"}
    assert all(p.poll() is None for p in busy_cpus)


@pytest.mark.timeout(300)
async def test_a_deadlock_trip_is_retried_and_the_run_recovers(client: Client, settings: Settings) -> None:
    """The first activation of the run is held 3 s on the workflow thread (the SDK's own 2 s window):
    the SDK reports a deadlock, the workflow task fails, and the retry finishes the run."""
    stalled: list[str] = []

    def stall(act: Any, instance: Any) -> float:
        if instance.workflow_type == "DsWorkflow" and not stalled and not act.is_replaying:
            stalled.append(instance.run_id)
            return 3.0
        return 0.0

    own = settings.model_copy(update={"task_queue": f"porpoise-starve-{uuid.uuid4().hex[:6]}",
                                      "workflow_deadlock_seconds": 2.0, "events_enabled": False})
    log = ActivationLog()
    real_runner = worker_module.SandboxedWorkflowRunner
    worker_module.SandboxedWorkflowRunner = lambda **kw: TimedRunner(real_runner(**kw), log, stall)  # type: ignore
    try:
        worker = worker_module.build_worker(client, own)
    finally:
        worker_module.SandboxedWorkflowRunner = real_runner  # type: ignore[misc]
    async with worker, httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(own)),
                                         base_url="http://porpoise") as api:
        doc = dsbuild.export("stalled", [dsbuild.task("a", "echo a"), dsbuild.task("b", "echo b")], [(None, "a"),
                                                                                                      ("a", "b")])
        saved = await submit(api, doc)
        instance = await start(api, saved["code"])
        status = await wait(api, instance, timeout=120)
        assert status["state"] == "SUCCESS", status
        assert stalled, "the stall never happened"
        history = await client.get_workflow_handle(instance).fetch_history()
        failures = [str(await client.data_converter.decode_failure(e.workflow_task_failed_event_attributes.failure))
                    for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
        assert any("deadlock" in m.lower() for m in failures), failures
        assert worker._workflow_worker is not None
        assert worker._workflow_worker._could_not_evict_count == 0  # nothing stuck in the cache
