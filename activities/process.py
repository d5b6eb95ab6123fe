"""Run one task's child process (SHELL, PYTHON) the way a scheduler must: observable and killable.

Why it is built like this:

* The child gets its own session and so its own process group (``start_new_session=True``). A task
  script forks freely (pipelines, ``&``, ``nohup``), and on stop/timeout *everything it started* has to
  die, not just ``bash``. Killing the group is the only handle that reaches grandchildren.
* The task outlives its worker (docs/reliability.md). It is started by a tiny supervisor
  (:mod:`activities.supervise`) in a session of its own, writes its output to a file
  ``<task_code>.<attempt>.out`` (never a pipe to the worker, whose death would kill it with SIGPIPE),
  and its pid, start time and exit code are fsynced to ``<task_code>.<attempt>.proc`` beside the log.
  When the worker dies, the next attempt comes back to this host (its own task queue) and
  :func:`reattach` follows the same process, or takes its recorded exit code and output, instead of
  running the task a second time. The worker settles the record (exit code, setValue pairs) once the
  log holds the output, then deletes the raw output.
* Output is read as it arrives and written to the :class:`~activities.logs.TaskLog` line by line
  (masked there), so a long task's log can be tailed live, and a chatty task can't grow the worker's
  memory. Only ``${setValue(k=v)}`` lines (reference §6.4) are kept, and only until their ``)}``.
  Background grandchildren that keep writing after the task exited are not waited for.
* A heartbeat carrying ``{pid, host, log_path, attempt, queue}`` goes out once the task has run for
  ``FIRST_BEAT_SECONDS``, then every few seconds. It is what lets the API show where a running task
  lives, and it is the only way Temporal can deliver a cancellation (stop, start-to-close timeout) to
  the activity (temporal-notes B4). A task that ends sooner sends none: a heartbeat RPC per task was
  a steady share of the server's work per run (docs/performance.md). Where an attempt lost before
  its first beat ran is read from the server's record of it instead (activities/lost_attempts.py),
  so it still comes back to this host.
* On a stop or timeout (:class:`asyncio.CancelledError`) the group gets SIGTERM,
  ``kill_grace_seconds`` to clean up, then SIGKILL, and the runner waits until no live member is left
  before re-raising the cancellation. A worker shutdown does not kill it: the next attempt
  re-attaches. Limitation: a process that leaves the group on purpose (``setsid``, ``setpgid``)
  escapes this, as it would escape DolphinScheduler's ``kill -9`` of the process tree too; cgroups
  would be the next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.logs import TaskLog, attempt_path, ensure_dir
from activities.spawner import ZYGOTE, SupervisorHandle, process_alive
from core.contracts import TaskRequest, TaskResult

WORKER_SHUTDOWN = "WorkerShutdown"  # what sdk-core reports for a shutdown, too: a lost worker, not a failure
TASK_FAILED = "TaskFailed"  # ApplicationError.type of a task that ran and failed: retryable per RetryPolicy
HEARTBEAT_INTERVAL = 5.0  # seconds; the SDK throttles further (0.8 x heartbeat_timeout)
FIRST_BEAT_SECONDS = 1.0  # a task's first heartbeat (its pid), if it is still running by then
READ_CHUNK = 64 * 1024
MAX_LINE = 64 * 1024  # a longer line is logged in pieces rather than held in memory
FREE_BYTES = 8 * 1024 * 1024  # raw output consumed past this is punched out of the .out file
FOLLOW_SECONDS = 0.25  # how often a running task's output file and record are read
SUPERVISOR = str(Path(__file__).with_name("supervise.py"))
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

    @property
    def pending(self) -> bool:
        """An expression is open (its lines are held until its ``)}``)."""
        return bool(self._pending)

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


# --------------------------------------------------------------------------------------------------
# The durable record beside the attempt's log (written by activities/supervise.py and by us)
# --------------------------------------------------------------------------------------------------


def record_path(log_path: Path) -> Path:
    """``<task_code>.<attempt>.proc``: the attempt's process record, one JSON event a line."""
    return log_path.with_suffix(".proc")


