"""What starting a task's supervisor costs, both ways in one invocation (issue 15): a new
``python -S -I activities/supervise.py`` per task (how tasks were started before the zygote) against
a supervisor forked from the zygote (activities/spawner.py, how they are started now).

Each round starts ``--tasks`` supervisors of ``true``, ``--concurrency`` at a time, and counts the CPU
of this process (the worker's side) and of every process it reaped (supervisors, tasks, the
zygote, which is ended at the round's end so its children's CPU is counted too). Rounds alternate.

    python -m bench.bench_supervisor --tasks 200 --rounds 3

Prints one JSON object: per way, CPU ms per task (worker side, processes) and wall ms per task.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from activities.process import read_record
from activities.spawner import SUPERVISOR, Zygote


async def _exec_one(d: Path, i: int) -> None:
    record = d / f"{i}.proc"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-S", "-I", SUPERVISOR, str(record), str(d / f"{i}.out"), "--", "true",
        cwd=d, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    await proc.wait()
    _check(record)


async def _fork_one(zygote: Zygote, d: Path, i: int) -> None:
    record = d / f"{i}.proc"
    handle = await zygote.spawn(record, d / f"{i}.out", ["true"], cwd=d, env=None)
    await handle.wait()
    _check(record)


def _check(record: Path) -> None:
    rec = read_record(record)
    if rec is None or rec.exit_code != 0:
        raise SystemExit(f"a supervised `true` did not end with 0: {record}")


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


async def _round(way: str, tasks: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="porpoise-bench-sup-") as tmp:
        d = Path(tmp)
        zygote = Zygote()
        me, kids, t0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
        for start in range(0, tasks, concurrency):
            batch = range(start, min(tasks, start + concurrency))
            if way == "exec":
                await asyncio.gather(*(_exec_one(d, i) for i in batch))
            else:
                await asyncio.gather(*(_fork_one(zygote, d, i) for i in batch))
        zygote.close()  # reaped: its own CPU and its children's now count as ours
        wall = time.perf_counter() - t0
        return {"worker_cpu_ms_per_task": (_cpu(resource.RUSAGE_SELF) - me) / tasks * 1000,
                "process_cpu_ms_per_task": (_cpu(resource.RUSAGE_CHILDREN) - kids) / tasks * 1000,
                "wall_ms_per_task": wall / tasks * 1000}


async def main(tasks: int, rounds: int, concurrency: int) -> dict[str, Any]:
    results: dict[str, list[dict[str, float]]] = {"exec": [], "zygote": []}
    for _ in range(rounds):
        for way in results:
            results[way].append(await _round(way, tasks, concurrency))
    out: dict[str, Any] = {"tasks_per_round": tasks, "rounds": rounds, "concurrency": concurrency}
    for way, rows in results.items():
        out[way] = {key: round(statistics.median(r[key] for r in rows), 2) for key in rows[0]}
        out[way]["rounds"] = [{k: round(v, 2) for k, v in r.items()} for r in rows]
    out["saved_cpu_ms_per_task"] = round(
        sum(out["exec"][k] - out["zygote"][k] for k in ("worker_cpu_ms_per_task", "process_cpu_ms_per_task")), 2)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.tasks, args.rounds, args.concurrency)), indent=2))
