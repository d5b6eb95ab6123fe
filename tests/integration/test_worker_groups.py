"""Worker groups as task queues (issue 14 item 3), with real processes: a Temporal dev server and
``porpoise worker`` processes on different groups, each with a marker in its environment that the
task scripts write down, so where every task ran is read from what the tasks themselves recorded.

* tasks of group ``etl`` run on the ``--no-default --group etl`` worker only, default tasks on the
  default worker only; the start command's ``workerGroup`` moves the default tasks (DS's rule);
* a task of a group no worker serves waits (SUBMITTED_SUCCESS, "waiting for a worker of worker group
  'late' ... no worker polls it"), does not fail, and runs once a worker of that group starts;
* a group task whose worker is killed comes back to that group's host queue and re-attaches.

Every test has a hard time limit; teardown kills every process it started, task processes included.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.temporal import connect
from tests.process_stack import ProcessStack

LIMIT = 150.0


class GroupStack(ProcessStack):
    """A dev server and named worker processes on one data directory (real processes)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, queue_prefix="wg", temporal_retry_seconds=120)
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def start_worker(self, mark: str, *args: str) -> None:
        """``porpoise worker ARGS`` whose tasks see ``WG_MARK=mark`` in their environment."""
        self.workers[mark] = self._spawn_worker(f"worker-{mark}", *args, env=dict(self.env, WG_MARK=mark))

    def kill_worker(self, mark: str) -> None:
        proc = self.workers[mark]
        proc.kill()  # the worker process alone, as a crash would; its task processes live on
        proc.wait(30)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[GroupStack]:
    yield from GroupStack.for_test(tmp_path)


def export(name: str, marks: Path, tasks: list[tuple[str, str, float]]) -> list[dict[str, Any]]:
    """A chain of SHELL tasks ``(name, workerGroup, seconds)``; each sleeps, then appends
    "<instance> <task> <its worker's WG_MARK>" to ``marks``."""
    base = 9_300_000_000_000 + (uuid.uuid4().int % 10**9) * 10
    defs = []
    for i, (task, group, seconds) in enumerate(tasks, 1):
        script = f"sleep {seconds}\necho \"${{system.workflow.instance.id}} {task} $WG_MARK\" >> {marks}\n"
        defs.append({"code": base + i, "name": task, "version": 1, "taskType": "SHELL", "workerGroup": group,
                     "taskParams": {"localParams": [], "rawScript": script, "resourceList": []}, "flag": "YES",
                     "failRetryTimes": 0, "failRetryInterval": 1, "timeoutFlag": "CLOSE", "timeout": 0,
                     "delayTime": 0})
    rels = [{"preTaskCode": defs[i - 1]["code"] if i else 0, "postTaskCode": d["code"]} for i, d in enumerate(defs)]
    return [{"processDefinition": {"code": base, "name": name, "projectCode": 1, "globalParams": "[]"},
             "processTaskRelationList": rels, "taskDefinitionList": defs}]


async def submit(api: httpx.AsyncClient, doc: list[dict[str, Any]]) -> int:
    r = await api.post("/definitions", json=doc)
    assert r.status_code == 201, r.text
    return int(r.json()[0]["code"])


async def start(api: httpx.AsyncClient, code: int, body: dict[str, Any] | None = None) -> str:
    r = await api.post(f"/definitions/{code}/runs", json=body or {})
    assert r.status_code == 201, r.text
    return str(r.json()["instanceId"])