def output_path(log_path: Path) -> Path:
    """``<task_code>.<attempt>.out``: raw output (mode 0600) until the worker has masked it into the
    log; deleted once the attempt is settled."""
    return log_path.with_suffix(".out")


@dataclass
class ProcessRecord:
    """What a ``.proc`` file says about an attempt's process."""

    path: Path
    started: dict[str, Any] | None = None
    start_failed: str | None = None
    exit_code: int | None = None
    exited: bool = False
    settled: dict[str, Any] | None = None  # the worker's final word: exit code and setValue pairs
    progress: dict[str, Any] | None = None  # output consumed (and freed on disk) so far: offset, setValues
    attached_to: str | None = None  # a re-attaching attempt points at the attempt that ran the process

    @property
    def pgid(self) -> int | None:
        return int(self.started["pgid"]) if self.started else None


def read_record(path: Path) -> ProcessRecord | None:
    """The record at ``path`` (None when there is none). A torn last line (crash mid-write) is ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    rec = ProcessRecord(path)
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("event")
        if kind == "started":
            rec.started = event
        elif kind == "start_failed":
            rec.start_failed = str(event.get("error"))
        elif kind == "exited":
            rec.exited, rec.exit_code = True, int(event["exit_code"])
        elif kind == "settled":
            rec.settled = event
        elif kind == "progress":
            rec.progress = event
        elif kind == "attached":
            rec.attached_to = str(event["record"])
    return rec


def resolve_record(path: Path) -> ProcessRecord | None:
    """Follow ``attached`` links to the record of the attempt that actually started the process."""
    rec = read_record(path)
    for _ in range(100):  # a chain of lost attempts, never a cycle
        if rec is None or rec.attached_to is None or rec.started or rec.settled:
            return rec
        rec = read_record(Path(rec.attached_to))
    return rec


def append_event(path: Path, event: dict[str, Any]) -> None:
    from activities.supervise import append_record

    append_record(str(path), event | {"time": time.time()})


async def record_event(path: Path, event: dict[str, Any]) -> None:
    """:func:`append_event` off the event loop: its fsyncs would hold up every other task of the
    worker meanwhile (they were 14 % of the worker's samples in bench_runs; docs/performance.md)."""
    await asyncio.to_thread(append_event, path, event)


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


async def _kill_group(pgid: int, grace: float, log: TaskLog) -> None:
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
    log.note(f"killed process group {pgid}")
    log.result = "killed"


def punch_hole(fd: int, start: int, end: int) -> None:
    """Free the disk blocks of ``[start, end)`` of a file, keeping its size (Linux fallocate
    PUNCH_HOLE | KEEP_SIZE). A file system without it keeps the bytes: nothing breaks."""
    if end <= start:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    libc.fallocate(fd, 0x02 | 0x01, start, end - start)


class OutputFollower:
    """Copy a growing output file to the log line by line; hand each line to the setValue collector."""

    def __init__(self, path: Path, log: TaskLog, collector: SetValueCollector, record: Path | None = None,
                 start: int = 0) -> None:
        self.path, self.log, self.collector, self.record = path, log, collector, record
        self._pos = start
        self._freed = start
        self._partial = b""
        self._log_ok = True

    def _free_consumed(self) -> None:
        """Keep the raw output file small on disk: once the log holds ``FREE_BYTES`` more of it, punch
        the consumed part out (the log's cap then bounds the disk a chatty task uses, DS #13045) and
        record how far, with the setValues seen so far, for an attempt that re-attaches later."""
        consumed = self._pos - len(self._partial)
        if self.record is None or consumed - self._freed < FREE_BYTES or self.collector.pending:
            return
        append_event(self.record, {"event": "progress", "offset": consumed, "set_values": self.collector.values})
        fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)  # fallocate needs a descriptor open for writing
        try:
            punch_hole(fd, self._freed - self._freed % 4096, consumed - consumed % 4096)
        finally:
            os.close(fd)
        self._freed = consumed

    def _emit(self, line: bytes) -> None:
        if self._log_ok:
            try:
                self.log.write(line)
            except OSError:  # e.g. disk full: keep reading, the setValue lines still count
                self._log_ok = False
        self.collector.feed(line.rstrip(b"\r\n").decode("utf-8", "replace"))

    def poll(self) -> None:
        """Read whatever was appended since the last call."""
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return
        with f:
            f.seek(self._pos)
            while chunk := f.read(READ_CHUNK):
                self._pos += len(chunk)
                lines = (self._partial + chunk).split(b"\n")
                self._partial = lines.pop()
                for line in lines:
                    self._emit(line + b"\n")
                if len(self._partial) >= MAX_LINE:
                    self._emit(self._partial)
                    self._partial = b""
            with contextlib.suppress(OSError):
                self._free_consumed()
        if self._log_ok:
            with contextlib.suppress(OSError):
                self.log.flush()

    def finish(self) -> None:
        self.poll()
        if self._partial:
            self._emit(self._partial + b"\n")  # keep the footer on a line of its own
            self._partial = b""
        self.collector.close()
        self.log.flush()


