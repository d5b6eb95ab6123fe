"""The DS routes the end-to-end flow does not cross: lookups, lists, updates, downloads, and their DS
error codes on bad input."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import httpx

from tests.integration.test_ds_rest import (
    DS,
    TOKEN,
    create_definition,
    envelope_err,
    envelope_ok,
    form,
    new_project,
    poll_instance,
)


async def test_definition_lookups(api: httpx.AsyncClient) -> None:
    stamp = time.time_ns()
    project = await new_project(api, f"lookups-{stamp}")
    d = await create_definition(api, project, f"look-{stamp}")
    base = f"/projects/{project}/workflow-definition"
    by_name = envelope_ok(await form(api, "GET", base + "/query-by-name", params={"name": f"look-{stamp}"}))
    assert by_name["processDefinition"]["code"] == d["code"]
    envelope_err(await form(api, "GET", base + "/query-by-name", params={"name": "nope"}), 50003)
    envelope_err(await form(api, "GET", base + "/verify-name", params={"name": f"look-{stamp}"}), 10168)
    envelope_ok(await form(api, "GET", base + "/verify-name", params={"name": f"look-{stamp}",
                                                                       "workflowDefinitionCode": d["code"]}))
    envelope_ok(await form(api, "GET", base + "/verify-name", params={"name": "free"}))
    assert [x["processDefinition"]["code"] for x in envelope_ok(await form(api, "GET", base + "/all"))] == [d["code"]]
    listed = envelope_ok(await form(api, "GET", base + "/list"))
    assert [x["processDefinition"]["code"] for x in listed] == [d["code"]]
    assert len(listed[0]["taskDefinitionList"]) == 2
    tasks = envelope_ok(await form(api, "GET", base + "/query-task-definition-list",
                                   params={"workflowDefinitionCode": d["code"]}))
    assert {t["name"] for t in tasks} == {"first", "second"}
    envelope_err(await form(api, "GET", base + "/query-task-definition-list"), 10001)
    envelope_err(await form(api, "GET", f"/projects/{project}/task-definition/gen-task-codes",
                            params={"genNum": 0}), 10001)
    envelope_err(await form(api, "GET", f"/projects/{project}/task-definition/gen-task-codes"), 10001)


async def test_project_lists_and_v2_updates(api: httpx.AsyncClient) -> None:
    stamp = time.time_ns()
    code = await new_project(api, f"lists-{stamp}")
    assert any(p["code"] == code for p in envelope_ok(await form(api, "GET", "/projects/list")))
    page = envelope_ok(await form(api, "GET", "/v2/projects", params={"pageNo": 1, "pageSize": 5,
                                                                       "searchVal": f"lists-{stamp}"}))
    assert page["total"] == 1
    r = await api.put(DS + f"/v2/projects/{code}", json={"projectName": f"lists-{stamp}-2"}, headers=TOKEN)
    assert envelope_ok(r)["name"] == f"lists-{stamp}-2"
    other = await new_project(api, f"lists-{stamp}-other")
    envelope_err(await form(api, "PUT", f"/projects/{other}", {"projectName": f"lists-{stamp}-2"}), 10019)
    await create_definition(api, other, "keeps-it")
    envelope_err(await form(api, "DELETE", f"/projects/{other}"), 10137)
    envelope_ok(await form(api, "DELETE", f"/v2/projects/{code}"))
    envelope_err(await form(api, "DELETE", f"/v2/projects/{code}"), 10018)


async def test_schedule_updates_and_lists(api: httpx.AsyncClient) -> None:
    stamp = time.time_ns()
    project = await new_project(api, f"sched-{stamp}")
    d = await create_definition(api, project, f"sched-{stamp}")
    sched = json.dumps({"startTime": "2024-01-01 00:00:00", "endTime": "2099-01-01 00:00:00",
                        "crontab": "0 0 3 * * ? *", "timezoneId": "UTC"})
    create = {"workflowDefinitionCode": d["code"], "schedule": sched}
    envelope_err(await form(api, "POST", f"/projects/{project}/schedules", create), 50004)  # definition offline
    release = f"/projects/{project}/process-definition/{d['code']}/release"
    envelope_ok(await form(api, "POST", release, {"releaseState": "ONLINE"}))
    s = envelope_ok(await form(api, "POST", f"/projects/{project}/schedules", create), 201)
    assert s["failureStrategy"] == "CONTINUE"  # DS's default on create
    moved = json.dumps({"startTime": "2024-01-01 00:00:00", "endTime": "2099-01-01 00:00:00",
                        "crontab": "0 30 4 * * ? *", "timezoneId": "UTC"})
    upd = envelope_ok(await form(api, "PUT", f"/projects/{project}/schedules/{s['id']}",
                                 {"schedule": moved, "failureStrategy": "END", "warningType": "FAILURE"}))
    assert upd["crontab"] == "0 30 4 * * ? *" and upd["failureStrategy"] == "END" and upd["warningType"] == "FAILURE"
    upd2 = envelope_ok(await form(api, "PUT", f"/projects/{project}/schedules/update/{d['code']}",
                                  {"schedule": sched, "warningGroupId": 0}))
    assert upd2["crontab"] == "0 0 3 * * ? *"
    envelope_err(await form(api, "PUT", f"/projects/{project}/schedules/{s['id']}", {}), 10001)
    bad_cron = json.dumps({"startTime": "2024-01-01 00:00:00", "endTime": "2099-01-01 00:00:00", "crontab": "* *"})
    envelope_err(await form(api, "PUT", f"/projects/{project}/schedules/{s['id']}", {"schedule": bad_cron}), 10024)
    envelope_err(await form(api, "POST", f"/projects/{project}/schedules/preview", {"schedule": bad_cron}), 10140)
    envelope_err(await form(api, "PUT", f"/projects/{project}/schedules/{s['id']}",
                            {"schedule": json.dumps({"crontab": "0 0 3 * * ? *", "startTime": "yesterday"})}), 10001)
    assert [x["id"] for x in envelope_ok(await form(api, "POST", f"/projects/{project}/schedules/list"))] == [s["id"]]
    # online needs an online definition, as DS
    envelope_ok(await form(api, "POST", release, {"releaseState": "OFFLINE"}))
    envelope_err(await form(api, "POST", f"/projects/{project}/schedules/{s['id']}/online"), 50004)
    envelope_err(await form(api, "POST", f"/projects/{project}/schedules/999999/online"), 10203)
    envelope_err(await form(api, "POST", f"/projects/{project}/schedules/preview", {"schedule": "{"}), 10001)
    # the definition answers its schedule
    dag = envelope_ok(await form(api, "GET", f"/projects/{project}/process-definition/{d['code']}"))
    assert dag["processDefinition"]["schedule"]["id"] == s["id"]
    assert dag["processDefinition"]["scheduleReleaseState"] == "OFFLINE"


async def test_log_download_and_project_task_list(api: httpx.AsyncClient) -> None:
    stamp = time.time_ns()
    project = await new_project(api, f"logs-{stamp}")
    d = await create_definition(api, project, f"logs-{stamp}", script="echo line-one; echo line-two")
    envelope_ok(await form(api, "POST", f"/projects/{project}/process-definition/{d['code']}/release",
                           {"releaseState": "ONLINE"}))
    ids = envelope_ok(await form(api, "POST", f"/projects/{project}/executors/start-workflow-instance", {
        "workflowDefinitionCode": d["code"], "failureStrategy": "CONTINUE", "warningType": "NONE"}))
    assert (await poll_instance(api, project, ids[0]))["state"] == "SUCCESS"
    listed = envelope_ok(await form(api, "GET", f"/projects/{project}/task-instances",
                                    params={"pageNo": 1, "pageSize": 10, "taskName": "first"}))
    assert listed["total"] == 1
    first = listed["totalList"][0]
    assert first["processInstanceId"] == ids[0] and first["state"] == "SUCCESS"
    r = await form(api, "GET", f"/log/{project}/download-log", params={"taskInstanceId": first["id"]})
    assert r.status_code == 200 and "line-one" in r.text and "line-two" in r.text
    assert "attachment" in r.headers["content-disposition"]
    skipped = envelope_ok(await form(api, "GET", "/log/detail", params={
        "taskInstanceId": first["id"], "skipLineNum": 10_000, "limit": 10}))
    assert skipped == {"lineNum": 0, "message": ""}
    envelope_err(await form(api, "GET", "/log/detail", params={"taskInstanceId": first["id"], "skipLineNum": -1,
                                                               "limit": 10}), 10001)
    # force success only on a failed task instance
    envelope_err(await form(api, "POST", f"/projects/{project}/task-instances/{first['id']}/force-success"), 10166)
    # workflow-instances alias: list and delete
    page = envelope_ok(await form(api, "GET", f"/projects/{project}/workflow-instances",
                                  params={"pageNo": 1, "pageSize": 10, "workflowDefinitionCode": d["code"]}))
    assert [i["id"] for i in page["totalList"]] == ids
    envelope_err(await form(api, "GET", f"/projects/{project}/workflow-instances",
                            params={"pageNo": 1, "pageSize": 10, "startDate": "last week"}), 10001)
    envelope_ok(await form(api, "DELETE", f"/projects/{project}/workflow-instances/{ids[0]}"))
    deadline = time.monotonic() + 20
    while True:
        page = envelope_ok(await form(api, "GET", f"/projects/{project}/workflow-instances",
                                      params={"pageNo": 1, "pageSize": 10}))
        if page["total"] == 0:
            break
        assert time.monotonic() < deadline, page
        await asyncio.sleep(0.3)


def test_a_curl_script_over_real_http(api_server: str) -> None:
    """What a shell script around curl does: form fields with --data-urlencode and the token header."""
    import shutil
    import subprocess

    curl = shutil.which("curl")
    if curl is None:
        import pytest

        pytest.skip("curl is not installed")
    name = f"curl-{time.time_ns()}"

    def call(*args: str) -> Any:
        token = os.environ["PORPOISE_TOKEN"]  # the administrator token the api_server fixture set
        out = subprocess.run([curl, "-sS", "--max-time", "20", "-H", f"token: {token}", *args],
                             capture_output=True, text=True, timeout=30, check=True)
        return json.loads(out.stdout)

    created = call("-X", "POST", f"{api_server}{DS}/projects", "--data-urlencode", f"projectName={name}",
                   "--data-urlencode", "description=from curl")
    assert created["code"] == 0 and created["data"]["name"] == name
    listed = call(f"{api_server}{DS}/projects?pageNo=1&pageSize=10&searchVal={name}")
    assert listed["data"]["total"] == 1
    refused = subprocess.run([curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
                              f"{api_server}{DS}/projects?pageNo=1&pageSize=10"],
                             capture_output=True, text=True, timeout=30, check=True)
    assert refused.stdout == "401"


async def test_export_import_round_trip_and_versions(api: httpx.AsyncClient, samples_dir: Any) -> None:
    stamp = time.time_ns()
    source = await new_project(api, f"export-{stamp}")
    d = await create_definition(api, source, f"exp-{stamp}")
    base = f"/projects/{source}/process-definition"
    dag = envelope_ok(await form(api, "GET", f"{base}/{d['code']}"))
    body = {"name": f"exp-{stamp}", "taskDefinitionJson": json.dumps(dag["taskDefinitionList"]),
            "taskRelationJson": json.dumps(dag["processTaskRelationList"]), "description": "second version"}
    assert envelope_ok(await form(api, "PUT", f"{base}/{d['code']}", body))["version"] == 2
    versions = envelope_ok(await form(api, "GET", f"{base}/{d['code']}/versions", params={"pageNo": 1,
                                                                                          "pageSize": 10}))
    assert [v["version"] for v in versions["totalList"]] == [2, 1] and versions["total"] == 2
    envelope_err(await form(api, "POST", f"/projects/{source}/executors/start-check",
                            {"processDefinitionCode": d["code"]}), 50004)
    r = await form(api, "POST", f"{base}/batch-export", {"codes": str(d["code"])})
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    exported = r.json()
    assert len(exported) == 1 and set(exported[0]) >= {"processDefinition", "processTaskRelationList",
                                                        "taskDefinitionList", "schedule"}
    target = await new_project(api, f"import-{stamp}")
    r = await api.post(DS + f"/projects/{target}/workflow-definition/import", headers=TOKEN,
                       files={"file": ("workflow.json", r.content, "application/json")})
    envelope_ok(r)
    r33 = (samples_dir / "ds-export-v33-shell-minimal.json").read_bytes()
    envelope_ok(await api.post(DS + f"/projects/{target}/workflow-definition/import", headers=TOKEN,
                               files={"file": ("v33.json", r33, "application/json")}))
    imported = envelope_ok(await form(api, "GET", f"/projects/{target}/process-definition/simple-list"))
    assert sorted(x["name"].split("_import_")[0] for x in imported) == sorted([f"exp-{stamp}", "test"])
    mine = next(x for x in imported if x["name"].startswith(f"exp-{stamp}"))
    envelope_ok(await form(api, "POST", f"/projects/{target}/process-definition/{mine['code']}/release",
                           {"releaseState": "ONLINE"}))
    envelope_ok(await form(api, "POST", f"/projects/{target}/executors/start-check",
                           {"processDefinitionCode": mine["code"]}))
    ids = envelope_ok(await form(api, "POST", f"/projects/{target}/executors/start-workflow-instance", {
        "workflowDefinitionCode": mine["code"], "failureStrategy": "CONTINUE", "warningType": "NONE"}))
    assert (await poll_instance(api, target, ids[0]))["state"] == "SUCCESS"  # the exported tasks still run


async def test_sub_process_navigation(api: httpx.AsyncClient) -> None:
    stamp = time.time_ns()
    project = await new_project(api, f"subs-{stamp}")
    child = await create_definition(api, project, f"child-{stamp}")
    (code,) = envelope_ok(await form(api, "GET", f"/projects/{project}/task-definition/gen-task-codes",
                                     params={"genNum": 1}))
    task = {"code": code, "name": "run child", "version": 1, "taskType": "SUB_PROCESS", "flag": "YES",
            "taskParams": {"localParams": [], "resourceList": [], "processDefinitionCode": child["code"]},
            "taskPriority": "MEDIUM", "workerGroup": "default", "failRetryTimes": 0, "failRetryInterval": 1,
            "timeoutFlag": "CLOSE", "timeout": 0, "delayTime": 0, "environmentCode": -1}
    rel = {"name": "", "preTaskCode": 0, "preTaskVersion": 0, "postTaskCode": code, "postTaskVersion": 1,
           "conditionType": "NONE", "conditionParams": {}}
    parent = envelope_ok(await form(api, "POST", f"/projects/{project}/process-definition", {
        "name": f"parent-{stamp}", "taskDefinitionJson": json.dumps([task]),
        "taskRelationJson": json.dumps([rel])}), 201)
    for d in (child, parent):
        envelope_ok(await form(api, "POST", f"/projects/{project}/process-definition/{d['code']}/release",
                               {"releaseState": "ONLINE"}))
    ids = envelope_ok(await form(api, "POST", f"/projects/{project}/executors/start-workflow-instance", {
        "workflowDefinitionCode": parent["code"], "failureStrategy": "CONTINUE", "warningType": "NONE"}))
    assert (await poll_instance(api, project, ids[0]))["state"] == "SUCCESS"
    tasks = envelope_ok(await form(api, "GET", f"/projects/{project}/process-instances/{ids[0]}/tasks"))
    (sub_task,) = tasks["taskList"]
    assert sub_task["taskType"] == "SUB_PROCESS"
    sub = envelope_ok(await form(api, "GET", f"/projects/{project}/process-instances/query-sub-by-parent",
                                 params={"taskId": sub_task["id"]}))
    child_instance = envelope_ok(await form(api, "GET",
                                            f"/projects/{project}/process-instances/{sub['subProcessInstanceId']}"))
    assert child_instance["processDefinitionCode"] == child["code"] and child_instance["isSubProcess"] == "YES"
    assert child_instance["state"] == "SUCCESS"
    up = envelope_ok(await form(api, "GET", f"/projects/{project}/workflow-instances/query-parent-by-sub",
                                params={"subId": sub["subProcessInstanceId"]}))
    assert up == {"parentWorkflowInstance": ids[0]}
    envelope_err(await form(api, "GET", f"/projects/{project}/process-instances/query-parent-by-sub",
                            params={"subId": ids[0]}), 50010)
    envelope_err(await form(api, "GET", f"/projects/{project}/process-instances/query-sub-by-parent",
                            params={"taskId": 987654321}), 10020)


async def test_definitions_that_could_never_run_are_refused_as_porpoise_refuses_them(api: httpx.AsyncClient) -> None:
    """DS's create/update/import go through the same submit checks as Porpoise's ``/definitions``
    (services/runnable.py): a SUB_PROCESS calling its own definition is a cycle, 50017, nothing saved."""
    stamp = time.time_ns()
    project = await new_project(api, f"cycle-{stamp}")
    d = await create_definition(api, project, f"self-{stamp}")
    (code,) = envelope_ok(await form(api, "GET", f"/projects/{project}/task-definition/gen-task-codes",
                                     params={"genNum": 1}))
    task = {"code": code, "name": "call myself", "version": 1, "taskType": "SUB_PROCESS", "flag": "YES",
            "taskParams": {"localParams": [], "resourceList": [], "processDefinitionCode": d["code"]},
            "taskPriority": "MEDIUM", "workerGroup": "default", "failRetryTimes": 0, "failRetryInterval": 1,
            "timeoutFlag": "CLOSE", "timeout": 0, "delayTime": 0, "environmentCode": -1}
    rel = {"name": "", "preTaskCode": 0, "preTaskVersion": 0, "postTaskCode": code, "postTaskVersion": 1,
           "conditionType": "NONE", "conditionParams": {}}
    body = {"name": d["name"], "taskDefinitionJson": json.dumps([task]), "taskRelationJson": json.dumps([rel])}
    err = envelope_err(await form(api, "PUT", f"/projects/{project}/process-definition/{d['code']}", body), 50017)
    assert "cycle" in err.lower() or "itself" in err.lower(), err
    after = envelope_ok(await form(api, "GET", f"/projects/{project}/process-definition/{d['code']}"))
    assert after["processDefinition"]["version"] == d["version"]


async def test_definition_forms_have_the_definition_size_limit(api: httpx.AsyncClient) -> None:
    """A DS definition form is a definition document: up to max_definition_bytes (5 MiB), not the
    1 MiB every other body has (api/limits.py)."""
    stamp = time.time_ns()
    project = await new_project(api, f"big-{stamp}")
    script = "# " + "x" * 1_300_000 + "\necho big"
    d = await create_definition(api, project, f"big-{stamp}", script=script)
    got = envelope_ok(await form(api, "GET", f"/projects/{project}/process-definition/{d['code']}"))
    assert any(t["taskParams"]["rawScript"] == script for t in got["taskDefinitionList"])
