"""The chaos suite's stack: real processes only (docs/reliability.md).

A Temporal dev server and one ``porpoise worker`` as subprocesses (:mod:`tests.process_stack`), which
a test can ``kill -9`` or SIGTERM and start again on the same files and ports; the API runs in the
test process. Teardown kills everything the test started, task processes included, also when the
test fails.

Run with ``pytest tests/chaos`` (marker ``chaos``); each test has a hard time limit.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowFailureError

from core.contracts import InstanceStatus
from tests.process_stack import ProcessStack

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


class ChaosStack(ProcessStack):
    """Dev server + one worker as real processes on one data directory, and the means to hurt them."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, queue_prefix="chaos", temporal_retry_seconds=300)
        self.worker: subprocess.Popen[bytes] | None = None

    def stop_server(self, sig: int = signal.SIGTERM) -> None:
        assert self.server is not None
        self.server.send_signal(sig)
        self.server.wait(30)

    def start_worker(self) -> None:
        self.worker = self._spawn_worker("worker")

    def kill_worker(self) -> None:
        """``kill -9`` of the worker process alone, as a crash or the OOM killer would."""
        assert self.worker is not None
        self.worker.kill()
        self.worker.wait(30)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ChaosStack]:
    yield from ChaosStack.for_test(tmp_path)


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


async def start_with_burst(stack: ChaosStack, name: str, marks: Path, task_seconds: float,
                           runs: int) -> tuple[list[str], float]:
    """The scenarios' common start: dev server and worker up, then ``runs`` runs of the 5-task DAG
    (see :func:`five_task_export`). Returns the instance ids and when it began (monotonic)."""
    stack.start_server()
    stack.start_worker()
    began = time.monotonic()
    async with stack.api() as api:
        ids = await start_burst(api, five_task_export(name, marks, task_seconds), runs)
    return ids, began


async def a_fifth_done(marks: Path, total: int) -> None:
    """Wait until a fifth of the ``total`` tasks ran to the end: a full set of tasks is running then."""
    await wait_until(lambda: sum(finished_lines(marks).values()) >= total // 5, 120, "a fifth of the tasks")


def successes(states: dict[str, InstanceStatus | None]) -> int:
    return sum(1 for s in states.values() if s is not None and s.state.name == "SUCCESS")


def assert_all_succeeded(states: dict[str, InstanceStatus | None]) -> None:
    bad = {i: (s.state.name if s else None) for i, s in states.items() if s is None or s.state.name != "SUCCESS"}
    assert not bad, f"{len(bad)} runs did not succeed: {list(bad.items())[:5]}"


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
