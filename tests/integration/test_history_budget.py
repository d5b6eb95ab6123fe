"""A 3,000-task DAG stays inside Temporal's limits: at most `max_parallel_tasks` activities are
pending at once (the server refuses more than 2,000), and the run continues-as-new when its history
grows, carrying every node's state (temporal-notes B8)."""

from __future__ import annotations

import httpx
from temporalio.client import Client

from tests import dsbuild
from tests.integration.helpers import start, submit, wait


async def test_3000_task_dag_continues_as_new_and_succeeds(api: httpx.AsyncClient, client: Client) -> None:
    roots = [dsbuild.task(f"r{i}") for i in range(2500)]
    children = [dsbuild.task(f"c{i}") for i in range(500)]
    edges: list[tuple[str | None, str]] = [(None, t["name"]) for t in roots]
    edges += [(f"r{i}", f"c{i}") for i in range(500)]
    saved = await submit(api, dsbuild.export("three-thousand", roots + children, edges))
    instance = await start(api, saved["code"], dryRun=True)  # dry run: same history, no processes
    status = await wait(api, instance, timeout=600)
    assert status["state"] == "SUCCESS"
    assert len(status["nodes"]) == 3000
    assert {n["state"] for n in status["nodes"]} == {"SUCCESS"}
    runs = [wf async for wf in client.list_workflows(f"WorkflowId = '{instance}'")]
    assert len(runs) > 1, "expected continue-as-new to split the history"
    for wf in runs:
        history = await client.get_workflow_handle(instance, run_id=wf.run_id).fetch_history()
        assert len(history.events) < 51_200
