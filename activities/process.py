"""Run one task's child process (SHELL, PYTHON) the way a scheduler must: observable and killable.

Why it is built like this:

* The child gets its own session and so its own process group (``start_new_session=True``). A task
  script forks freely (pipelines, ``&``, ``nohup``), and on stop/timeout *everything it started* has to
  die, not just ``bash``. Killing the group is the only handle that reaches grandchildren.
* Output is read as it arrives and written to the :class:`~activities.logs.TaskLog` line by line, so a
  long task's log can be tailed live, and a chatty task can't grow the worker's memory. Only
  ``${setValue(k=v)}`` lines (reference §6.4) are kept, and only until their ``)}``.
* The output pipe is our own ``os.pipe()``, not the subprocess transport's: ``Process.wait()`` then
  depends on the child's exit only, never on a background grandchild that still holds stdout open.
* A heartbeat carrying ``{pid, host, log_path}`` goes out right after start and then every few seconds.
  It is what lets the API show where a running task lives, and it is the only way Temporal can deliver
  a cancellation (stop, start-to-close timeout) to the activity (temporal-notes B4).
* On :class:`asyncio.CancelledError` the group gets SIGTERM, ``kill_grace_seconds`` to clean up, then
  SIGKILL, and the runner waits until no live member is left before re-raising the cancellation.
  Limitation: a process that leaves the group on purpose (``setsid``, ``setpgid``) escapes this, as it
  would escape DolphinScheduler's ``kill -9`` of the process tree too; cgroups would be the next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.logs import TaskLog, attempt_path, ensure_dir
from core.contracts import TaskRequest, TaskResult

TASK_FAILED = "TaskFailed"  # ApplicationError.type of a task that ran and failed: retryable per RetryPolicy
HEARTBEAT_INTERVAL = 5.0  # seconds; the SDK throttles further (0.8 x heartbeat_timeout)
READ_CHUNK = 64 * 1024
MAX_LINE = 64 * 1024  # a longer line is logged in pieces rather than held in memory
DRAIN_SECONDS = 2.0  # after the child exits, how long background holders of stdout may keep it open
KILL_CONFIRM_SECONDS = 10.0  # after SIGKILL, how long to wait for the kernel to tear the group down
SET_VALUE_MAX_LINES = 1024  # DS TaskOutputParameterParser: a setValue may span up to 1024 rows
SET_VALUE_MAX_CHARS = 1024 * 1024
_SET_VALUE_MARK = "{setValue("  # matches both ${setValue( and #{setValue(


class SetValueCollector:
    """Collect ``${setValue(k=v)}`` / ``#{setValue(k=v)}`` from streamed output lines.

    Holds at most one unfinished expression (up to 1024 lines, as DS does); every other line is
    forgotten as soon as it is seen. The parsing itself is :func:`model.params.parse_set_values`.
    """

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self._pending: list[str] = []
        self._pending_chars = 0

    def feed(self, line: str) -> None:
        if self._pending:
            self._pending.append(line)
            self._pending_chars += len(line)
            too_long = len(self._pending) >= SET_VALUE_MAX_LINES or self._pending_chars > SET_VALUE_MAX_CHARS
            if ")}" in line or too_long:
                self._parse("\n".join(self._pending))
                self._pending, self._pending_chars = [], 0
                # the closing line may itself open the next expression
                tail = line[line.rfind(")}") + 2 :] if ")}" in line else ""
                self._start_pending(tail)
            return
        if _SET_VALUE_MARK not in line:
            return
        self._parse(line)
        self._start_pending(line)

    def close(self) -> None:
        """End of output: an expression still open is dropped (DS finds no ``)}`` either)."""
        self._pending, self._pending_chars = [], 0

    def _start_pending(self, text: str) -> None:
        start = text.rfind(_SET_VALUE_MARK)
        if start >= 0 and ")}" not in text[start:]:
            self._pending = [text[max(start - 1, 0) :]]
            self._pending_chars = len(self._pending[0])

    def _parse(self, text: str) -> None:
        from model.params import parse_set_values

        self.values.update(parse_set_values(text))


@dataclass
class ProcessOutcome:
    pid: int
    exit_code: int
    set_values: dict[str, str] = field(default_factory=dict)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def live_group_members(pgid: int) -> list[int]:
    """PIDs of the group that are still running. Zombies don't count: they hold nothing but a slot,
    and orphans are reaped by init (or not at all, in a container without one)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    members = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) == pgid and p.status() != psutil.STATUS_ZOMBIE:
                members.append(p.pid)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


async def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if not live_group_members(pgid):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.5)


