"""The longest workflow activation of one big DAG run, at several sizes, printed as JSON.

    python -m bench.bench_activation --tasks 3000 10000 [--busy 2] [--query-every 0.2]

For each size it saves a DS definition of N SHELL tasks (5/6 roots, 1/6 children of the first roots,
like tests/integration/test_history_budget.py), starts one dry run through the API (every task is an
activity, no process is started) and waits for it to end. A worker with :class:`TimedRunner` records
every activation of the run: its p50, p99 and max wall time, how many took over 1 s and 2 s (Temporal's
deadlock detector fails the workflow task at 2 s), separately for status queries (polled like the UI
does, every ``--query-every`` seconds). ``--busy K`` starts K CPU-burning processes for the run.
Everything (dev server, worker, API) runs in this process except the dev server and the burners.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

import api.worker as worker_module
from api.app import create_app
from api.devserver import temporal_binary
from bench.activations import ActivationLog, TimedRunner
from bench.stack import admin_headers
from core import search_attributes as sa
from core.settings import Settings
from core.temporal import data_converter

BASE = 9_100_000_000_000


def big_dag(n: int, code: int) -> list[dict[str, Any]]:
    children = n // 6
    roots = n - children
    tasks = [{"code": code + 1 + i, "name": f"t{i}", "version": 1, "taskType": "SHELL",
              "taskParams": {"localParams": [], "rawScript": "true", "resourceList": []}, "flag": "YES",
              "failRetryTimes": 0, "failRetryInterval": 0, "timeoutFlag": "CLOSE", "timeout": 0, "delayTime": 0}
             for i in range(n)]
    rels = [{"preTaskCode": 0, "postTaskCode": code + 1 + i} for i in range(roots)]
    rels += [{"preTaskCode": code + 1 + i, "postTaskCode": code + 1 + roots + i} for i in range(children)]
    return [{"processDefinition": {"code": code, "name": f"bench-activation-{n}", "projectCode": 1,
                                   "globalParams": "[]"},
             "processTaskRelationList": rels, "taskDefinitionList": tasks}]


def burners(k: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(k)]


async def one_size(api: httpx.AsyncClient, log: ActivationLog, n: int, query_every: float,
                   timeout: float) -> dict[str, Any]:
    r = await api.post("/definitions", json=big_dag(n, BASE + n * 100_000))
    if r.status_code != 201:
        raise SystemExit(f"the {n}-task definition was refused: {r.status_code} {r.text[:2000]}")
    code = r.json()[0]["code"]
    started = time.monotonic()
    r = await api.post(f"/definitions/{code}/runs", json={"dryRun": True})
    r.raise_for_status()
    instance = r.json()["instanceId"]
    state, queries_failed = "?", 0
    while time.monotonic() - started < timeout:
        r = await api.get(f"/runs/{instance}")
        if r.status_code != 200:
            queries_failed += 1
        else:
            body = r.json()
            state = body["state"]
            if body["temporalStatus"] != "RUNNING":
                state = state if body["temporalStatus"] in ("COMPLETED", "FAILED") else body["temporalStatus"]
                break
        await asyncio.sleep(query_every)
    elapsed = time.monotonic() - started
    mine = [a for a in log.select("DsWorkflow") if a.workflow_id == instance]
    work = [a for a in mine if "query_workflow" not in a.jobs]
    queries = [a for a in mine if "query_workflow" in a.jobs]
    return {"tasks": n, "state": state, "seconds": round(elapsed, 1), "status_reads_failed": queries_failed,
            "activations": ActivationLog.summary(work),
            "replay_activations": ActivationLog.summary([a for a in work if a.replaying]),
            "query_activations": ActivationLog.summary(queries)}


async def main(sizes: list[int], busy: int, query_every: float, timeout: float) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="porpoise-bench-act-"))
    log = ActivationLog()
    real_runner = worker_module.SandboxedWorkflowRunner

    runners: list[TimedRunner] = []

    def timed_runner(**kw: Any) -> TimedRunner:
        runners.append(TimedRunner(real_runner(**kw), log))
        return runners[-1]

    worker_module.SandboxedWorkflowRunner = timed_runner  # type: ignore[assignment,misc]
    settings = Settings(data_dir=data, task_queue=f"bench-act-{uuid.uuid4().hex[:6]}",
                        database_url=f"sqlite:///{data / 'porpoise.db'}", max_definition_bytes=32 * 2**20,
                        allowed_hosts=["porpoise"])  # the in-process client's base URL
    # The worker's client has the API's data converter (payload codec included), or it could not
    # read the runs the API starts.
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(),
                                                search_attributes=list(sa.ALL),
                                                data_converter=data_converter(settings))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        settings = settings.model_copy(update={"temporal_address": env.client.service_client.config.target_host})
        worker = worker_module.build_worker(env.client, settings)
        results = []
        async with worker:
            app = create_app(settings)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://porpoise",
                                         timeout=120, headers=admin_headers(settings.resolved_database_url)) as api:
                procs = burners(busy)
                for n in sizes:
                    results.append(await one_size(api, log, n, query_every, timeout))
        if runners and runners[0].slowest_profile:
            Path(os.environ["PORPOISE_PROFILE_ACTIVATIONS"]).write_text(runners[0].slowest_profile)
        return {"busy_processes": busy, "cpus": os.cpu_count(), "query_every_s": query_every, "sizes": results}
    finally:
        for p in procs:
            p.kill()
            p.wait()
        worker_module.SandboxedWorkflowRunner = real_runner  # type: ignore[misc]
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="+", default=[3000, 10000])
    parser.add_argument("--busy", type=int, default=0, help="CPU-burning processes during the runs")
    parser.add_argument("--query-every", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=1200)
    a = parser.parse_args()
    # Standard output is the JSON alone: the dev server's banner and the SDK core's warnings (it
    # writes them to file descriptor 1) go to standard error for the whole run.
    result_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    result = asyncio.run(main(a.tasks, a.busy, a.query_every, a.timeout))
    result_out.write(json.dumps(result, indent=2) + "\n")
    result_out.flush()
    os._exit(0)  # temporalio 1.35 can abort at interpreter exit (temporal-notes Part A)