async def wait_run(api: httpx.AsyncClient, instance_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = await api.get(f"/runs/{instance_id}")
        assert r.status_code == 200, r.text
        run: dict[str, Any] = r.json()
        if run["temporalStatus"] != "RUNNING":
            return run
        assert time.monotonic() < deadline, f"{instance_id} still running: {run}"
        await asyncio.sleep(0.5)


def ran_on(marks: Path, instance_id: str) -> dict[str, list[str]]:
    """task -> the marks of the workers it ran to the end on (one entry per run to the end)."""
    out: dict[str, list[str]] = {}
    for line in marks.read_text().splitlines() if marks.exists() else ():
        inst, task, mark = (line.split(" ") + ["", ""])[:3]
        if inst == instance_id:
            out.setdefault(task, []).append(mark)
    return out


async def test_tasks_run_on_their_groups_workers(stack: GroupStack, tmp_path: Path) -> None:
    await asyncio.wait_for(_routing(stack, tmp_path), LIMIT)


async def _routing(stack: GroupStack, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    stack.start_server()
    stack.start_worker("default-worker")  # the default group (and the workflows)
    stack.start_worker("etl-worker", "--no-default", "--group", "etl")
    async with stack.api() as api:
        code = await submit(api, export("wg-routing", marks, [("a", "default", 0), ("b", "etl", 0),
                                                             ("c", "", 0), ("d", "etl", 0)]))
        plain = await start(api, code)
        # DS start-process-instance workerGroup: tasks left in default move to it, others keep theirs.
        moved = await start(api, code, {"workerGroup": "etl"})
        for instance in (plain, moved):
            run = await wait_run(api, instance, 90)
            assert run["state"] == "SUCCESS", [(n["name"], n["state"], n["error"]) for n in run["nodes"]]
        # DS §4.9: a sub-process child runs in its SUB_PROCESS task's group.
        child = await submit(api, export("wg-child", marks, [("leaf", "default", 0)]))
        parent_doc = export("wg-parent", marks, [("top", "default", 0)])
        parent_doc[0]["taskDefinitionList"][0].update(
            taskType="SUB_PROCESS", workerGroup="etl", taskParams={"localParams": [], "processDefinitionCode": child})
        parent = await start(api, await submit(api, parent_doc))
        run = await wait_run(api, parent, 90)
        assert run["state"] == "SUCCESS", run
        child_instance = run["nodes"][0]["subInstanceId"]
        r = await api.post(f"/definitions/{code}/runs", json={"workerGroup": "no@such"})
        assert r.status_code == 422 and "workerGroup" in r.text, r.text
    assert ran_on(marks, plain) == {"a": ["default-worker"], "b": ["etl-worker"], "c": ["default-worker"],
                                    "d": ["etl-worker"]}
    assert ran_on(marks, moved) == {t: ["etl-worker"] for t in "abcd"}
    assert ran_on(marks, child_instance) == {"leaf": ["etl-worker"]}


async def test_unserved_group_waits_then_runs(stack: GroupStack, tmp_path: Path) -> None:
    await asyncio.wait_for(_waiting(stack, tmp_path), LIMIT)


async def _waiting(stack: GroupStack, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    stack.start_server()
    stack.start_worker("default-worker")
    async with stack.api() as api:
        code = await submit(api, export("wg-waiting", marks, [("a", "default", 0), ("late", "late", 0),
                                                             ("z", "default", 0)]))
        instance = await start(api, code)
        deadline = time.monotonic() + 60
        while True:  # a ran; "late" is dispatched to its group's queue, which no worker polls
            run = (await api.get(f"/runs/{instance}")).json()
            late = next(n for n in run["nodes"] if n["name"] == "late")
            if late.get("waiting"):
                break
            assert time.monotonic() < deadline and run["temporalStatus"] == "RUNNING", run
            await asyncio.sleep(0.5)
        await asyncio.sleep(12)  # longer than any timeout a dispatched task could hit early
        run = (await api.get(f"/runs/{instance}")).json()
        late = next(n for n in run["nodes"] if n["name"] == "late")
        assert run["temporalStatus"] == "RUNNING" and run["state"] == "RUNNING_EXECUTION", run
        assert late["state"] == "SUBMITTED_SUCCESS" and late["workerGroup"] == "late", late
        assert "worker group 'late'" in late["waiting"] and "no worker polls it" in late["waiting"], late
        assert "late" not in ran_on(marks, instance)
        stack.start_worker("late-worker", "--no-default", "--group", "late")
        run = await wait_run(api, instance, 90)
        assert run["state"] == "SUCCESS", run
    assert ran_on(marks, instance) == {"a": ["default-worker"], "late": ["late-worker"], "z": ["default-worker"]}


async def test_lost_group_task_comes_back_to_its_host_queue(stack: GroupStack, tmp_path: Path) -> None:
    await asyncio.wait_for(_lost(stack, tmp_path), LIMIT)


async def _lost(stack: GroupStack, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    stack.start_server()
    stack.start_worker("default-worker")
    stack.start_worker("etl-worker", "--no-default", "--group", "etl")
    async with stack.api() as api:
        code = await submit(api, export("wg-lost", marks, [("b", "etl", 15)]))
        instance = await start(api, code)
        deadline = time.monotonic() + 60
        while not list((tmp_path / "logs").rglob("*.proc")):  # the task's process is recorded
            assert time.monotonic() < deadline, "the etl task never started"
            await asyncio.sleep(0.05)
        stack.kill_worker("etl-worker")  # most likely before the task's first heartbeat (1 s)
        await asyncio.sleep(1)
        stack.start_worker("etl-worker-2", "--no-default", "--group", "etl")
        run = await wait_run(api, instance, 110)
        assert run["state"] == "SUCCESS", run
    # The process the killed worker left running finished once (its environment is the first
    # worker's), and the next attempt re-attached to it on the etl group's host queue.
    assert ran_on(marks, instance) == {"b": ["etl-worker"]}
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*.log"))
    assert "re-attached to pid" in logs or "had already ended with exit code" in logs, logs[-2000:]
    node = run["nodes"][0]
    assert node["recovery"], node
    # Where Temporal scheduled it: the etl group's queue, then the etl queue of this host.
    client = await connect(stack.settings)
    events = [e async for e in client.get_workflow_handle(instance).fetch_history_events()]
    queues = [e.activity_task_scheduled_event_attributes.task_queue.name for e in events
              if e.HasField("activity_task_scheduled_event_attributes")]
    etl = f"{stack.settings.task_queue}-etl"
    assert queues == [etl, f"{etl}@{socket.gethostname()}"], queues
    # Which host and attempt were lost came from the server's record of the worker that took the
    # attempt (activities/lost_attempts.py, a local activity), not from a heartbeat: the worker was
    # killed within the task's first second, before any.
    timed_out = next(e.activity_task_timed_out_event_attributes for e in events
                     if e.HasField("activity_task_timed_out_event_attributes"))
    assert not timed_out.failure.timeout_failure_info.last_heartbeat_details.payloads, timed_out
    looked_up = [e for e in events if e.HasField("marker_recorded_event_attributes")
                 and e.marker_recorded_event_attributes.marker_name == "core_local_activity"]
    assert len(looked_up) == 1, looked_up