async def heartbeat_every(interval: float, details: Mapping[str, Any], first: float | None = None) -> None:
    """Heartbeat ``details`` after ``first`` seconds (default ``interval``), then every ``interval``
    seconds, until cancelled (run it as a task)."""
    await asyncio.sleep(interval if first is None else first)
    while True:
        activity.heartbeat(dict(details))
        await asyncio.sleep(interval)


def heartbeat_interval() -> float:
    """Every 5 s, or a third of the heartbeat timeout if that is shorter, so no beat is ever late."""
    timeout = activity.info().heartbeat_timeout
    if timeout:
        return max(0.2, min(HEARTBEAT_INTERVAL, timeout.total_seconds() / 3))
    return HEARTBEAT_INTERVAL


def task_attempt(request: TaskRequest) -> int:
    """The task instance's attempt number: Temporal's attempt of this schedule after the attempts of
    earlier schedules (a lost worker re-schedules the activity; see workflows/ds_workflow.py)."""
    return request.attempt_offset + activity.info().attempt


def heartbeat_details(request: TaskRequest, log_path: Path, pid: int | None) -> dict[str, Any]:
    """What every task's heartbeat carries: where it runs (for the API) and which attempt (for the
    workflow, which re-schedules a lost attempt to ``queue``, this host's own task queue)."""
    from core.temporal import host_task_queue

    with contextlib.suppress(RuntimeError):  # outside an activity (tests): no queue
        queue = host_task_queue(activity.info().task_queue)
        return {"pid": pid, "host": socket.gethostname(), "log_path": str(log_path),
                "attempt": task_attempt(request), "queue": queue}
    return {"pid": pid, "host": socket.gethostname(), "log_path": str(log_path)}


def _detaching() -> bool:
    """Cancelled because the worker shuts down or the server gave this attempt up (heartbeat timeout):
    the process is left running for the next attempt to re-attach to, not killed. A stop, a DS
    timeout (start-to-close) and anything unknown kill it."""
    details = activity.cancellation_details()
    if details is None:
        return False
    if details.worker_shutdown:
        return True
    if details.not_found:
        info = activity.info()
        limit = info.start_to_close_timeout
        elapsed = (datetime.now(UTC) - info.started_time).total_seconds() if info.started_time else 0.0
        return limit is None or elapsed < limit.total_seconds()
    return False


async def _start(record: Path, output: Path, argv: Sequence[str], cwd: Path,
                 env: Mapping[str, str] | None) -> tuple[SupervisorHandle, ProcessRecord]:
    """Fork the task's supervisor and wait for its first word."""
    supervisor = await ZYGOTE.spawn(record, output, argv, cwd=cwd, env=env)
    return supervisor, await _wait_started(record, supervisor)


