"""DS 3.2 semantics end to end on the real Temporal dev server (reference §4).

The test settings make a DS minute last one second, so retry intervals, delays and timeouts keep
their minute-based meaning while the suite stays fast.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx
import psutil
from temporalio.client import Client

from api.app import create_app
from core.settings import Settings
from tests import dsbuild
from tests.integration.helpers import nodes, run, start, states, submit, wait

FIVE = [(None, "a"), ("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e")]


def five_task_dag(script: str = "true") -> list[dict]:
    return dsbuild.export("five", [dsbuild.task(n, f"echo {n}; {script}") for n in "abcde"], FIVE)


async def test_five_task_dag_succeeds_with_every_node_and_logs(api: httpx.AsyncClient, client: Client) -> None:
    status = await run(api, five_task_dag())
    assert status["state"] == "SUCCESS"
    assert set(states(status).values()) == {"SUCCESS"}
    n = nodes(status)["d"]
    assert n["attempts"] == 1 and n["host"] and n["pid"] and n["startTime"] and n["endTime"]
    assert status["temporalUiUrl"].endswith(status["instanceId"])
    # What the Temporal UI lists the instance as (core/contracts/run.py: instance_summary).
    described = await client.get_workflow_handle(status["instanceId"]).describe()
    assert await described.static_summary() == "five v1 (START_PROCESS, run 1)"
    log = await api.get(f"/runs/{status['instanceId']}/tasks/{n['code']}/log")
    assert log.status_code == 200 and "echo d" not in log.text and "\nd\n" in log.text
    tail = await api.get(f"/runs/{status['instanceId']}/tasks/{n['code']}/log", params={"tail": 10})
    assert len(tail.text) <= 10


async def test_retries_are_counted_and_exhausted(api: httpx.AsyncClient, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    flaky = dsbuild.task("flaky", f"echo x >> {counter}; [ $(wc -l < {counter}) -ge 2 ]", failRetryTimes=3)
    broken = dsbuild.task("broken", "exit 3", failRetryTimes=2, failRetryInterval=1)
    status = await run(api, dsbuild.export("retries", [flaky, broken], [(None, "flaky"), (None, "broken")]))
    by = nodes(status)
    assert by["flaky"]["state"] == "SUCCESS" and by["flaky"]["attempts"] == 2
    assert by["broken"]["state"] == "FAILURE" and by["broken"]["attempts"] == 3
    assert "exit" in (by["broken"]["error"] or "") or "code 3" in (by["broken"]["error"] or "")
    assert status["state"] == "FAILURE"
    started = [n["startTime"] for n in status["nodes"]]
    assert all(started)


async def test_continue_runs_other_branches_end_kills_them(api: httpx.AsyncClient) -> None:
    def doc(slow: int) -> list[dict]:
        tasks = [dsbuild.task("fail", "sleep 1; exit 1"), dsbuild.task("after_fail"),
                 dsbuild.task("slow", f"sleep {slow}"), dsbuild.task("after_slow")]
        return dsbuild.export("strategy", tasks, [(None, "fail"), ("fail", "after_fail"), (None, "slow"),
                                                  ("slow", "after_slow")])

    cont = await run(api, doc(3), failureStrategy="CONTINUE")
    assert cont["state"] == "FAILURE"
    assert states(cont) == {"fail": "FAILURE", "after_fail": "DEPEND_FAILED", "slow": "SUCCESS",
                            "after_slow": "SUCCESS"}
    end = await run(api, doc(60), failureStrategy="END")
    assert end["state"] == "FAILURE"
    assert states(end) == {"fail": "FAILURE", "after_fail": "NOT_RUN", "slow": "KILL",
                           "after_slow": "NOT_RUN"}


async def test_forbidden_tasks_are_looked_through(api: httpx.AsyncClient) -> None:
    tasks = [dsbuild.task("a"), dsbuild.task("off", "exit 1", flag="NO"), dsbuild.task("c")]
    status = await run(api, dsbuild.export("forbidden", tasks, [(None, "a"), ("a", "off"), ("off", "c")]))
    assert status["state"] == "SUCCESS"
    assert states(status) == {"a": "SUCCESS", "off": "FORBIDDEN", "c": "SUCCESS"}


async def test_timeout_failed_kills_the_task(api: httpx.AsyncClient) -> None:
    t = dsbuild.task("slow", "sleep 30", timeoutFlag="OPEN", timeout=2, timeoutNotifyStrategy="FAILED")
    status = await run(api, dsbuild.export("timeout-failed", [t], [(None, "slow")]), timeout=40)
    n = nodes(status)["slow"]
    assert status["state"] == "FAILURE" and n["state"] == "FAILURE"
    assert "timed out" in n["error"]


async def test_timeout_warn_lets_the_task_finish(api: httpx.AsyncClient) -> None:
    t = dsbuild.task("slowish", "sleep 3", timeoutFlag="OPEN", timeout=1, timeoutNotifyStrategy="WARN")
    status = await run(api, dsbuild.export("timeout-warn", [t], [(None, "slowish")]))
    n = nodes(status)["slowish"]
    assert status["state"] == "SUCCESS" and n["state"] == "SUCCESS" and n["timeoutWarned"] is True


async def test_timeout_warnfailed_warns_and_fails(api: httpx.AsyncClient) -> None:
    t = dsbuild.task("slow", "sleep 30", timeoutFlag="OPEN", timeout=1, timeoutNotifyStrategy="WARNFAILED")
    status = await run(api, dsbuild.export("timeout-wf", [t], [(None, "slow")]), timeout=40)
    n = nodes(status)["slow"]
    assert n["state"] == "FAILURE" and n["timeoutWarned"] is True


async def test_delay_time_waits_before_dispatch(api: httpx.AsyncClient) -> None:
    t = dsbuild.task("later", "true", delayTime=3)
    saved = await submit(api, dsbuild.export("delay", [t], [(None, "later")]))
    instance = await start(api, saved["code"])
    delayed = await wait(api, instance, until=lambda s: nodes(s)["later"]["state"] == "DELAY_EXECUTION")
    assert delayed["state"] == "RUNNING_EXECUTION"
    final = await wait(api, instance)
    n = nodes(final)["later"]
    assert n["state"] == "SUCCESS"


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return any(p.info["status"] != psutil.STATUS_ZOMBIE for p in psutil.process_iter(["pid", "status"])
               if _pgid(p.pid) == pid)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


async def test_stop_kills_the_process_group_and_ends_stop(api: httpx.AsyncClient) -> None:
    script = "bash -c 'trap \"\" TERM; sleep 300' & sleep 300"
    doc = dsbuild.export("stop", [dsbuild.task("long", script), dsbuild.task("next")], [(None, "long"),
                                                                                       ("long", "next")])
    saved = await submit(api, doc)
    instance = await start(api, saved["code"])
    running = await wait(api, instance, until=lambda s: bool(nodes(s)["long"].get("pid")))
    pid = nodes(running)["long"]["pid"]
    assert _group_alive(pid)
    r = await api.post(f"/runs/{instance}/stop")
    assert r.status_code == 200, r.text
    final = await wait(api, instance, timeout=60)
    assert final["state"] == "STOP"
    assert states(final) == {"long": "KILL", "next": "NOT_RUN"}
    for _ in range(50):
        if not _group_alive(pid):
            break
        await asyncio.sleep(0.2)
    assert not _group_alive(pid), "a process of the killed task's group survived"
    again = await api.post(f"/runs/{instance}/stop")
    assert again.status_code == 409


async def test_start_params_and_dry_run(api: httpx.AsyncClient) -> None:
    t = dsbuild.task("echo", "echo value=${who}")
    doc = dsbuild.export("params", [t], [(None, "echo")],
                         global_params='[{"prop":"who","direct":"IN","type":"VARCHAR","value":"global"}]')
    status = await run(api, doc, startParams={"who": "startup"})
    code = nodes(status)["echo"]["code"]
    log = await api.get(f"/runs/{status['instanceId']}/tasks/{code}/log")
    assert "value=startup" in log.text
    dry = await run(api, doc, dryRun=True)
    assert dry["state"] == "SUCCESS" and dry["dryRun"] is True


async def test_long_polls_past_the_limit_answer_at_once(api: httpx.AsyncClient, settings: Settings) -> None:
    """With api_long_poll_limit = 1, a second long poll while one waits answers at once with the
    progress (as without ``wait``), and the count is freed afterwards: the next one waits again."""
    limited = create_app(settings.model_copy(update={"api_long_poll_limit": 1}))
    saved = await submit(api, dsbuild.export("long-poll-limit", [dsbuild.task("t", "sleep 3")], [(None, "t")]))
    instance = await start(api, saved["code"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=limited), base_url="http://porpoise") as c:
        first = asyncio.create_task(c.get(f"/runs/{instance}", params={"wait": 1.5}))
        await asyncio.sleep(0.3)
        asked = time.monotonic()
        second = await c.get(f"/runs/{instance}", params={"wait": 1.5})
        assert second.status_code == 200 and second.json()["temporalStatus"] == "RUNNING", second.text
        assert time.monotonic() - asked < 1.0, "the second long poll waited past the limit"
        assert (await first).json()["temporalStatus"] == "RUNNING"
        asked = time.monotonic()
        third = await c.get(f"/runs/{instance}", params={"wait": 0.5})
        assert third.status_code == 200 and time.monotonic() - asked >= 0.5, "the limit was not freed"
    await wait(api, instance)


async def test_runs_are_listed_by_definition(api: httpx.AsyncClient) -> None:
    saved = await submit(api, five_task_dag())
    instance = await start(api, saved["code"])
    await wait(api, instance)
    for _ in range(50):
        listed = (await api.get("/runs", params={"definitionCode": saved["code"]})).json()
        if listed and listed[0]["state"] == "SUCCESS":
            break
        await asyncio.sleep(0.2)
    assert [r["instanceId"] for r in listed] == [instance]
    assert listed[0]["state"] == "SUCCESS" and listed[0]["definitionName"] == "five"


async def test_a_long_poll_answers_when_the_instance_ends(api: httpx.AsyncClient) -> None:
    """GET /runs/{id}?wait=S answers as soon as the run ends (what `porpoise run` follows a run
    with), or after S seconds with its progress; a failed run's answer is its status, not an error."""
    saved = await submit(api, dsbuild.export("long-poll", [dsbuild.task("t", "sleep 2")], [(None, "t")]))
    instance = await start(api, saved["code"])
    asked = time.monotonic()
    early = await api.get(f"/runs/{instance}", params={"wait": 0.3})
    assert early.status_code == 200 and early.json()["temporalStatus"] == "RUNNING"
    assert time.monotonic() - asked >= 0.3
    asked = time.monotonic()
    done = await api.get(f"/runs/{instance}", params={"wait": 50})
    assert done.status_code == 200, done.text
    assert (done.json()["state"], done.json()["temporalStatus"]) == ("SUCCESS", "COMPLETED")
    assert time.monotonic() - asked < 40  # at the end of a 2 s task, far before the 50 s asked for
    failed = await submit(api, dsbuild.export("long-poll-fails", [dsbuild.task("t", "exit 3")], [(None, "t")]))
    answer = await api.get(f"/runs/{await start(api, failed['code'])}", params={"wait": 50})
    assert answer.status_code == 200 and answer.json()["state"] == "FAILURE", answer.text
    for bad in ("-1", "61", "soon"):
        r = await api.get(f"/runs/{instance}", params={"wait": bad})
        assert r.status_code == 422 and "wait" in r.text, r.text
