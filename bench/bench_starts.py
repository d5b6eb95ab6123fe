"""Run starts alone: N starts of the diamond through the API against N starts by a raw Temporal
client, on one fresh dev server with no worker (nothing drains, so only the starts are measured), in
alternating rounds. Prints JSON: each side's start rate and CPU per start (server, API, bare API, the bench's
own client), the medians, and the ratio API / raw.

    python -m bench.bench_starts --n 1000 [--rounds 3] [--concurrency 50]

Four sides: ``raw`` starts the raw diamond as bench/baseline.py's client does (no search attributes),
``raw_attributes`` adds what Porpoise starts every run with (its search attributes, summary, priority
and workflow-task timeout, as services/runs.py: launch sets them for a default start), ``bare_api``
makes the same start behind bench/bare_api.py (a bare ASGI app under uvicorn, served as the API is:
the floor of any Python HTTP hop), and ``api`` is ``POST /definitions/{code}/runs``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psutil
from temporalio.client import Client

from bench.api_client import api_session, save_diamond
from bench.bare_api import start_like_porpoise
from bench.baseline import TASK_QUEUE, BenchDiamond
from bench.stack import Stack

SIDES = ("raw", "raw_attributes", "bare_api", "api")


async def timed(n: int, concurrency: int, start: Callable[[], Awaitable[None]],
                processes: dict[str, psutil.Process]) -> dict[str, Any]:
    """Start ``n``, ``concurrency`` at a time: the rate and each process's CPU per start."""
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await start()

    cpu0 = {k: sum(p.cpu_times()[:2]) for k, p in processes.items()}
    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(n)))
    seconds = time.monotonic() - t0
    return {"starts_per_s": round(n / seconds, 1),
            "cpu_ms_per_start": {k: round(1000 * (sum(p.cpu_times()[:2]) - cpu0[k]) / n, 2)
                                 for k, p in processes.items()}}


async def bench(stack: Stack, n: int, rounds: int, concurrency: int) -> dict[str, Any]:
    client = await Client.connect(stack.env["PORPOISE_TEMPORAL_ADDRESS"])
    processes = {name: psutil.Process(stack.procs[name].pid) for name in ("server", "api", "bare_api")}
    processes["client"] = psutil.Process()
    async with api_session(stack, concurrency) as api, \
            api_session(stack, concurrency, base_url=stack.bare_api_url) as bare:
        saved = await save_diamond(api)
        runs_url = f"/definitions/{saved['code']}/runs"

        async def raw() -> None:
            await client.start_workflow(BenchDiamond.run, id=f"raw-{uuid.uuid4().hex}", task_queue=TASK_QUEUE)

        async def raw_attributes() -> None:
            await start_like_porpoise(client, saved)

        async def through_bare_api() -> None:
            async with bare.post("/", json=saved) as r:
                r.raise_for_status()
                await r.read()

        async def through_api() -> None:
            async with api.post(runs_url, json={}) as r:
                r.raise_for_status()
                await r.read()

        starts = {"raw": raw, "raw_attributes": raw_attributes, "bare_api": through_bare_api, "api": through_api}
        await timed(min(n, 50), concurrency, raw, processes)  # the client's connection and first RPCs
        results: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
        for i in range(rounds):
            for side in (SIDES if i % 2 == 0 else SIDES[::-1]):  # the server fills up: alternate the order
                results[side].append(await timed(n, concurrency, starts[side], processes))
    medians = {side: {"starts_per_s": statistics.median(r["starts_per_s"] for r in rs),
                      "cpu_ms_per_start": {k: statistics.median(r["cpu_ms_per_start"][k] for r in rs)
                                           for k in processes}}
               for side, rs in results.items()}
    return {"n": n, "rounds": rounds, "concurrency": concurrency, "rounds_by_side": results, "median": medians,
            "api_vs_raw": round(medians["api"]["starts_per_s"] / medians["raw"]["starts_per_s"], 3),
            "api_vs_raw_attributes": round(medians["api"]["starts_per_s"]
                                           / medians["raw_attributes"]["starts_per_s"], 3),
            "bare_api_vs_raw": round(medians["bare_api"]["starts_per_s"] / medians["raw"]["starts_per_s"], 3),
            "api_vs_bare_api": round(medians["api"]["starts_per_s"] / medians["bare_api"]["starts_per_s"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000, help="starts per side and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=50)
    args = ap.parse_args()
    with Stack(workers=0, bare_api=True) as stack:
        print(json.dumps(asyncio.run(bench(stack, args.n, args.rounds, args.concurrency)), indent=2))


if __name__ == "__main__":
    main()
