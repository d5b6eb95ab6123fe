"""Concurrency between instances on the durable semaphore (reference §4.12, §4.17): task groups
limit concurrent tasks across instances; serial execution types queue, discard or preempt."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx

from tests import dsbuild
from tests.integration.helpers import nodes, start, states, submit, wait


def overlaps(runs: list[dict[str, Any]]) -> int:
    """The largest number of tasks that ran at the same time."""
    points = []
    for n in runs:
        points += [(datetime.fromisoformat(n["startTime"]), 1), (datetime.fromisoformat(n["endTime"]), -1)]
    best = cur = 0
    for _, d in sorted(points, key=lambda p: (p[0], p[1])):
        cur += d
        best = max(best, cur)
    return best


async def test_task_group_limits_tasks_across_instances(api: httpx.AsyncClient) -> None:
    group = 4242
    r = await api.put(f"/task-groups/{group}", json={"name": "pushes", "groupSize": 2})
    assert r.status_code == 200, r.text
    tasks = [dsbuild.task(f"t{i}", "sleep 1", taskGroupId=group, taskGroupPriority=i) for i in range(3)]
    saved = await submit(api, dsbuild.export("grouped", tasks, [(None, t["name"]) for t in tasks]))
    instances = [await start(api, saved["code"]) for _ in range(2)]
    finals = [await wait(api, i, timeout=90) for i in instances]
    assert all(f["state"] == "SUCCESS" for f in finals)
    ran = [n for f in finals for n in f["nodes"]]
    assert overlaps(ran) <= 2
    assert (await api.get("/task-groups")).json()[0]["groupSize"] >= 1


async def test_serial_discard_stops_the_second_instance(api: httpx.AsyncClient) -> None:
    doc = dsbuild.export("discard", [dsbuild.task("a", "sleep 3")], [(None, "a")], executionType="SERIAL_DISCARD")
    saved = await submit(api, doc)
    first = await start(api, saved["code"])
    await wait(api, first, until=lambda s: nodes(s)["a"]["state"] == "RUNNING_EXECUTION")
    second = await wait(api, await start(api, saved["code"]))
    assert second["state"] == "STOP" and states(second) == {"a": "NOT_RUN"}
    assert (await wait(api, first))["state"] == "SUCCESS"


async def test_serial_wait_runs_instances_one_after_another(api: httpx.AsyncClient) -> None:
    doc = dsbuild.export("serial-wait", [dsbuild.task("a", "sleep 2")], [(None, "a")], executionType="SERIAL_WAIT")
    saved = await submit(api, doc)
    first = await start(api, saved["code"])
    await wait(api, first, until=lambda s: nodes(s)["a"]["state"] == "RUNNING_EXECUTION")
    second = await start(api, saved["code"])
    queued = await wait(api, second, until=lambda s: s["state"] == "SERIAL_WAIT")
    assert states(queued)["a"] == "WAITING"
    a, b = await asyncio.gather(wait(api, first), wait(api, second))
    assert a["state"] == b["state"] == "SUCCESS"
    assert nodes(b)["a"]["startTime"] >= nodes(a)["a"]["endTime"]
