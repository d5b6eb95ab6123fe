"""Start N instances of a 5-task DAG (a -> b, c -> d -> e, each `true`) through the API, and print
JSON: start rate, drain time, tasks per second, worker and server CPU and peak RSS.

    python -m bench.bench_runs --n 1000 [--workers 2] [--concurrency 50] [--dry-run] [--baseline [--baseline-process]]

``worker_tasks`` CPU is that of the worker's exited children, i.e. the SHELL task processes (bash);
``other_cpu_seconds`` is CPU used meanwhile by anything else on the machine (a noisy run if large).
With --dry-run the runs are DS dry runs: every activity is dispatched but starts no process.
With --baseline the raw-Temporal diamond (bench/baseline.py) runs first, on its own fresh dev server
(or, with --baseline-on server, on the server at --temporal), and the JSON is
{"baseline": ..., "runs": [...], "ratios": {events mode: Porpoise wf/s / raw wf/s}}.
--baseline-process adds the raw diamond whose activities run `bash -c true` ("baseline_process",
"ratios_process" and each run's "vs_baseline_process"). --rounds R measures every side R times,
alternating the order (the machine drifts from one stack to the next), and adds "rounds" (each one's
order, runs that succeeded, ratios, and each side's wf/s and CPU per run) and "ratios_median"; the rest
of the JSON is the first round's. With "off" and another events mode, each round also has
"events_cost": that mode against "off" of the same round, as throughput lost and as CPU per run added
(with "events_cost_median").

Each stack keeps its files (the server's SQLite file, task logs, the outbox) in a fresh directory
under $TMPDIR, and each result's "data_dir" says where, on what file system, and what creating a
file cost there (``TMPDIR=/dev/shm python -m bench.bench_runs ...`` measures on tmpfs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psutil
from temporalio.client import Client

from bench import server_metrics
from bench.api_client import api_session, save_diamond
from bench.stack import Stack


class Sampler(threading.Thread):
    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack, self.stop = stack, threading.Event()
        self.peak = {"server": 0.0, "worker": 0.0, "api": 0.0}
        self.peak_pss = dict(self.peak)

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for k in self.peak:
                rss, pss = self.stack.memory_mb(k)
                self.peak[k] = max(self.peak[k], rss)
                self.peak_pss[k] = max(self.peak_pss[k], pss)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy so far (not idle, iowait or steal; guest time is already in user)."""
    t = psutil.cpu_times()
    not_busy = ("idle", "iowait", "steal", "guest", "guest_nice")
    return sum(getattr(t, f) for f in t._fields if f not in not_busy)


def temporal_postgres_cpu() -> float:
    """CPU of the PostgreSQL backends serving the temporal and temporal_visibility databases (their
    process titles read "postgres: USER temporal ..."; the server keeps its connections open)."""
    total = 0.0
    for p in psutil.process_iter(["cmdline"]):
        title = " ".join(p.info["cmdline"] or [])
        if title.startswith("postgres: ") and re.search(r"^postgres: \S+ temporal(_visibility)? ", title):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
    return total


def cpu_now(stack: Stack) -> dict[str, float]:
    cpu = {k: stack.cpu_seconds(k) for k in ("server", "worker", "api")}
    cpu["worker_tasks"] = stack.cpu_seconds("worker", reaped_children=True)
    if stack.temporal_address:  # a real server: its PostgreSQL work is part of its cost
        cpu["server_postgres"] = temporal_postgres_cpu()
    own = psutil.Process().cpu_times()
    cpu["bench_client"] = own.user + own.system
    cpu["machine"] = machine_busy_seconds()
    return cpu


async def bench(stack: Stack, n: int, concurrency: int, dry_run: bool = False) -> dict[str, Any]:
    """N Porpoise runs of the diamond, started through the API."""
    async with api_session(stack, concurrency) as api:
        saved = await save_diamond(api)

        async def start() -> None:
            async with api.post(f"/definitions/{saved['code']}/runs", json={"dryRun": dry_run}) as r:
                r.raise_for_status()
                await r.read()

        where = f"DsDefinitionCode = {saved['code']}"
        # DsState is upserted just before a run completes; visibility may lag behind the close.
        result = await measure(stack, n, concurrency, start, where, f"{where} AND DsState = 'SUCCESS'")
    return {"dry_run": dry_run} | result


