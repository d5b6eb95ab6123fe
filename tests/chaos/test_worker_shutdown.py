"""Worker SIGTERM (a rolling restart) in the middle of a burst: the tasks it still runs after its
10 s grace are left running and reported as a lost worker, not killed and not failed; the restarted
worker re-attaches to them. Every run SUCCESS, no task ran to the end twice."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.chaos.conftest import (
    ChaosStack,
    final_states,
    finished_lines,
    hard_limit,
    start_with_burst,
    successes,
    wait_until,
)

RUNS = 30
TASK_SECONDS = 15  # longer than the worker's graceful shutdown (10 s): tasks are still running at its end
LIMIT = 240.0


async def test_worker_sigterm_mid_burst(stack: ChaosStack, tmp_path: Path) -> None:
    await hard_limit(LIMIT, _scenario(stack, tmp_path))


async def _scenario(stack: ChaosStack, tmp_path: Path) -> None:
    marks = tmp_path / "finished.txt"
    ids, began = await start_with_burst(stack, "chaos-sigterm", marks, TASK_SECONDS, RUNS)
    logs = tmp_path / "logs"
    await wait_until(lambda: len(list(logs.rglob("*.out"))) >= RUNS // 2 if logs.exists() else False, 120,
                     "tasks running")
    assert stack.worker is not None
    stack.worker.send_signal(signal.SIGTERM)
    stack.worker.wait(60)
    stack.start_worker()
    states = await final_states(await stack.client(), ids)
    lines = finished_lines(marks)
    texts = [p.read_text(errors="replace") for p in logs.rglob("*.log")]
    figures = {"runs": RUNS, "success": successes(states),
               "tasks_finished": sum(lines.values()), "tasks_finished_twice": sum(1 for n in lines.values() if n > 1),
               "left_running_at_shutdown": sum("keeps running" in t for t in texts),
               "reattached": sum("re-attached to pid" in t for t in texts),
               "seconds_total": round(time.monotonic() - began, 1)}
    print("CHAOS worker-sigterm", json.dumps(figures))
    (tmp_path.parent / "chaos-worker-sigterm.json").write_text(json.dumps(figures))
    assert figures["success"] == RUNS
    assert figures["tasks_finished"] == RUNS * 5 and figures["tasks_finished_twice"] == 0
    assert figures["left_running_at_shutdown"] > 0 and figures["reattached"] > 0
