"""SHELL and PYTHON activities, run for real (bash, python, signals) in an ActivityEnvironment.

No Temporal server is needed: ActivityEnvironment supplies activity.info(), captures heartbeats and
delivers cancellation the way the worker does for async activities (asyncio task cancel).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.process import SetValueCollector, read_record
from activities.python_task import run_python
from activities.shell import run_shell
from core.contracts import TaskRequest, TaskResult
from model.definition import Direct, Property
from tests.processes import gone, pid_beat

CODE = 4242


def request(tmp_path: Path, script: str, **kw: Any) -> TaskRequest:
    fields: dict[str, Any] = {
        "instance_id": "wf-1",
        "task_code": CODE,
        "task_name": "t1",
        "task_type": "SHELL",
        "task_params": {"rawScript": script, "localParams": []},
        "log_dir": str(tmp_path / "logs"),
    }
    fields.update(kw)
    return TaskRequest(**fields)


def out(prop: str, value: str = "") -> Property:
    return Property(prop=prop, direct=Direct.OUT, value=value)


class Recorder:
    """An ActivityEnvironment that keeps every heartbeat."""

    def __init__(self) -> None:
        self.env = ActivityEnvironment()
        self.beats: list[tuple[Any, ...]] = []
        self.env.on_heartbeat = lambda *details: self.beats.append(details)

    async def run(self, fn: Any, req: TaskRequest) -> TaskResult:
        result: TaskResult = await self.env.run(fn, req)
        return result

    async def pid_beat(self) -> dict[str, Any]:
        return await pid_beat(lambda: [b[0] for b in self.beats])


@pytest.fixture
def groups() -> Iterator[list[int]]:
    """Process groups a test started: SIGKILLed at teardown, so a failing test leaks nothing."""
    started: list[int] = []
    yield started
    for pgid in started:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def live_in_group(pgid: int) -> list[int]:
    """Independent of the code under test: every non-zombie process whose process group is pgid."""
    alive = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return alive


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return not live_in_group(pgid)  # only zombies left, waiting for init to reap them


async def test_success_writes_log_and_exports_declared_out_param(tmp_path: Path) -> None:
    script = "echo hello from shell\necho oops >&2\necho '${setValue(out=42)}'\n"
    rec = Recorder()
    result = await rec.run(run_shell, request(tmp_path, script, out_params=[out("out")]))

    log_path = tmp_path / "logs" / f"{CODE}.1.log"
    assert result.log_path == str(log_path)
    assert result.exit_code == 0
    assert result.attempt == 1
    assert isinstance(result.pid, int) and result.pid > 0
    assert result.host
    assert [(p.prop, p.direct, p.value) for p in result.var_pool] == [("out", Direct.OUT, "42")]

    text = log_path.read_text()
    lines = text.splitlines()
    assert lines[0].startswith("[porpoise] start task='t1' type=SHELL attempt=1 host=")
    assert "hello from shell" in lines
    assert "oops" in lines  # stderr goes to the same log
    assert "${setValue(out=42)}" in lines
    assert lines[-1].startswith("[porpoise] end exit=0 duration=")

    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "logs").stat().st_mode) == 0o700
    script_path = tmp_path / "logs" / f"{CODE}.1.sh"
    assert stat.S_IMODE(script_path.stat().st_mode) == 0o700
    assert (tmp_path / "logs" / f"{CODE}.1.work").is_dir()


async def test_attempt_number_names_the_files(tmp_path: Path) -> None:
    rec = Recorder()
    rec.env.info = dataclasses.replace(ActivityEnvironment.default_info(), attempt=3)
    result = await rec.run(run_shell, request(tmp_path, "pwd\n"))
    assert result.attempt == 3
    assert result.log_path.endswith(f"{CODE}.3.log")
    # the script ran in its own work directory
    assert str(tmp_path / "logs" / f"{CODE}.3.work") in Path(result.log_path).read_text()


async def test_undeclared_set_value_is_not_exported(tmp_path: Path) -> None:
    script = "echo '${setValue(other=1)}'\necho '#{setValue(out2=b)}'\n"
    result = await Recorder().run(
        run_shell, request(tmp_path, script, out_params=[out("out", "default"), out("out2")])
    )
    pool = {p.prop: p.value for p in result.var_pool}
    assert pool == {"out": "default", "out2": "b"}  # declared but unset keeps its default


async def test_set_value_spanning_lines(tmp_path: Path) -> None:
    script = "printf '%s\\n' 'x ${setValue(multi=line1' 'line2)} y'\n"
    result = await Recorder().run(run_shell, request(tmp_path, script, out_params=[out("multi")]))
    pool = {p.prop: p.value for p in result.var_pool}
    assert pool["multi"] == "line1\nline2"


async def test_nonzero_exit_fails_without_leaking_output(tmp_path: Path) -> None:
    script = "echo the-secret-is-hunter2\nexit 3\n"
    with pytest.raises(ApplicationError) as info:
        await Recorder().run(run_shell, request(tmp_path, script))
    err = info.value
    assert err.type == "TaskFailed"
    assert not err.non_retryable
    assert "exited with code 3" in err.message
    log_path = str(tmp_path / "logs" / f"{CODE}.1.log")
    assert log_path in err.message
    assert "hunter2" not in err.message and "hunter2" not in repr(err.details)
    assert err.details[0]["exit_code"] == 3
    text = Path(log_path).read_text()
    assert "the-secret-is-hunter2" in text
    assert text.splitlines()[-1].startswith("[porpoise] end exit=3 ")


async def test_param_substitution_and_crlf(tmp_path: Path) -> None:
    script = (
        'echo "hello ${who} on ${system.biz.date}"\r\necho "home=${HOME}"\r\necho "d=$[yyyy-MM-dd-1]"\r\n'
    )
    params = {"who": "world", "system.biz.date": "20240101", "system.datetime": "20240315103000"}
    result = await Recorder().run(run_shell, request(tmp_path, script, params=params))
    text = Path(result.log_path).read_text()
    assert "hello world on 20240101\n" in text
    assert "d=2024-03-14\n" in text  # $[...] is evaluated against system.datetime
    # an unresolved ${x} is left to bash, which expands it from the environment
    assert f"home={os.environ['HOME']}\n" in text
    assert "\r" not in (tmp_path / "logs" / f"{CODE}.1.sh").read_text()


async def test_a_task_shorter_than_the_first_beat_sends_no_heartbeat(tmp_path: Path) -> None:
    # No RPC per task for the short ones: a lost attempt's host comes from the server's record of
    # who took it (activities/lost_attempts.py), not from a beat before the start.
    rec = Recorder()
    result = await rec.run(run_shell, request(tmp_path, "echo hi\n"))
    assert result.exit_code == 0
    assert rec.beats == []


async def test_the_first_heartbeat_says_where_the_process_runs(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("activities.process.FIRST_BEAT_SECONDS", 0.1)
    rec = Recorder()
    result = await rec.run(run_shell, request(tmp_path, "sleep 1\n"))
    where = {"host": result.host, "log_path": result.log_path, "attempt": 1,
             "queue": f"test@{result.host}"}  # the workflow re-schedules a lost attempt there
    assert rec.beats[0][0] == {"pid": result.pid, **where}


async def test_heartbeats_keep_coming_while_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("activities.process.HEARTBEAT_INTERVAL", 0.1)
    rec = Recorder()
    await rec.run(run_shell, request(tmp_path, "sleep 1\n"))
    assert len(rec.beats) >= 4
    assert all(b[0]["pid"] == rec.beats[0][0]["pid"] is not None for b in rec.beats)


async def test_cancel_terminates_process_group(tmp_path: Path, groups: list[int]) -> None:
    rec = Recorder()
    req = request(tmp_path, "sleep 300\n", kill_grace_seconds=30)
    task = asyncio.create_task(rec.run(run_shell, req))
    pid = (await rec.pid_beat())["pid"]
    groups.append(pid)
    assert os.getpgid(pid) == pid != os.getpgrp()  # its own group, not the worker's
    deadline = time.monotonic() + 10
    while len(live_in_group(pid)) < 2 and time.monotonic() < deadline:  # bash + sleep
        await asyncio.sleep(0.05)
    members = live_in_group(pid)
    assert len(members) >= 2

    started = time.monotonic()
    rec.env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 10  # SIGTERM sufficed: no need to sit out the 30 s grace
    assert group_gone(pid)
    text = (tmp_path / "logs" / f"{CODE}.1.log").read_text()
    assert "killed process group" in text
    assert text.splitlines()[-1].startswith("[porpoise] end exit=killed ")


async def test_cancel_kills_children_that_ignore_sigterm(tmp_path: Path, groups: list[int]) -> None:
    script = "bash -c 'trap \"\" TERM; sleep 300; echo after' &\necho started\nwait\n"
    rec = Recorder()
    grace = 1.0
    task = asyncio.create_task(rec.run(run_shell, request(tmp_path, script, kill_grace_seconds=grace)))
    pid = (await rec.pid_beat())["pid"]
    groups.append(pid)
    deadline = time.monotonic() + 10
    while len(live_in_group(pid)) < 3 and time.monotonic() < deadline:  # bash, bash -c, sleep
        await asyncio.sleep(0.05)
    members = live_in_group(pid)
    assert len(members) >= 3

    started = time.monotonic()
    rec.env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started >= grace  # SIGTERM was not enough; SIGKILL after the grace
    assert group_gone(pid)
    for member in members:
        assert gone(member)
    text = (tmp_path / "logs" / f"{CODE}.1.log").read_text()
    assert "sent SIGKILL" in text


async def test_background_process_holding_stdout_does_not_block(tmp_path: Path, groups: list[int]) -> None:
    rec = Recorder()
    task = asyncio.create_task(rec.run(run_shell, request(tmp_path, "sleep 60 &\necho done\n")))
    try:
        result = await asyncio.wait_for(task, timeout=15)
    finally:
        if (started := read_record(tmp_path / "logs" / f"{CODE}.1.proc")) and started.started:
            groups.append(int(started.started["pgid"]))  # the background sleep is killed at teardown
    assert result.exit_code == 0
    text = Path(result.log_path).read_text()
    assert "done\n" in text


async def test_dry_run_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    req = request(tmp_path, f"touch {marker}\n", dry_run=True, out_params=[out("out", "d")])
    result = await Recorder().run(run_shell, req)
    assert not marker.exists()
    assert result.pid is None and result.var_pool == []
    assert not (tmp_path / "logs" / f"{CODE}.1.sh").exists()
    text = Path(result.log_path).read_text()
    assert "[porpoise] dry run: skipped" in text
    assert "end exit=skipped" in text


async def test_python_task_runs_a_python_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHON_LAUNCHER", raising=False)
    script = "import sys\nprint('py', sys.version_info[0], '${who}')\nprint('${setValue(pyout=7)}')\n"
    req = request(tmp_path, script, task_type="PYTHON", params={"who": "me"}, out_params=[out("pyout")])
    result = await Recorder().run(run_python, req)
    text = Path(result.log_path).read_text()
    assert "py 3 me\n" in text
    assert [(p.prop, p.value) for p in result.var_pool] == [("pyout", "7")]
    assert (tmp_path / "logs" / f"{CODE}.1.py").exists()


async def test_python_task_uses_python_launcher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PYTHON_LAUNCHER", f"{sys.executable} -c \"import sys; print('via-launcher', sys.argv[1])\""
    )
    req = request(tmp_path, "raise SystemExit(5)\n", task_type="PYTHON")
    result = await Recorder().run(run_python, req)  # the script itself would exit 5
    assert f"via-launcher {tmp_path / 'logs' / f'{CODE}.1.py'}" in Path(result.log_path).read_text()


async def test_python_task_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTHON_LAUNCHER", raising=False)
    req = request(tmp_path, "raise SystemExit(5)\n", task_type="PYTHON")
    with pytest.raises(ApplicationError, match="exited with code 5") as info:
        await Recorder().run(run_python, req)
    assert info.value.type == "TaskFailed"


async def test_missing_launcher_fails_the_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_LAUNCHER", str(tmp_path / "no-such-python"))
    with pytest.raises(ApplicationError, match="could not start") as info:
        await Recorder().run(run_python, request(tmp_path, "print(1)\n", task_type="PYTHON"))
    assert info.value.type == "TaskFailed"
    assert "failed to start" in (tmp_path / "logs" / f"{CODE}.1.log").read_text()


def test_set_value_collector_keeps_only_expressions() -> None:
    c = SetValueCollector()
    for line in [
        "noise",
        "${setValue(a=1)} and #{setValue(b=2)}",
        "start ${setValue(c=x",
        "y)} then ${setValue(d=open",
        "more",
        "end)}",
        "${setValue(never=closed",
    ]:
        c.feed(line)
    c.close()
    assert c.values == {"a": "1", "b": "2", "c": "x\ny", "d": "open\nmore\nend"}