async def _wait_started(record: Path, supervisor: SupervisorHandle | None) -> ProcessRecord:
    """Wait for the supervisor's first word: started, or could not start."""
    delay = 0.005
    while True:
        rec = read_record(record)
        if rec is not None and (rec.started or rec.start_failed):
            return rec
        if supervisor is not None and supervisor.returncode is not None:
            rec = read_record(record)
            if rec is not None and (rec.started or rec.start_failed):
                return rec
            raise RuntimeError(f"the task supervisor exited with {supervisor.returncode} before starting the task")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


async def _follow(rec: ProcessRecord, follower: OutputFollower,
                  supervisor: SupervisorHandle | None) -> ProcessRecord:
    """Stream the output until the record says the process exited. Raises :class:`LostProcess` when
    the supervisor is gone without recording an exit."""
    started = rec.started or {}
    while True:
        follower.poll()
        if supervisor is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(supervisor.wait()), FOLLOW_SECONDS)
        else:
            await asyncio.sleep(FOLLOW_SECONDS)
        now = read_record(rec.path) or rec
        if now.exited:
            follower.finish()
            return now
        gone = (supervisor.returncode is not None if supervisor is not None
                else not process_alive(started.get("supervisor_pid"), started.get("supervisor_create_time")))
        if gone:
            now = read_record(rec.path) or rec
            if now.exited:
                follower.finish()
                return now
            raise LostProcess(now)


class LostProcess(Exception):
    """The supervisor died without recording how the task ended."""

    def __init__(self, rec: ProcessRecord) -> None:
        super().__init__(f"supervisor of pid {rec.started and rec.started.get('pid')} died without an exit code")
        self.rec = rec


async def watch_process(
    rec: ProcessRecord,
    *,
    log: TaskLog,
    output: Path,
    kill_grace_seconds: float,
    label: str,
    details: dict[str, Any],
    supervisor: SupervisorHandle | None = None,
) -> ProcessOutcome:
    """Follow a started process (ours, or one a lost worker left) to its end, heartbeating; kill its
    group on a stop or timeout. Settles the record (exit code and setValues, fsynced) and removes the
    raw output once the log holds it."""
    assert rec.started is not None
    pgid = int(rec.started["pgid"])
    pid = int(rec.started["pid"])
    host = socket.gethostname()
    collector = SetValueCollector()
    start = 0
    if rec.progress:  # a lost worker had consumed (and freed) the output up to here
        start = int(rec.progress.get("offset") or 0)
        collector.values.update(rec.progress.get("set_values") or {})
        log.note(f"output before byte {start} is in the lost attempt's log")
    follower = OutputFollower(output, log, collector, rec.path, start)
    interval = heartbeat_interval()
    beat = asyncio.create_task(heartbeat_every(interval, details, first=min(FIRST_BEAT_SECONDS, interval)))
    try:
        final = await _follow(rec, follower, supervisor)
    except asyncio.CancelledError:
        if _detaching():
            log.note(f"worker shutting down or attempt given up: pid {pid} keeps running; "
                     "the next attempt on this host re-attaches to it")
            log.result = "detached"
            if (cancelled := activity.cancellation_details()) is not None and cancelled.worker_shutdown:
                # Reported as a lost worker, with where the process is (workflows/ds_workflow.py).
                raise ApplicationError(f"{label}: worker shutting down; pid {pid} left running on {host}",
                                       details, type=WORKER_SHUTDOWN) from None
            raise
        await _kill_group(pgid, kill_grace_seconds, log)
        with contextlib.suppress(Exception):
            final = await asyncio.wait_for(_follow(read_record(rec.path) or rec, follower, supervisor),
                                           KILL_CONFIRM_SECONDS)
            await record_event(rec.path, {"event": "settled", "exit_code": final.exit_code, "killed": True})
        raise
    except LostProcess:
        log.note(f"the supervisor of pid {pid} died without recording an exit code: outcome unknown")
        log.result = "unknown"
        raise ApplicationError(
            f"{label}: process {pid} on {host} ended with no exit code recorded (its supervisor died); "
            f"not run again automatically; log: {log.path}",
            {"log_path": str(log.path), "host": host, "pid": pid}, type=TASK_FAILED) from None
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    exit_code = int(final.exit_code if final.exit_code is not None else -1)
    settling = asyncio.ensure_future(record_event(rec.path, {"event": "settled", "exit_code": exit_code,
                                                             "set_values": collector.values}))
    try:
        await asyncio.shield(settling)
    except asyncio.CancelledError:  # the task has ended: its real outcome stands (docs/design.md)
        await settling
    with contextlib.suppress(OSError):
        output.unlink()
    log.result = str(exit_code)
    if exit_code != 0:
        raise task_failed(label, exit_code, log.path, host, pid)
    return ProcessOutcome(pid=pid, exit_code=exit_code, set_values=collector.values)


