"""The tiny supervisor that lets a SHELL/PYTHON task process outlive its worker.

Forked per task from the worker's zygote (``python supervise.py --serve``, :func:`serve`,
activities/spawner.py), or run on its own as ``python supervise.py RECORD OUTPUT -- ARGV...``; either
way in a session of its own, so neither a ``kill -9`` of the worker nor a signal to the worker's process group reaches
it. It starts ``ARGV`` (again in a session and process group of its own, the group the worker kills
on stop or timeout) with stdout and stderr appended to ``OUTPUT`` (a file, never a pipe: a pipe whose
reader died would kill the task with SIGPIPE), and appends to ``RECORD``, one JSON object a line,
each line fsynced (the directory too, with the line that creates the file):

* ``{"event": "started", "pid", "pgid", "create_time", "supervisor_pid", "supervisor_create_time",
  "host", "time"}`` once the task runs (``create_time`` from psutil tells a live pid from a reused
  one), or ``{"event": "start_failed", "error", "time"}`` when it cannot be started;
* ``{"event": "exited", "exit_code", "time"}`` when it ends (negative: killed by that signal).

Whoever comes next on this host (the worker, or the attempt that follows a lost worker) reads the
record and the output instead of running the task again. Standard library only (run with
``python -S -I``): it must start fast, stay small and never import Porpoise.

Its start-up was part of every task's cost before the zygote (docs/performance.md): it imports only
builtin modules (no json, subprocess, socket, signal or typing, which together took ~20 ms of CPU per
task), writes its few flat records with :func:`to_json` and starts the task with ``os.posix_spawnp``
(no ``preexec_fn``, which forces a full fork). The zygote imports contextlib, json and select once.
"""

from __future__ import annotations

import _signal
import os
import sys
import time

# The dispositions the supervisor ignores and the task gets back as default (SIGHUP, SIGINT, SIGPIPE).
_SIGNALS = (_signal.SIGHUP, _signal.SIGINT, _signal.SIGPIPE)


def to_json(event: dict[str, object]) -> str:
    """``json.dumps`` without importing json (and re and enum with it) for the supervisor's flat
    records of str, int, float, bool and None; other values (the worker's records) go to json."""
    return "{" + ", ".join(f"{_json_value(k)}: {_json_value(v)}" for k, v in event.items()) + "}"


def _json_value(v: object) -> str:
    if v is None:
        return "null"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if v == v and v not in (float("inf"), float("-inf")) else "null"
    if not isinstance(v, str):
        import json  # the worker's own records (e.g. set_values): the worker has json loaded anyway

        return json.dumps(v)
    text = v
    out = ['"']
    for ch in text:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch < " " or "\ud800" <= ch <= "\udfff":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def append_record(path: str, event: dict[str, object]) -> None:
    """Append one JSON line and make it durable before returning: the file is fsynced, and so is its
    directory when this append created the file. An append to a file that exists changes no
    directory entry, so the record's later lines (exited, settled) cost one fsync, not two."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
    try:
        fd, created = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600), True
    except FileExistsError:
        fd, created = os.open(path, flags), False
    try:
        os.write(fd, (to_json(event) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        dfd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


_boot: tuple[int, int] | None = None  # (btime, clock ticks per second): read once, then inherited by forks


def _boot_clock() -> tuple[int, int]:
    """The boot time and clock tick rate :func:`_create_time` needs. They never change while the host
    runs, so the zygote reads ``/proc/stat`` once before its first fork instead of every supervisor
    twice per task (~17 µs of CPU per read measured here: a small saving, docs/performance.md)."""
    global _boot
    if _boot is None:
        with open("/proc/stat", "rb") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith(b"btime"))
        _boot = (btime, os.sysconf("SC_CLK_TCK"))
    return _boot


def _create_time(pid: int) -> float | None:
    """psutil's ``Process.create_time()`` on Linux (boot time + start ticks), without importing it:
    the supervisor runs with ``python -S`` to start fast and small."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        btime, ticks = _boot_clock()
        return int(fields[19]) / ticks + btime
    except (OSError, StopIteration, ValueError, IndexError):
        return None  # not Linux, or already gone: the pid alone is recorded


def main(argv: list[str]) -> int:
    if argv[1:] == ["--serve"]:
        return serve()
    if len(argv) < 5 or argv[3] != "--":
        print("usage: supervise.py RECORD OUTPUT -- ARGV... | supervise.py --serve", file=sys.stderr)
        return 2
    return supervise(argv[1], argv[2], argv[4:], os.environ)


