"""Temporal restart in the middle of a burst (issue 16 item 1): the dev server is stopped with SIGTERM
and started again on the same SQLite file and port 5 s later; every run ends SUCCESS."""

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
    five_task_export,
    hard_limit,
    start_burst,
    successes,
)

RUNS = 80
TASK_SECONDS = 2
DOWN_SECONDS = 5
LIMIT = 240.0


async def test_temporal_restart_mid_burst(stack: ChaosStack, tmp_path: Path) -> None:
    await hard_limit(LIMIT, _scenario(stack, tmp_path))


async def _scenario(stack: ChaosStack, tmp_path: Path) -> None:
    marks = tmp_path / "finished.txt"
    stack.start_server()
    stack.start_worker()
    began = time.monotonic()
    async with stack.api() as api:
        ids = await start_burst(api, five_task_export("chaos-restart", marks, TASK_SECONDS), RUNS)
        total = RUNS * 5
        await a_fifth_done(marks, total)
        stack.stop_server()  # SIGTERM, as an operator's restart does
        stopped = time.monotonic()
        r = await api.get(f"/runs/{ids[0]}")  # meanwhile the API says "later", not 500
        api_status, retry_after = r.status_code, r.headers.get("retry-after")
        await asyncio.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - stopped)))
        stack.start_server()  # same SQLite file, same port
        down = time.monotonic() - stopped
    client = await stack.client()
    states = await final_states(client, ids)
    lines = finished_lines(marks)
    worker_log = (tmp_path / "worker.log").read_text(errors="replace")
    figures = {"runs": RUNS, "tasks": total, "server_down_seconds": round(down, 1),
               "success": successes(states),
               "tasks_finished": sum(lines.values()),
               "tasks_finished_twice": sum(1 for n in lines.values() if n > 1),
               "completions_dropped": worker_log.count("Network error while completing activity"),
               "recovered_from_record": worker_log.count("worker lost during attempt"),
               "api_while_down": [api_status, retry_after], "seconds_total": round(time.monotonic() - began, 1)}
    print("CHAOS temporal-restart", json.dumps(figures))
    (tmp_path.parent / "chaos-temporal-restart.json").write_text(json.dumps(figures))
    assert_all_succeeded(states)
    assert api_status == 503 and retry_after, "the API must answer 503 with Retry-After while Temporal is down"
    # Completions sdk-core dropped during the outage came back as lost workers, and their results
    # from the process records: no task ran twice (core/temporal.py).
    assert sum(lines.values()) == total and figures["tasks_finished_twice"] == 0
