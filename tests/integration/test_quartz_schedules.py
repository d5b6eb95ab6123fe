"""Quartz -> Temporal translation, checked against the times the real dev server computes.

Every row of the table in ``tests/unit/test_quartz.py`` becomes a paused Temporal schedule with the
translated spec and the row's ``time_zone_name``. Its action starts a workflow type nobody
implements, on a task queue nobody polls: a paused schedule never runs it, so no worker is needed.
The server's ``ListScheduleMatchingTimes`` for the row's window must give exactly the row's expected
times, which are also what the independent evaluator :func:`model.quartz.fire_times` computes.
Every schedule is deleted when its test ends.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.api.workflowservice.v1 import ListScheduleMatchingTimesRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError

from core.quartz_temporal import from_schedule_calendar, schedule_spec, schedule_spec_for
from model.definition import Schedule as DsSchedule
from model.quartz import fire_times, parse, to_calendar_specs
from tests.unit.test_quartz import CASE_IDS, CASES, Case


def _ts(t: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(t.astimezone(UTC))
    return out


@asynccontextmanager
async def paused_schedule(client: Client, spec: ScheduleSpec) -> AsyncIterator[ScheduleHandle]:
    sid = f"quartz-test-{uuid.uuid4().hex[:12]}"
    handle = await client.create_schedule(
        sid,
        Schedule(
            action=ScheduleActionStartWorkflow("PorpoiseQuartzNeverRuns", id=f"{sid}-wf", task_queue=f"{sid}-none"),
            spec=spec,
            state=ScheduleState(paused=True, note="quartz translation test: never unpaused"),
        ),
    )
    try:
        yield handle
    finally:
        await handle.delete()


async def matching_times(client: Client, handle: ScheduleHandle, start: datetime, end: datetime) -> list[datetime]:
    """The server's times in (start, end] (at most 1000), as UTC datetimes."""
    resp = await client.workflow_service.list_schedule_matching_times(
        ListScheduleMatchingTimesRequest(
            namespace=client.namespace, schedule_id=handle.id, start_time=_ts(start), end_time=_ts(end)
        )
    )
    return [t.ToDatetime().replace(tzinfo=UTC) for t in resp.start_time]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
async def test_calendar_specs_on_the_server(client: Client, case: Case) -> None:
    start, end = case.window()
    async with paused_schedule(client, schedule_spec(case.expr, time_zone_name=case.tz)) as handle:
        got = await matching_times(client, handle, start, end)
        described = await handle.describe()
    assert got == case.expected_times()
    assert got == fire_times(case.expr, start, end, case.tz)
    # the server keeps the calendars as sent (nothing is re-parsed from text)
    assert described.schedule.spec.time_zone_name == case.tz
    assert tuple(from_schedule_calendar(c) for c in described.schedule.spec.calendars) == to_calendar_specs(case.expr)


PLAIN = [c for c in CASES if not parse(c.expr).needs_calendars]


@pytest.mark.parametrize("case", PLAIN, ids=[c.id for c in PLAIN])
async def test_seven_field_cron_strings_on_the_server(client: Client, case: Case) -> None:
    start, end = case.window()
    spec = schedule_spec(case.expr, time_zone_name=case.tz, as_cron_string=True)
    async with paused_schedule(client, spec) as handle:
        assert await matching_times(client, handle, start, end) == case.expected_times()


@pytest.mark.parametrize("expr", ["0 0 0 ? * 6#3", "0 0 0 L * ?", "0 0 0 LW * ?", "0 0 9 ? * MON-FRI"])
async def test_describe_reports_the_next_times(client: Client, expr: str) -> None:
    tz = "Asia/Shanghai"
    async with paused_schedule(client, schedule_spec(expr, time_zone_name=tz)) as handle:
        before = datetime.now(UTC)
        described = await handle.describe()
    upcoming = described.info.next_action_times  # the server lists 10, even for a paused schedule
    assert len(upcoming) == 10
    assert upcoming == fire_times(expr, before, before + timedelta(days=3660), tz, limit=10)