def supervise(record: str, output: str, command: list[str], env: object) -> int:
    """Start ``command`` with ``env``, record it, wait for it, record its exit code."""
    for sig in _SIGNALS:
        _signal.signal(sig, _signal.SIG_IGN)  # only the task decides how the task ends
    out = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        # A session and process group of its own, stdin from /dev/null, output appended to OUTPUT, the
        # usual signal dispositions (not ours). The worker started us with no other descriptors open.
        # SIGXFSZ: Python ignores it at start, subprocess's restore_signals gave it back to children too.
        pid = os.posix_spawnp(command[0], command, env, setsid=True,  # type: ignore[arg-type]
                              setsigdef=(*_SIGNALS, _signal.SIGXFSZ), file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out, 1),
            (os.POSIX_SPAWN_DUP2, out, 2),
        ])
    except OSError as e:
        append_record(record, {"event": "start_failed", "error": f"{type(e).__name__}: {e.strerror or e}",
                               "time": time.time()})
        return 0
    finally:
        os.close(out)
    me = os.getpid()
    append_record(record, {"event": "started", "pid": pid, "pgid": pid,
                           "create_time": _create_time(pid), "supervisor_pid": me,
                           "supervisor_create_time": _create_time(me), "host": os.uname().nodename,
                           "time": time.time()})
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:  # reaped elsewhere: cannot happen here, but never loop forever
            status = 255 << 8
            break
        except InterruptedError:
            continue
    append_record(record, {"event": "exited", "exit_code": os.waitstatus_to_exitcode(status), "time": time.time()})
    return 0


def serve() -> int:
    """The zygote (``--serve``): fork one supervisor per request instead of starting a new interpreter
    per task, which cost ~10 ms of CPU each (docs/performance.md). The worker (activities/spawner.py)
    writes one JSON request a line on stdin, ``{"id", "record", "output", "argv", "cwd", "env"}``; this
    answers ``spawned ID PID`` once the supervisor is forked and ``exited PID CODE`` when it ends, so
    the worker learns of an exit at once, as it did from its own child. The zygote
    runs in a session of its own and ends when its worker does (end of stdin); the supervisors it
    forked are in sessions of their own too and go on, reaped by init, exactly like those the worker
    used to start itself."""
    import contextlib
    import json
    import select

    with contextlib.suppress(OSError, StopIteration, ValueError, IndexError):  # not Linux: no /proc either
        _boot_clock()  # before the first fork, so no supervisor reads /proc/stat again
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    _signal.set_wakeup_fd(wake_w)
    _signal.signal(_signal.SIGCHLD, lambda *_: None)  # a handler (not SIG_IGN), so exits can be reaped
    for sig in _SIGNALS:  # SIGPIPE too: a write to a worker that is gone fails (EPIPE) and ends the loop
        _signal.signal(sig, _signal.SIG_IGN)
    pending = b""
    try:
        while True:
            ready, _, _ = select.select([0, wake_r], [], [])
            if wake_r in ready:
                while True:
                    try:
                        if not os.read(wake_r, 512):
                            break
                    except BlockingIOError:
                        break
            _reap()
            if 0 in ready:
                data = os.read(0, 1 << 16)
                if not data:
                    return 0  # the worker is gone: its supervisors are not ours to keep
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    request = json.loads(line)
                    pid = os.fork()
                    if pid == 0:
                        os._exit(_forked(request, (wake_r, wake_w)))
                    _answer(f"spawned {request['id']} {pid}")
    except OSError:  # EPIPE: the worker is gone
        return 0


def _answer(line: str) -> None:
    data = (line + "\n").encode()
    while data:
        data = data[os.write(1, data):]


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _answer(f"exited {pid} {os.waitstatus_to_exitcode(status)}")


def _forked(request: dict[str, object], fds: tuple[int, int]) -> int:
    """In the forked supervisor: leave the zygote's pipes and signal set-up, then supervise."""
    try:
        _signal.set_wakeup_fd(-1)
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        for fd in fds:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)  # never hold the worker's pipes: the zygote's end of them is its own
        os.dup2(null, 1)
        os.close(null)
        os.setsid()
        record, output = str(request["record"]), str(request["output"])
        env = request.get("env")
        if isinstance(env, dict):  # posix_spawnp searches the PATH of this process's own environment
            os.environ.clear()
            os.environ.update(env)
        try:
            os.chdir(str(request["cwd"]))
        except OSError as e:
            append_record(record, {"event": "start_failed", "time": time.time(),
                                   "error": f"{type(e).__name__}: {e.strerror or e} (working directory)"})
            return 0
        argv = request["argv"]
        assert isinstance(argv, list)
        return supervise(record, output, [str(a) for a in argv], os.environ)
    except BaseException:  # noqa: BLE001 - never return into the zygote's loop
        return 70


if __name__ == "__main__":
    sys.exit(main(sys.argv))
