"""The render processes: a few long-lived children that run :mod:`.sandbox`, killed on a deadline.

Jinja cannot be interrupted from another thread, so a process is the only bound that holds for every
template: tight loops, C-level work and recursion alike. Each API or worker process keeps up to
``POOL_SIZE`` render processes (``python -c ...``, loading only ``sandbox.py`` and Jinja). The
parent waits for each answer with a wall-clock deadline and *kills* the child when it is late; a
fresh child takes the next job. The child runs with an address-space limit (``RLIMIT_AS``), so a
memory bomb ends in ``MemoryError`` (or its death), never in the worker's.

Why not a process-pool library (``multiprocessing``, ``concurrent.futures``, ``pebble``): forking
the worker is not an option (it has threads, Temporal's among them); spawn and forkserver children
re-import the parent's ``__main__`` (the whole CLI and its settings) and inherit its full
environment, where ``PORPOISE_SECRET_KEY`` and ``DATABASE_URL`` live (readable from
``/proc/self/environ`` even after ``os.environ`` is cleared). A plain subprocess we own starts with
a scrubbed environment in the temp directory and loads nothing of Porpoise.

When no child can be started at all (a locked-down host), rendering falls back to the current
thread with the sandbox's own bounds only, and says so in the log.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from . import sandbox
from .sandbox import GRACE, POOL_SIZE, RENDER_TIMEOUT, START_TIMEOUT

log = logging.getLogger("porpoise.alerts")

_CHILD_CODE = (
    "import importlib.util as u, sys; s = u.spec_from_file_location('porpoise_alert_render', {path!r}); "
    "m = u.module_from_spec(s); sys.modules[s.name] = m; s.loader.exec_module(m); m.serve()"
)


_CHILD_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "TMPDIR", "SYSTEMROOT")


def _child_env() -> dict[str, str]:
    """Only what Python needs: no PORPOISE_SECRET_KEY, DATABASE_URL or any other secret reaches a
    process that runs user templates, should a sandbox escape ever be found."""
    env = {k: v for k, v in os.environ.items() if k in _CHILD_ENV_KEEP}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class _ProcessUnavailable(RuntimeError):
    pass


class _Server:
    def __init__(self) -> None:
        code = _CHILD_CODE.format(path=os.path.abspath(sandbox.__file__))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, close_fds=True, env=_child_env(), cwd=tempfile.gettempdir(),
            )
        except OSError as e:
            raise _ProcessUnavailable(f"cannot start a render process: {e}") from e
        self._buf = b""
        ready = self.recv(START_TIMEOUT)
        if not ready or not ready.get("ready"):
            self.kill()
            raise _ProcessUnavailable("the render process did not start")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, request: Mapping[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()

    def recv(self, timeout: float) -> dict[str, Any] | None:
        """The next answer, or None when the child is late or gone."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None  # EOF: the child died
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            answer: dict[str, Any] = json.loads(line)
        except ValueError:
            return None
        return answer

    def kill(self) -> None:
        with suppress(OSError):
            self.proc.kill()
        with suppress(Exception):
            self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with suppress(Exception):
                stream.close()  # type: ignore[union-attr]

    def close(self) -> None:
        with suppress(Exception):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(2)
        except Exception:  # noqa: BLE001
            self.kill()


class RenderPool:
    """A few render processes, started on demand, killed and replaced when a template overruns."""

    def __init__(self, size: int = POOL_SIZE) -> None:
        self.size = size
        self._idle: list[_Server] = []
        self._count = 0
        self._cond = threading.Condition()
        self.unavailable: str | None = None  # why rendering falls back to the current thread
        self.kills = 0

    def _acquire(self) -> _Server:
        with self._cond:
            while True:
                while self._idle:
                    server = self._idle.pop()
                    if server.alive:
                        return server
                    self._count -= 1
                if self._count < self.size:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return _Server()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, server: _Server, healthy: bool) -> None:
        if not healthy:
            server.kill()
        with self._cond:
            if healthy and server.alive:
                self._idle.append(server)
            else:
                self._count -= 1
            self._cond.notify()

    def run(self, request: Mapping[str, Any], *, wait: float | None = None) -> list[dict[str, Any]]:
        """Answer every job of ``request``; ``wait``: how long to wait for each answer before the child
        is killed (default: the request's timeout plus a grace second)."""
        jobs = list(request.get("jobs") or [])
        timeout = float(request.get("timeout") or RENDER_TIMEOUT)
        patience = wait if wait is not None else timeout + GRACE
        if self.unavailable is not None:
            return list(sandbox.handle(request))
        answers: list[dict[str, Any]] = []
        while len(answers) < len(jobs):
            pending = jobs[len(answers):]
            try:
                server = self._acquire()
            except _ProcessUnavailable as e:
                self.unavailable = str(e)
                log.warning("alert templates render in-process (%s): the time bound is a tracer only", e)
                answers.extend(sandbox.handle({**request, "jobs": pending}))
                break
            healthy = True
            try:
                server.send({**request, "jobs": pending})
                for job in pending:
                    answer = server.recv(patience)
                    if answer is None or answer.get("key") != job["key"]:
                        healthy = False
                        died = not server.alive
                        self.kills += 1
                        answers.append({"key": job["key"], "ok": False, "timeout": not died, "line": None,
                                        "error": "the render process died (memory limit?)" if died
                                        else "the template ran too long (a loop that does not end?)"})
                        break
                    answers.append(answer)
            except OSError:
                healthy = False
                answers.append({"key": pending[0]["key"], "ok": False, "line": None,
                                "error": "the render process died (memory limit?)"})
            finally:
                self._release(server, healthy)
        return answers

    def close(self) -> None:
        with self._cond:
            servers, self._idle = self._idle, []
            self._count -= len(servers)
        for server in servers:
            server.close()


_POOL = RenderPool()
atexit.register(_POOL.close)


def pool() -> RenderPool:
    return _POOL
