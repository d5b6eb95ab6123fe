"""DS ``executors/execute`` on running and finished instances: STOP, PAUSE, RECOVER_SUSPENDED_PROCESS,
START_FAILURE_TASK_PROCESS, as a DS client sends them (form bodies, integer instance ids)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from tests.integration.test_ds_rest import create_definition, envelope_err, envelope_ok, form, new_project


async def _started(api: httpx.AsyncClient, project: int, code: int, failure: str = "CONTINUE") -> int:
    envelope_ok(await form(api, "POST", f"/projects/{project}/process-definition/{code}/release",
                           {"releaseState": "ONLINE"}))
    ids = envelope_ok(await form(api, "POST", f"/projects/{project}/executors/start-workflow-instance", {
        "workflowDefinitionCode": code, "scheduleTime": "", "failureStrategy": failure, "warningType": "NONE"}))
    return int(ids[0])


async def _until(api: httpx.AsyncClient, project: int, instance_id: int, check: Any, timeout: float = 60
                 ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        inst = envelope_ok(await form(api, "GET", f"/projects/{project}/process-instances/{instance_id}"))
        tasks = envelope_ok(await form(api, "GET", f"/projects/{project}/process-instances/{instance_id}/tasks"))
        states = {t["name"]: t["state"] for t in tasks["taskList"]}
        if check(inst, states):
            return {"instance": inst, "tasks": states}
        assert time.monotonic() < deadline, (inst, states)
        await asyncio.sleep(0.3)


async def _execute(api: httpx.AsyncClient, project: int, instance_id: int, kind: str) -> None:
    envelope_ok(await form(api, "POST", f"/projects/{project}/executors/execute",
                           {"processInstanceId": instance_id, "executeType": kind}))


async def test_stop_then_recover_suspended(api: httpx.AsyncClient, tmp_path: Path) -> None:
    marker = tmp_path / "stop-ran-once"
    project = await new_project(api, f"stop-{time.time_ns()}")
    d = await create_definition(api, project, "stoppable",
                                script=f"if [ -f {marker} ]; then echo again; else touch {marker}; sleep 30; fi")
    instance_id = await _started(api, project, d["code"])
    await _until(api, project, instance_id, lambda i, s: s.get("first") == "RUNNING_EXECUTION" and marker.exists())
    envelope_err(await form(api, "POST", f"/projects/{project}/executors/execute",
                            {"processInstanceId": instance_id, "executeType": "REPEAT_RUNNING"}), 50006)
    await _execute(api, project, instance_id, "STOP")
    stopped = await _until(api, project, instance_id, lambda i, s: i["state"] == "STOP")
    assert stopped["tasks"]["first"] == "KILL" and "second" not in stopped["tasks"]
    envelope_err(await form(api, "POST", f"/projects/{project}/executors/execute",
                            {"processInstanceId": instance_id, "executeType": "START_FAILURE_TASK_PROCESS"}), 50006)
    await _execute(api, project, instance_id, "RECOVER_SUSPENDED_PROCESS")
    done = await _until(api, project, instance_id, lambda i, s: i["state"] == "SUCCESS" and i["runTimes"] == 2)
    assert done["tasks"] == {"first": "SUCCESS", "second": "SUCCESS"}
    assert done["instance"]["commandType"] == "RECOVER_SUSPENDED_PROCESS"


async def test_pause_then_recover(api: httpx.AsyncClient) -> None:
    project = await new_project(api, f"pause-{time.time_ns()}")
    d = await create_definition(api, project, "pausable", script="sleep 2; echo done")
    instance_id = await _started(api, project, d["code"])
    await _until(api, project, instance_id, lambda i, s: s.get("first") == "RUNNING_EXECUTION")
    await _execute(api, project, instance_id, "PAUSE")
    paused = await _until(api, project, instance_id, lambda i, s: i["state"] == "PAUSE")
    assert paused["tasks"]["first"] == "SUCCESS" and "second" not in paused["tasks"]  # running tasks finish
    await _execute(api, project, instance_id, "RECOVER_SUSPENDED_PROCESS")
    done = await _until(api, project, instance_id, lambda i, s: i["state"] == "SUCCESS")
    assert done["tasks"] == {"first": "SUCCESS", "second": "SUCCESS"}


async def test_failure_then_start_failure_task_process(api: httpx.AsyncClient, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"
    project = await new_project(api, f"fail-{time.time_ns()}")
    d = await create_definition(api, project, "flaky",
                                script=f"if [ -f {marker} ]; then echo fixed; else touch {marker}; exit 1; fi")
    instance_id = await _started(api, project, d["code"], failure="END")
    failed = await _until(api, project, instance_id, lambda i, s: i["state"] == "FAILURE")
    assert failed["tasks"] == {"first": "FAILURE"} and failed["instance"]["failureStrategy"] == "END"
    envelope_err(await form(api, "POST", f"/projects/{project}/executors/execute",
                            {"processInstanceId": instance_id, "executeType": "RECOVER_SUSPENDED_PROCESS"}), 50006)
    await _execute(api, project, instance_id, "START_FAILURE_TASK_PROCESS")
    done = await _until(api, project, instance_id, lambda i, s: i["state"] == "SUCCESS" and i["runTimes"] == 2)
    assert done["tasks"] == {"first": "SUCCESS", "second": "SUCCESS"}
    assert done["instance"]["commandType"] == "START_FAILURE_TASK_PROCESS"


async def test_complement_data_through_start(api: httpx.AsyncClient) -> None:
    project = await new_project(api, f"complement-{time.time_ns()}")
    d = await create_definition(api, project, "backfill", script="echo biz=${system.biz.date}")
    envelope_ok(await form(api, "POST", f"/projects/{project}/process-definition/{d['code']}/release",
                           {"releaseState": "ONLINE"}))
    start = {"processDefinitionCode": d["code"], "execType": "COMPLEMENT_DATA", "failureStrategy": "CONTINUE",
             "warningType": "NONE", "runMode": "RUN_MODE_SERIAL", "complementDependentMode": "OFF_MODE",
             "scheduleTime": '{"complementStartDate":"2024-01-01 00:00:00","complementEndDate":"2024-01-02 00:00:00"}'}
    envelope_err(await form(api, "POST", f"/projects/{project}/executors/start-process-instance",
                            {**start, "scheduleTime": "not json"}), 10001)
    envelope_err(await form(api, "POST", f"/projects/{project}/executors/start-process-instance",
                            {**start, "runMode": "SIDEWAYS"}), 10001)
    assert isinstance(envelope_ok(await form(api, "POST", f"/projects/{project}/executors/start-process-instance",
                                             start)), int)
    deadline = time.monotonic() + 60
    while True:
        page = envelope_ok(await form(api, "GET", f"/projects/{project}/process-instances",
                                      params={"pageNo": 1, "pageSize": 10, "stateType": "SUCCESS"}))
        if page["total"] == 2:
            break
        assert time.monotonic() < deadline, page
        await asyncio.sleep(0.5)
    assert sorted(i["scheduleTime"] for i in page["totalList"]) == ["2024-01-01 00:00:00", "2024-01-02 00:00:00"]
