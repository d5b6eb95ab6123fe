"""Complement data (backfill, reference §4.13) on the real dev server: services/complements.py and
the Complement workflow (workflows/complement.py).

Every date's instance exports the ``system.biz.date`` and ``$[yyyyMMddHHmmss]`` it saw, so each test
checks the business dates, their order, and the serial or round-robin chains from the instances'
own start and end times.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from temporalio.client import Client

from core.contracts import RunInput
from core.settings import Settings
from model.complement import ComplementDates, complement_dates
from model.problems import DefinitionError
from model.quartz import fire_times
from workflows.complement import ComplementInput, ComplementStatus, ExecutionOrder, RunMode

from .helpers import wait
from .test_schedules import create_schedule, new_definition, out_params, porpoise_app, porpoise_worker, until

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def csettings(settings: Settings) -> Settings:
    return settings.model_copy(update={"task_queue": f"porpoise-complement-{uuid.uuid4().hex[:6]}"})


@pytest.fixture(scope="module")
async def capi(client: Client, csettings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with porpoise_worker(client, csettings):
        app = porpoise_app(csettings)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://porpoise") as c:
            yield c


async def start_complement(api: httpx.AsyncClient, code: int, **body: Any) -> dict[str, Any]:
    r = await api.post(f"/definitions/{code}/complements", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def finished(api: httpx.AsyncClient, complement_id: str, timeout: float = 40) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        r = await api.get(f"/complements/{complement_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body if body["temporalStatus"] != "RUNNING" else None
    result: dict[str, Any] = await until(ended, timeout, f"complement {complement_id}")
    return result


async def instances(api: httpx.AsyncClient, complement: dict[str, Any]) -> list[dict[str, Any]]:
    """Each date's instance status, in the complement's date order (dates that never ran skipped)."""
    return [await wait(api, d["instanceId"]) for d in complement["dates"] if d["instanceId"]]


def at(status: dict[str, Any]) -> datetime:
    return datetime.strptime(out_params(status)["at"], "%Y%m%d%H%M%S").replace(tzinfo=SHANGHAI)


def check_business_dates(statuses: list[dict[str, Any]]) -> None:
    for s in statuses:
        when = datetime.fromisoformat(s["scheduleTime"]).astimezone(SHANGHAI)
        assert out_params(s) == {"biz": f"{when - timedelta(days=1):%Y%m%d}", "at": f"{when:%Y%m%d%H%M%S}"}


def check_serial(statuses: list[dict[str, Any]]) -> None:
    """Each instance started after the previous one ended."""
    for a, b in zip(statuses, statuses[1:], strict=False):
        assert datetime.fromisoformat(b["startTime"]) >= datetime.fromisoformat(a["endTime"]), (a, b)


MARCH = [datetime(2024, 3, d, tzinfo=SHANGHAI) for d in range(1, 11)]


async def test_serial_over_ten_dates_newest_first_survives_a_worker_restart(client: Client,
                                                                            settings: Settings) -> None:
    """DS default: serial, newest date first. The worker is replaced halfway; the complement goes on."""
    own = settings.model_copy(update={"task_queue": f"porpoise-complement-restart-{uuid.uuid4().hex[:6]}"})
    app = porpoise_app(own)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://porpoise") as api:
        code = await new_definition(api, "serial")
        async with porpoise_worker(client, own):
            created = await start_complement(api, code, timezone="Asia/Shanghai", scheduleTime=json_range(
                "2024-03-01 00:00:00", "2024-03-10 00:00:00"))
            assert created["chains"] == 1 and created["crontab"] == "0 0 0 * * ? *"
            assert [datetime.fromisoformat(d) for d in created["dates"]] == MARCH[::-1]

            async def three_done() -> bool:
                body = (await api.get(f"/complements/{created['complementId']}")).json()
                return body["counts"].get("SUCCESS", 0) >= 3
            await until(three_done, 20, "three dates")
        # No worker for a moment, then a fresh one: the complement replays and continues. A workflow
        # task the old worker had taken when it stopped waits out its timeout (WORKFLOW_TASK_TIMEOUT).
        async with porpoise_worker(client, own):
            done = await finished(api, created["complementId"], timeout=90)
            assert (done["state"], done["temporalStatus"], done["runMode"]) == ("SUCCESS", "COMPLETED",
                                                                               "RUN_MODE_SERIAL")
            assert [d["state"] for d in done["dates"]] == ["SUCCESS"] * 10
            statuses = await instances(api, done)
        assert [at(s) for s in statuses] == MARCH[::-1]
        check_business_dates(statuses)
        check_serial(statuses)
        assert {s["instanceId"] for s in statuses} == {d["instanceId"] for d in done["dates"]}
        # the instances are ordinary runs: listed by definition, with their business time
        listed = (await api.get("/runs", params={"definitionCode": code, "limit": 50})).json()
        assert {r["instanceId"] for r in listed} >= {s["instanceId"] for s in statuses}


def json_range(start: str, end: str) -> str:
    return f'{{"complementStartDate": "{start}", "complementEndDate": "{end}"}}'


async def test_parallel_deals_the_dates_round_robin(capi: httpx.AsyncClient) -> None:
    """DS 3.2: expectedParallelismNumber chains, date i of the ordered list on chain i mod n."""
    code = await new_definition(capi, "parallel", "; sleep 0.3")
    created = await start_complement(capi, code, timezone="Asia/Shanghai", runMode="RUN_MODE_PARALLEL",
                                     expectedParallelismNumber=3,
                                     scheduleTime={"complementStartDate": "2024-03-01 00:00:00",
                                                   "complementEndDate": "2024-03-10 00:00:00"})
    assert created["chains"] == 3
    done = await finished(capi, created["complementId"])
    assert done["state"] == "SUCCESS"
    order = MARCH[::-1]
    assert [(datetime.fromisoformat(d["scheduleTime"]), d["chain"]) for d in done["dates"]] == [
        (t, i % 3) for i, t in enumerate(order)]
    statuses = await instances(capi, done)
    check_business_dates(statuses)
    for chain in range(3):
        lane = statuses[chain::3]
        assert [at(s) for s in lane] == order[chain::3]
        check_serial(lane)
    firsts = statuses[:3]  # the three chains ran side by side
    assert max(datetime.fromisoformat(s["startTime"]) for s in firsts) < min(
        datetime.fromisoformat(s["endTime"]) for s in firsts)


async def test_a_failure_stops_its_chain_unless_continue_on_failure(capi: httpx.AsyncClient) -> None:
    """The date 2024-05-03 fails (its biz date is 20240502). Serial: the dates after it never run, as
    DS does; continueOnFailure runs them. Parallel: only the failing date's chain stops."""
    code = await new_definition(capi, "fails", '; [ "$b" != "20240502" ]')
    dates = ",".join(f"2024-05-0{d} 00:00:00" for d in (3, 1, 5, 2, 4, 1))  # unordered, one duplicate
    body = {"timezone": "Asia/Shanghai", "executionOrder": "ASC_ORDER",
            "scheduleTime": {"complementScheduleDateList": dates}}

    serial = await finished(capi, (await start_complement(capi, code, **body))["complementId"])
    assert serial["state"] == "FAILURE" and serial["temporalStatus"] == "FAILED"
    assert [(d["scheduleTime"][:10], d["state"]) for d in serial["dates"]] == [
        ("2024-05-01", "SUCCESS"), ("2024-05-02", "SUCCESS"), ("2024-05-03", "FAILURE"), ("2024-05-04", "NOT_RUN"),
        ("2024-05-05", "NOT_RUN")]

    going = await finished(capi, (await start_complement(capi, code, continueOnFailure=True, **body))["complementId"])
    assert going["state"] == "FAILURE"
    assert [d["state"] for d in going["dates"]] == ["SUCCESS", "SUCCESS", "FAILURE", "SUCCESS", "SUCCESS"]
    check_business_dates([s for s in await instances(capi, going) if s["state"] == "SUCCESS"])

    parallel = await finished(capi, (await start_complement(
        capi, code, runMode="RUN_MODE_PARALLEL", expectedParallelismNumber=2, **body))["complementId"])
    # chain 0: 05-01, 05-03 (fails), 05-05 (not run); chain 1: 05-02, 05-04
    assert [(d["chain"], d["state"]) for d in parallel["dates"]] == [
        (0, "SUCCESS"), (1, "SUCCESS"), (0, "FAILURE"), (1, "SUCCESS"), (0, "NOT_RUN")]


