"""DS schedules as Temporal Schedules, on the real dev server (services/schedules.py).

The module runs its own worker (DsWorkflow, activities, ComplementWorkflow) on its own task queue
and an app with the schedules router, so it does not depend on the wiring in api/app.py. Firing is
tested with Quartz crontabs that have seconds; the misfire policies by stopping a private dev server
(SQLite file) across fire times and starting it again; the overlap policies by leaving the task
queue without a worker across fire times.
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client, ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.devserver import temporal_binary
from api.worker import build_worker
from core import search_attributes as sa
from core.contracts import InstanceStatus, RunInput
from core.settings import Settings
from core.temporal import data_converter
from model.formats import parse_document
from model.problems import DefinitionError
from model.quartz import fire_times
from services import schedules
from tests import dsbuild
from workflows.complement import ComplementWorkflow

from .helpers import submit, wait

SHANGHAI = ZoneInfo("Asia/Shanghai")
FMT = "%Y-%m-%d %H:%M:%S"


# -- fixtures shared with test_complement.py ----------------------------------------------------------


def porpoise_app(settings: Settings) -> FastAPI:
    """The app (api/app.py includes the schedule and complement routers)."""
    return create_app(settings)


def porpoise_worker(client: Client, settings: Settings) -> Worker:
    """Porpoise's worker plus ComplementWorkflow (whether or not api/worker.py registers it yet)."""
    # build_worker registers a worker for its task queue on the client: take its configuration from
    # a throwaway task queue, then point it at the real one.
    template = settings.model_copy(update={"task_queue": f"{settings.task_queue}-template-{uuid.uuid4().hex[:6]}"})
    config = build_worker(client, template).config()
    config["task_queue"] = settings.task_queue
    if not any(getattr(w, "__name__", "") == "ComplementWorkflow" for w in config["workflows"]):
        config["workflows"] = [*config["workflows"], ComplementWorkflow]
    return Worker(**config)


@pytest.fixture(scope="module")
def qsettings(settings: Settings) -> Settings:
    return settings.model_copy(update={"task_queue": f"porpoise-sched-{uuid.uuid4().hex[:6]}"})


@pytest.fixture(scope="module")
async def qworker(client: Client, qsettings: Settings) -> AsyncIterator[None]:
    async with porpoise_worker(client, qsettings):
        yield


