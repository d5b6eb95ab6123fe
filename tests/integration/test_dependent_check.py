"""The DEPENDENT check activity against real runs on the Temporal dev server (reference §4.10).

Upstream definitions run through the API with a ``scheduleTime`` (so they carry DsScheduleTime), then
``check_dependent`` is called directly. Each test uses definitions of its own, so visibility queries
never see another test's runs. Visibility is eventually consistent: checks are polled briefly.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.dependent import DependentActivities
from core.contracts.dependent import DependentCheckRequest
from model.dependent import ALL_TASKS, WORKFLOW, DependItem, DependResult, ItemCheck
from tests import dsbuild
from tests.integration.helpers import nodes, run, start, submit, wait

S, F, W = DependResult.SUCCESS, DependResult.FAILED, DependResult.WAITING
TZ = "Asia/Shanghai"  # the suite's default timezone (tests/conftest.py)
MAR_1 = "2024-03-01T10:00:00+08:00"  # upstream business date
MAR_2 = "2024-03-02T05:00:00+08:00"  # the dependent's: last1Days is Shanghai's March 1st


def item(code: int, dep: int = WORKFLOW, date_value: str = "last1Days", passing: bool = False) -> DependItem:
    return DependItem(project_code=42, definition_code=code, dep_task_code=dep, date_value=date_value,
                      parameter_passing=passing)


def request(*items: DependItem, business: str = MAR_2, **fields: Any) -> DependentCheckRequest:
    return DependentCheckRequest(business_date=datetime.fromisoformat(business), timezone=TZ, items=list(items),
                                 **fields)


async def check(acts: DependentActivities, req: DependentCheckRequest) -> list[ItemCheck]:
    response = await ActivityEnvironment().run(acts.check_dependent, req)
    return response.items


async def settle(acts: DependentActivities, req: DependentCheckRequest, *expected: DependResult,
                 timeout: float = 15) -> list[ItemCheck]:
    """Poll until the results are `expected` (visibility catches up within a second or two)."""
    deadline = time.monotonic() + timeout
    while True:
        got = await check(acts, req)
        if [c.result for c in got] == list(expected):
            return got
        assert time.monotonic() < deadline, f"still {[(c.result, c.detail) for c in got]}, want {expected}"
        await asyncio.sleep(0.3)


def shell(name: str, script: str = "true", **fields: Any) -> dict[str, Any]:
    return dsbuild.task(name, script, **fields)


async def run_upstream(api: httpx.AsyncClient, doc: Any, schedule: str | None = MAR_1,
                       **body: Any) -> dict[str, Any]:
    if schedule is not None:
        body["scheduleTime"] = schedule
    return await run(api, doc, **body)


async def test_success_failure_and_nothing_in_the_window(api: httpx.AsyncClient, client: Client) -> None:
    acts = DependentActivities(client)
    good = dsbuild.export("dep-good", [shell("a")], [(None, "a")])
    bad = dsbuild.export("dep-bad", [shell("a", "exit 3")], [(None, "a")])
    g = await run_upstream(api, good)
    b = await run_upstream(api, bad)
    assert (g["state"], b["state"]) == ("SUCCESS", "FAILURE")
    good_code, bad_code = good[0]["processDefinition"]["code"], bad[0]["processDefinition"]["code"]

    ok, failed = await settle(acts, request(item(good_code), item(bad_code)), S, F)
    assert ok.instance_id == g["instanceId"] and ok.key == item(good_code).key
    assert failed.instance_id == b["instanceId"]
    # the same definitions, another window: nothing there yet
    elsewhere = request(item(good_code, date_value="today"), item(bad_code, date_value="lastWeek"))
    today, later = await check(acts, elsewhere)
    assert (today.result, later.result) == (W, W)
    assert "no instance" in today.detail
    # a definition that never ran at all
    [never] = await check(acts, request(item(dsbuild.new_code())))
    assert never.result is W


async def test_task_level_items_forbidden_and_all_tasks(api: httpx.AsyncClient, client: Client) -> None:
    acts = DependentActivities(client)
    # a -> b (fails); c forbidden; instance ends FAILURE
    doc = dsbuild.export("dep-tasks", [shell("a"), shell("b", "exit 1"), shell("c", flag="NO")],
                         [(None, "a"), ("a", "b"), (None, "c")])
    status = await run_upstream(api, doc)
    assert status["state"] == "FAILURE"
    code, c = doc[0]["processDefinition"]["code"], dsbuild.codes(doc)
    items = [item(code, c["a"]), item(code, c["b"]), item(code, c["c"]), item(code, WORKFLOW), item(code, ALL_TASKS)]
    a, b, forbidden, whole, every = await settle(acts, request(*items), S, F, S, F, F)
    assert forbidden.detail == "task is forbidden"
    assert every.detail == "instance ended FAILURE"
    # DS FORCED_SUCCESS: a task forced to success on the finished instance counts as success
    forced = DependentActivities(client, forced_success=lambda iid: {c["b"]} if iid == status["instanceId"] else set())
    [b_forced, whole_forced] = await check(forced, request(item(code, c["b"]), item(code, WORKFLOW)))
    assert (b_forced.result, whole_forced.result) == (S, F)  # the instance itself is still FAILURE

    # all tasks: every enabled task succeeded, the forbidden one is not counted
    doc2 = dsbuild.export("dep-all", [shell("a"), shell("b"), shell("f", "exit 1", flag="NO")],
                          [(None, "a"), ("a", "b"), (None, "f")])
    ok = await run_upstream(api, doc2)
    assert ok["state"] == "SUCCESS" and nodes(ok)["f"]["state"] == "FORBIDDEN"
    code2 = doc2[0]["processDefinition"]["code"]
    await settle(acts, request(item(code2, ALL_TASKS), item(code2, dsbuild.codes(doc2)["f"])), S, S)


async def test_the_latest_instance_in_the_window_wins(api: httpx.AsyncClient, client: Client) -> None:
    acts = DependentActivities(client)
    doc = dsbuild.export("dep-latest", [shell("a", "exit ${rc}")], [(None, "a")],
                         global_params='[{"prop":"rc","direct":"IN","type":"VARCHAR","value":"0"}]')
    saved = await submit(api, doc)
    code = saved["code"]
    first = await wait(api, await start(api, code, scheduleTime=MAR_1))
    assert first["state"] == "SUCCESS"
    await settle(acts, request(item(code)), S)
    second = await wait(api, await start(api, code, scheduleTime="2024-03-01T22:00:00+08:00",
                                         startParams={"rc": "1"}))
    assert second["state"] == "FAILURE"
    [latest] = await settle(acts, request(item(code)), F)
    assert latest.instance_id == second["instanceId"]
    # a later instance with an earlier schedule time in the same window still is the latest one
    third = await wait(api, await start(api, code, scheduleTime="2024-03-01T01:00:00+08:00"))
    [latest] = await settle(acts, request(item(code)), S)
    assert latest.instance_id == third["instanceId"]
    # a rerun of the first instance makes it the most recent one (DS: the one that finished last)
    r = await api.post(f"/runs/{first['instanceId']}/rerun")
    assert r.status_code == 201, r.text
    rerun = await wait(api, first["instanceId"],
                       until=lambda st: st["runTimes"] == 2 and st["temporalStatus"] == "COMPLETED")
    assert rerun["temporalStatus"] == "COMPLETED"
    [latest] = await settle(acts, request(item(code, date_value="today"), business=MAR_1), S)
    assert latest.instance_id == first["instanceId"]


async def test_a_task_item_skips_instances_that_did_not_run_the_task(api: httpx.AsyncClient,
                                                                     client: Client) -> None:
    acts = DependentActivities(client)
    doc = dsbuild.export("dep-ran", [shell("a"), shell("b")], [(None, "a"), (None, "b")])
    saved = await submit(api, doc)
    code, c = saved["code"], dsbuild.codes(doc)
    both = await wait(api, await start(api, code, scheduleTime=MAR_1))
    only_a = await wait(api, await start(api, code, scheduleTime=MAR_1, startNodeList=[c["a"]]))
    assert nodes(only_a)["b"]["state"] == "NOT_RUN" and only_a["state"] == "SUCCESS"
    task_a, task_b, every = await settle(acts, request(item(code, c["a"]), item(code, c["b"]), item(code, ALL_TASKS)),
                                         S, S, F)
    assert task_a.instance_id == only_a["instanceId"]
    assert task_b.instance_id == both["instanceId"]  # the newest instance in which b has a task instance
    assert every.instance_id == only_a["instanceId"]  # b got no task instance there


async def test_manual_run_without_schedule_time_matches_by_start_time(api: httpx.AsyncClient,
                                                                      client: Client) -> None:
    acts = DependentActivities(client)
    doc = dsbuild.export("dep-manual", [shell("a")], [(None, "a")])
    status = await run_upstream(api, doc, schedule=None)
    assert status["state"] == "SUCCESS" and status["scheduleTime"] is None
    code = doc[0]["processDefinition"]["code"]
    started = datetime.fromisoformat(status["startTime"])
    await settle(acts, request(item(code, date_value="today"), business=started.isoformat()), S)
    await settle(acts, request(item(code, date_value="currentHour"), business=started.isoformat()), S)
    tomorrow = (started + timedelta(days=1)).isoformat()
    [c] = await check(acts, request(item(code, date_value="today"), business=tomorrow))
    assert c.result is W


async def test_a_running_instance_is_waited_for(api: httpx.AsyncClient, client: Client) -> None:
    acts = DependentActivities(client)
    doc = dsbuild.export("dep-running", [shell("slow", "sleep 3"), shell("quick")], [(None, "slow"), (None, "quick")])
    saved = await submit(api, doc)
    instance = await start(api, saved["code"], scheduleTime=MAR_1)
    code, c = saved["code"], dsbuild.codes(doc)
    await wait(api, instance, until=lambda s: nodes(s)["quick"]["state"] == "SUCCESS")
    whole, slow, quick = await settle(acts, request(item(code), item(code, c["slow"]), item(code, c["quick"])), W, W, S)
    assert whole.instance_id == instance and "RUNNING_EXECUTION" in whole.detail
    await wait(api, instance)
    await settle(acts, request(item(code), item(code, c["slow"])), S, S)


async def test_parameter_passing_returns_the_out_var_pool(api: httpx.AsyncClient, client: Client) -> None:
    acts = DependentActivities(client)
    out = {"prop": "shared", "direct": "OUT", "type": "VARCHAR", "value": ""}
    producer = shell("produce", params={"localParams": [out], "resourceList": [],
                                        "rawScript": "echo '${setValue(shared=from-upstream)}'"})
    doc = dsbuild.export("dep-vars", [producer], [(None, "produce")])
    status = await run_upstream(api, doc)
    assert status["state"] == "SUCCESS"
    code, task = doc[0]["processDefinition"]["code"], dsbuild.codes(doc)["produce"]
    whole, one, silent = await settle(
        acts, request(item(code, passing=True), item(code, task, passing=True), item(code, ALL_TASKS)), S, S, S)
    for c in (whole, one):
        assert [(p.prop, p.value, p.direct.value) for p in c.var_pool] == [("shared", "from-upstream", "OUT")]
        assert c.end_time is not None
    assert silent.var_pool == []  # without parameterPassing nothing travels


async def test_self_dependency_first_instance_succeeds(api: httpx.AsyncClient, client: Client) -> None:
    acts = DependentActivities(client)
    code = dsbuild.new_code()
    me: dict[str, Any] = {"instance_id": "ds-self-first", "definition_code": code, "task_code": 77,
                          "scheduled": True}
    # nothing else of this definition exists: the requester is the first instance, DS defaults SUCCESS
    [first] = await check(acts, request(item(code, ALL_TASKS), **me))
    assert first.result is S and "first instance" in first.detail
    [own_task] = await check(acts, request(item(code, 77), **me))
    assert own_task.result is S
    [whole] = await check(acts, request(item(code, WORKFLOW), **me))
    assert whole.result is W  # DS checks "all tasks" or this task only, not depTaskCode 0

    doc = dsbuild.export("dep-self", [shell("a")], [(None, "a")], code=code)
    earlier = await run_upstream(api, doc, schedule="2024-02-29T10:00:00+08:00")
    assert earlier["state"] == "SUCCESS"
    # an earlier scheduled instance exists: no longer the first, so the item is judged normally
    await settle(acts, request(item(code, ALL_TASKS, date_value="today"), business=MAR_1, **me), W)
    await settle(acts, request(item(code, ALL_TASKS, date_value="last1Days"), business=MAR_1, **me), S)
