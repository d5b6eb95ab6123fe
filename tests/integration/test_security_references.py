"""Cross-project references (issue 12): a general user's SUB_PROCESS or DEPENDENT task may not name a
definition of a project they are not authorized for, neither at submit, nor in a new version, nor at
start (native API, runs and complements). Administrators pass. Real stack: the in-process API,
SQLite storage, a Temporal dev server and a worker."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests import dsbuild
from tests.integration.helpers import start, submit, wait
from tests.integration.test_security_access import _project, bearer, make_token


def sub_process(name: str, code: int) -> dict[str, Any]:
    return dsbuild.task(name, task_type="SUB_PROCESS", params={"processDefinitionCode": code})


def dependent(name: str, code: int, project: int) -> dict[str, Any]:
    return dsbuild.task(name, task_type="DEPENDENT", params={"localParams": [], "dependence": {
        "relation": "AND", "checkInterval": 1, "failurePolicy": "DEPENDENT_FAILURE_FAILURE",
        "dependTaskList": [{"relation": "AND", "dependItemList": [
            {"projectCode": project, "definitionCode": code, "depTaskCode": 0, "cycle": "day",
             "dateValue": "today"}]}]}})


def one_task(name: str, task: dict[str, Any], project: int, **meta: Any) -> list[dict[str, Any]]:
    return dsbuild.export(name, [task], [(None, task["name"])], projectCode=project, **meta)


def refused(r: httpx.Response, task: str, project: int) -> None:
    assert r.status_code == 403, r.text
    body = r.json()
    assert task in body["detail"] and str(project) in body["detail"], body
    assert any(p["task"] == task and p["code"] == "foreign-project" for p in body["problems"]), body


async def test_references_into_another_project_are_refused(api: httpx.AsyncClient) -> None:
    pa, pb = _project(), _project()
    alice = bearer(await make_token(api, f"refa-{uuid.uuid4().hex[:6]}", [pa]))
    b_code = (await submit(api, one_task("b-target", dsbuild.task("t", "echo b-secret"), pb)))["code"]
    a_code = (await submit(api, one_task("a-target", dsbuild.task("t", "echo a"), pa)))["code"]

    # submit: a SUB_PROCESS or DEPENDENT task naming B's definition, whatever project the item declares
    for task in (sub_process("call-b", b_code), dependent("wait-b", b_code, pb), dependent("wait-b", b_code, pa),
                 dependent("wait-b", a_code, pb)):
        r = await api.post("/definitions", headers=alice, json=one_task("reach", task, pa))
        refused(r, task["name"], pb)
    assert (await api.get(f"/definitions/{b_code}", headers=alice)).status_code == 403

    # the same tasks naming the caller's own project's definitions, or one that does not exist yet, pass
    own = await submit(api, dsbuild.export("own", [sub_process("call-a", a_code), dependent("wait-a", a_code, pa)],
                                           [(None, "call-a"), (None, "wait-a")], projectCode=pa))
    r = await api.post("/definitions", headers=alice, json=one_task("later", sub_process("call-x", 9_000_001), pa))
    assert r.status_code == 201, r.text

    # update: a new version of alice's own definition that adds a reference into B
    upd = dsbuild.export("own", [sub_process("call-a", a_code), dependent("wait-b", b_code, pb)],
                         [(None, "call-a"), (None, "wait-b")], code=own["code"], projectCode=pa)
    refused(await api.post("/definitions", headers=alice, json=upd), "wait-b", pb)
    assert (await api.get(f"/definitions/{own['code']}", headers=alice)).json()["version"] == own["version"]

    # start: an administrator may make such a definition in A; alice may not start it (run or complement)
    bridge = await submit(api, one_task("bridge", sub_process("call-b", b_code), pa))
    refused(await api.post(f"/definitions/{bridge['code']}/runs", headers=alice, json={}), "call-b", pb)
    r = await api.post(f"/definitions/{bridge['code']}/complements", headers=alice,
                       json={"scheduleTime": {"complementStartDate": "2024-06-01 00:00:00",
                                              "complementEndDate": "2024-06-01 00:00:00"}})
    refused(r, "call-b", pb)
    # a definition alice may start, until its SUB_PROCESS target is made in another project
    late = 7_900_000_000_000 + uuid.uuid4().int % 10**9
    pending = await submit(api, one_task("pending", sub_process("call-late", late), pa))
    await submit(api, one_task("late", dsbuild.task("t"), pb, code=late))
    refused(await api.post(f"/definitions/{pending['code']}/runs", headers=alice, json={}), "call-late", pb)

    # administrators pass, and the run reaches B's definition
    run = await start(api, bridge["code"])
    assert (await wait(api, run))["state"] == "SUCCESS"
    # alice's own references start fine
    ok = await submit(api, one_task("ok", sub_process("call-a", a_code), pa))
    r = await api.post(f"/definitions/{ok['code']}/runs", headers=alice, json={})
    assert r.status_code == 201, r.text
    assert (await wait(api, r.json()["instanceId"]))["state"] == "SUCCESS"


async def test_schedules_and_alert_groups_reach_no_other_project(api: httpx.AsyncClient) -> None:
    pa, pb = _project(), _project()
    alice = bearer(await make_token(api, f"refs-{uuid.uuid4().hex[:6]}", [pa]))
    b_code = (await submit(api, one_task("b-target", dsbuild.task("t"), pb)))["code"]
    bridge = await submit(api, one_task("bridge", sub_process("call-b", b_code), pa))  # an administrator's
    own = await submit(api, one_task("own", dsbuild.task("t"), pa))
    cron = {"crontab": "0 0 2 * * ? *", "timezoneId": "UTC"}

    # a schedule starts its definition with no one's permissions: alice may not make, online or fire one
    r = await api.post("/schedules", headers=alice, json={"processDefinitionCode": bridge["code"], **cron})
    refused(r, "call-b", pb)
    r = await api.post("/schedules", json={"processDefinitionCode": bridge["code"], **cron})
    assert r.status_code == 201, r.text
    sched = r.json()["id"]
    try:
        for path in (f"/schedules/{sched}/online", f"/schedules/{sched}/trigger"):
            refused(await api.post(path, headers=alice), "call-b", pb)
        refused(await api.put(f"/schedules/{sched}", headers=alice, json={"crontab": "0 0 3 * * ? *"}), "call-b", pb)
        assert (await api.post(f"/schedules/{sched}/offline", headers=alice)).status_code == 200
    finally:
        assert (await api.delete(f"/schedules/{sched}")).status_code == 200

    # warningGroupId: another project's alert group would get this run's status; global groups are fine
    groups = {}
    for name, project in (("b", pb), ("global", None)):
        body: dict[str, Any] = {"name": f"wg-{name}-{uuid.uuid4().hex[:6]}"}
        if project is not None:
            body["projectCode"] = project
        r = await api.post("/alert-groups", json=body)
        assert r.status_code == 201, r.text
        groups[name] = r.json()["id"]
    r = await api.post(f"/definitions/{own['code']}/runs", headers=alice,
                       json={"warningType": "ALL", "warningGroupId": groups["b"]})
    assert r.status_code == 403 and str(pb) in r.json()["detail"] and "warningGroupId" in r.json()["detail"], r.text
    r = await api.post("/schedules", headers=alice, json={"processDefinitionCode": own["code"],
                                                          "warningGroupId": groups["b"], **cron})
    assert r.status_code == 403, r.text
    r = await api.post(f"/definitions/{own['code']}/runs", headers=alice,
                       json={"warningType": "ALL", "warningGroupId": groups["global"]})
    assert r.status_code == 201, r.text
    await wait(api, r.json()["instanceId"])
    for gid in groups.values():
        assert (await api.delete(f"/alert-groups/{gid}")).status_code == 204
