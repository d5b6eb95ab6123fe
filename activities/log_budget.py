"""The task-log root's disk budget and retention, swept by every worker (DS #13045: logs fill disks).

The per-attempt cap (:mod:`activities.logs`) bounds one task; this bounds them all. The log root
holds one directory per workflow instance, ``<log root>/<instance id>/`` (the attempts' logs, scripts,
work directories, live-tail sidecars). :func:`sweep` does two passes:

1. **Retention.** An instance directory where nothing was modified for ``retention_days`` is deleted,
   finished or not (an attempt log that has not grown for that long belongs to a crashed worker).
2. **Budget.** While the root holds more than ``budget_bytes``, the *finished* instance directories
   are deleted, the least recently modified first. Finished means: every attempt log in it ends with
   its footer (``[porpoise] end exit=…``), no live-tail sidecar is present, and nothing in it changed
   for :data:`QUIET_SECONDS`. A running task's log is never deleted to meet the budget; if the
   running ones alone exceed it, the sweep says so in the worker log and leaves them be.

Sizes are apparent sizes (``st_size``). Symlinks are neither followed nor counted. Several workers
on one host may share a root: a sweep takes a non-blocking ``flock`` on ``<root>/.porpoise-sweep.lock``
and is skipped when another worker's sweep holds it.

:func:`run_log_sweeper` runs the sweep at start and then every ``log_sweep_interval_seconds`` until
the worker stops; the blocking walk runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from activities.logs import FOOTER_MARK, TAIL_SUFFIX

log = logging.getLogger("porpoise.logs")

QUIET_SECONDS = 60.0  # an instance directory modified more recently than this may still be written
LOCK_NAME = ".porpoise-sweep.lock"
_FOOTER_PROBE = 512  # bytes read from the end of a log to find its footer


@dataclass
class InstanceDir:
    path: Path
    size: int
    newest: float  # the latest mtime in it (the directory's own included)
    finished: bool


@dataclass
class SweepReport:
    expired: list[Path] = field(default_factory=list)  # deleted for age
    evicted: list[Path] = field(default_factory=list)  # deleted for the budget
    freed_bytes: int = 0
    total_bytes: int = 0  # what the root holds after the sweep
    over_budget: bool = False  # still over: only unfinished instances are left to delete
    skipped: bool = False  # another worker's sweep held the lock


def _walk(path: Path) -> Iterator[os.stat_result]:
    """lstat of ``path`` and everything under it, never following symlinks; vanishing files skipped."""
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            st = current.lstat()
        except OSError:
            continue
        yield st
        if stat.S_ISDIR(st.st_mode):
            with contextlib.suppress(OSError), os.scandir(current) as entries:
                stack.extend(Path(e.path) for e in entries)


def _has_footer(log_file: Path) -> bool:
    try:
        with log_file.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _FOOTER_PROBE))
            end = f.read()
    except OSError:
        return True  # gone meanwhile: nothing to protect
    last = end.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return last.startswith(FOOTER_MARK)


def inspect(path: Path, now: float) -> InstanceDir:
    size, newest = 0, 0.0
    for st in _walk(path):
        newest = max(newest, st.st_mtime)
        if not stat.S_ISDIR(st.st_mode):
            size += st.st_size
    finished = now - newest >= QUIET_SECONDS
    if finished:
        with contextlib.suppress(OSError):
            for entry in path.iterdir():
                if entry.name.endswith(TAIL_SUFFIX) or (entry.suffix == ".log" and not _has_footer(entry)):
                    finished = False
                    break
    return InstanceDir(path, size, newest, finished)


def _remove(path: Path) -> bool:
    shutil.rmtree(path, ignore_errors=True)
    return not path.exists()


def sweep(root: Path, *, retention_days: float, budget_bytes: int, now: float | None = None) -> SweepReport:
    """One sweep of ``root`` (see the module doc). ``retention_days`` / ``budget_bytes`` 0: that pass is off."""
    report = SweepReport()
    if not root.is_dir():
        return report
    now = time.time() if now is None else now
    try:
        lock_fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as e:
        log.warning("log sweep of %s: cannot open its lock file: %s", root, e)
        return report
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            report.skipped = True
            return report
        dirs: list[InstanceDir] = []
        with os.scandir(root) as entries:
            paths = [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
        for path in paths:
            d = inspect(path, now)
            expired = retention_days > 0 and now - d.newest > retention_days * 86400
            if expired and _remove(path):
                report.expired.append(path)
                report.freed_bytes += d.size
                continue
            dirs.append(d)
        total = sum(d.size for d in dirs)
        if budget_bytes > 0 and total > budget_bytes:
            for d in sorted((d for d in dirs if d.finished), key=lambda d: d.newest):
                if total <= budget_bytes:
                    break
                if _remove(d.path):
                    report.evicted.append(d.path)
                    report.freed_bytes += d.size
                    total -= d.size
            report.over_budget = total > budget_bytes
        report.total_bytes = total
        return report
    finally:
        os.close(lock_fd)  # releases the flock


def sweep_settings(settings: Any) -> SweepReport:
    report = sweep(Path(settings.resolved_log_dir), retention_days=settings.log_retention_days,
                   budget_bytes=settings.log_disk_budget_bytes)
    if report.expired or report.evicted:
        log.info("log sweep: deleted %d expired and %d instance log directories over budget, %d bytes freed; "
                 "%d bytes left", len(report.expired), len(report.evicted), report.freed_bytes, report.total_bytes)
    if report.over_budget:
        log.warning("task logs hold %d bytes, over the budget of %d, and only running instances are left",
                    report.total_bytes, settings.log_disk_budget_bytes)
    return report


async def run_log_sweeper(settings: Any, stop: asyncio.Event) -> None:
    """Sweep the worker's log root now and every ``log_sweep_interval_seconds`` until ``stop`` is set.

    Start it next to the event relay in :func:`api.worker.run_worker`; it never raises (a failed sweep
    is logged and retried at the next interval)."""
    if settings.log_retention_days <= 0 and settings.log_disk_budget_bytes <= 0:
        return
    while not stop.is_set():
        try:
            await asyncio.to_thread(sweep_settings, settings)
        except Exception:
            log.exception("log sweep of %s failed", settings.resolved_log_dir)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.log_sweep_interval_seconds)
