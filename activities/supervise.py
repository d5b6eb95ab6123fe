"""The tiny supervisor that lets a SHELL/PYTHON task process outlive its worker.

Run by :mod:`activities.process` as ``python supervise.py RECORD OUTPUT -- ARGV...`` in a session of
its own, so neither a ``kill -9`` of the worker nor a signal to the worker's process group reaches
it. It starts ``ARGV`` (again in a session and process group of its own, the group the worker kills
on stop or timeout) with stdout and stderr appended to ``OUTPUT`` (a file, never a pipe: a pipe whose
reader died would kill the task with SIGPIPE), and appends to ``RECORD``, one JSON object a line,
each line fsynced with its directory:

* ``{"event": "started", "pid", "pgid", "create_time", "supervisor_pid", "supervisor_create_time",
  "host", "time"}`` once the task runs (``create_time`` from psutil tells a live pid from a reused
  one), or ``{"event": "start_failed", "error", "time"}`` when it cannot be started;
* ``{"event": "exited", "exit_code", "time"}`` when it ends (negative: killed by that signal).

Whoever comes next on this host (the worker, or the attempt that follows a lost worker) reads the
record and the output instead of running the task again. Standard library only (run with
``python -S -I``): it must start fast, stay small and never import Porpoise.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any


def append_record(path: str, event: dict[str, Any]) -> None:
    """Append one JSON line and make it durable (file and directory fsync) before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (json.dumps(event) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _create_time(pid: int) -> float | None:
    """psutil's ``Process.create_time()`` on Linux (boot time + start ticks), without importing it:
    the supervisor runs with ``python -S`` to start fast and small."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith(b"btime"))
        return int(fields[19]) / os.sysconf("SC_CLK_TCK") + btime
    except (OSError, StopIteration, ValueError, IndexError):
        return None  # not Linux, or already gone: the pid alone is recorded


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        print("usage: supervise.py RECORD OUTPUT -- ARGV...", file=sys.stderr)
        return 2
    record, output, command = argv[1], argv[2], argv[4:]
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)  # only the task decides how the task ends
    out = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                 start_new_session=True, close_fds=True,
                                 preexec_fn=_default_signals)
    except OSError as e:
        append_record(record, {"event": "start_failed", "error": f"{type(e).__name__}: {e.strerror or e}",
                               "time": time.time()})
        return 0
    finally:
        os.close(out)
    me = os.getpid()
    append_record(record, {"event": "started", "pid": child.pid, "pgid": child.pid,
                           "create_time": _create_time(child.pid), "supervisor_pid": me,
                           "supervisor_create_time": _create_time(me), "host": socket.gethostname(),
                           "time": time.time()})
    while True:
        try:
            _, status = os.waitpid(child.pid, 0)
            break
        except ChildProcessError:  # reaped elsewhere: cannot happen here, but never loop forever
            status = 255 << 8
            break
        except InterruptedError:
            continue
    append_record(record, {"event": "exited", "exit_code": os.waitstatus_to_exitcode(status), "time": time.time()})
    return 0


def _default_signals() -> None:
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)  # the task gets the usual dispositions, not ours


if __name__ == "__main__":
    sys.exit(main(sys.argv))