@pytest.fixture(scope="module")
async def sapi(qsettings: Settings, qworker: None) -> AsyncIterator[httpx.AsyncClient]:
    app = porpoise_app(qsettings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://porpoise") as c:
        yield c


async def until(check: Callable[[], Awaitable[Any]], timeout: float, what: str, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(every)


def biz_export(name: str, script_extra: str = "") -> list[dict[str, Any]]:
    """One SHELL task exporting the business date and time it saw as OUT params."""
    out = [{"prop": p, "direct": "OUT", "type": "VARCHAR", "value": ""} for p in ("biz", "at")]
    script = ('b=${system.biz.date}; a=$[yyyyMMddHHmmss]; echo "#{setValue(biz=$b)}"; echo "#{setValue(at=$a)}"'
              + script_extra)
    task = dsbuild.task("t", params={"localParams": out, "rawScript": script, "resourceList": []})
    return dsbuild.export(name, [task], [(None, "t")])


def out_params(status: dict[str, Any]) -> dict[str, str]:
    return {p["prop"]: p["value"] for p in status["varPool"]}


async def new_definition(api: httpx.AsyncClient, name: str, script_extra: str = "") -> int:
    return int((await submit(api, biz_export(f"{name}-{uuid.uuid4().hex[:6]}", script_extra)))["code"])


async def create_schedule(api: httpx.AsyncClient, code: int, **body: Any) -> dict[str, Any]:
    r = await api.post("/schedules", json={"processDefinitionCode": code, **body})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def fired(cron: str, start: datetime, end: datetime, tz: str = "UTC") -> list[datetime]:
    return [t.astimezone(UTC) for t in fire_times(cron, start, end, tz)]


# -- CRUD -----------------------------------------------------------------------------------------------


async def test_create_update_online_offline_delete(sapi: httpx.AsyncClient, client: Client) -> None:
    code = await new_definition(sapi, "crud")
    ds = {"startTime": "2026-01-01 00:00:00", "endTime": "2099-12-31 23:59:59", "crontab": "0 0 2 * * ? *",
          "timezoneId": "Asia/Shanghai"}
    created = await create_schedule(sapi, code, schedule=json.dumps(ds), failureStrategy="END", warningType="ALL",
                                     processInstancePriority="HIGH", workerGroup="wg", tenantCode="etl",
                                     environmentCode=7)
    assert created["releaseState"] == "OFFLINE"  # DS creates schedules offline
    assert (created["crontab"], created["timezoneId"], created["startTime"]) == (
        "0 0 2 * * ? *", "Asia/Shanghai", "2026-01-01 00:00:00")
    assert (created["failureStrategy"], created["processInstancePriority"], created["tenantCode"]) == (
        "END", "HIGH", "etl")
    assert (created["misfirePolicy"], created["overlapPolicy"]) == ("FIRE_ALL_MISSED", "ALLOW_ALL")
    assert datetime.fromisoformat(created["createTime"]).tzinfo is not None
    sid = created["id"]
    tid = created["temporalScheduleId"]
    assert tid == f"ds-schedule-{code}"

    handle = client.get_schedule_handle(tid)
    desc = await handle.describe()
    assert desc.schedule.state.paused
    assert desc.schedule.spec.time_zone_name == "Asia/Shanghai"
    assert desc.schedule.policy.catchup_window == timedelta(days=365)
    assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.ALLOW_ALL
    action = desc.schedule.action
    assert action.workflow == "DsWorkflow" and action.task_queue == sapi_queue(sapi)  # type: ignore[attr-defined]
    assert desc.typed_search_attributes.get(sa.DS_DEFINITION_CODE) == code
    # the fires land at 02:00 Shanghai (18:00 UTC), from the schedule's start time on
    now = datetime.now(UTC)
    assert desc.info.next_action_times[:3] == fired("0 0 2 * * ? *", now, now + timedelta(days=4), "Asia/Shanghai")[:3]

    # one schedule per definition; bad input is a problem document naming the field
    r = await sapi.post("/schedules", json={"processDefinitionCode": code, "crontab": "0 0 2 * * ? *"})
    assert r.status_code == 409
    other = await new_definition(sapi, "crud-bad")
    r = await sapi.post("/schedules", json={"processDefinitionCode": other, "crontab": "0 0 2 * * *",
                                            "timezoneId": "Mars/Base"})
    assert r.status_code == 422 and r.json()["title"] == "Invalid schedule"
    pointers = {p["pointer"] for p in r.json()["problems"]}
    assert pointers == {"/crontab", "/timezoneId"}
    missing = await sapi.post("/schedules", json={"processDefinitionCode": 1, "crontab": "0 0 2 * * ?"})
    assert missing.status_code == 404

    # update: what is not given stays; policies map onto Temporal
    r = await sapi.put(f"/schedules/{sid}", json={"crontab": "0 30 9 ? * MON-FRI", "misfirePolicy": "SKIP_MISSED",
                                                   "overlapPolicy": "BUFFER_ONE"})
    assert r.status_code == 200, r.text
    assert (r.json()["crontab"], r.json()["tenantCode"], r.json()["timezoneId"]) == (
        "0 30 9 ? * MON-FRI", "etl", "Asia/Shanghai")
    desc = await handle.describe()
    assert desc.schedule.policy.catchup_window == timedelta(seconds=60)  # the misfire threshold (DS: 60 s)
    assert desc.schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ONE
    assert desc.info.next_action_times[:5] == fired("0 30 9 ? * MON-FRI", now, now + timedelta(days=9),
                                                    "Asia/Shanghai")[:5]
    r = await sapi.put(f"/schedules/{sid}", json={"misfirePolicy": "FIRE_ONCE_NOW"})
    assert (await handle.describe()).schedule.policy.catchup_window == timedelta(days=1) - timedelta(seconds=1)
    r = await sapi.put(f"/schedules/{sid}", json={"misfirePolicy": "SKIP_MISSED", "misfireThresholdSeconds": 300})
    assert r.json()["misfireThresholdSeconds"] == 300
    assert (await handle.describe()).schedule.policy.catchup_window == timedelta(minutes=5)
    assert (await sapi.put(f"/schedules/{sid}", json={"misfireThresholdSeconds": 5})).status_code == 422

    # online = unpaused; an online schedule cannot be deleted (DS)
    assert (await sapi.post(f"/schedules/{sid}/online")).json()["releaseState"] == "ONLINE"
    assert not (await handle.describe()).schedule.state.paused
    assert (await sapi.delete(f"/schedules/{sid}")).status_code == 409
    got = (await sapi.get(f"/schedules/{sid}")).json()
    assert got["temporal"]["paused"] is False and len(got["temporal"]["nextFireTimes"]) == 10
    assert [s["id"] for s in (await sapi.get("/schedules", params={"definitionCode": code})).json()] == [sid]
    assert (await sapi.get(f"/definitions/{code}/schedule")).json()["id"] == sid
    assert (await sapi.post(f"/schedules/{sid}/offline")).json()["releaseState"] == "OFFLINE"
    assert (await handle.describe()).schedule.state.paused
    assert (await sapi.delete(f"/schedules/{sid}")).status_code == 200
    assert (await sapi.get(f"/schedules/{sid}")).status_code == 404
    assert not [s async for s in await client.list_schedules() if s.id == tid]


def sapi_queue(api: httpx.AsyncClient) -> str:
    app = api._transport.app  # type: ignore[attr-defined]
    return str(app.state.porpoise.settings.task_queue)


async def test_preview_gives_the_next_fire_times(sapi: httpx.AsyncClient) -> None:
    r = await sapi.post("/schedules/preview", json={"crontab": "0 0 0 L * ?", "timezoneId": "Asia/Shanghai",
                                                    "startTime": "2030-01-01 00:00:00"})
    assert r.status_code == 200, r.text
    assert [t[:10] for t in r.json()["fireTimes"]] == ["2030-01-31", "2030-02-28", "2030-03-31", "2030-04-30",
                                                       "2030-05-31"]
    assert (await sapi.post("/schedules/preview", json={"crontab": "0 0 0 L * *"})).status_code == 422


# -- import with a definition -------------------------------------------------------------------------------


def _sample_with_schedule(samples_dir: Path, schedule: dict[str, Any] | None) -> list[dict[str, Any]]:
    doc = copy.deepcopy(json.loads((samples_dir / "ds-export-v32-shell-minimal.json").read_text()))
    doc[0]["processDefinition"]["code"] = dsbuild.new_code()
    doc[0]["processDefinition"]["name"] = f"sample-{uuid.uuid4().hex[:6]}"
    doc[0]["schedule"] = schedule
    return doc


async def test_import_from_the_shared_export_sample(sapi: httpx.AsyncClient, client: Client,
                                                    samples_dir: Path) -> None:
    """A DS export's schedule block comes in offline with its definition, as DS import does; a new
    version of the definition moves the schedule to it and keeps its settings."""
    block = {"id": 3, "processDefinitionCode": 0, "startTime": "2026-01-01 00:00:00", "endTime": "2126-01-01 00:00:00",
             "timezoneId": "Asia/Shanghai", "crontab": "0 15 1 ? * MON,THU *", "failureStrategy": "END",
             "warningType": "FAILURE", "warningGroupId": 2, "processInstancePriority": "LOW", "workerGroup": "etl",
             "tenantCode": "hadoop", "environmentCode": 11, "releaseState": "ONLINE", "userId": 1}
    doc = _sample_with_schedule(samples_dir, block)
    state = sapi._transport.app.state.porpoise  # type: ignore[attr-defined]
    saved = await submit(sapi, doc)
    imported = saved["schedule"]  # POST /definitions imported it
    assert imported is not None
    assert imported["releaseState"] == "OFFLINE"  # the export's ONLINE is not kept (DS import)
    assert (imported["crontab"], imported["timezoneId"], imported["failureStrategy"], imported["warningType"],
            imported["warningGroupId"], imported["processInstancePriority"], imported["workerGroup"],
            imported["tenantCode"], imported["environmentCode"], imported["processDefinitionVersion"]) == (
        "0 15 1 ? * MON,THU *", "Asia/Shanghai", "END", "FAILURE", 2, "LOW", "etl", "hadoop", 11, 1)
    handle = client.get_schedule_handle(imported["temporalScheduleId"])
    desc = await handle.describe()
    now = datetime.now(UTC)
    assert desc.schedule.state.paused
    assert desc.info.next_action_times[:4] == fired("0 15 1 ? * MON,THU *", now, now + timedelta(days=15),
                                                    "Asia/Shanghai")[:4]
    assert desc.schedule.spec.end_at is None  # 2126 is past Temporal's horizon (2100): no end

    await sapi.post(f"/schedules/{imported['id']}/online")
    doc[0]["taskDefinitionList"][0]["taskParams"]["rawScript"] = "echo v2"
    doc[0]["schedule"] = block | {"crontab": "0 0 0 * * ?"}  # a re-import does not override the schedule
    saved2 = await submit(sapi, doc)
    assert saved2["version"] == 2
    again = saved2["schedule"]
    assert again is not None and again["id"] == imported["id"]
    assert (again["processDefinitionVersion"], again["releaseState"], again["crontab"]) == (
        2, "ONLINE", "0 15 1 ? * MON,THU *")
    action = (await handle.describe()).schedule.action
    (started_with,) = await client.data_converter.decode(
        action.args, [RunInput])  # type: ignore[arg-type]
    assert started_with.definition.version == 2 and started_with.command_type == "SCHEDULER"
    assert (started_with.failure_strategy, started_with.instance_priority, started_with.timezone) == (
        "END", "LOW", "Asia/Shanghai")
    await sapi.post(f"/schedules/{imported['id']}/offline")
    await sapi.delete(f"/schedules/{imported['id']}")

    # no schedule block: nothing to import
    plain = _sample_with_schedule(samples_dir, None)
    saved3 = await submit(sapi, plain)
    assert saved3["schedule"] is None
    assert await schedules.import_schedule(state, state.store.get(saved3["code"])) is None
    # a block that cannot be scheduled is refused before anything is saved
    bad = _sample_with_schedule(samples_dir, block | {"crontab": "0 0 0 * * 6#3"})
    with pytest.raises(DefinitionError) as e:
        schedules.check_schedule_blocks(parse_document(bad))
    assert e.value.problems[0].pointer == "/schedule/crontab"
    r = await sapi.post("/definitions", json=bad)
    assert r.status_code == 422 and r.json()["problems"][0]["pointer"] == "/schedule/crontab", r.text
    assert (await sapi.get(f"/definitions/{bad[0]['processDefinition']['code']}")).status_code == 404


async def test_pydolphinscheduler_style_definition_and_schedule(sapi: httpx.AsyncClient, client: Client,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """pydolphinscheduler: ``Workflow(schedule=..., start_time=..., timezone=...)``; its ``get_define()``
    is the definition and its ``schedule_json`` the schedule (endTime 9999-12-31 = no end)."""
    import itertools

    from pydolphinscheduler.core import task as pyds_task

    codes = itertools.count(dsbuild.new_code() * 10)
    monkeypatch.setattr(pyds_task.Task, "gen_code_and_version", lambda self: (next(codes), 1))
    from pydolphinscheduler.core.workflow import Workflow
    from pydolphinscheduler.tasks.shell import Shell

    with Workflow(name=f"pyds-sched-{uuid.uuid4().hex[:6]}", schedule="0 30 8 ? * MON-FRI *",
                  start_time="2026-01-01", timezone="America/New_York") as wf:
        Shell(name="a", command="echo a")
        define = json.loads(json.dumps(wf.get_define(), default=str))
        schedule_json = wf.schedule_json
    saved = await submit(sapi, define)
    assert schedule_json is not None and schedule_json["endTime"].startswith("9999")
    created = await create_schedule(sapi, saved["code"], schedule=schedule_json, releaseState="ONLINE")
    desc = await client.get_schedule_handle(created["temporalScheduleId"]).describe()
    now = datetime.now(UTC)
    expected = fired("0 30 8 ? * MON-FRI *", now, now + timedelta(days=10), "America/New_York")[:5]
    assert desc.info.next_action_times[:5] == expected
    assert all(t.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M %a") in
               {f"08:30 {d}" for d in ("Mon", "Tue", "Wed", "Thu", "Fri")} for t in expected)
    await sapi.post(f"/schedules/{created['id']}/offline")
    await sapi.delete(f"/schedules/{created['id']}")


# -- firing ----------------------------------------------------------------------------------------------------


async def test_each_run_gets_the_fire_time_as_schedule_time(sapi: httpx.AsyncClient, client: Client) -> None:
    code = await new_definition(sapi, "fires")
    created = await create_schedule(sapi, code, crontab="*/2 * * * * ? *", timezoneId="Asia/Shanghai",
                                    releaseState="ONLINE", failureStrategy="END")
    sid = created["id"]

    async def two_done() -> list[dict[str, Any]] | None:
        runs = (await sapi.get(f"/schedules/{sid}/runs")).json()
        done = [r for r in runs if r["state"] == "SUCCESS"]
        return done if len(done) >= 2 else None

    done = await until(two_done, 20, "two scheduled runs")
    await sapi.post(f"/schedules/{sid}/offline")
    for run in done:
        when = datetime.fromisoformat(run["scheduleTime"])
        assert when.second % 2 == 0 and when.microsecond == 0  # a fire time of */2
        assert run["instanceId"] == f"ds-{code}-sched-{when.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
        status = await wait(sapi, run["instanceId"])
        assert datetime.fromisoformat(status["scheduleTime"]) == when
        local = when.astimezone(SHANGHAI)
        assert out_params(status) == {"biz": f"{local - timedelta(days=1):%Y%m%d}", "at": f"{local:%Y%m%d%H%M%S}"}
        assert status["failureStrategy"] == "END"
        desc = await client.get_workflow_handle(run["instanceId"]).describe()
        attrs = desc.typed_search_attributes
        assert attrs.get(sa.DS_SCHEDULE_TIME) == when  # findable by business time, like any run
        assert attrs.get(schedules.SCHEDULED_BY) == created["temporalScheduleId"]
    # the runs are ordinary instances: listed by definition too
    listed = {r["instanceId"] for r in (await sapi.get("/runs", params={"definitionCode": code})).json()}
    assert {r["instanceId"] for r in done} <= listed
    # offline: no new fire
    count = len((await sapi.get(f"/schedules/{sid}/runs")).json())
    await asyncio.sleep(2.5)
    assert len((await sapi.get(f"/schedules/{sid}/runs")).json()) == count
    # trigger: one run now, even offline
    assert (await sapi.post(f"/schedules/{sid}/trigger")).status_code == 202
    await until(lambda: _count_runs(sapi, sid, count + 1), 10, "the triggered run")
    await sapi.delete(f"/schedules/{sid}")


async def _count_runs(api: httpx.AsyncClient, sid: int, n: int) -> bool:
    return len((await api.get(f"/schedules/{sid}/runs")).json()) >= n


async def test_overlap_policies_while_the_worker_is_down(client: Client, settings: Settings) -> None:
    """Three schedules fire every second, three times, at a task queue no worker polls: ALLOW_ALL
    starts all three instances, SKIP one, BUFFER_ONE one and buffers one. Once a worker comes, every
    started or buffered fire runs with its own fire time."""
    down = settings.model_copy(update={"task_queue": f"porpoise-nowork-{uuid.uuid4().hex[:6]}"})
    app = porpoise_app(down)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://porpoise") as api:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        end = start + timedelta(seconds=2)
        window = {"crontab": "* * * * * ? *", "timezoneId": "UTC", "startTime": start.strftime(FMT),
                  "endTime": end.strftime(FMT), "releaseState": "ONLINE"}
        times = [start, start + timedelta(seconds=1), end]
        made = {}
        for policy in ("ALLOW_ALL", "SKIP", "BUFFER_ONE"):
            code = await new_definition(api, f"overlap-{policy.lower()}")
            made[policy] = await create_schedule(api, code, overlapPolicy=policy, **window)
        await asyncio.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 1.5)

        async def started(policy: str) -> list[datetime]:
            query = f"TemporalScheduledById = '{made[policy]['temporalScheduleId']}'"
            return sorted([wf.typed_search_attributes.get(schedules.SCHEDULED_START)  # type: ignore[misc]
                           async for wf in client.list_workflows(query)])

        assert await started("ALLOW_ALL") == times
        assert await started("SKIP") == times[:1]
        assert await started("BUFFER_ONE") == times[:1]
        info = {p: (await client.get_schedule_handle(m["temporalScheduleId"]).describe()).info for p, m in made.items()}
        assert info["SKIP"].num_actions_skipped_overlap == 2
        assert info["BUFFER_ONE"].num_actions_skipped_overlap == 1  # one buffered, one dropped

        async with porpoise_worker(client, down):
            expected = {"ALLOW_ALL": times, "SKIP": times[:1], "BUFFER_ONE": times[:2]}
            for policy, want in expected.items():
                async def done(policy: str = policy, want: list[datetime] = want) -> bool:
                    runs = (await api.get(f"/schedules/{made[policy]['id']}/runs")).json()
                    return sorted(datetime.fromisoformat(r["scheduleTime"]) for r in runs
                                  if r["state"] == "SUCCESS") == want
                await until(done, 20, f"{policy} runs")
        for m in made.values():
            await api.post(f"/schedules/{m['id']}/offline")
            await api.delete(f"/schedules/{m['id']}")


# -- misfire: the server is down across fire times -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _private_server(db: Path, port: int, settings: Settings) -> WorkflowEnvironment:
    return await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), search_attributes=list(sa.ALL),
        data_converter=data_converter(settings), dev_server_database_filename=str(db), port=port, ui=False)


