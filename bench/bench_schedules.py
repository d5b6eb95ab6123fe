"""N DS schedules firing at the same instant: does every instance start, how late, and when does it end?

Creates N one-task definitions (`true`) and N online schedules whose Quartz crontab fires exactly
once, at the same second T (chosen after the definitions exist, far enough ahead for every schedule to
be created first). Then it waits for the N instances to start and finish and prints JSON: how long
the creation took, each instance's start delay (visibility StartTime - T: the schedule firing and
Temporal starting the workflow), its first-run delay (DsWorkflow's own start time - T: a worker picked
it up), the spread of the starts, completion times, states, and the CPU and peak RSS of the server,
worker and API processes.

    python -m bench.bench_schedules --n 1000 [--workers 2] [--concurrency 50] [--per-run]

``--via temporal`` creates the Temporal schedules straight from the client (the same Schedule objects
the API builds), for an API that does not serve /schedules yet; ``auto`` (default) picks it then.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey

from bench import stack as stack_module
from bench.bench_runs import Sampler
from bench.stack import Stack
from core.contracts import InstanceStatus
from core.settings import Settings
from core.temporal import data_converter
from services import schedules
from storage.schedules import ONLINE, ScheduleRecord

SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


def one_task_export(code: int, project: int, i: int) -> list[dict[str, Any]]:
    task = {"code": code + 1, "name": "t", "version": 1, "taskType": "SHELL",
            "taskParams": {"localParams": [], "rawScript": "true", "resourceList": []}, "flag": "YES",
            "failRetryTimes": 0, "failRetryInterval": 1, "timeoutFlag": "CLOSE", "timeout": 0, "delayTime": 0}
    return [{"processDefinition": {"code": code, "name": f"bench-sched-{i}", "projectCode": project,
                                   "globalParams": "[]"},
             "processTaskRelationList": [{"preTaskCode": 0, "postTaskCode": code + 1}],
             "taskDefinitionList": [task]}]


def quantiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"min": None, "p50": None, "p90": None, "p99": None, "max": None}
    v = sorted(values)

    def q(p: float) -> float:
        return round(v[min(len(v) - 1, max(0, math.ceil(p * len(v)) - 1))], 3)

    return {"min": round(v[0], 3), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": round(v[-1], 3)}


async def gather_limited(n: int, limit: int, fn: Any) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def one(i: int) -> Any:
        async with sem:
            return await fn(i)

    return await asyncio.gather(*(one(i) for i in range(n)))


async def bench(stack: Stack, n: int, concurrency: int, via: str, lead: float, per_run: bool,
                timeout: float) -> dict[str, Any]:
    project = random.randrange(10**9, 2 * 10**9)
    base = int(time.time() * 1000) << 12
    client = await Client.connect(stack.env["PORPOISE_TEMPORAL_ADDRESS"],  # the stack's key ring: results decrypt
                                  data_converter=data_converter(Settings(data_dir=stack.data, dev_mode=True)))  # type: ignore[call-arg]
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=120, headers=stack.headers) as api:
        if via == "auto":
            via = "api" if (await api.get("/schedules", params={"limit": 1})).status_code == 200 else "temporal"

        async def define(i: int) -> int:
            r = await api.post("/definitions", json=one_task_export(base + 4 * i, project, i))
            r.raise_for_status()
            return int(r.json()[0]["code"])

        t0 = time.monotonic()
        codes = await gather_limited(n, concurrency, define)
        define_s = time.monotonic() - t0

        # One fire at second T for every schedule, after they all exist (estimate: 25 ms per schedule
        # at this concurrency, plus the lead).
        fire = (datetime.now(UTC) + timedelta(seconds=lead + 0.025 * n * 50 / concurrency)).replace(microsecond=0)
        fire += timedelta(seconds=1)
        crontab = f"{fire.second} {fire.minute} {fire.hour} {fire.day} {fire.month} ? {fire.year}"
        settings = Settings(data_dir=stack.data, temporal_address=stack.env["PORPOISE_TEMPORAL_ADDRESS"])  # type: ignore[call-arg]

        async def schedule(i: int) -> datetime:
            if via == "api":
                r = await api.post("/schedules", json={"processDefinitionCode": codes[i], "crontab": crontab,
                                                       "timezoneId": "UTC", "releaseState": ONLINE})
                r.raise_for_status()
            else:
                definition = (await api.get(f"/definitions/{codes[i]}")).json()
                from model.definition import WorkflowDefinition
                from services.schemas import DefinitionView
                # the API's camelCase view back to the model (its snake_case field names)
                d = WorkflowDefinition.model_validate(DefinitionView.model_validate(definition).model_dump())
                now = datetime.now(UTC)
                rec = ScheduleRecord(
                    id=i + 1, definition_code=d.code, project_code=d.project_code, definition_name=d.name,
                    definition_version=d.version, crontab=crontab, timezone_id="UTC", start_time=None, end_time=None,
                    failure_strategy="CONTINUE", warning_type="NONE", warning_group_id=0, instance_priority="MEDIUM",
                    worker_group="default", tenant_code="default", environment_code=-1, release_state=ONLINE,
                    misfire_policy="FIRE_ALL_MISSED", misfire_threshold_seconds=60, overlap_policy="ALLOW_ALL",
                    synced=True, created_at=now, updated_at=now)
                await client.create_schedule(schedules.temporal_schedule_id(d.code),
                                             schedules.temporal_schedule(rec, d, settings))
            return datetime.now(UTC)

        t0 = time.monotonic()
        created_at = await gather_limited(n, concurrency, schedule)
        schedule_s = time.monotonic() - t0
        late = sum(1 for t in created_at if t >= fire)

        cpu0 = {k: stack.cpu_seconds(k) for k in ("server", "worker", "api")}
        sampler = Sampler(stack)
        sampler.start()
        await asyncio.sleep(max(0.0, (fire - datetime.now(UTC)).total_seconds()))
        query = f"WorkflowType = 'DsWorkflow' AND DsProjectCode = {project}"
        deadline = time.monotonic() + timeout
        all_started_after = None
        while time.monotonic() < deadline:
            started = (await client.count_workflows(query)).count
            if all_started_after is None and started >= n - late:
                all_started_after = (datetime.now(UTC) - fire).total_seconds()
            running = (await client.count_workflows(query + " AND ExecutionStatus = 'Running'")).count
            if started >= n - late and running == 0:
                break
            await asyncio.sleep(0.5)
        drained_after = (datetime.now(UTC) - fire).total_seconds()
        sampler.stop.set()
        cpu = {k: stack.cpu_seconds(k) - cpu0[k] for k in cpu0}

        rows = [wf async for wf in client.list_workflows(query)]

        async def began(i: int) -> float | None:  # when DsWorkflow itself started running
            wf = rows[i]
            if wf.status != WorkflowExecutionStatus.COMPLETED:
                return None
            status = await client.get_workflow_handle(wf.id, result_type=InstanceStatus).result()
            return (status.start_time - fire).total_seconds() if status.start_time else None

        first_run = await gather_limited(len(rows), concurrency, began)
    start_delays = [(wf.start_time - fire).total_seconds() for wf in rows]
    done = [(wf.close_time - fire).total_seconds() for wf in rows if wf.close_time]
    fired_at = Counter(str(wf.typed_search_attributes.get(SCHEDULED_START)) for wf in rows)
    per_second = Counter(math.floor(d) for d in start_delays)
    states = Counter(wf.typed_search_attributes.get(SearchAttributeKey.for_keyword("DsState")) for wf in rows)
    result: dict[str, Any] = {
        "n": n, "via": via, "workers": stack.workers, "concurrency": concurrency,
        "fire_time": fire.isoformat(), "define_seconds": round(define_s, 2),
        "schedule_create_seconds": round(schedule_s, 2),
        "schedules_per_s": round(n / schedule_s, 1), "created_after_fire_time": late,
        "instances_started": len(rows), "scheduled_start_times": dict(fired_at),
        "all_started_after_s": None if all_started_after is None else round(all_started_after, 2),
        "start_delay_s": quantiles(start_delays),
        "start_spread_s": round(max(start_delays) - min(start_delays), 3) if start_delays else None,
        "starts_per_second_after_fire": {str(k): v for k, v in sorted(per_second.items())},
        "first_run_delay_s": quantiles([d for d in first_run if d is not None]),
        "completion_s": quantiles(done), "drained_after_s": round(drained_after, 2),
        "states": dict(states),
        "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
        "peak_rss_mb": {k: round(v) for k, v in sampler.peak.items()},
    }
    if per_run:
        result["runs"] = [{"instanceId": wf.id, "startDelay": round((wf.start_time - fire).total_seconds(), 3),
                           "firstRunDelay": None if d is None else round(d, 3),
                           "completion": round((wf.close_time - fire).total_seconds(), 3) if wf.close_time else None}
                          for wf, d in zip(rows, first_run, strict=True)]
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="schedules (= instances at the fire time)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes")
    ap.add_argument("--concurrency", type=int, default=50, help="API calls in flight while creating")
    ap.add_argument("--via", choices=("auto", "api", "temporal"), default="auto")
    ap.add_argument("--lead", type=float, default=15.0, help="extra seconds between creation and the fire time")
    ap.add_argument("--timeout", type=float, default=900.0, help="give up waiting after this many seconds")
    ap.add_argument("--per-run", action="store_true", help="also list every instance's delays")
    ap.add_argument("--dynamic-config", action="append", default=[], metavar="KEY=VALUE",
                    help="a dev-server dynamic config value, e.g. worker.schedulerNamespaceStartWorkflowRPS=200")
    args = ap.parse_args()
    if args.dynamic_config:
        original = stack_module.devserver_command

        def with_config(**kwargs: Any) -> list[str]:
            extra = [a for kv in args.dynamic_config for a in ("--dynamic-config-value", kv)]
            return original(**kwargs) + extra

        stack_module.devserver_command = with_config  # type: ignore[assignment]
    with Stack(workers=args.workers) as stack:
        result = asyncio.run(bench(stack, args.n, args.concurrency, args.via, args.lead, args.per_run, args.timeout))
    result["dynamic_config"] = args.dynamic_config
    print(json.dumps(result, indent=2), flush=True)
    os._exit(0)  # temporalio on CPython 3.11 may abort at exit after all work is done (temporal-notes)


if __name__ == "__main__":
    main()
