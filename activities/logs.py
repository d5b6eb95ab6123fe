"""The per-task-instance log file, one per attempt, as DolphinScheduler keeps it.

Every attempt of a task instance gets its own file, ``<log_dir>/<task_code>.<attempt>.log``, so a retry
never overwrites the evidence of the attempt that failed, and the API can show "the log of attempt N"
without any index. The file opens with a header line (who/what/where/when) and ends with a footer (how
it ended, how long it took); both are marked ``[porpoise]`` so they can't be mistaken for task output.

All bytes go through :meth:`TaskLog.write`, the one choke point for the two things no caller may skip:

* **Masking** (reference §7, :mod:`activities.masking`). Everything, task output and our own notes,
  passes the task's :class:`~activities.masking.Masker` before it reaches the file: the built-in
  rules, the task type's configured rules and the exact secrets the run resolved. Output is masked
  line by line; an unfinished line waits in memory for its newline, so a secret split across two
  writes is still masked. An unmasked secret never reaches disk.
* **The size cap** (DS #13045, reference §8: a task printing in a tight loop must not fill the disk).
  With ``max_bytes`` set, the file keeps the first ``max_bytes - tail_bytes`` bytes of output (the
  *head*, written as it comes), then only the last ``tail_bytes`` in a ring in memory (the *tail*).
  At the head's end the log says so; at close it writes ``[porpoise] N bytes dropped …`` and then the
  tail, starting at a line boundary. Task output on disk never exceeds ``max_bytes`` (plus our own
  ``[porpoise]`` lines). Meanwhile the ring is copied, at most once a second, to a sidecar file
  ``<log>.tail`` (replaced atomically), so a reader can see the live end of a storming task and a
  crashed worker still leaves its last output behind; the sidecar is removed at close.

Settings reach the activities per task queue: :func:`configure_task_logs` registers a worker's
:class:`LogPolicy` (cap, tail, mask rules) under its task queue, and :meth:`TaskLog.for_task` picks
the policy of the queue the running activity came from (the process-wide settings otherwise), so two
workers in one process keep their own settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

from temporalio import activity

from activities.masking import DEFAULT_SECRET_PARAM_PATTERN, Masker

if TYPE_CHECKING:
    from core.contracts import TaskRequest

DIR_MODE = 0o700  # task logs hold task output: the operator's alone (docs/security.md)
FILE_MODE = 0o600
PREFIX = b"[porpoise] "
TAIL_SUFFIX = ".tail"  # the live-tail sidecar: <task_code>.<attempt>.log.tail
DEFAULT_TAIL_BYTES = 1024 * 1024
BATCH_BYTES = 64 * 1024  # output is masked in batches of lines up to this size (or at every flush)
SIDECAR_INTERVAL = 1.0  # seconds: how often flush() may rewrite the live-tail sidecar
FOOTER_MARK = PREFIX + b"end exit="  # how readers recognise a finished attempt


def attempt_path(log_dir: str | os.PathLike[str], task_code: int, attempt: int, suffix: str) -> Path:
    """``<log_dir>/<task_code>.<attempt><suffix>``: the naming shared by logs, scripts and work dirs."""
    return Path(log_dir) / f"{task_code}.{attempt}{suffix}"


def tail_path(log_path: Path) -> Path:
    """The live-tail sidecar of a log while its task's output is past the head (see module doc)."""
    return log_path.with_name(log_path.name + TAIL_SUFFIX)