async def _kill_group(proc: asyncio.subprocess.Process, pgid: int, grace: float, log: TaskLog) -> None:
    """SIGTERM the group, give it ``grace`` seconds, SIGKILL whatever is left, confirm it is gone."""
    log.note(f"cancelled: sending SIGTERM to process group {pgid}, grace {grace:g}s")
    log.flush()
    _signal_group(pgid, signal.SIGTERM)
    gone = False
    try:
        gone = await _wait_group_gone(pgid, max(grace, 0.0))
    finally:
        # Even if a second cancellation interrupts the grace period: nothing may survive. (Not once
        # the group is confirmed gone: its number could, in theory, already belong to a new group.)
        if not gone:
            _signal_group(pgid, signal.SIGKILL)
    if not gone:
        log.note(f"process group {pgid} still alive after grace: sent SIGKILL")
    if not await _wait_group_gone(pgid, KILL_CONFIRM_SECONDS):
        log.note(f"WARNING: processes {live_group_members(pgid)} of group {pgid} survived SIGKILL")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), KILL_CONFIRM_SECONDS)  # reap the leader
    log.note(f"killed process group {pgid}")
    log.result = "killed"


async def _pump(reader: asyncio.StreamReader, log: TaskLog, collector: SetValueCollector) -> None:
    """Copy output to the log line by line; hand each line to the setValue collector."""

    log_ok = True

    def emit(line: bytes) -> None:
        nonlocal log_ok
        if log_ok:
            try:
                log.write(line)
            except OSError:  # e.g. disk full: keep draining, or the child blocks on a full pipe
                log_ok = False
        collector.feed(line.rstrip(b"\r\n").decode("utf-8", "replace"))

    partial = b""
    while True:
        chunk = await reader.read(READ_CHUNK)
        if not chunk:
            break
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        for line in lines:
            emit(line + b"\n")
        if len(partial) >= MAX_LINE:
            emit(partial)
            partial = b""
        if log_ok:
            with contextlib.suppress(OSError):
                log.flush()
    if partial:
        emit(partial + b"\n")  # keep the footer on a line of its own
    collector.close()
    log.flush()


async def heartbeat_every(interval: float, details: Mapping[str, Any]) -> None:
    """Heartbeat ``details`` every ``interval`` seconds until cancelled (run it as a task)."""
    while True:
        await asyncio.sleep(interval)
        activity.heartbeat(dict(details))


def heartbeat_interval() -> float:
    """Every 5 s, or a third of the heartbeat timeout if that is shorter, so no beat is ever late."""
    timeout = activity.info().heartbeat_timeout
    if timeout:
        return max(0.2, min(HEARTBEAT_INTERVAL, timeout.total_seconds() / 3))
    return HEARTBEAT_INTERVAL


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    log: TaskLog,
    kill_grace_seconds: float,
    label: str,
    env: Mapping[str, str] | None = None,
) -> ProcessOutcome:
    """Run ``argv`` in its own process group, log its output, return its outcome on exit code 0.

    Raises :class:`ApplicationError` (``type="TaskFailed"``, retryable) on a non-zero exit; the message
    and details carry the exit code, host, pid and log path, never output (logs may hold secrets).
    Re-raises :class:`asyncio.CancelledError` after the whole group is dead.
    """
    host = socket.gethostname()
    loop = asyncio.get_running_loop()
    # The pipe and its reader exist before the child does: once the child is spawned there must be no
    # await (= no cancellation point) before the try block below that kills its group on cancel.
    read_fd, write_fd = os.pipe()
    reader = asyncio.StreamReader(limit=READ_CHUNK)
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
    except BaseException:
        os.close(read_fd)
        os.close(write_fd)
        raise
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            start_new_session=True,
        )
    except OSError as exc:  # no bash, bad PYTHON_LAUNCHER, cwd gone: the task fails like DS's would
        transport.close()
        log.note(f"failed to start {argv[0]}: {type(exc).__name__}: {exc}")
        log.result = "not started"
        raise ApplicationError(
            f"{label} could not start {argv[0]!r}: {exc.strerror or type(exc).__name__}; log: {log.path}",
            {"log_path": str(log.path), "host": host},
            type=TASK_FAILED,
        ) from None
    except BaseException:
        transport.close()
        raise
    finally:
        os.close(write_fd)  # the child has its copy; ours would keep the pipe open forever

    pgid = proc.pid  # leader of its own new session and group
    details = {"pid": proc.pid, "host": host, "log_path": str(log.path)}
    log.note(f"started pid={proc.pid} pgid={pgid} cwd={cwd}")
    log.flush()
    activity.heartbeat(details)

    collector = SetValueCollector()
    pump = asyncio.create_task(_pump(reader, log, collector))
    beat = asyncio.create_task(heartbeat_every(heartbeat_interval(), details))
    try:
        exit_code = await proc.wait()
        done, _ = await asyncio.wait({pump}, timeout=DRAIN_SECONDS)
        if not done:
            log.note("output still open after exit (background processes?): stopped reading")
        elif (error := pump.exception()) is not None:
            raise error
    except asyncio.CancelledError:
        await _kill_group(proc, pgid, kill_grace_seconds, log)
        raise
    finally:
        for task in (pump, beat):
            task.cancel()
        transport.close()
        await asyncio.wait({pump, beat})
        for task in (pump, beat):
            if not task.cancelled():
                task.exception()  # mark retrieved; a pump error was raised above when it mattered

    log.result = str(exit_code)
    if exit_code != 0:
        if exit_code < 0:
            how = f"was killed by signal {signal.Signals(-exit_code).name} (exit code {exit_code})"
        else:
            how = f"exited with code {exit_code}"
        raise ApplicationError(
            f"{label} {how}; log: {log.path} on {host}",
            {"exit_code": exit_code, "log_path": str(log.path), "host": host, "pid": proc.pid},
            type=TASK_FAILED,
        )
    return ProcessOutcome(pid=proc.pid, exit_code=exit_code, set_values=collector.values)


