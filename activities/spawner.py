"""Task supervisors forked from one long-lived zygote per worker process (activities/supervise.py
``--serve``) instead of a new interpreter per task.

Starting ``python -S -I supervise.py`` cost ~10 ms of CPU for every SHELL/PYTHON task, more than the
task itself for short ones (issue 15, docs/performance.md). The zygote is that same interpreter,
started once; per task it forks (~0.5 ms). What a supervisor does, and what it records, is unchanged:
it runs in a session of its own and outlives the worker (docs/reliability.md).

The zygote tells this process when a supervisor ends, so a task's end is seen at once, as it was for
the worker's own child. If the zygote dies, the supervisors it forked go on; their handles fall back
to polling whether the process still runs, and the next spawn starts a new zygote.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import psutil

SUPERVISOR = str(Path(__file__).with_name("supervise.py"))
T = TypeVar("T")
POLL_SECONDS = 0.25  # how often a handle whose zygote died checks its supervisor


class SupervisorHandle:
    """A forked supervisor: the part of :class:`asyncio.subprocess.Process` that run_process uses."""

    def __init__(self, pid: int, exit_code: concurrent.futures.Future[int | None]) -> None:
        self.pid = pid
        self._exit = exit_code
        self._waiter: asyncio.Future[int | None] | None = None

    @property
    def returncode(self) -> int | None:
        """Its exit code once it has ended; -1 when it ended unseen (its zygote died first)."""
        if not self._exit.done():
            return None
        code = self._exit.result()
        if code is not None:
            return code
        return None if process_alive(self.pid, None) else -1

    def wait(self) -> Awaitable[object]:
        """Done when the supervisor has ended; after its zygote died, a short sleep to poll again."""
        if self._exit.done() and self._exit.result() is None:
            return asyncio.sleep(POLL_SECONDS)
        loop = asyncio.get_running_loop()
        if self._waiter is None or self._waiter.get_loop() is not loop:
            self._waiter = asyncio.wrap_future(self._exit, loop=loop)  # one per handle, not one per poll
        return asyncio.shield(self._waiter)  # a waiter that gives up does not cancel the exit itself


def process_alive(pid: int | None, create_time: float | None) -> bool:
    """Whether ``pid`` still runs and is the same process (its start time defeats pid reuse)."""
    if not pid:
        return False
    try:
        p = psutil.Process(pid)
        if create_time is not None and abs(p.create_time() - float(create_time)) > 0.05:
            return False
        return bool(p.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


class _Channel:
    """One zygote process and the requests it has not answered yet."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-S", "-I", SUPERVISOR, "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
        self.environ = dict(os.environ)  # what the zygote inherited, and a task gets unless told otherwise
        self.spawning: dict[int, concurrent.futures.Future[SupervisorHandle]] = {}
        self.ended = False


class Zygote:
    """The zygote of this process, started on first use and again after it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._channel: _Channel | None = None
        self._next_id = 0

    async def spawn(self, record: Path, output: Path, argv: Sequence[str], *, cwd: Path,
                    env: Mapping[str, str] | None) -> SupervisorHandle:
        """Fork a supervisor for ``argv`` with ``env`` (None: this process's environment, as a child
        of this process would have). Raises OSError when no zygote can be started or reached."""
        for tries_left in (1, 0):
            answer: concurrent.futures.Future[SupervisorHandle] = concurrent.futures.Future()
            with self._lock:
                channel = self._channel if self._channel is not None and not self._channel.ended else self._start()
                if env is None and os.environ != channel.environ:  # changed since the zygote started
                    env = dict(os.environ)
                body = json.dumps({"record": str(record), "output": str(output), "argv": list(argv),
                                   "cwd": str(cwd), "env": dict(env) if env is not None else None})
                self._next_id += 1
                channel.spawning[self._next_id] = answer
                try:
                    assert channel.proc.stdin is not None
                    channel.proc.stdin.write(f'{{"id": {self._next_id}, {body[1:]}\n'.encode())
                    channel.proc.stdin.flush()
                except OSError:  # it died since: the next try starts another
                    channel.spawning.pop(self._next_id, None)
                    channel.ended = True
                    if tries_left:
                        continue
                    raise
            try:
                return await asyncio.wrap_future(answer)
            except ConnectionError:
                if not tries_left:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """End the zygote (as the end of this process would); its supervisors go on."""
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None and channel.proc.stdin is not None:
            channel.proc.stdin.close()
            channel.proc.wait()

    def _start(self) -> _Channel:
        channel = _Channel()
        threading.Thread(target=self._read, args=(channel,), name="porpoise-zygote", daemon=True).start()
        self._channel = channel
        return channel

    def _read(self, channel: _Channel) -> None:
        """The zygote's answers, until it ends: then every open question gets an answer too."""
        exits: dict[int, concurrent.futures.Future[int | None]] = {}
        assert channel.proc.stdout is not None
        for raw in channel.proc.stdout:
            word, first, second = raw.decode().split()
            if word == "spawned":
                exit_code: concurrent.futures.Future[int | None] = concurrent.futures.Future()
                exits[int(second)] = exit_code
                with self._lock:
                    answer = channel.spawning.pop(int(first), None)
                if answer is not None:
                    _settle(answer, SupervisorHandle(int(second), exit_code))
            elif word == "exited" and (done := exits.pop(int(first), None)) is not None:
                _settle(done, int(second))
        with self._lock:
            channel.ended = True
            lost, channel.spawning = channel.spawning, {}
        for answer in lost.values():
            with contextlib.suppress(concurrent.futures.InvalidStateError):
                answer.set_exception(ConnectionError("the task supervisors' zygote ended"))
        for exit_code in exits.values():
            _settle(exit_code, None)  # unknown: the handles poll from now on
        channel.proc.wait()


def _settle(future: concurrent.futures.Future[T], value: T) -> None:
    """Answer ``future`` unless its asker gave up (cancelled it): the reader must never stop."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        future.set_result(value)


ZYGOTE = Zygote()