async def test_stop_stops_the_running_date_and_starts_no_other(capi: httpx.AsyncClient) -> None:
    code = await new_definition(capi, "stop", "; sleep 30")
    created = await start_complement(capi, code, scheduleTime=json_range("2024-06-01 00:00:00",
                                                                         "2024-06-03 00:00:00"))
    cid = created["complementId"]

    async def running() -> str | None:
        body = (await capi.get(f"/complements/{cid}")).json()
        first = body["dates"][0]
        return first["instanceId"] if first["state"] == "RUNNING_EXECUTION" else None
    first = await until(running, 15, "the first date to run")
    await wait(capi, first, until=lambda s: any(n["state"] == "RUNNING_EXECUTION" for n in s["nodes"]))
    r = await capi.post(f"/complements/{cid}/stop")
    assert r.status_code == 200 and r.json()["state"] == "READY_STOP"
    done = await finished(capi, cid, 20)
    assert (done["state"], done["temporalStatus"]) == ("STOP", "COMPLETED")
    assert [d["state"] for d in done["dates"]] == ["STOP", "NOT_RUN", "NOT_RUN"]
    stopped = await wait(capi, first)
    assert stopped["state"] == "STOP" and stopped["nodes"][0]["state"] == "KILL"
    assert (await capi.post(f"/complements/{cid}/stop")).status_code == 409
    listed = (await capi.get("/complements", params={"definitionCode": code})).json()
    assert [(c["complementId"], c["state"]) for c in listed] == [(cid, "STOP")]