def ds_substitute(text: str, params: Mapping[str, str], timezone: str = "UTC") -> str:
    """DS ``ParameterUtils.convertParameterPlaceholders`` as a task applies it to its script/url/body.

    ``${name}`` from the prepared params, then ``$[...]`` time expressions against
    ``system.datetime`` (the business time the workflow put in the params; "now" when absent, as DS
    does), a wall clock read in the run's timezone.
    """
    from model.params import substitute

    zone = ZoneInfo(timezone)
    base: datetime | None = None
    with contextlib.suppress(KeyError, ValueError):
        base = datetime.strptime(params["system.datetime"], "%Y%m%d%H%M%S").replace(tzinfo=zone)
    return substitute(text, params, base or datetime.now(zone))


def write_private_file(path: Path, text: str, mode: int) -> None:
    """Write ``text`` to ``path`` with ``mode`` from the first byte on (the script holds resolved params)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.chmod(path, mode)  # an existing file keeps its old mode through os.open


async def run_script_task(
    request: TaskRequest, *, launcher: Sequence[str], suffix: str, label: str | None = None
) -> TaskResult:
    """The whole SHELL/PYTHON activity: substitute, write the script, run it, export OUT params.

    The script is ``<log_dir>/<task_code>.<attempt><suffix>`` (mode 0o700) and runs with
    ``launcher + [script]`` in ``<log_dir>/<task_code>.<attempt>.work/``. Dry run (reference §4.15)
    logs and returns success without running anything and without a varPool, as the DS worker does.
    """
    from model.params import export_out_params
    from model.task_params import ScriptParams

    attempt = activity.info().attempt
    host = socket.gethostname()
    label = label or f"{request.task_type} task {request.task_name!r}"
    log = TaskLog.for_task(request, attempt)  # the worker's cap, the type's masking, secret params
    with log.open(task_name=request.task_name, task_type=request.task_type, attempt=attempt, host=host):
        if request.dry_run:
            log.note("dry run: skipped")
            log.result = "skipped"
            activity.heartbeat({"pid": None, "host": host, "log_path": str(log.path)})
            return TaskResult(attempt=attempt, host=host, log_path=str(log.path))

        workdir = ensure_dir(attempt_path(request.log_dir, request.task_code, attempt, ".work"))
        # The execute path is only known here, per attempt (reference §6.3 system.task.execute.path).
        params = dict(request.params) | {"system.task.execute.path": str(workdir)}
        raw = ScriptParams.of(request.task_params).script
        script = ds_substitute(raw.replace("\r\n", "\n"), params, request.timezone)
        script_path = attempt_path(request.log_dir, request.task_code, attempt, suffix)
        write_private_file(script_path, script, 0o700)
        outcome = await run_process(
            [*launcher, str(script_path)],
            cwd=workdir,
            log=log,
            kill_grace_seconds=request.kill_grace_seconds,
            label=label,
        )
        return TaskResult(
            attempt=attempt,
            host=host,
            pid=outcome.pid,
            log_path=str(log.path),
            exit_code=outcome.exit_code,
            var_pool=export_out_params(request.out_params, outcome.set_values),
        )
