"""Control flow and operations on the real Temporal server: CONDITIONS, SWITCH (with convergence),
SUB_PROCESS (with the DS #14169 scenario), parameters across tasks, pause / recover / rerun /
force success (reference §4.7-§4.9, §4.14, §6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests import dsbuild
from tests.integration.helpers import nodes, run, start, states, submit, wait
from tests.samples import SAMPLES


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


async def log_of(api: httpx.AsyncClient, status: dict[str, Any], task: str) -> str:
    code = nodes(status)[task]["code"]
    r = await api.get(f"/runs/{status['instanceId']}/tasks/{code}/log")
    assert r.status_code == 200, r.text
    return r.text


async def test_conditions_sample_takes_the_success_branch(api: httpx.AsyncClient) -> None:
    status = await run(api, sample("ds-demo-v32-conditions-coin-toss.json"))
    assert status["state"] == "SUCCESS"
    assert states(status) == {"condition": "SUCCESS", "coin": "SUCCESS", "head": "SUCCESS", "tail": "SKIPPED"}


async def test_parameter_context_sample_varpool_beats_global(api: httpx.AsyncClient) -> None:
    status = await run(api, sample("ds-demo-v32-parameter-context-out-param.json"))
    assert status["state"] == "SUCCESS"
    up = await log_of(api, status, "Upstream task node")
    down = await log_of(api, status, "Downstream task node")
    up_lines = [line for line in up.splitlines() if not line.startswith("[porpoise]")]
    down_lines = [line for line in down.splitlines() if not line.startswith("[porpoise]")]
    assert up_lines[2:4] == ["100", "0"]  # global output, local IN value
    assert down_lines[1:3] == ["1", "99"]  # upstream OUT output=1 beats global 100; global value
    assert {p["prop"]: p["value"] for p in status["varPool"]} == {"output": "1"}


async def test_switch_sample_follows_the_global_param(api: httpx.AsyncClient) -> None:
    doc = sample("ds-demo-v32-switch-global-param.json")
    a = await run(api, doc)
    assert a["state"] == "SUCCESS"
    assert states(a) == {"switch node": "SUCCESS", "TaskA": "SUCCESS", "TaskB": "SKIPPED", "default": "SKIPPED"}
    b = await run(api, doc, startParams={"switchValue": "B"})
    assert states(b)["TaskB"] == "SUCCESS" and states(b)["TaskA"] == "SKIPPED"
    other = await run(api, doc, startParams={"switchValue": "Z"})
    assert states(other)["default"] == "SUCCESS" and states(other)["TaskA"] == "SKIPPED"


def switch_task(name: str, branches: list[tuple[str, dict[str, Any]]], default: dict[str, Any]) -> dict[str, Any]:
    return dsbuild.task(name, task_type="SWITCH", params={
        "localParams": [], "switchResult": {
            "dependTaskList": [{"condition": cond, "nextNode": t["code"]} for cond, t in branches],
            "nextNode": default["code"]}})


async def test_switch_convergence_and_the_shape_ds_gets_wrong(api: httpx.AsyncClient) -> None:
    # switch -> {two, four}; two -> six; four -> six: the join runs after the chosen branch (PR #14563).
    two, four, six = dsbuild.task("two"), dsbuild.task("four"), dsbuild.task("six")
    sw = switch_task("sw", [("${pick} == 2", two)], four)
    doc = dsbuild.export("converge", [sw, two, four, six],
                         [(None, "sw"), ("sw", "two"), ("sw", "four"), ("two", "six"), ("four", "six")],
                         global_params='[{"prop":"pick","direct":"IN","type":"INTEGER","value":"2"}]')
    status = await run(api, doc)
    assert states(status) == {"sw": "SUCCESS", "two": "SUCCESS", "four": "SKIPPED", "six": "SUCCESS"}
    # switch -> {x, y} with x -> y: y is an unchosen target that the chosen branch reaches. DS 3.2 marks
    # it depend-failed and fails the run; here it is a join and runs after x.
    x, y = dsbuild.task("x"), dsbuild.task("y")
    sw2 = switch_task("sw2", [("1 == 1", x)], y)
    status = await run(api, dsbuild.export("wrong-shape", [sw2, x, y],
                                           [(None, "sw2"), ("sw2", "x"), ("sw2", "y"), ("x", "y")]))
    assert status["state"] == "SUCCESS" and states(status) == {"sw2": "SUCCESS", "x": "SUCCESS", "y": "SUCCESS"}


async def test_switch_condition_that_loops_forever_is_not_matched(api: httpx.AsyncClient) -> None:
    hang, fallback = dsbuild.task("hang"), dsbuild.task("fallback")
    sw = switch_task("sw", [("(function(){while(true){}})()", hang)], fallback)
    status = await run(api, dsbuild.export("js-loop", [sw, hang, fallback],
                                           [(None, "sw"), ("sw", "hang"), ("sw", "fallback")]))
    assert states(status) == {"sw": "SUCCESS", "hang": "SKIPPED", "fallback": "SUCCESS"}


def child_export(name: str, script: str, out: bool = False) -> list[dict[str, Any]]:
    params = {"localParams": [{"prop": "child_out", "direct": "OUT", "type": "VARCHAR", "value": ""}] if out else [],
              "rawScript": script, "resourceList": []}
    return dsbuild.export(name, [dsbuild.task("work", params=params)], [(None, "work")],
                          global_params='[{"prop":"g","direct":"IN","type":"VARCHAR","value":"child"}]')


def sub_task(name: str, code: int, **params: Any) -> dict[str, Any]:
    return dsbuild.task(name, task_type="SUB_PROCESS", params={"processDefinitionCode": code, **params})


async def test_sub_process_parameters_down_and_out_params_back(api: httpx.AsyncClient) -> None:
    child = await submit(api, child_export("child-params", "echo g=${g} p=${p}; echo '${setValue(child_out=42)}'",
                                           out=True))
    parent = sub_task("sub", child["code"], localParams=[
        {"prop": "p", "direct": "IN", "type": "VARCHAR", "value": "from-parent-task"},
        {"prop": "child_out", "direct": "OUT", "type": "VARCHAR", "value": ""}])
    use = dsbuild.task("use", "echo got=${child_out}")
    status = await run(api, dsbuild.export("parent-params", [parent, use], [(None, "sub"), ("sub", "use")],
                                           global_params='[{"prop":"g","direct":"IN","type":"VARCHAR","value":"parent"}]'))
    assert status["state"] == "SUCCESS", status
    child_id = nodes(status)["sub"]["subInstanceId"]
    child_status = (await api.get(f"/runs/{child_id}")).json()
    child_log = await log_of(api, child_status, "work")
    assert "g=parent p=from-parent-task" in child_log  # parent globals win; task IN params pass down
    assert "got=42" in await log_of(api, status, "use")  # declared OUT comes back (3.1 behaviour)


async def test_sub_process_failure_maps_to_the_parent_task(api: httpx.AsyncClient) -> None:
    child = await submit(api, child_export("child-fails", "exit 4"))
    status = await run(api, dsbuild.export("parent-fails", [sub_task("sub", child["code"]), dsbuild.task("after")],
                                           [(None, "sub"), ("sub", "after")]))
    assert status["state"] == "FAILURE"
    assert states(status) == {"sub": "FAILURE", "after": "DEPEND_FAILED"}


async def test_end_with_parallel_sub_processes_never_touches_finished_children(api: httpx.AsyncClient) -> None:
    """DS #14169: under END, children that already succeeded keep SUCCESS, running ones are stopped,
    and the parent always ends."""
    fast = await submit(api, child_export("child-fast", "sleep 1"))
    fails = await submit(api, child_export("child-fails-late", "sleep 3; exit 1"))
    slow = await submit(api, child_export("child-slow", "sleep 120"))
    tasks = [sub_task(f"fast{i}", fast["code"]) for i in range(6)]
    tasks += [sub_task("failing", fails["code"]), sub_task("slow0", slow["code"]), sub_task("slow1", slow["code"])]
    doc = dsbuild.export("parallel-subs", tasks, [(None, t["name"]) for t in tasks])
    status = await run(api, doc, timeout=90, failureStrategy="END")
    assert status["state"] == "FAILURE"
    got = states(status)
    assert got["failing"] == "FAILURE"
    assert all(got[f"fast{i}"] == "SUCCESS" for i in range(6)), got
    assert got["slow0"] == "KILL" and got["slow1"] == "KILL"
    for name in [f"fast{i}" for i in range(6)] + ["slow0", "slow1"]:
        child = (await api.get(f"/runs/{nodes(status)[name]['subInstanceId']}")).json()
        assert child["state"] == ("SUCCESS" if name.startswith("fast") else "STOP"), (name, child["state"])


async def test_pause_then_recover_resumes_from_the_paused_point(api: httpx.AsyncClient) -> None:
    doc = dsbuild.export("pausable", [dsbuild.task("a", "sleep 3"), dsbuild.task("b")], [(None, "a"), ("a", "b")])
    saved = await submit(api, doc)
    instance = await start(api, saved["code"])
    await wait(api, instance, until=lambda s: nodes(s)["a"]["state"] == "RUNNING_EXECUTION")
    r = await api.post(f"/runs/{instance}/pause")
    assert r.status_code == 200 and r.json()["state"] == "READY_PAUSE"
    paused = await wait(api, instance)
    assert paused["state"] == "PAUSE"
    assert states(paused) == {"a": "SUCCESS", "b": "WAITING"}
    r = await api.post(f"/runs/{instance}/recover")
    assert r.status_code == 201, r.text
    resumed = await wait(api, instance)
    assert resumed["state"] == "SUCCESS" and resumed["runTimes"] == 2
    assert states(resumed) == {"a": "SUCCESS", "b": "SUCCESS"}
    assert nodes(resumed)["a"]["endTime"] == nodes(paused)["a"]["endTime"]  # kept, not re-run


async def test_recovering_a_paused_parent_resumes_its_paused_child(api: httpx.AsyncClient, tmp_path: Path) -> None:
    """Pause goes down to the child; recover resumes that child where it stopped (its finished tasks
    are kept, as DS does), and a failed child is resumed the same way on recover-failed."""
    runs = tmp_path / "a-runs"
    marker = tmp_path / "flaky-ok"
    child = await submit(api, dsbuild.export("child-pausable", [
        dsbuild.task("a", f"echo ran >> {runs}; sleep 3"),
        dsbuild.task("flaky", f"[ -f {marker} ] || {{ touch {marker}; exit 1; }}"), dsbuild.task("b")],
        [(None, "a"), ("a", "flaky"), ("flaky", "b")]))
    doc = dsbuild.export("parent-pausable", [sub_task("sub", child["code"]), dsbuild.task("after")],
                         [(None, "sub"), ("sub", "after")])
    saved = await submit(api, doc)
    instance = await start(api, saved["code"])
    first = await wait(api, instance, until=lambda s: bool(nodes(s)["sub"].get("subInstanceId")))
    child1 = nodes(first)["sub"]["subInstanceId"]
    await wait(api, child1, until=lambda s: nodes(s)["a"]["state"] == "RUNNING_EXECUTION")
    assert (await api.post(f"/runs/{instance}/pause")).status_code == 200
    paused = await wait(api, instance)
    assert paused["state"] == "PAUSE" and states(paused) == {"sub": "PAUSE", "after": "WAITING"}
    child1_status = await wait(api, child1)
    assert child1_status["state"] == "PAUSE" and states(child1_status)["a"] == "SUCCESS"

    assert (await api.post(f"/runs/{instance}/recover")).status_code == 201
    failed = await wait(api, instance)  # the resumed child runs flaky, which fails once
    assert failed["state"] == "FAILURE" and states(failed) == {"sub": "FAILURE", "after": "DEPEND_FAILED"}
    child2 = nodes(failed)["sub"]["subInstanceId"]
    assert child2 != child1
    child2_status = (await api.get(f"/runs/{child2}")).json()
    assert states(child2_status) == {"a": "SUCCESS", "flaky": "FAILURE", "b": "DEPEND_FAILED"}
    assert nodes(child2_status)["a"]["endTime"] == nodes(child1_status)["a"]["endTime"]  # kept, not re-run
    assert child2_status["runTimes"] == 2

    assert (await api.post(f"/runs/{instance}/recover")).status_code == 201
    done = await wait(api, instance)
    assert done["state"] == "SUCCESS" and states(done) == {"sub": "SUCCESS", "after": "SUCCESS"}
    child3_status = (await api.get(f"/runs/{nodes(done)['sub']['subInstanceId']}")).json()
    assert states(child3_status) == {"a": "SUCCESS", "flaky": "SUCCESS", "b": "SUCCESS"}
    assert runs.read_text().count("ran") == 1  # a ran once across the three runs of the child


async def test_recover_failed_keeps_successful_nodes(api: httpx.AsyncClient, tmp_path: Path) -> None:
    marker = tmp_path / "second-time"
    doc = dsbuild.export("recoverable", [dsbuild.task("a", "echo ran >> " + str(tmp_path / "a-runs")),
                                         dsbuild.task("flaky", f"[ -f {marker} ] || {{ touch {marker}; exit 1; }}"),
                                         dsbuild.task("c"), dsbuild.task("side")],
                         [(None, "a"), ("a", "flaky"), ("flaky", "c"), (None, "side")])
    failed = await run(api, doc)
    assert failed["state"] == "FAILURE"
    assert states(failed) == {"a": "SUCCESS", "flaky": "FAILURE", "c": "DEPEND_FAILED", "side": "SUCCESS"}
    r = await api.post(f"/runs/{failed['instanceId']}/recover")
    assert r.status_code == 201, r.text
    recovered = await wait(api, failed["instanceId"])
    assert recovered["state"] == "SUCCESS"
    assert states(recovered) == {"a": "SUCCESS", "flaky": "SUCCESS", "c": "SUCCESS", "side": "SUCCESS"}
    assert (tmp_path / "a-runs").read_text().count("ran") == 1  # a did not run again
    again = await api.post(f"/runs/{failed['instanceId']}/recover")
    assert again.status_code == 409  # SUCCESS is not recoverable: use rerun


async def test_force_success_then_recover_continues(api: httpx.AsyncClient) -> None:
    doc = dsbuild.export("forceable", [dsbuild.task("broken", "exit 1"), dsbuild.task("after")],
                         [(None, "broken"), ("broken", "after")])
    failed = await run(api, doc)
    instance, code = failed["instanceId"], nodes(failed)["broken"]["code"]
    r = await api.post(f"/runs/{instance}/tasks/{nodes(failed)['after']['code']}/force-success")
    assert r.status_code == 409  # only failed tasks
    r = await api.post(f"/runs/{instance}/tasks/{code}/force-success")
    assert r.status_code == 200, r.text
    shown = (await api.get(f"/runs/{instance}")).json()
    assert states(shown)["broken"] == "FORCED_SUCCESS" and shown["state"] == "FAILURE"
    assert (await api.post(f"/runs/{instance}/recover")).status_code == 201
    recovered = await wait(api, instance)
    assert recovered["state"] == "SUCCESS"
    assert states(recovered) == {"broken": "FORCED_SUCCESS", "after": "SUCCESS"}


async def test_rerun_runs_everything_again(api: httpx.AsyncClient, tmp_path: Path) -> None:
    doc = dsbuild.export("rerunnable", [dsbuild.task("a", f"echo x >> {tmp_path / 'runs'}")], [(None, "a")])
    first = await run(api, doc)
    r = await api.post(f"/runs/{first['instanceId']}/rerun")
    assert r.status_code == 201, r.text
    second = await wait(api, first["instanceId"])
    assert second["state"] == "SUCCESS" and second["runTimes"] == 2
    assert (tmp_path / "runs").read_text().count("x") == 2


async def test_start_nodes_task_only(api: httpx.AsyncClient) -> None:
    doc = dsbuild.export("partial", [dsbuild.task(n) for n in "abc"], [(None, "a"), ("a", "b"), ("b", "c")])
    saved = await submit(api, doc)
    b = dsbuild.codes(doc)["b"]
    status = await wait(api, await start(api, saved["code"], startNodeList=[b], taskDependType="TASK_ONLY"))
    assert states(status) == {"a": "NOT_RUN", "b": "SUCCESS", "c": "NOT_RUN"}