async def bench_baseline(stack: Stack, n: int, concurrency: int, process: bool = False) -> dict[str, Any]:
    """N runs of the raw-Temporal diamond (bench/baseline.py), started by a plain client; with
    ``process`` its activities run ``bash -c true`` instead of nothing."""
    from bench.baseline import TASK_QUEUE, WORKFLOW_TYPE, BenchDiamond

    client = await Client.connect(stack.env["PORPOISE_TEMPORAL_ADDRESS"])
    tag = f"{random.randrange(10**9)}"
    args = [True] if process else []  # the no-op diamond's input stays as it always was: none

    async def start() -> None:
        await client.start_workflow(BenchDiamond.run, args=args, id=f"bench-{tag}-{uuid.uuid4().hex}",
                                    task_queue=TASK_QUEUE)

    where = f"WorkflowType = '{WORKFLOW_TYPE}' AND WorkflowId STARTS_WITH 'bench-{tag}-'"
    return await measure(stack, n, concurrency, start, where, f"{where} AND ExecutionStatus = 'Completed'")


async def measure(stack: Stack, n: int, concurrency: int, start: Callable[[], Awaitable[None]], where: str,
                  succeeded_where: str) -> dict[str, Any]:
    """Start N runs, ``concurrency`` requests at a time, wait until visibility has none running
    (``where`` selects this bench's runs), and sample CPU and memory meanwhile."""
    load0 = os.getloadavg()
    requests0 = server_metrics.scrape(stack.metrics_url) if stack.metrics_url else None
    cpu0 = cpu_now(stack)
    sampler = Sampler(stack)
    sampler.start()
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await start()

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(n)))
    started = time.monotonic() - t0
    # Count through visibility, as an operator would.
    client = await Client.connect(stack.env["PORPOISE_TEMPORAL_ADDRESS"])
    while (await client.count_workflows(f"{where} AND ExecutionStatus = 'Running'")).count:
        await asyncio.sleep(0.5)
    drained = time.monotonic() - t0
    closed = (await client.count_workflows(where)).count
    succeeded = 0
    for _ in range(30):
        succeeded = (await client.count_workflows(succeeded_where)).count
        if succeeded >= closed:
            break
        await asyncio.sleep(1.0)
    sampler.stop.set()
    cpu1 = cpu_now(stack)
    requests = (server_metrics.per_run(requests0, server_metrics.scrape(stack.metrics_url), n)
                if requests0 is not None and stack.metrics_url else None)
    history = await one_history(client, where)
    cpu = {k: cpu1[k] - cpu0[k] for k in cpu0}
    # CPU used on this machine by anything but the stack and this client: non-zero means a noisy run.
    machine = cpu.pop("machine")
    other = machine - sum(cpu.values())
    return {
        "n": n, "workers": stack.workers, "concurrency": concurrency,
        "start_seconds": round(started, 2), "start_rate_per_s": round(n / started, 1),
        "drain_seconds": round(drained, 2), "workflows_per_s": round(n / drained, 1),
        "tasks_per_s": round(5 * n / drained, 1), "closed": closed, "succeeded": succeeded,
        "cpu_seconds": {k: round(v, 1) for k, v in cpu.items()},
        "cpu_ms_per_run": {k: round(1000 * v / n, 1) for k, v in cpu.items()},
        "peak_rss_mb": {k: round(v) for k, v in sampler.peak.items()},
        "peak_pss_mb": {k: round(v) for k, v in sampler.peak_pss.items()},
        "history_per_run": history,
        "server_requests_per_run": requests,
        "machine_cpu_seconds": round(machine, 1), "other_cpu_seconds": round(other, 1),
        "machine_cpu_utilisation": round(machine / (drained * (psutil.cpu_count() or 1)), 2),
        # The machine is shared: the 1-minute load average before and after, next to every figure.
        "load_average": [round(load0[0], 2), round(os.getloadavg()[0], 2)],
        "data_dir": stack.data_dir_info,
    }


