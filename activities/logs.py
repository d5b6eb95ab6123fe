"""The per-task-instance log file, one per attempt, as DolphinScheduler keeps it.

Every attempt of a task instance gets its own file, ``<log_dir>/<task_code>.<attempt>.log``, so a retry
never overwrites the evidence of the attempt that failed, and the API can show "the log of attempt N"
without any index. The file opens with a header line (who/what/where/when) and ends with a footer (how
it ended, how long it took); both are marked ``[porpoise]`` so they can't be mistaken for task output.

All bytes go through :meth:`TaskLog.write`. That single choke point is where an output cap
(``max_bytes``) is enforced today and where secret masking (reference §7) will hook in later, so no
caller can bypass either by writing to the file directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

DIR_MODE = 0o750
FILE_MODE = 0o640
PREFIX = b"[porpoise] "


def attempt_path(log_dir: str | os.PathLike[str], task_code: int, attempt: int, suffix: str) -> Path:
    """``<log_dir>/<task_code>.<attempt><suffix>``: the naming shared by logs, scripts and work dirs."""
    return Path(log_dir) / f"{task_code}.{attempt}{suffix}"


def ensure_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0o750 (task logs are not world-readable).

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


class TaskLog:
    """Append-only log of one task attempt. Use as a context manager after :meth:`open`.

    ``result`` is what the footer reports as the exit; the runner sets it (``"0"``, ``"1"``,
    ``"skipped"``, ``"killed"``). When it is left unset, the footer derives it from the exception that
    closed the log, so even an unexpected crash leaves a footer behind.
    """

    def __init__(self, path: Path, *, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.result: str | None = None
        self._file: BinaryIO | None = None
        self._output_bytes = 0
        self._truncated = False
        self._started = 0.0

    @classmethod
    def for_attempt(
        cls, log_dir: str | os.PathLike[str], task_code: int, attempt: int, *, max_bytes: int | None = None
    ) -> TaskLog:
        return cls(attempt_path(log_dir, task_code, attempt, ".log"), max_bytes=max_bytes)

    def open(self, *, task_name: str, task_type: str, attempt: int, host: str | None = None) -> TaskLog:
        """Create (or append to: a workflow reset may re-run an attempt number) and write the header."""
        ensure_dir(self.path.parent)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
        self._file = os.fdopen(fd, "ab")
        self._started = time.monotonic()
        start = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.note(
            f"start task={task_name!r} type={task_type} attempt={attempt} "
            f"host={host or socket.gethostname()} time={start}"
        )
        self.flush()
        return self

    @property
    def closed(self) -> bool:
        return self._file is None

    def write(self, data: bytes, *, internal: bool = False) -> None:
        """The one place bytes reach the file. Task output (``internal=False``) counts against the cap.

        Masking of secrets belongs here too, when it comes: callers hand over whole lines, so a
        line-oriented pattern sees complete matches.
        """
        if self._file is None:
            raise ValueError(f"task log {self.path} is not open")
        if not internal and self.max_bytes is not None:
            room = self.max_bytes - self._output_bytes
            if room <= 0:
                if not self._truncated:
                    self._truncated = True
                    self._file.write(PREFIX + f"output truncated at {self.max_bytes} bytes\n".encode())
                return
            data = data[:room]
            self._output_bytes += len(data)
        self._file.write(data)

    def note(self, text: str) -> None:
        """A line of our own (not task output), always written, even past the output cap."""
        self.write(PREFIX + text.encode("utf-8", "replace") + b"\n", internal=True)

    def flush(self) -> None:
        """Make what was written visible to readers tailing the file (the API's live log view)."""
        if self._file is not None:
            self._file.flush()

    def close(self, result: str | None = None) -> None:
        """Write the footer and close. Idempotent."""
        if self._file is None:
            return
        if result is not None:
            self.result = result
        duration = time.monotonic() - self._started
        self.note(f"end exit={self.result or 'unknown'} duration={duration:.3f}s")
        try:
            self._file.close()
        finally:
            self._file = None

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
