"""A SHELL task outlives its worker, and the attempt after a lost worker re-attaches instead of running
the script again (activities/process.py, activities/supervise.py). Real bash, real processes; the
worker's death is a worker-shutdown cancellation of the ActivityEnvironment (its process stays up)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.activity import ActivityCancellationDetails
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.process import process_alive, read_record
from activities.shell import run_shell
from core.contracts import LostAttempt, TaskRequest, TaskResult
from model.definition import Direct, Property
from tests.processes import gone, pid_beat

CODE = 77


def request(tmp_path: Path, script: str, **kw: Any) -> TaskRequest:
    fields: dict[str, Any] = {"instance_id": "wf-r", "task_code": CODE, "task_name": "t", "task_type": "SHELL",
                              "task_params": {"rawScript": script}, "log_dir": str(tmp_path / "logs"),
                              "out_params": [Property(prop="x", direct=Direct.OUT, value="")]}
    fields.update(kw)
    return TaskRequest(**fields)


@pytest.fixture
def groups() -> Iterator[list[int]]:
    started: list[int] = []
    yield started
    for pgid in started:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


async def start_and_lose_worker(tmp_path: Path, script: str, groups: list[int]) -> dict[str, Any]:
    """Attempt 1 starts the script; then its worker shuts down. Returns where attempt 1 ran (its
    process record: a task lost within its first second has sent no heartbeat)."""
    env = ActivityEnvironment()
    task = asyncio.create_task(env.run(run_shell, request(tmp_path, script)))
    log = tmp_path / "logs" / f"{CODE}.1.log"
    deadline = time.monotonic() + 10
    while (rec := read_record(log.with_suffix(".proc"))) is None or rec.started is None:
        assert time.monotonic() < deadline, "attempt 1 never started its process"
        await asyncio.sleep(0.02)
    started = {"pid": int(rec.started["pid"]), "host": rec.started["host"], "log_path": str(log)}
    groups.append(started["pid"])
    env.cancel(ActivityCancellationDetails(worker_shutdown=True))
    with pytest.raises(ApplicationError) as info:
        await task
    assert info.value.type == "WorkerShutdown"
    assert info.value.details[0]["attempt"] == 1  # the workflow re-schedules from this
    return started


async def next_attempt(tmp_path: Path, script: str, lost: dict[str, Any]) -> TaskResult:
    env = ActivityEnvironment()
    req = request(tmp_path, script, attempt_offset=1,
                  lost_attempt=LostAttempt(attempt=1, host=lost["host"], pid=lost["pid"], log_path=lost["log_path"]))
    result: TaskResult = await env.run(run_shell, req)
    return result


async def test_process_outlives_its_worker_and_the_next_attempt_reattaches(tmp_path: Path,
                                                                            groups: list[int]) -> None:
    marks = tmp_path / "runs.txt"
    script = f"echo begin >> {marks}\nsleep 2\necho '${{setValue(x=42)}}'\necho end >> {marks}\n"
    lost = await start_and_lose_worker(tmp_path, script, groups)
    rec = read_record(tmp_path / "logs" / f"{CODE}.1.proc")
    assert rec is not None and rec.started is not None and not rec.exited
    assert process_alive(rec.started["pid"], rec.started["create_time"])  # the worker is gone, the task is not

    result = await asyncio.wait_for(next_attempt(tmp_path, script, lost), 20)
    assert result.attempt == 2 and result.pid == lost["pid"] and result.exit_code == 0
    assert [(p.prop, p.value) for p in result.var_pool] == [("x", "42")]
    assert result.recovery is not None and "re-attached" in result.recovery  # the node says so too
    assert marks.read_text().splitlines() == ["begin", "end"]  # ran once, to the end
    log2 = (tmp_path / "logs" / f"{CODE}.2.log").read_text()
    assert f"re-attached to pid {lost['pid']}" in log2
    rec = read_record(tmp_path / "logs" / f"{CODE}.1.proc")
    assert rec is not None and rec.exit_code == 0 and rec.settled is not None
    assert not (tmp_path / "logs" / f"{CODE}.1.out").exists()  # raw output gone once the log holds it


async def test_a_process_that_ended_meanwhile_is_not_run_again(tmp_path: Path, groups: list[int]) -> None:
    marks = tmp_path / "runs.txt"
    script = f"echo run >> {marks}\necho '${{setValue(x=7)}}'\nsleep 0.5\nexit 3\n"
    lost = await start_and_lose_worker(tmp_path, script, groups)
    record = tmp_path / "logs" / f"{CODE}.1.proc"
    deadline = time.monotonic() + 10
    while not (rec := read_record(record)) or not rec.exited:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert [json.loads(line)["event"] for line in record.read_text().splitlines()] == ["started", "exited"]
    with pytest.raises(ApplicationError) as info:
        await next_attempt(tmp_path, script, lost)
    assert info.value.type == "TaskFailed" and "exited with code 3" in info.value.message
    assert marks.read_text() == "run\n"


async def test_nothing_recorded_on_this_host_runs_again_and_says_so(tmp_path: Path) -> None:
    marks = tmp_path / "runs.txt"
    script = f"echo run >> {marks}\n"
    lost = {"host": "other-host", "pid": 1234, "log_path": "/elsewhere/77.1.log"}
    result = await next_attempt(tmp_path, script, lost)
    assert result.exit_code == 0 and marks.read_text() == "run\n"
    assert result.recovery is not None and "running the task again" in result.recovery
    log2 = (tmp_path / "logs" / f"{CODE}.2.log").read_text()
    assert "its process ran on another host; running the task again" in log2
    assert socket.gethostname() in log2


async def test_a_stop_still_kills_the_group(tmp_path: Path, groups: list[int]) -> None:
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *d: beats.append(d[0])
    task = asyncio.create_task(env.run(run_shell, request(tmp_path, "sleep 300\n", kill_grace_seconds=2)))
    pid = (await pid_beat(lambda: beats))["pid"]
    groups.append(pid)
    env.cancel()  # cancel_requested: a DS stop
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gone(pid)
    rec = read_record(tmp_path / "logs" / f"{CODE}.1.proc")
    assert rec is not None and rec.exit_code == -signal.SIGTERM


async def test_raw_output_is_freed_on_disk_as_the_log_takes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             groups: list[int]) -> None:
    monkeypatch.setattr("activities.process.FREE_BYTES", 64 * 1024)
    script = ("echo '${setValue(x=early)}'\n"
              "head -c 2000000 /dev/zero | tr '\\0' 'y' | fold -w 100\n"
              "sleep 3\n")
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *d: beats.append(d[0])
    task = asyncio.create_task(env.run(run_shell, request(tmp_path, script)))
    out = tmp_path / "logs" / f"{CODE}.1.out"
    deadline = time.monotonic() + 20
    while not (out.exists() and out.stat().st_size >= 2_000_000):
        assert time.monotonic() < deadline, "the output never arrived"
        await asyncio.sleep(0.1)
    groups.append((await pid_beat(lambda: beats))["pid"])
    await asyncio.sleep(1.0)  # a few follow rounds
    record_text = (tmp_path / "logs" / f"{CODE}.1.proc").read_text()
    assert out.stat().st_blocks * 512 < 1_000_000, record_text  # most of the 2 MB already freed
    rec = read_record(tmp_path / "logs" / f"{CODE}.1.proc")
    assert rec is not None and rec.progress is not None and rec.progress["set_values"] == {"x": "early"}
    result: TaskResult = await asyncio.wait_for(task, 20)
    assert [(p.prop, p.value) for p in result.var_pool] == [("x", "early")]
    assert (tmp_path / "logs" / f"{CODE}.1.log").read_text().count("y" * 100) == 20000


def test_the_supervisors_records_are_json() -> None:
    """The supervisor writes its records without the json module (it starts once per task)."""
    import json

    from activities.supervise import to_json

    event = {"event": "start_failed", "error": 'No "such" \\ file\n\t\x01 é 😀', "pid": 12, "pgid": -3,
             "time": 1796577518.1823955, "create_time": None, "ok": True, "nan": float("nan")}
    assert json.loads(to_json(event)) == event | {"nan": None}
    nested = {"event": "progress", "offset": 3, "set_values": {"x": "early", "y": ["a", 1]}}
    assert json.loads(to_json(nested)) == nested