async def test_dates_are_the_online_schedules_fire_times(capi: httpx.AsyncClient) -> None:
    """With an online schedule the dates are its crontab's fire times in the closed range, in its
    timezone; offline, it is daily at midnight (DS uses online schedules only)."""
    code = await new_definition(capi, "from-schedule")
    sched = await create_schedule(capi, code, crontab="0 0 6 ? * MON,WED *", timezoneId="Asia/Shanghai")
    rng = {"complementStartDate": "2024-01-01 06:00:00", "complementEndDate": "2024-01-15 06:00:00"}
    short = {"complementStartDate": "2024-01-01 06:00:00", "complementEndDate": "2024-01-03 06:00:00"}
    offline = await start_complement(capi, code, dryRun=True, scheduleTime=short)
    assert offline["dates"] == ["2024-01-03T00:00:00+08:00", "2024-01-02T00:00:00+08:00"]  # daily at midnight
    assert offline["crontab"] == "0 0 0 * * ? *"
    await capi.post(f"/schedules/{sched['id']}/online")
    created = await start_complement(capi, code, dryRun=True, scheduleTime=rng)
    expected = fire_times("0 0 6 ? * MON,WED *", datetime(2024, 1, 1, 5, tzinfo=SHANGHAI),
                          datetime(2024, 1, 15, 6, tzinfo=SHANGHAI), "Asia/Shanghai")
    assert [datetime.fromisoformat(d) for d in created["dates"]] == expected[::-1]
    assert [t.strftime("%m-%d %a %H:%M") for t in expected] == [
        "01-01 Mon 06:00", "01-03 Wed 06:00", "01-08 Mon 06:00", "01-10 Wed 06:00", "01-15 Mon 06:00"]
    assert created["timezone"] == "Asia/Shanghai"
    done = await finished(capi, created["complementId"])
    assert done["state"] == "SUCCESS"
    await capi.post(f"/schedules/{sched['id']}/offline")
    await capi.delete(f"/schedules/{sched['id']}")
    assert (await finished(capi, offline["complementId"]))["state"] == "SUCCESS"

    bad = [
        ({"scheduleTime": {"complementStartDate": "2024-01-02 00:00:00", "complementEndDate": "2024-01-01 00:00:00"}},
         "/scheduleTime/complementEndDate"),
        ({"scheduleTime": {"complementScheduleDateList": ""}}, "/scheduleTime/complementScheduleDateList"),
        ({"scheduleTime": "not json"}, "/scheduleTime"),
    ]
    for body, pointer in bad:
        r = await capi.post(f"/definitions/{code}/complements", json=body)
        assert r.status_code == 422 and r.json()["problems"][0]["pointer"] == pointer, r.text
        assert r.json()["title"] in ("Invalid complement", "Invalid request")
    r = await capi.post(f"/definitions/{code}/complements", json={"scheduleTime": rng,
                                                                  "complementDependentMode": "ALL_DEPENDENT"})
    assert r.status_code == 422 and "ALL_DEPENDENT" in r.json()["detail"]


