"""Task supervisors forked from the zygote (activities/spawner.py, supervise.py --serve): real
processes, real kills. What a supervisor records is tested in test_shell_activity.py and
test_process_reattach.py, which now run through the zygote too; here, the zygote's own failures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from activities.process import read_record
from activities.spawner import Zygote
from tests.processes import gone

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def zygote() -> Iterator[Zygote]:
    z = Zygote()
    yield z
    z.close()


async def _ended(zygote: Zygote, tmp_path: Path, name: str, argv: list[str], *, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> tuple[int | None, Path]:
    record = tmp_path / f"{name}.proc"
    handle = await zygote.spawn(record, tmp_path / f"{name}.out", argv, cwd=cwd or tmp_path, env=env)
    await asyncio.wait_for(handle.wait(), 20)
    return handle.returncode, record


async def test_a_forked_supervisor_runs_the_task_in_its_cwd_and_env(tmp_path: Path, zygote: Zygote) -> None:
    env = {"PATH": os.environ["PATH"], "GREETING": "hello"}
    code, record = await _ended(zygote, tmp_path, "a", ["bash", "-c", 'echo "$GREETING from $PWD"; exit 3'], env=env)
    assert code == 0  # the supervisor's own exit; the task's code is in the record
    rec = read_record(record)
    assert rec is not None and rec.started is not None and rec.exit_code == 3
    assert rec.started["supervisor_pid"] != zygote._channel.proc.pid  # type: ignore[union-attr]
    assert (tmp_path / "a.out").read_text() == f"hello from {tmp_path}\n"
    # its own session, like the supervisor the worker used to start itself
    assert os.getsid(zygote._channel.proc.pid) != os.getsid(0)  # type: ignore[union-attr]


async def test_a_missing_working_directory_is_recorded_as_not_started(tmp_path: Path, zygote: Zygote) -> None:
    code, record = await _ended(zygote, tmp_path, "b", ["true"], cwd=tmp_path / "gone")
    rec = read_record(record)
    assert code == 0 and rec is not None and rec.started is None
    assert rec.start_failed is not None and "working directory" in rec.start_failed


async def test_a_dead_zygote_is_replaced_and_its_supervisors_still_end_seen(tmp_path: Path, zygote: Zygote) -> None:
    handle = await zygote.spawn(tmp_path / "c.proc", tmp_path / "c.out", ["sleep", "1"], cwd=tmp_path, env=None)
    first = zygote._channel.proc  # type: ignore[union-attr]
    first.kill()
    first.wait()
    # The supervisor it forked goes on; the handle now polls whether it still runs.
    assert handle.returncode is None
    deadline = time.monotonic() + 10
    while handle.returncode is None:
        assert time.monotonic() < deadline, "the supervisor's end was never seen"
        await handle.wait()
    assert handle.returncode == -1  # ended unseen by a zygote
    rec = read_record(tmp_path / "c.proc")
    assert rec is not None and rec.exit_code == 0  # and recorded its task's end itself
    # The next task gets a new zygote.
    code, record = await _ended(zygote, tmp_path, "d", ["true"])
    assert zygote._channel.proc is not first  # type: ignore[union-attr]
    assert code == 0 and (rec := read_record(record)) is not None and rec.exit_code == 0


def test_the_zygote_ends_with_its_worker_and_leaves_the_task_running(tmp_path: Path) -> None:
    """A worker killed outright (SIGKILL): its zygote sees the end of its stdin and exits; the task
    and its supervisor, in sessions of their own, run on and record their end."""
    script = textwrap.dedent(f"""
        import asyncio, os, sys
        from pathlib import Path
        from activities.spawner import ZYGOTE
        async def main():
            tmp = Path({str(tmp_path)!r})
            await ZYGOTE.spawn(tmp / "e.proc", tmp / "e.out", ["sleep", "5"], cwd=tmp, env=None)
            print(ZYGOTE._channel.proc.pid, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    try:
        assert worker.stdout is not None
        zygote_pid = int(worker.stdout.readline())
        deadline = time.monotonic() + 10
        while (rec := read_record(tmp_path / "e.proc")) is None or rec.started is None:
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        psutil.wait_procs([psutil.Process(zygote_pid)], timeout=10)
        assert gone(zygote_pid)
        assert psutil.pid_exists(int(rec.started["pid"]))  # the task runs on
        deadline = time.monotonic() + 10
        while (done := read_record(tmp_path / "e.proc")) is None or done.exit_code is None:
            assert time.monotonic() < deadline, "the task's end was never recorded"
            time.sleep(0.1)
        assert done.exit_code == 0
    finally:
        worker.kill()
        worker.wait()


async def test_a_stop_during_the_spawn_still_kills_the_task(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled while the zygote forks (as the spawn request goes out, so before the worker knows a
    pid): the start is awaited to its end and the task's group killed, never left running."""
    from temporalio.testing import ActivityEnvironment

    from activities.process import ZYGOTE
    from activities.shell import run_shell
    from core.contracts import TaskRequest

    env = ActivityEnvironment()
    spawn = ZYGOTE.spawn

    async def cancelled_while_spawning(*args: Any, **kwargs: Any) -> Any:
        env.cancel()
        return await spawn(*args, **kwargs)

    monkeypatch.setattr(ZYGOTE, "spawn", cancelled_while_spawning)
    request = TaskRequest(instance_id="wf-z", task_code=5, task_name="t", task_type="SHELL",
                          task_params={"rawScript": "sleep 300\n"}, log_dir=str(tmp_path / "logs"),
                          kill_grace_seconds=1)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(env.run(run_shell, request), 20)
    deadline = time.monotonic() + 5
    while (rec := read_record(tmp_path / "logs" / "5.1.proc")) is None or rec.started is None:
        assert time.monotonic() < deadline, "the task never started: the cancel came too early to test"
        await asyncio.sleep(0.05)
    pid = int(rec.started["pid"])
    try:
        assert gone(pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


async def test_a_task_sees_the_workers_environment_as_it_is_now(tmp_path: Path, zygote: Zygote,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The zygote's environment is the worker's when it started; a task gets the worker's current one,
    as a child of the worker would."""
    monkeypatch.delenv("PORPOISE_ZYGOTE_PROBE", raising=False)
    await _ended(zygote, tmp_path, "f", ["true"])  # the zygote starts without the variable
    monkeypatch.setenv("PORPOISE_ZYGOTE_PROBE", "now")
    await _ended(zygote, tmp_path, "g", ["bash", "-c", 'echo "probe=$PORPOISE_ZYGOTE_PROBE"'])
    assert (tmp_path / "g.out").read_text() == "probe=now\n"