def task_failed(label: str, exit_code: int, log_path: Path, host: str, pid: int | None) -> ApplicationError:
    if exit_code < 0:
        how = f"was killed by signal {signal.Signals(-exit_code).name} (exit code {exit_code})"
    else:
        how = f"exited with code {exit_code}"
    return ApplicationError(
        f"{label} {how}; log: {log_path} on {host}",
        {"exit_code": exit_code, "log_path": str(log_path), "host": host, "pid": pid},
        type=TASK_FAILED,
    )


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    log: TaskLog,
    kill_grace_seconds: float,
    label: str,
    env: Mapping[str, str] | None = None,
    request: TaskRequest | None = None,
) -> ProcessOutcome:
    """Run ``argv`` under the supervisor (own session and process group, output to a file, pid, start
    time and exit code recorded beside the log), log its output, return its outcome on exit code 0.

    Raises :class:`ApplicationError` (``type="TaskFailed"``, retryable) on a non-zero exit; the message
    and details carry the exit code, host, pid and log path, never output (logs may hold secrets).
    Re-raises :class:`asyncio.CancelledError` after the whole group is dead (or, when the worker shuts
    down, leaving it running for the next attempt).
    """
    host = socket.gethostname()
    record, output = record_path(log.path), output_path(log.path)
    for stale in (record, output):  # a workflow reset may re-run an attempt number
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    # No heartbeat before the start: should this worker die within milliseconds of it, the workflow
    # reads this attempt's host from the server's record of who took it (activities/lost_attempts.py)
    # and still sends the next attempt to this host's queue, never to another host that would run the
    # task again. From the request to the zygote on, the process may exist: a cancellation must find it and kill it.
    starting = asyncio.ensure_future(_start(record, output, argv, cwd, env))
    try:
        supervisor, rec = await asyncio.shield(starting)
    except asyncio.CancelledError:
        started = None
        with contextlib.suppress(OSError, RuntimeError):  # nothing was started, or it never said
            started = (await starting)[1].started
        if started and not _detaching():
            await _kill_group(int(started["pgid"]), kill_grace_seconds, log)
        raise
    except OSError as exc:  # no interpreter for the zygote: the task fails like DS's would
        log.note(f"failed to start {argv[0]}: {type(exc).__name__}: {exc}")
        log.result = "not started"
        raise ApplicationError(
            f"{label} could not start {argv[0]!r}: {exc.strerror or type(exc).__name__}; log: {log.path}",
            {"log_path": str(log.path), "host": host}, type=TASK_FAILED) from None
    if rec.start_failed or not rec.started:
        log.note(f"failed to start {argv[0]}: {rec.start_failed}")
        log.result = "not started"
        await record_event(record, {"event": "settled", "exit_code": None, "start_failed": True})
        raise ApplicationError(f"{label} could not start {argv[0]!r}: {rec.start_failed}; log: {log.path}",
                               {"log_path": str(log.path), "host": host}, type=TASK_FAILED)
    pid = int(rec.started["pid"])
    details = (heartbeat_details(request, log.path, pid) if request is not None
               else {"pid": pid, "host": host, "log_path": str(log.path)})
    log.note(f"started pid={pid} pgid={rec.pgid} cwd={cwd} (record {record.name})")
    log.flush()
    return await watch_process(rec, log=log, output=output, kill_grace_seconds=kill_grace_seconds,
                               label=label, details=details, supervisor=supervisor)