def _dates(**fields: str) -> ComplementDates:
    return ComplementDates.model_validate(fields)


def test_complement_dates_rules() -> None:
    zone = ZoneInfo("UTC")
    one = _dates(complementStartDate="2024-01-05 10:00:00", complementEndDate="2024-01-05 10:00:00")
    assert complement_dates(one, zone, None) == [datetime(2024, 1, 5, 10, tzinfo=zone)]  # start == end: that date
    rng = _dates(complementStartDate="2024-01-01 00:00:00", complementEndDate="2024-01-03 00:00:00")
    assert complement_dates(rng, zone, None, ExecutionOrder.ASC_ORDER) == [
        datetime(2024, 1, d, tzinfo=zone) for d in (1, 2, 3)]  # closed range
    assert complement_dates(rng, zone, "0 0 12 * * ?") == [datetime(2024, 1, d, 12, tzinfo=zone) for d in (2, 1)]
    listed = _dates(complementScheduleDateList="2024-01-02 00:00:00, 2024-01-01T16:00:00-08:00")
    # the same instant twice is one date
    assert complement_dates(listed, zone, None) == [datetime(2024, 1, 2, tzinfo=zone)]
    with pytest.raises(DefinitionError, match="more than 3"):
        complement_dates(_dates(complementStartDate="2024-01-01 00:00:00", complementEndDate="2024-01-09 00:00:00"),
                         zone, None, max_dates=3)


async def test_long_complements_continue_as_new(client: Client, csettings: Settings, capi: httpx.AsyncClient) -> None:
    """Past max_children_per_run the workflow drains and continues as new, keeping every date's state."""
    code = await new_definition(capi, "can")
    definition = capi._transport.app.state.porpoise.store.get(code)  # type: ignore[attr-defined]
    dates = [datetime(2024, 2, d, tzinfo=UTC) for d in range(1, 8)]
    cid = f"ds-complement-{code}-can-{uuid.uuid4().hex[:6]}"
    template = RunInput(definition=None, definition_code=code, definition_version=definition.version,
                        instance_id="", dry_run=True, timezone="UTC", log_dir=str(csettings.resolved_log_dir))
    inp = ComplementInput(complement_id=cid, definition_code=code, definition_version=definition.version,
                          definition_name=definition.name, template=template, dates=dates,
                          run_mode=RunMode.RUN_MODE_PARALLEL, chains=2, max_children_per_run=3,
                          execution_order=ExecutionOrder.ASC_ORDER)
    handle = await client.start_workflow("Complement", inp, id=cid, task_queue=csettings.task_queue,
                                         result_type=ComplementStatus)
    result = await handle.result()
    assert result.state == "SUCCESS" and result.continued == 2
    assert result.states == ["SUCCESS"] * 7
    statuses = [await wait(capi, f"{cid}.{d:%Y%m%d%H%M%S}") for d in dates]
    assert [datetime.fromisoformat(s["scheduleTime"]) for s in statuses] == dates
