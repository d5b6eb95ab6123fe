"""The DS REST API under /dolphinscheduler, used as a REST-only DS client does: form bodies, the token
header, DS envelopes, paging and integer ids, against a real Temporal dev server and worker."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import httpx

from api.app import create_app
from core.settings import Settings

DS = "/dolphinscheduler"
TOKEN = {"token": os.environ["PORPOISE_TEST_ADMIN_TOKEN"]}  # an administrator (tests/conftest.py)


def envelope_ok(r: httpx.Response, http: int = 200) -> Any:
    assert r.status_code == http, r.text
    body = r.json()
    assert set(body) >= {"code", "msg", "data", "success", "failed"}, body
    assert body["code"] == 0 and body["msg"] == "success" and body["success"] is True and body["failed"] is False, body
    return body["data"]


def envelope_err(r: httpx.Response, code: int, http: int = 200) -> str:
    assert r.status_code == http, r.text
    body = r.json()
    assert body["code"] == code and body["success"] is False and body["failed"] is True, body
    assert body["data"] is None
    return str(body["msg"])


async def form(api: httpx.AsyncClient, method: str, path: str, data: dict[str, Any] | None = None,
               **kw: Any) -> httpx.Response:
    return await api.request(method, DS + path, data=data, headers=TOKEN, **kw)


async def new_project(api: httpx.AsyncClient, name: str) -> int:
    data = envelope_ok(await form(api, "POST", "/projects", {"projectName": name, "description": "d"}), 201)
    return int(data["code"])


async def create_definition(api: httpx.AsyncClient, project: int, name: str,
                            script: str = "echo hello-ds") -> dict[str, Any]:
    codes = envelope_ok(await form(api, "GET", f"/projects/{project}/task-definition/gen-task-codes",
                                   params={"genNum": 2}))
    assert len(codes) == 2 and all(c > 2**31 for c in codes)
    a, b = codes
    tasks = [{"code": a, "name": "first", "version": 1, "taskType": "SHELL", "taskParams": {
        "localParams": [], "rawScript": script, "resourceList": []}, "flag": "YES", "taskPriority": "MEDIUM",
        "workerGroup": "default", "failRetryTimes": "0", "failRetryInterval": "1", "timeoutFlag": "CLOSE",
        "timeoutNotifyStrategy": "", "timeout": 0, "delayTime": "0", "environmentCode": -1},
        {"code": b, "name": "second", "version": 1, "taskType": "SHELL", "taskParams": {
            "localParams": [], "rawScript": "echo second-${p}", "resourceList": []}, "flag": "YES",
         "taskPriority": "MEDIUM", "workerGroup": "default", "failRetryTimes": 0, "failRetryInterval": 1,
         "timeoutFlag": "CLOSE", "timeout": 0, "delayTime": 0, "environmentCode": -1}]
    rels = [{"name": "", "preTaskCode": 0, "preTaskVersion": 0, "postTaskCode": a, "postTaskVersion": 1,
             "conditionType": "NONE", "conditionParams": {}},
            {"name": "", "preTaskCode": a, "preTaskVersion": 1, "postTaskCode": b, "postTaskVersion": 1,
             "conditionType": 0, "conditionParams": {}}]
    body = {"name": name, "description": "from the form", "globalParams": json.dumps(
        [{"prop": "p", "direct": "IN", "type": "VARCHAR", "value": "v1"}]),
        "locations": json.dumps([{"taskCode": a, "x": 1, "y": 2}, {"taskCode": b, "x": 3, "y": 4}]),
        "timeout": "0", "taskDefinitionJson": json.dumps(tasks), "taskRelationJson": json.dumps(rels),
        "tenantCode": "default", "executionType": "PARALLEL"}
    return dict(envelope_ok(await form(api, "POST", f"/projects/{project}/process-definition", body), 201))


async def poll_instance(api: httpx.AsyncClient, project: int, instance_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = await form(api, "GET", f"/projects/{project}/process-instances/{instance_id}")
        body = r.json()
        if body["code"] == 0 and body["data"]["state"] in ("SUCCESS", "FAILURE", "STOP", "PAUSE"):
            return dict(body["data"])
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.3)


async def test_health_and_version_need_no_token(api: httpx.AsyncClient) -> None:
    r = await api.get(DS + "/actuator/health")
    assert r.status_code == 200 and r.json() == {"status": "UP"}
    assert envelope_ok(await api.get(DS + "/version"))["version"].startswith("3.2")


async def test_no_token_is_401_in_ds_shape(api: httpx.AsyncClient) -> None:
    r = await api.get(DS + "/projects", params={"pageNo": 1, "pageSize": 10})
    envelope_err(r, 10010, http=401)
    r = await api.get(DS + "/projects", params={"pageNo": 1, "pageSize": 10}, headers={"token": " "})
    envelope_err(r, 10010, http=401)


async def test_projects_crud_paging_and_errors(api: httpx.AsyncClient) -> None:
    stamp = time.time_ns()
    codes = [await new_project(api, f"p-{stamp}-{i}") for i in range(3)]
    envelope_err(await form(api, "POST", "/projects", {"projectName": f"p-{stamp}-0"}), 10019)
    envelope_err(await form(api, "POST", "/projects", {"description": "no name"}), 10001)
    envelope_err(await form(api, "POST", "/projects", {"projectName": "  "}), 10001)
    page = envelope_ok(await form(api, "GET", "/projects", params={"pageNo": 1, "pageSize": 2,
                                                                    "searchVal": f"p-{stamp}"}))
    assert set(page) >= {"totalList", "total", "totalPage", "pageSize", "currentPage"}
    assert page["total"] == 3 and page["totalPage"] == 2 and page["pageSize"] == 2 and page["currentPage"] == 1
    assert len(page["totalList"]) == 2
    page2 = envelope_ok(await form(api, "GET", "/projects", params={"pageNo": 2, "pageSize": 2,
                                                                     "searchVal": f"p-{stamp}"}))
    assert len(page2["totalList"]) == 1
    envelope_err(await form(api, "GET", "/projects", params={"pageNo": 0, "pageSize": 2}), 10001)
    envelope_err(await form(api, "GET", "/projects", params={"pageSize": 2}), 10001)
    envelope_err(await form(api, "GET", "/projects", params={"pageNo": "x", "pageSize": 2}), 10001)
    got = envelope_ok(await form(api, "GET", f"/projects/{codes[0]}"))
    assert got["name"] == f"p-{stamp}-0" and got["code"] == codes[0] and isinstance(got["id"], int)
    assert len(got["createTime"]) == 19 and got["createTime"][4] == "-" and got["createTime"][10] == " "
    upd = envelope_ok(await form(api, "PUT", f"/projects/{codes[0]}", {"projectName": f"p-{stamp}-renamed"}))
    assert upd["name"] == f"p-{stamp}-renamed"
    envelope_err(await form(api, "GET", "/projects/12345"), 10018)
    envelope_err(await form(api, "GET", "/projects/abc"), 10001)
    envelope_ok(await form(api, "DELETE", f"/projects/{codes[2]}"))
    envelope_err(await form(api, "GET", f"/projects/{codes[2]}"), 10018)
    # v2: JSON bodies
    r = await api.post(DS + "/v2/projects", json={"projectName": f"v2-{stamp}", "description": "x"}, headers=TOKEN)
    v2 = envelope_ok(r, 201)
    assert envelope_ok(await form(api, "GET", f"/v2/projects/{v2['code']}"))["name"] == f"v2-{stamp}"


async def test_definition_form_contract_and_errors(api: httpx.AsyncClient) -> None:
    stamp = time.time_ns()
    project = await new_project(api, f"defs-{stamp}")
    d = await create_definition(api, project, f"wf-{stamp}")
    assert d["releaseState"] == "OFFLINE" and d["projectCode"] == project and d["version"] == 1
    assert json.loads(d["globalParams"]) == [{"prop": "p", "direct": "IN", "type": "VARCHAR", "value": "v1"}]
    assert json.loads(d["locations"])[0]["x"] == 1
    code = d["code"]
    envelope_err(await form(api, "POST", f"/projects/{project}/process-definition",
                            {"name": f"wf-{stamp}", "taskDefinitionJson": "[]", "taskRelationJson": "[]"}), 10168)
    envelope_err(await form(api, "POST", f"/projects/{project}/process-definition", {"name": "x"}), 10001)
    msg = envelope_err(await form(api, "POST", f"/projects/{project}/process-definition",
                                  {"name": "bad", "taskDefinitionJson": "{not json", "taskRelationJson": "[]"}), 50017)
    assert "taskDefinitionJson" in msg
    envelope_err(await form(api, "POST", "/projects/999/process-definition",
                            {"name": "n", "taskDefinitionJson": "[]", "taskRelationJson": "[]"}), 10018)
    dag = envelope_ok(await form(api, "GET", f"/projects/{project}/process-definition/{code}"))
    assert dag["processDefinition"]["code"] == code
    assert {t["name"] for t in dag["taskDefinitionList"]} == {"first", "second"}
    assert {(r["preTaskCode"] == 0) for r in dag["processTaskRelationList"]} == {True, False}
    # 3.3 alias
    dag33 = envelope_ok(await form(api, "GET", f"/projects/{project}/workflow-definition/{code}"))
    assert dag33["processDefinition"]["code"] == code
    page = envelope_ok(await form(api, "GET", f"/projects/{project}/process-definition",
                                  params={"pageNo": 1, "pageSize": 10}))
    assert page["total"] == 1 and page["totalList"][0]["code"] == code
    simple = envelope_ok(await form(api, "GET", f"/projects/{project}/process-definition/simple-list"))
    assert simple == [{"id": simple[0]["id"], "code": code, "name": f"wf-{stamp}", "projectCode": project}]
    tasks = envelope_ok(await form(api, "GET", f"/projects/{project}/process-definition/{code}/tasks"))
    assert {t["taskType"] for t in tasks} == {"SHELL"} and all("taskParams" in t for t in tasks)
    envelope_err(await form(api, "GET", f"/projects/{project}/process-definition/1"), 50003)
    envelope_err(await form(api, "POST", f"/projects/{project}/process-definition/{code}/release",
                            {"releaseState": "MAYBE"}), 10001)
    # update while offline: a new version
    body = {"name": f"wf-{stamp}-v2", "taskDefinitionJson": json.dumps(dag["taskDefinitionList"]),
            "taskRelationJson": json.dumps(dag["processTaskRelationList"])}
    upd = envelope_ok(await form(api, "PUT", f"/projects/{project}/process-definition/{code}", body))
    assert upd["code"] == code and upd["name"] == f"wf-{stamp}-v2"
    envelope_ok(await form(api, "POST", f"/projects/{project}/process-definition/{code}/release",
                           {"releaseState": "ONLINE"}))
    envelope_err(await form(api, "PUT", f"/projects/{project}/process-definition/{code}", body), 50008)
    envelope_err(await form(api, "DELETE", f"/projects/{project}/process-definition/{code}"), 50021)
    envelope_ok(await form(api, "POST", f"/projects/{project}/process-definition/{code}/release",
                           {"releaseState": "OFFLINE"}))
    envelope_ok(await form(api, "DELETE", f"/projects/{project}/process-definition/{code}"))
    envelope_err(await form(api, "GET", f"/projects/{project}/process-definition/{code}"), 50003)


async def test_import_a_ds_export_file(api: httpx.AsyncClient, samples_dir: Any) -> None:
    stamp = time.time_ns()
    project = await new_project(api, f"import-{stamp}")
    raw = (samples_dir / "ds-export-v32-shell-minimal.json").read_bytes()
    r = await api.post(DS + f"/projects/{project}/process-definition/import", headers=TOKEN,
                       files={"file": ("export.json", raw, "application/json")})
    envelope_ok(r)
    simple = envelope_ok(await form(api, "GET", f"/projects/{project}/process-definition/simple-list"))
    assert len(simple) == 1 and simple[0]["name"].startswith("test_import_")
    original = json.loads(raw)[0]["processDefinition"]["code"]
    assert simple[0]["code"] != original  # new codes, as DS import
    r = await api.post(DS + f"/projects/{project}/process-definition/import", headers=TOKEN,
                       files={"file": ("x.json", b"[{\"nope\": 1}]", "application/json")})
    envelope_err(r, 50029)
    envelope_err(await form(api, "POST", f"/projects/{project}/process-definition/import", {}), 10001)


async def test_end_to_end_as_a_ds_client(api: httpx.AsyncClient, settings: Settings) -> None:
    stamp = time.time_ns()
    project = await new_project(api, f"e2e-{stamp}")
    d = await create_definition(api, project, f"e2e-{stamp}")
    code = d["code"]
    start = {"processDefinitionCode": code, "scheduleTime": "", "failureStrategy": "CONTINUE",
             "warningType": "NONE", "warningGroupId": 0, "execType": "START_PROCESS", "taskDependType": "TASK_POST",
             "runMode": "RUN_MODE_SERIAL", "processInstancePriority": "MEDIUM", "workerGroup": "default",
             "tenantCode": "default", "startParams": json.dumps({"p": "from-start"}), "dryRun": 0,
             "expectedParallelismNumber": "", "complementDependentMode": "OFF_MODE"}
    # offline: DS refuses to start
    envelope_err(await form(api, "POST", f"/projects/{project}/executors/start-process-instance", start), 50004)
    envelope_ok(await form(api, "POST", f"/projects/{project}/process-definition/{code}/release",
                           {"releaseState": "ONLINE"}))
    envelope_err(await form(api, "POST", f"/projects/{project}/executors/start-process-instance",
                            {**start, "failureStrategy": "SOMETIMES"}), 10001)
    envelope_err(await form(api, "POST", f"/projects/{project}/executors/start-process-instance",
                            {**start, "startNodeList": "42"}), 10207)
    # a worker group that cannot name a task queue is refused, naming the field
    envelope_err(await form(api, "POST", f"/projects/{project}/executors/start-process-instance",
                            {**start, "workerGroup": "etl@host"}), 10001)
    trigger = envelope_ok(await form(api, "POST", f"/projects/{project}/executors/start-process-instance", start))
    assert isinstance(trigger, int)
    found = envelope_ok(await form(api, "GET", f"/projects/{project}/process-instances/trigger",
                                   params={"triggerCode": trigger}))
    assert len(found) == 1
    instance_id = found[0]["id"]
    assert isinstance(instance_id, int)
    inst = await poll_instance(api, project, instance_id)
    assert inst["state"] == "SUCCESS" and inst["processDefinitionCode"] == code
    assert len(inst["startTime"]) == 19 and len(inst["endTime"]) == 19
    # the instance list, with DS's filters
    page = envelope_ok(await form(api, "GET", f"/projects/{project}/process-instances",
                                  params={"pageNo": 1, "pageSize": 10, "processDefineCode": code}))
    assert page["total"] >= 1 and any(i["id"] == instance_id for i in page["totalList"])
    envelope_err(await form(api, "GET", f"/projects/{project}/process-instances",
                            params={"pageNo": 1, "pageSize": 10, "stateType": "NOPE"}), 10001)
    envelope_err(await form(api, "GET", f"/projects/{project}/process-instances/99999999"), 50001)
    # its task instances
    tasks = envelope_ok(await form(api, "GET", f"/projects/{project}/process-instances/{instance_id}/tasks"))
    assert tasks["processInstanceState"] == "SUCCESS"
    by_name = {t["name"]: t for t in tasks["taskList"]}
    assert set(by_name) == {"first", "second"} and {t["state"] for t in by_name.values()} == {"SUCCESS"}
    listed = envelope_ok(await form(api, "GET", f"/projects/{project}/task-instances",
                                    params={"pageNo": 1, "pageSize": 10, "processInstanceId": instance_id,
                                            "stateType": "SUCCESS", "taskName": "second"}))
    assert listed["total"] == 1 and listed["totalList"][0]["id"] == by_name["second"]["id"]
    # a task log, DS-paged by lines
    log = envelope_ok(await form(api, "GET", "/log/detail", params={
        "taskInstanceId": by_name["second"]["id"], "skipLineNum": 0, "limit": 1000}))
    assert "second-from-start" in log["message"] and log["lineNum"] >= 1
    one = envelope_ok(await form(api, "GET", f"/log/{project}/detail", params={
        "taskInstanceId": by_name["second"]["id"], "skipLineNum": 0, "limit": 1}))
    assert one["lineNum"] == 1
    envelope_err(await form(api, "GET", "/log/detail", params={"taskInstanceId": 987654321, "skipLineNum": 0,
                                                               "limit": 10}), 10008)
    envelope_err(await form(api, "GET", "/log/detail", params={"taskInstanceId": 1}), 10001)
    # ids survive: the same instance keeps its id
    again = envelope_ok(await form(api, "GET", f"/projects/{project}/process-instances/{instance_id}/tasks"))
    assert {t["id"] for t in again["taskList"]} == {t["id"] for t in tasks["taskList"]}
    # execute: a finished instance cannot be stopped; rerun works
    envelope_err(await form(api, "POST", f"/projects/{project}/executors/execute",
                            {"processInstanceId": instance_id, "executeType": "STOP"}), 50006)
    envelope_err(await form(api, "POST", f"/projects/{project}/executors/execute",
                            {"processInstanceId": instance_id, "executeType": "DANCE"}), 10001)
    envelope_ok(await form(api, "POST", f"/projects/{project}/executors/execute",
                           {"processInstanceId": instance_id, "executeType": "REPEAT_RUNNING"}))
    deadline = time.monotonic() + 60
    while True:
        inst2 = envelope_ok(await form(api, "GET", f"/projects/{project}/process-instances/{instance_id}"))
        if inst2["runTimes"] == 2 and inst2["state"] == "SUCCESS":
            break
        assert time.monotonic() < deadline, inst2
        await asyncio.sleep(0.3)
    inst2_tasks = envelope_ok(await form(api, "GET", f"/projects/{project}/process-instances/{instance_id}/tasks"))[
        "taskList"]
    assert {t["name"] for t in inst2_tasks} == {"first", "second"}
    # a rerun is a new run: its task instances are new ids (DS makes new task instance rows)
    assert not {t["id"] for t in inst2_tasks} & {t["id"] for t in tasks["taskList"]}
    # ids are durable: a new API process (same database) answers the same ids
    fresh = create_app(settings)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fresh), base_url="http://porpoise") as other:
            again2 = envelope_ok(await form(other, "GET", f"/projects/{project}/process-instances/{instance_id}/tasks"))
            assert {t["id"]: t["name"] for t in again2["taskList"]} == {t["id"]: t["name"] for t in inst2_tasks}
    finally:
        fresh.state.porpoise.store.dispose()
    # schedules: create → list → preview → online → offline → delete
    sched = {"processDefinitionCode": code, "schedule": json.dumps({
        "startTime": "2024-01-01 00:00:00", "endTime": "2099-12-31 00:00:00", "crontab": "0 0 2 * * ? *",
        "timezoneId": "Asia/Shanghai"}), "failureStrategy": "CONTINUE", "warningType": "NONE",
        "processInstancePriority": "MEDIUM", "workerGroup": "default", "tenantCode": "default"}
    def with_times(start: str, end: str, cron: str = "0 0 2 * * ? *") -> dict[str, Any]:
        return {**sched, "schedule": json.dumps({"startTime": start, "endTime": end, "crontab": cron})}
    envelope_err(await form(api, "POST", f"/projects/{project}/schedules",
                            with_times("2024-01-01 00:00:00", "2025-01-01 00:00:00", "not a cron")), 10001)
    envelope_err(await form(api, "POST", f"/projects/{project}/schedules",
                            with_times("2024-01-01 00:00:00", "2024-01-01 00:00:00")), 10141)
    envelope_err(await form(api, "POST", f"/projects/{project}/schedules",
                            with_times("2025-01-01 00:00:00", "2024-01-01 00:00:00")), 80003)
    s = envelope_ok(await form(api, "POST", f"/projects/{project}/schedules", sched), 201)
    assert s["releaseState"] == "OFFLINE" and s["crontab"] == "0 0 2 * * ? *" and s["processDefinitionCode"] == code
    envelope_err(await form(api, "POST", f"/projects/{project}/schedules", sched), 10204)
    spage = envelope_ok(await form(api, "GET", f"/projects/{project}/schedules",
                                   params={"pageNo": 1, "pageSize": 10, "processDefinitionCode": code}))
    assert spage["total"] == 1 and spage["totalList"][0]["id"] == s["id"]
    fires = envelope_ok(await form(api, "POST", f"/projects/{project}/schedules/preview",
                                   {"schedule": sched["schedule"]}), 201)
    assert len(fires) == 5 and all(f.endswith("02:00:00") for f in fires)
    envelope_ok(await form(api, "POST", f"/projects/{project}/schedules/{s['id']}/online"))
    envelope_ok(await form(api, "POST", f"/projects/{project}/schedules/{s['id']}/online"))  # idempotent, as 3.2
    envelope_err(await form(api, "DELETE", f"/projects/{project}/schedules/{s['id']}"), 50023)
    envelope_err(await form(api, "PUT", f"/projects/{project}/schedules/{s['id']}", sched), 10023)
    envelope_ok(await form(api, "POST", f"/projects/{project}/schedules/{s['id']}/offline"))
    envelope_ok(await form(api, "DELETE", f"/projects/{project}/schedules/{s['id']}"))
    envelope_err(await form(api, "POST", f"/projects/{project}/schedules/{s['id']}/online"), 10203)
    # delete the finished instance
    envelope_ok(await form(api, "DELETE", f"/projects/{project}/process-instances/{instance_id}"))
    envelope_err(await form(api, "GET", f"/projects/{project}/process-instances/{instance_id}"), 50001)


async def test_workflow_aliases_33(api: httpx.AsyncClient) -> None:
    stamp = time.time_ns()
    project = await new_project(api, f"v33-{stamp}")
    d = await create_definition(api, project, f"v33-{stamp}", script="exit 3")
    code = d["code"]
    envelope_ok(await form(api, "POST", f"/projects/{project}/workflow-definition/{code}/release",
                           {"releaseState": "ONLINE"}))
    ids = envelope_ok(await form(api, "POST", f"/projects/{project}/executors/start-workflow-instance", {
        "workflowDefinitionCode": code, "scheduleTime": "", "failureStrategy": "END", "warningType": "NONE"}))
    assert isinstance(ids, list) and len(ids) == 1
    deadline = time.monotonic() + 60
    while True:
        inst = envelope_ok(await form(api, "GET", f"/projects/{project}/workflow-instances/{ids[0]}"))
        if inst["state"] in ("SUCCESS", "FAILURE"):
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.3)
    assert inst["state"] == "FAILURE" and inst["workflowDefinitionCode"] == code
    tasks = envelope_ok(await form(api, "GET", f"/projects/{project}/workflow-instances/{ids[0]}/tasks"))
    failed = [t for t in tasks["taskList"] if t["state"] == "FAILURE"]
    assert [t["name"] for t in failed] == ["first"]
    envelope_ok(await form(api, "POST", f"/projects/{project}/task-instances/{failed[0]['id']}/force-success"))
    envelope_err(await form(api, "POST", f"/projects/{project}/task-instances/999999999/force-success"), 10008)


async def test_never_a_500_on_garbage(api: httpx.AsyncClient) -> None:
    for method, path, data in [
        ("POST", "/projects/x/process-definition", {"name": "a"}),
        ("POST", "/projects/1/executors/start-process-instance", {"processDefinitionCode": "abc"}),
        ("POST", "/projects/1/executors/execute", {"processInstanceId": "1.5", "executeType": "STOP"}),
        ("GET", "/projects/1/task-instances", None),
        ("POST", "/projects/1/schedules", {"processDefinitionCode": "1", "schedule": "{]"}),
        ("GET", "/projects/1/process-instances/x/tasks", None),
    ]:
        r = await form(api, method, path, data)
        assert r.status_code == 200, (path, r.text)
        body = r.json()
        assert body["code"] != 0 and body["failed"] is True, (path, body)