async def reattach(request: TaskRequest, log: TaskLog, *, kill_grace_seconds: float,
                   label: str) -> tuple[ProcessOutcome | None, str]:
    """The attempt after a lost worker: take over the lost attempt's process instead of running the
    task again. Returns no outcome when there is nothing to take over on this host (the log says why),
    so the caller runs the task afresh; and, either way, what happened in a few words for the node."""
    lost = request.lost_attempt
    assert lost is not None
    host = socket.gethostname()
    lost_log = attempt_path(request.log_dir, request.task_code, lost.attempt, ".log")
    rec = resolve_record(record_path(lost_log))
    where = f"attempt {lost.attempt} (host {lost.host or '?'}, pid {lost.pid or '?'})"
    if rec is None or (rec.started is None and rec.settled is None):
        if lost.host and lost.host != host:
            note = f"worker lost during {where}: its process ran on another host; running the task again"
        else:
            # The supervisor records the process within milliseconds of starting it, even with its
            # worker dead, and this attempt comes 30 s later: no record means it was never started.
            note = f"worker lost during {where}, before that attempt started its process: running the task now"
        log.note(note)
        return None, note
    # Mark this attempt as attached before anything else: if this worker dies too, the next one
    # follows the link to the same process.
    await record_event(record_path(log.path), {"event": "attached", "record": str(rec.path)})
    pid = int(rec.started["pid"]) if rec.started else None
    details = heartbeat_details(request, log.path, pid)
    activity.heartbeat(details)
    if rec.settled is not None:
        code = rec.settled.get("exit_code")
        note = (f"worker lost during {where}: its process had already ended with exit code {code} "
                f"and its output is in {lost_log.name}; not run again")
        log.note(note)
        if code is None:
            return None, note  # it never started: nothing ran, so running it now is its first run
        log.result = str(code)
        if int(code) != 0:
            raise task_failed(label, int(code), log.path, host, pid)
        return ProcessOutcome(pid=pid or 0, exit_code=0, set_values=dict(rec.settled.get("set_values") or {})), note
    state = f"ended with exit code {rec.exit_code}" if rec.exited else "still running"
    note = f"worker lost during {where}: re-attached to pid {pid} ({state}); not run again"
    log.note(f"{note}; its output follows")
    log.flush()
    source = output_path(Path(str(rec.path)).with_suffix(".log"))
    return await watch_process(rec, log=log, output=source, kill_grace_seconds=kill_grace_seconds,
                               label=label, details=details), note


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

    attempt = task_attempt(request)
    host = socket.gethostname()
    label = label or f"{request.task_type} task {request.task_name!r}"
    log = TaskLog.for_task(request, attempt)  # the worker's cap, the type's masking, secret params
    with log.open(task_name=request.task_name, task_type=request.task_type, attempt=attempt, host=host):
        if request.dry_run:
            log.note("dry run: skipped")
            log.result = "skipped"
            # No heartbeat: nothing runs that a later attempt could re-attach to, and the attempt ends
            # now (a heartbeat RPC per task was part of every dry run's cost, docs/performance.md).
            return TaskResult(attempt=attempt, host=host, log_path=str(log.path))

        outcome, recovery = None, None
        if request.lost_attempt is not None:  # the worker of the previous attempt died
            outcome, recovery = await reattach(request, log, kill_grace_seconds=request.kill_grace_seconds,
                                               label=label)
        if outcome is None:
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
                request=request,
            )
        return TaskResult(
            attempt=attempt,
            host=host,
            pid=outcome.pid,
            log_path=str(log.path),
            exit_code=outcome.exit_code,
            var_pool=export_out_params(request.out_params, outcome.set_values),
            recovery=recovery,
        )