async def test_misfire_policies_across_server_downtime(settings: Settings, tmp_path: Path) -> None:
    """Three schedules fire every 20 s (the same crontab), with a misfire threshold of 10 s; the
    Temporal server is stopped before two of their fire times and started again 14 s after the last
    one. FIRE_ALL_MISSED (catch-up window one year) runs both missed times, FIRE_ONCE_NOW (window 19 s:
    under the 20 s gap) only the latest, SKIP_MISSED (window = the threshold) none. Each run's
    schedule time is its own missed fire time."""
    db, port = tmp_path / "temporal.db", _free_port()
    env = await _private_server(db, port, settings)
    private = settings.model_copy(update={"temporal_address": f"127.0.0.1:{port}",
                                          "task_queue": f"porpoise-misfire-{uuid.uuid4().hex[:6]}"})
    now = datetime.now(UTC).replace(microsecond=0)
    first = now + timedelta(seconds=4)
    cron = f"{first.second % 20}/20 * * * * ? *"  # fires at first, first + 20 s, ... (a 20 s grid)
    last = first + timedelta(seconds=20)
    made: dict[str, dict[str, Any]] = {}
    app = porpoise_app(private)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://porpoise") as api:
        for policy in ("FIRE_ALL_MISSED", "FIRE_ONCE_NOW", "SKIP_MISSED"):
            code = await new_definition(api, f"misfire-{policy.lower()}")
            made[policy] = await create_schedule(
                api, code, crontab=cron, timezoneId="Asia/Shanghai", misfirePolicy=policy, misfireThresholdSeconds=10,
                releaseState="ONLINE",
                startTime=now.astimezone(SHANGHAI).strftime(FMT), endTime=last.astimezone(SHANGHAI).strftime(FMT))
        windows = {}
        for policy, m in made.items():  # the schedules have started (and say when they fire next)
            desc = await env.client.get_schedule_handle(m["temporalScheduleId"]).describe()
            windows[policy] = desc.schedule.policy.catchup_window
            assert desc.info.next_action_times[0] == first
    await env.shutdown()
    down_at = datetime.now(UTC)
    assert down_at < first, "the server must be down before the first fire time"
    assert windows == {"FIRE_ALL_MISSED": timedelta(days=365), "FIRE_ONCE_NOW": timedelta(seconds=19),
                       "SKIP_MISSED": timedelta(seconds=10)}
    await asyncio.sleep(max(0.0, (last + timedelta(seconds=14) - datetime.now(UTC)).total_seconds()))
    env = await _private_server(db, port, settings)
    try:
        async with porpoise_worker(env.client, private):
            expected = {"FIRE_ALL_MISSED": [first, last], "FIRE_ONCE_NOW": [last], "SKIP_MISSED": []}

            async def runs(policy: str) -> dict[datetime, str | None]:
                query = f"TemporalScheduledById = '{made[policy]['temporalScheduleId']}'"
                return {wf.typed_search_attributes.get(schedules.SCHEDULED_START):  # type: ignore[misc]
                        wf.typed_search_attributes.get(sa.DS_STATE) async for wf in env.client.list_workflows(query)}

            async def all_done() -> bool:
                for policy, want in expected.items():
                    got = await runs(policy)
                    if sorted(got) != want or any(s != "SUCCESS" for s in got.values()):
                        return False
                return True

            try:
                await until(all_done, 15, "the catch-up runs", every=0.5)
            except AssertionError:
                raise AssertionError({p: sorted(await runs(p)) for p in expected}) from None
            await asyncio.sleep(1.0)  # nothing else fires late
            assert {p: sorted(await runs(p)) for p in expected} == expected
            for policy in ("FIRE_ALL_MISSED", "FIRE_ONCE_NOW"):
                query = f"TemporalScheduledById = '{made[policy]['temporalScheduleId']}'"
                async for wf in env.client.list_workflows(query):
                    status = await env.client.get_workflow_handle(wf.id, result_type=InstanceStatus).result()
                    when = wf.typed_search_attributes.get(schedules.SCHEDULED_START)
                    assert status.schedule_time == when and wf.typed_search_attributes.get(sa.DS_SCHEDULE_TIME) == when
                    local = when.astimezone(SHANGHAI)  # type: ignore[union-attr]
                    assert {p.prop: p.value for p in status.var_pool}["at"] == f"{local:%Y%m%d%H%M%S}"
            skipped = await env.client.get_schedule_handle(made["SKIP_MISSED"]["temporalScheduleId"]).describe()
            assert skipped.info.num_actions_missed_catchup_window == 2
    finally:
        await env.shutdown()


