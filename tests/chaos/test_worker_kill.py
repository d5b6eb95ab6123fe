"""Worker ``kill -9`` in the middle of a burst (issue 16 item 2): every run ends SUCCESS, no task runs
to the end twice, the lost attempts re-attach to the processes the dead worker left running."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from tests.chaos.conftest import (
    ChaosStack,
    a_fifth_done,
    assert_all_succeeded,
    final_states,
    finished_lines,
    hard_limit,
    start_with_burst,
    successes,
)

RUNS = 150
TASK_SECONDS = 1
LIMIT = 300.0


async def test_worker_kill_9_mid_burst(stack: ChaosStack, tmp_path: Path) -> None:
    await hard_limit(LIMIT, _scenario(stack, tmp_path))


async def _scenario(stack: ChaosStack, tmp_path: Path) -> None:
    marks = tmp_path / "finished.txt"
    ids, began = await start_with_burst(stack, "chaos-kill", marks, TASK_SECONDS, RUNS)
    total = RUNS * 5
    # Kill when a fifth of the tasks are done: a full set of tasks is running then.
    await a_fifth_done(marks, total)
    running = len(list((tmp_path / "logs").rglob("*.out")))  # raw output files of live attempts
    stack.kill_worker()
    killed_at = time.monotonic()
    await asyncio.sleep(2)
    stack.start_worker()
    client = await stack.client()
    states = await final_states(client, ids)
    elapsed = time.monotonic() - began

    lines = finished_lines(marks)
    twice = {k: n for k, n in lines.items() if n > 1}
    logs = list((tmp_path / "logs").rglob("*.log"))
    reattached = sum("re-attached to pid" in p.read_text(errors="replace") for p in logs)
    ended_meanwhile = sum("had already ended with exit code" in p.read_text(errors="replace") for p in logs)
    rerun = sum("running the task again" in p.read_text(errors="replace") for p in logs)
    never_started = sum("before that attempt started its process" in p.read_text(errors="replace") for p in logs)
    figures = {"runs": RUNS, "tasks": total, "running_at_kill": running,
               "success": successes(states),
               "tasks_finished": sum(lines.values()), "tasks_finished_twice": len(twice),
               "reattached_live": reattached, "took_recorded_exit": ended_meanwhile, "ran_again": rerun,
               "lost_before_start": never_started,
               "seconds_total": round(elapsed, 1), "seconds_after_kill": round(time.monotonic() - killed_at, 1)}
    print("CHAOS worker-kill", json.dumps(figures))
    (tmp_path.parent / "chaos-worker-kill.json").write_text(json.dumps(figures))
    assert_all_succeeded(states)
    assert not twice, f"tasks that ran to the end twice: {list(twice)[:5]}"
    assert sum(lines.values()) == total
    assert reattached + ended_meanwhile > 0, "the kill hit no running task: the test proved nothing"
    assert rerun == 0, "a task ran again although its process was on this host"