async def one_history(client: Client, where: str) -> dict[str, int]:
    """Events and bytes (as stored: encoded payloads) of one finished run's history."""
    async for wf in client.list_workflows(where, limit=1):
        events = (await client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()).events
        return {"events": len(events), "bytes": sum(e.ByteSize() for e in events)}
    return {"events": 0, "bytes": 0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--dry-run", action="store_true", help="start DS dry runs: tasks start no process")
    ap.add_argument("--events", default="default",
                    help="lifecycle events: default (as configured), off, outbox (recorded, no broker), "
                         "pulsar=URL, or a comma list (e.g. off,pulsar=pulsar://127.0.0.1:6650) to measure "
                         "each in turn, in this one run, on a fresh stack each")
    ap.add_argument("--targets", default="dev",
                    help="Temporal to run on, a comma list measured in turn in this one run: dev (a fresh dev "
                         "server) and/or server (the one at --temporal, e.g. deploy/temporal/server.sh start)")
    ap.add_argument("--temporal", default="", help="address of the running server for --targets server")
    ap.add_argument("--server-pid", type=int, default=0,
                    help="that server's pid, to sample its CPU and memory (default: read "
                         "$PORPOISE_TEMPORAL_DATA/temporal.pid as server.sh writes it)")
    ap.add_argument("--baseline", action="store_true",
                    help="first run the raw-Temporal diamond (bench/baseline.py) on a fresh dev server with "
                         "Porpoise's worker settings, and report each Porpoise run's ratio to it")
    ap.add_argument("--baseline-on", choices=("dev", "server"), default="dev",
                    help="where the raw diamond(s) run: a fresh dev server (default) or the server at --temporal, "
                         "so that --targets server is compared with raw Temporal on that same server")
    ap.add_argument("--baseline-process", action="store_true",
                    help="with --baseline, also run the raw diamond whose activities run `bash -c true` in a "
                         "child process, and report each Porpoise run's ratio to that too")
    ap.add_argument("--rounds", type=int, default=1,
                    help="with --baseline, measure every side this many times, alternating the order from one "
                         "round to the next (the machine drifts), and add each round's ratios and their medians")
    args = ap.parse_args()
    if args.baseline_process and not args.baseline:
        raise SystemExit("--baseline-process needs --baseline")
    if args.rounds > 1 and not args.baseline:
        raise SystemExit("--rounds needs --baseline")
    if args.baseline_on == "server" and not (args.baseline and args.temporal):
        raise SystemExit("--baseline-on server needs --baseline and --temporal ADDRESS")
    for target in args.targets.split(","):
        if target not in ("dev", "server"):
            raise SystemExit(f"--targets: unknown target {target!r}")
        if target == "server" and not args.temporal:
            raise SystemExit("--targets server needs --temporal ADDRESS")
    rounds = [one_round(args, reverse=i % 2 == 1) for i in range(args.rounds)]
    out = rounds[0]
    if args.rounds > 1:
        out["rounds"] = [{k: r[k] for k in ("order", "succeeded", "ratios", "ratios_process", "sides", "events_cost")
                          if k in r} for r in rounds]
        for key in ("ratios", "ratios_process"):
            if key in out:
                out[f"{key}_median"] = {mode: round(statistics.median(r[key][mode] for r in rounds), 3)
                                        for mode in out[key]}
        if "events_cost" in out:
            out["events_cost_median"] = {
                mode: {k: round(statistics.median(r["events_cost"][mode][k] for r in rounds), 3) for k in by}
                for mode, by in out["events_cost"].items()}
    print(json.dumps(out if args.baseline else out["runs"], indent=2))


def one_round(args: argparse.Namespace, *, reverse: bool) -> dict[str, Any]:
    """Every side once, each on a fresh stack: the raw diamond(s) first, then Porpoise's runs (or the
    reverse). Without a baseline, the JSON of the runs alone, each after the first with its ratio to it."""
    sides: list[tuple[str, str, str]] = []  # (kind, target, events mode)
    if args.baseline:
        sides.append(("baseline", args.baseline_on, ""))
    if args.baseline_process:
        sides.append(("baseline_process", args.baseline_on, ""))
    sides += [("run", target, mode) for target in args.targets.split(",") for mode in args.events.split(",")]
    ordered = sides[::-1] if reverse else sides
    measured: dict[tuple[str, str, str], dict[str, Any]] = {}
    for side in ordered:
        kind, target, mode = side
        external = {"temporal_address": args.temporal, "server_pid": args.server_pid or server_pid()} \
            if target == "server" else {}
        if kind != "run":
            with Stack(kind="baseline", **external) as stack:  # type: ignore[arg-type]
                measured[side] = {"target": target, "kind": kind} | asyncio.run(
                    bench_baseline(stack, args.n, args.concurrency, process=kind == "baseline_process"))
            continue
        with Stack(workers=args.workers, extra_env=events_env(mode), **external) as stack:  # type: ignore[arg-type]
            measured[side] = {"target": target, "events": mode} | asyncio.run(
                bench(stack, args.n, args.concurrency, args.dry_run))
    results = [measured[side] for side in sides if side[0] == "run"]
    labels = {side: side[0] if side[0] != "run" else f"{side[1]}/{side[2]}" for side in sides}
    baseline = measured.get(("baseline", args.baseline_on, ""))
    if baseline is None:
        for r in results[1:]:
            r["vs_first"] = {
                "workflows_per_s_ratio": round(r["workflows_per_s"] / results[0]["workflows_per_s"], 3),
                "cpu_ms_per_run_delta": {k: round(r["cpu_ms_per_run"][k] - results[0]["cpu_ms_per_run"].get(k, 0.0), 1)
                                         for k in r["cpu_ms_per_run"]},
            }
        return {"runs": results[0] if len(results) == 1 else results}
    # Every side's runs that ended SUCCESS, "succeeded/n": a later round's full results are not kept.
    succeeded = {labels[side]: f"{measured[side]['succeeded']}/{measured[side]['n']}" for side in ordered}
    out: dict[str, Any] = {"order": [labels[side] for side in ordered], "succeeded": succeeded, "baseline": baseline}
    for r in results:
        r["vs_baseline"] = versus(r, baseline)
    out["runs"] = results
    out["ratios"] = {r["events"]: r["vs_baseline"]["workflows_per_s_ratio"] for r in results}
    # What a later round keeps of each side: its rate and CPU per run.
    out["sides"] = {labels[side]: {k: measured[side][k] for k in ("workflows_per_s", "cpu_ms_per_run")}
                    for side in ordered}
    cost = events_cost(results)
    if cost:
        out["events_cost"] = cost
    baseline_process = measured.get(("baseline_process", args.baseline_on, ""))
    if baseline_process is not None:
        for r in results:
            r["vs_baseline_process"] = versus(r, baseline_process)
        out["baseline_process"] = baseline_process
        out["ratios_process"] = {r["events"]: r["vs_baseline_process"]["workflows_per_s_ratio"] for r in results}
    return out


def events_cost(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """What each events mode costs against ``off`` of the same round, paired (the machine drifts
    between rounds more than the events cost): the throughput lost, and the CPU per run added as a
    share of ``off``'s (the machine is CPU-bound, so this is the throughput the CPU alone predicts)."""
    off = next((r for r in results if r["target"] == "dev" and r["events"] == "off"), None)
    if off is None:
        return {}
    off_cpu = sum(off["cpu_ms_per_run"].values())
    return {r["events"]: {"throughput": round(1 - r["workflows_per_s"] / off["workflows_per_s"], 3),
                          "cpu": round(sum(r["cpu_ms_per_run"].values()) / off_cpu - 1, 3)}
            for r in results if r["target"] == "dev" and r["events"] != "off"}


def versus(run: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """One Porpoise run against one raw-Temporal run of the same invocation."""
    return {
        "workflows_per_s_ratio": round(run["workflows_per_s"] / base["workflows_per_s"], 3),
        "peak_worker_rss_ratio": round(run["peak_rss_mb"]["worker"] / base["peak_rss_mb"]["worker"], 2),
        "peak_worker_pss_ratio": round(run["peak_pss_mb"]["worker"] / base["peak_pss_mb"]["worker"], 2),
        "cpu_ms_per_run_delta": {k: round(v - base["cpu_ms_per_run"].get(k, 0.0), 1)
                                 for k, v in run["cpu_ms_per_run"].items()},
        "server_requests_per_run_delta": server_metrics.delta(base["server_requests_per_run"],
                                                              run["server_requests_per_run"]),
    }


def server_pid() -> int | None:
    pidfile = os.path.join(os.environ.get("PORPOISE_TEMPORAL_DATA", "/var/tmp/porpoise-temporal"), "temporal.pid")
    try:
        with open(pidfile) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def events_env(mode: str) -> dict[str, str]:
    """The worker's event settings for one ``--events`` mode (core/settings.py)."""
    if mode == "default":
        return {}
    if mode == "off":
        return {"PORPOISE_EVENTS_ENABLED": "false"}
    if mode == "outbox":
        return {"PORPOISE_EVENTS_ENABLED": "true", "PORPOISE_PULSAR_URL": ""}
    if mode.startswith("pulsar="):
        return {"PORPOISE_EVENTS_ENABLED": "true", "PORPOISE_PULSAR_URL": mode.split("=", 1)[1]}
    raise SystemExit(f"--events: unknown mode {mode!r}")


if __name__ == "__main__":
    main()