async def test_ds_start_and_end_times_are_inclusive(client: Client) -> None:
    tz = "Asia/Shanghai"
    sched = DsSchedule(crontab="0 0 0 * * ? *", timezone_id=tz, start_time="2026-03-01 00:00:00",
                       end_time="2026-03-03 00:00:00")
    zone = ZoneInfo(tz)
    async with paused_schedule(client, schedule_spec_for(sched)) as handle:
        got = await matching_times(
            client, handle, datetime(2026, 2, 25, tzinfo=zone), datetime(2026, 3, 10, tzinfo=zone)
        )
    assert got == [datetime(2026, 3, d, tzinfo=zone) for d in (1, 2, 3)]


async def test_dst_temporal_fires_a_repeated_time_twice(client: Client) -> None:
    """America/New_York 2026: 02:30 does not exist on 03-08; 01:30 happens twice on 11-01.

    Temporal skips the missing time, as Quartz does, but fires at both copies of the repeated one,
    where Quartz fires once. No calendar spec can tell the two copies apart.
    """
    tz, zone = "America/New_York", ZoneInfo("America/New_York")
    for expr, start, end in [
        ("0 30 2 * * ?", datetime(2026, 3, 7, tzinfo=zone), datetime(2026, 3, 10, tzinfo=zone)),
        ("0 30 1 * * ?", datetime(2026, 10, 31, tzinfo=zone), datetime(2026, 11, 3, tzinfo=zone)),
    ]:
        async with paused_schedule(client, schedule_spec(expr, time_zone_name=tz)) as handle:
            got = await matching_times(client, handle, start, end)
        # compared in UTC: Python never finds a repeated (ambiguous) local time equal to another zone's
        assert got == [t.astimezone(UTC) for t in fire_times(expr, start, end, tz, repeated_hour="both")]
    quartz = fire_times("0 30 1 * * ?", datetime(2026, 10, 31, tzinfo=zone), datetime(2026, 11, 3, tzinfo=zone), tz)
    assert len(got) == len(quartz) + 1


async def test_naive_pass_through_is_wrong_or_refused(client: Client) -> None:
    """Why the translation exists: the server takes Quartz-looking strings at their Temporal meaning."""
    zone = ZoneInfo("UTC")
    start, end = datetime(2026, 1, 1, tzinfo=zone), datetime(2026, 1, 10, tzinfo=zone)
    # a 6-field Quartz string with '?' -> '*' only: Temporal reads "min hour dom month dow year"
    async with paused_schedule(client, ScheduleSpec(cron_expressions=["0 5 1 * * *"], time_zone_name="UTC")) as h:
        naive = await matching_times(client, h, start, datetime(2026, 3, 31, tzinfo=zone))
    assert [t.strftime("%m-%d %H:%M") for t in naive] == ["01-01 05:00", "02-01 05:00", "03-01 05:00"]
    assert fire_times("0 5 1 * * ?", start, end, zone)[0] == datetime(2026, 1, 1, 1, 5, tzinfo=zone)
    # Quartz weekday numbers kept as they are: 2,4,6 (MON,WED,FRI) read as TUE,THU,SAT
    async with paused_schedule(client, ScheduleSpec(cron_expressions=["0 0 12 * * 2,4,6 *"])) as h:
        naive = await matching_times(client, h, start, end)
    assert [t.strftime("%a") for t in naive] == ["Thu", "Sat", "Tue", "Thu"]
    assert [t.strftime("%a") for t in fire_times("0 0 12 ? * 2,4,6", start, end, zone)] == ["Fri", "Mon", "Wed", "Fri"]
    # '#' starts a comment: "6#3" loses "#3"; here the shortened string no longer parses at all, and
    # the server's complaint (about the year) does not mention '#'
    with pytest.raises(RPCError, match="Year"):
        async with paused_schedule(client, ScheduleSpec(cron_expressions=["0 0 0 * * 6#3 *"])):
            pass