def ensure_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0o700 (task logs are the operator's alone).

    Directories that already exist keep their mode: the log root may be shared with other tools.
    """
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent attempt created it first
            d.mkdir(mode=DIR_MODE)
    return path


# --------------------------------------------------------------------------------------------------
# The policy: settings as the activities need them, per worker task queue
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogPolicy:
    """A worker's task-log settings. ``max_bytes`` None (or 0 in settings) means no cap."""

    max_bytes: int | None = None
    tail_bytes: int = DEFAULT_TAIL_BYTES
    mask_rules: Mapping[str, Sequence[str]] = field(default_factory=dict)
    secret_param_pattern: str = DEFAULT_SECRET_PARAM_PATTERN

    @classmethod
    def from_settings(cls, settings: Any) -> LogPolicy:
        cap = int(getattr(settings, "log_max_bytes_per_task", 0) or 0)
        return cls(
            max_bytes=cap if cap > 0 else None,
            tail_bytes=max(0, int(getattr(settings, "log_tail_bytes", DEFAULT_TAIL_BYTES))),
            mask_rules={k: tuple(v) for k, v in (getattr(settings, "log_mask_rules", None) or {}).items()},
            secret_param_pattern=getattr(settings, "log_secret_param_pattern", "") or DEFAULT_SECRET_PARAM_PATTERN,
        )

    def masker(self, task_type: str, params: Mapping[str, str] | None = None) -> Masker:
        return Masker.for_task(task_type, params, configured=self.mask_rules,
                               secret_param_pattern=self.secret_param_pattern)


_policies: dict[str, LogPolicy] = {}
_policies_lock = threading.Lock()


def configure_task_logs(settings: Any, task_queue: str | None = None) -> LogPolicy:
    """Register ``settings``' task-log policy for the worker polling ``task_queue`` (default:
    ``settings.task_queue``). Call it where the worker is built; calling it again replaces it."""
    policy = LogPolicy.from_settings(settings)
    with _policies_lock:
        _policies[task_queue or settings.task_queue] = policy
    return policy


def current_policy() -> LogPolicy:
    """The policy of the worker running the current activity, else the process's own settings."""
    queue: str | None = None
    with contextlib.suppress(RuntimeError):  # not in an activity
        queue = activity.info().task_queue
    with _policies_lock:
        found = _policies.get(queue) if queue is not None else None
    if found is not None:
        return found
    from core.settings import get_settings

    return LogPolicy.from_settings(get_settings())


# --------------------------------------------------------------------------------------------------
# The log
# --------------------------------------------------------------------------------------------------


class TaskLog:
    """Append-only log of one task attempt. Use as a context manager after :meth:`open`.

    ``result`` is what the footer reports as the exit; the runner sets it (``"0"``, ``"1"``,
    ``"skipped"``, ``"killed"``). When it is left unset, the footer derives it from the exception that
    closed the log, so even an unexpected crash leaves a footer behind.

    Thread-safe: a SQL task writes from its statement thread while the event loop writes notes.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int | None = None,
        tail_bytes: int | None = None,
        masker: Masker | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes if max_bytes is None or max_bytes > 0 else None
        if tail_bytes is None:
            tail_bytes = min(DEFAULT_TAIL_BYTES, (self.max_bytes or 0) // 2)
        self.tail_bytes = min(max(tail_bytes, 0), self.max_bytes or 0)
        self.masker = masker if masker is not None else Masker()  # the built-in rules, always
        self.result: str | None = None
        self._file: BinaryIO | None = None
        self._lock = threading.RLock()
        self._started = 0.0
        self._pending: list[bytes] = []  # raw output not yet masked (up to BATCH_BYTES)
        self._pending_size = 0
        self._output_bytes = 0  # masked task output seen, in total
        self._head_bytes = 0  # of which written in the head
        self._truncated = False
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._line_open = False  # the file does not end with a newline
        self._sidecar_dirty = False
        self._sidecar_at = 0.0

    @classmethod
    def for_attempt(
        cls,
        log_dir: str | os.PathLike[str],
        task_code: int,
        attempt: int,
        *,
        max_bytes: int | None = None,
        tail_bytes: int | None = None,
        masker: Masker | None = None,
    ) -> TaskLog:
        return cls(attempt_path(log_dir, task_code, attempt, ".log"), max_bytes=max_bytes, tail_bytes=tail_bytes,
                   masker=masker)

    @classmethod
    def for_task(cls, request: TaskRequest, attempt: int, policy: LogPolicy | None = None) -> TaskLog:
        """The log of ``attempt`` of ``request``'s task, with the worker's cap and the task's masker
        (its type's rules and the values of its secret-named parameters)."""
        policy = policy or current_policy()
        return cls.for_attempt(request.log_dir, request.task_code, attempt, max_bytes=policy.max_bytes,
                               tail_bytes=policy.tail_bytes, masker=policy.masker(request.task_type, request.params))

    def open(self, *, task_name: str, task_type: str, attempt: int, host: str | None = None) -> TaskLog:
        """Create (or append to: a workflow reset may re-run an attempt number) and write the header."""
        ensure_dir(self.path.parent)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
        self._file = os.fdopen(fd, "ab")
        with contextlib.suppress(OSError):
            self._line_open = os.fstat(fd).st_size > 0 and not _ends_with_newline(self.path)
        self._started = time.monotonic()
        start = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.note(
            f"start task={task_name!r} type={task_type} attempt={attempt} "
            f"host={host or socket.gethostname()} time={start}"
        )
        if self.masker.skipped_params:
            self.note("not masked (value shorter than 4 characters or a boolean): parameter(s) "
                      + ", ".join(sorted(self.masker.skipped_params)))
        self.flush()
        return self

    @property
    def closed(self) -> bool:
        return self._file is None

    @property
    def truncated(self) -> bool:
        """Whether output went past the head (some of it is, or will be, dropped)."""
        return self._truncated

    @property
    def output_bytes(self) -> int:
        """Task output masked and stored so far, kept or dropped (lines still pending not counted)."""
        return self._output_bytes

    def add_secret(self, value: str | None) -> None:
        """Mask ``value`` in everything written from now on (a secret resolved inside the activity)."""
        with self._lock:
            self.masker.add_secret(value)

    def write(self, data: bytes, *, internal: bool = False) -> None:
        """The one place bytes reach the file, masked. Task output (``internal=False``) may come in any
        pieces and counts against the cap; an internal write is one or more whole lines of our own,
        always kept, written after any output that came before it."""
        with self._lock:
            if self._file is None:
                raise ValueError(f"task log {self.path} is not open")
            if internal:
                self._drain(partial=True)
                if self._line_open:
                    self._raw(b"\n")
                self._raw(self.masker.mask_bytes(data))
                return
            if not data:
                return
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size >= BATCH_BYTES:
                self._drain(partial=False)

    def note(self, text: str) -> None:
        """A line of our own (not task output), always written, even past the output cap."""
        self.write(PREFIX + text.encode("utf-8", "replace") + b"\n", internal=True)

    def flush(self) -> None:
        """Make what was written visible to readers tailing the file (the API's live log view).

        An unfinished output line stays in memory until its newline (it may hold half a secret).
        """
        with self._lock:
            if self._file is None:
                return
            self._drain(partial=False)
            self._file.flush()
            if self._sidecar_dirty and time.monotonic() - self._sidecar_at >= SIDECAR_INTERVAL:
                self._write_sidecar()

    def close(self, result: str | None = None) -> None:
        """Write what is pending, the dropped-bytes marker and the tail if any, the footer; close.
        Idempotent."""
        with self._lock:
            if self._file is None:
                return
            if result is not None:
                self.result = result
            try:
                self._drain(partial=True)
                if self._truncated:
                    self._write_tail()
                duration = time.monotonic() - self._started
                self.note(f"end exit={self.result or 'unknown'} duration={duration:.3f}s")
            finally:
                try:
                    self._file.close()
                finally:
                    self._file = None
                    with contextlib.suppress(OSError):
                        tail_path(self.path).unlink(missing_ok=True)

    # -- internals (called with the lock held) --------------------------------------------------------

    def _raw(self, data: bytes) -> None:
        if data:
            assert self._file is not None
            self._file.write(data)
            self._line_open = not data.endswith(b"\n")

    def _drain(self, *, partial: bool) -> None:
        """Mask the pending output (complete lines; with ``partial`` the unfinished one too) and store it."""
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        out = self.masker.feed(data) if data else b""
        if partial:
            out += self.masker.flush()
        self._store(out)

    def _store(self, out: bytes) -> None:
        """Masked output to the head while there is room, then to the tail ring."""
        if not out:
            return
        self._output_bytes += len(out)
        if self.max_bytes is None:
            self._raw(out)
            return
        if not self._truncated:
            room = self.max_bytes - self.tail_bytes - self._head_bytes
            if len(out) <= room:
                self._raw(out)
                self._head_bytes += len(out)
                return
            self._raw(out[:room])
            self._head_bytes += room
            out = out[room:]
            self._truncated = True
            if self._line_open:
                self._raw(b"\n")
            if self.tail_bytes:
                self._raw(PREFIX + (f"output passed {self._head_bytes} bytes: the rest is dropped except the last "
                                    f"{self.tail_bytes} bytes, written at the end (cap {self.max_bytes} bytes)\n"
                                    ).encode())
            else:
                self._raw(PREFIX + f"output truncated at {self.max_bytes} bytes\n".encode())
        if not self.tail_bytes:
            return
        self._tail.append(out)
        self._tail_size += len(out)
        while self._tail and self._tail_size - len(self._tail[0]) >= self.tail_bytes:
            self._tail_size -= len(self._tail.popleft())
        excess = self._tail_size - self.tail_bytes
        if excess > 0:
            self._tail[0] = self._tail[0][excess:]
            self._tail_size -= excess
        self._sidecar_dirty = True

    def _tail_bytes_kept(self) -> bytes:
        """The ring, starting at a line boundary when bytes before it were dropped."""
        tail = b"".join(self._tail)
        if self._output_bytes - self._head_bytes > len(tail):
            nl = tail.find(b"\n")
            if 0 <= nl < len(tail) - 1:
                tail = tail[nl + 1 :]
        return tail

    def _write_tail(self) -> None:
        tail = self._tail_bytes_kept()
        dropped = self._output_bytes - self._head_bytes - len(tail)
        if self.tail_bytes:
            self._raw(PREFIX + (f"{dropped} bytes dropped of {self._output_bytes} bytes of output; "
                                f"the last {len(tail)} bytes follow\n").encode())
            self._raw(tail)
        else:
            self._raw(PREFIX + f"{dropped} bytes dropped of {self._output_bytes} bytes of output\n".encode())
        self._tail.clear()
        self._tail_size = 0

    def _write_sidecar(self) -> None:
        self._sidecar_at = time.monotonic()
        self._sidecar_dirty = False
        target = tail_path(self.path)
        tmp = target.with_name(target.name + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
            with os.fdopen(fd, "wb") as f:
                f.write(self._tail_bytes_kept())
            os.replace(tmp, target)
        except OSError:  # disk full, say: the sidecar is a convenience, the log itself goes on
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def __enter__(self) -> TaskLog:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.result is None and exc_type is not None:
            if issubclass(exc_type, asyncio.CancelledError):
                self.result = "cancelled"
            else:
                self.result = f"error ({exc_type.__name__})"
        self.close()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


# --------------------------------------------------------------------------------------------------
# Reading (the API's log endpoint): ranges, tails, follow
# --------------------------------------------------------------------------------------------------

READ_LIMIT = 8 * 1024 * 1024  # the most one read returns


@dataclass
class LogSlice:
    data: bytes
    size: int  # the log file's size (offsets are into the file)
    next_offset: int  # where a reader continues: the file offset after the bytes returned from it
    live_tail: int  # bytes of the live-tail sidecar included (output past the head, not in the file yet)


def has_footer(data: bytes) -> bool:
    """Whether ``data`` ends with the footer line (the attempt's log is complete)."""
    if not data.endswith(b"\n"):
        return False
    return data[:-1].rsplit(b"\n", 1)[-1].startswith(FOOTER_MARK)


def read_log(path: Path, *, offset: int = 0, tail: int | None = None, lines: int | None = None,
             limit: int = READ_LIMIT) -> LogSlice:
    """Bytes of a task log: from ``offset`` (at most ``limit``), or its last ``tail`` bytes or last
    ``lines`` lines. A tail read of a log whose output is past its head also shows the live-tail
    sidecar, as if it followed the file (where it will be at close)."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if tail is None and lines is None:
            f.seek(min(offset, size))
            data = f.read(limit)
            return LogSlice(data, size, min(offset, size) + len(data), 0)
        live = b""
        with contextlib.suppress(OSError):
            live = tail_path(path).read_bytes()[-limit:]
        want = min(tail if tail is not None else limit, limit)
        f.seek(max(0, size - limit))
        text = f.read(limit) + live
    if lines is not None:
        cut = len(text)
        body_end = len(text) - 1 if text.endswith(b"\n") else len(text)
        for _ in range(lines):
            cut = text.rfind(b"\n", 0, body_end)
            if cut < 0:
                break
            body_end = cut
        text = text[cut + 1 :] if cut >= 0 else text
    return LogSlice(text[-want:] if want else b"", size, size, len(live))


async def follow_log(path: Path, start: int, still_running: Callable[[], Awaitable[bool]], *, poll: float = 0.25,
                     status_every: float = 2.0, chunk: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """Yield the log's bytes from ``start`` as they are written, complete lines at a time, until the
    footer is written, or ``await still_running()`` (asked every ``status_every`` seconds) says the
    task is over and nothing more came. An async generator of bytes, for a streaming response."""
    pos, pending = start, b""
    loop = asyncio.get_running_loop()
    last_check = loop.time()
    running = True
    while True:
        try:
            with path.open("rb") as f:
                f.seek(pos)
                data = f.read(chunk)
        except FileNotFoundError:  # swept meanwhile
            data = b""
            running = False
        if data:
            pos += len(data)
            buf = pending + data
            cut = buf.rfind(b"\n") + 1
            pending = buf[cut:]
            if cut:
                yield buf[:cut]
            if not pending and has_footer(buf):
                return
            if len(data) == chunk:
                continue  # more is there already
        elif not running:
            break
        if loop.time() - last_check >= status_every:
            running = bool(await still_running())
            last_check = loop.time()
            if not running:
                continue  # one last read, then stop
        await asyncio.sleep(poll)
    if pending:
        yield pending
