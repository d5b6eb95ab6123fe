"""A midnight in small: hundreds of instances started at once all finish, each exactly once.

Runs on whichever Temporal the session targets (tests/conftest.py: PORPOISE_TEST_TEMPORAL=dev, the
dev server with one history shard on SQLite, or =server, the real server of deploy/temporal/ with
four shards and PostgreSQL), so the same burst is checked on both.
"""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest
from temporalio.client import Client

from tests import dsbuild
from tests.integration.helpers import submit

pytestmark = pytest.mark.burst

RUNS = int(os.environ.get("PORPOISE_TEST_BURST_RUNS", "300"))
DEADLINE = 600.0  # seconds for the whole burst; the dev server needs ~30 s for 300 on 2 cores


async def test_a_burst_of_runs_all_succeed_once(api: httpx.AsyncClient, client: Client) -> None:
    # a -> (b, c): a fan-out, so each run schedules parallel tasks as DS DAGs do. One DS retry per task,
    # as a real nightly definition has: on a starved shared machine a task's heartbeat can miss its
    # 30 s timeout (seen here at load 16 on 2 cores); the burst checks that no run is lost or doubled.
    retry = {"failRetryTimes": 1, "failRetryInterval": 1}
    tasks = [dsbuild.task("a", "echo $RANDOM", **retry), dsbuild.task("b", **retry), dsbuild.task("c", **retry)]
    saved = await submit(api, dsbuild.export("burst", tasks, [(None, "a"), ("a", "b"), ("a", "c")]))
    code = saved["code"]
    sem = asyncio.Semaphore(50)

    async def one() -> str:
        async with sem:
            r = await api.post(f"/definitions/{code}/runs", json={})
            assert r.status_code == 201, r.text
            return str(r.json()["instanceId"])

    t0 = time.monotonic()
    async with asyncio.timeout(DEADLINE):
        ids = await asyncio.gather(*(one() for _ in range(RUNS)))
        assert len(set(ids)) == RUNS
        # Visibility, as an operator would count: none running, all closed, every one SUCCESS.
        while (await client.count_workflows(f"DsDefinitionCode = {code} AND ExecutionStatus = 'Running'")).count:
            await asyncio.sleep(0.5)
        drained = time.monotonic() - t0
        # DsState is upserted just before a run completes; visibility may trail the close a little.
        while (done := (await client.count_workflows(f"DsDefinitionCode = {code} AND DsState = 'SUCCESS'")).count) \
                < RUNS:
            failed = (await client.count_workflows(
                f"DsDefinitionCode = {code} AND ExecutionStatus != 'Running' AND DsState != 'SUCCESS'")).count
            assert failed == 0, f"{failed} of {RUNS} runs did not succeed"
            await asyncio.sleep(0.5)
    assert done == RUNS
    closed = (await client.count_workflows(f"DsDefinitionCode = {code} AND ExecutionStatus = 'Completed'")).count
    assert closed == RUNS  # no run started twice, none lost
    # Each run ran each task to success: spot-check a sample through the API.
    retried = 0
    for instance_id in ids[:: max(1, RUNS // 10)]:
        status = (await api.get(f"/runs/{instance_id}")).json()
        assert status["state"] == "SUCCESS"
        assert sorted(n["name"] for n in status["nodes"]) == ["a", "b", "c"]
        assert all(n["state"] == "SUCCESS" for n in status["nodes"])
        retried += sum(n.get("attempts", 1) > 1 for n in status["nodes"])
    print(f"\nburst: {RUNS} runs on {os.environ.get('PORPOISE_TEST_TEMPORAL', 'dev')} drained in {drained:.1f} s "
          f"({RUNS / drained:.1f} runs/s); tasks retried in the sample: {retried}")
