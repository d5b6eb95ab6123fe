"""DEPENDENT tasks inside the generic workflow (reference §4.10): durable polling of other
definitions' runs through Temporal visibility, within the business date's window."""

from __future__ import annotations

from typing import Any

import httpx

from tests import dsbuild
from tests.integration.helpers import nodes, run, start, states, submit, wait


def dependent(name: str, code: int, *, date_value: str = "today", dep: int = 0, interval: int = 1,
              policy: str = "DEPENDENT_FAILURE_FAILURE", passing: bool = False) -> dict[str, Any]:
    return dsbuild.task(name, task_type="DEPENDENT", params={"localParams": [], "dependence": {
        "relation": "AND", "checkInterval": interval, "failurePolicy": policy, "failureWaitingTime": 1,
        "dependTaskList": [{"relation": "AND", "dependItemList": [
            {"projectCode": 42, "definitionCode": code, "depTaskCode": dep, "cycle": "day",
             "dateValue": date_value, "parameterPassing": passing}]}]}})


async def test_dependent_waits_for_the_upstream_run_then_succeeds(api: httpx.AsyncClient) -> None:
    up = await submit(api, dsbuild.export("dep-up", [dsbuild.task("u", "sleep 2")], [(None, "u")]))
    down = dsbuild.export("dep-down", [dependent("wait-up", up["code"]), dsbuild.task("after")],
                          [(None, "wait-up"), ("wait-up", "after")])
    saved = await submit(api, down)
    schedule = "2024-05-02 09:00:00"  # DS format, no zone: the run's timezone applies
    waiting = await start(api, saved["code"], scheduleTime=schedule)
    await wait(api, waiting, until=lambda s: nodes(s)["wait-up"]["state"] == "RUNNING_EXECUTION")
    upstream = await start(api, up["code"], scheduleTime="2024-05-02 01:00:00")
    assert (await wait(api, upstream))["state"] == "SUCCESS"
    status = await wait(api, waiting, timeout=60)
    assert status["state"] == "SUCCESS" and states(status) == {"wait-up": "SUCCESS", "after": "SUCCESS"}


async def test_dependent_on_a_failed_upstream_fails(api: httpx.AsyncClient) -> None:
    up = await submit(api, dsbuild.export("dep-up-bad", [dsbuild.task("u", "exit 1")], [(None, "u")]))
    first = await start(api, up["code"], scheduleTime="2024-06-01 01:00:00")
    assert (await wait(api, first))["state"] == "FAILURE"
    down = dsbuild.export("dep-down-bad", [dependent("wait-up", up["code"])], [(None, "wait-up")])
    status = await run(api, down, scheduleTime="2024-06-01 12:00:00", timeout=60)
    assert status["state"] == "FAILURE" and states(status) == {"wait-up": "FAILURE"}
    assert "dependence failed" in nodes(status)["wait-up"]["error"]


async def test_stop_while_waiting_kills_the_dependent(api: httpx.AsyncClient) -> None:
    up = await submit(api, dsbuild.export("dep-never", [dsbuild.task("u")], [(None, "u")]))
    saved = await submit(api, dsbuild.export("dep-stop", [dependent("w", up["code"])], [(None, "w")]))
    instance = await start(api, saved["code"], scheduleTime="2030-01-01 00:00:00")
    await wait(api, instance, until=lambda s: nodes(s)["w"]["state"] == "RUNNING_EXECUTION")
    assert (await api.post(f"/runs/{instance}/stop")).status_code == 200
    status = await wait(api, instance)
    assert status["state"] == "STOP" and states(status) == {"w": "KILL"}