def test_catchup_windows_per_misfire_policy() -> None:
    day = timedelta(days=1)
    window = schedules.catchup_window
    assert window("FIRE_ALL_MISSED", "0 0 2 * * ?", "UTC") == timedelta(days=365)
    assert window("SKIP_MISSED", "0 0 2 * * ?", "UTC") == timedelta(seconds=60)
    assert window("SKIP_MISSED", "0 0 2 * * ?", "UTC", 10) == timedelta(seconds=10)
    assert window("FIRE_ONCE_NOW", "0 0 2 * * ?", "UTC") == day - timedelta(seconds=1)
    assert window("FIRE_ONCE_NOW", "0 0 9 ? * MON-FRI", "Asia/Shanghai") == day - timedelta(seconds=1)
    assert window("FIRE_ONCE_NOW", "0 0/20 * * * ?", "UTC") == timedelta(minutes=20) - timedelta(seconds=1)
    # firing more often than the threshold: the threshold
    assert window("FIRE_ONCE_NOW", "*/5 * * * * ?", "UTC") == timedelta(seconds=60)
    assert window("FIRE_ONCE_NOW", "* * * * * ?", "UTC", 10) == timedelta(seconds=10)
    # DST: the shortest day in New York is 23 h
    assert window("FIRE_ONCE_NOW", "0 0 12 * * ?", "America/New_York") == timedelta(hours=23) - timedelta(seconds=1)
    # at most one more fire: nothing to collapse
    assert window("FIRE_ONCE_NOW", "0 0 0 1 1 ? 2099", "UTC") == timedelta(days=365)
