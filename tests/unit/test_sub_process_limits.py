"""SUB_PROCESS call graphs (model/sub_process.py): cycles and nesting depth, found without a server."""

from __future__ import annotations

import json

import pytest

from model import sub_process
from model.definition import WorkflowDefinition
from model.formats import parse_document
from model.problems import DefinitionError
from tests import dsbuild


def definition(name: str, calls: list[int], code: int | None = None) -> WorkflowDefinition:
    tasks = [dsbuild.task("start")] + [
        dsbuild.task(f"call{i}", task_type="SUB_PROCESS", params={"processDefinitionCode": c})
        for i, c in enumerate(calls)]
    edges: list[tuple[str | None, str]] = [(None, "start")] + [("start", f"call{i}") for i in range(len(calls))]
    return parse_document(dsbuild.export(name, tasks, edges, code=code))[0]


def graph_of(*definitions: WorkflowDefinition) -> dict[int, sub_process.Node]:
    return {d.code: sub_process.node(d) for d in definitions}


def ptr(i: int, j: int) -> str:
    return f"/{i}/taskDefinitionList/{j}"


def test_a_definition_calling_itself_is_refused_offline_with_pointer_and_task() -> None:
    code = dsbuild.new_code()
    doc = dsbuild.export("selfish", [dsbuild.task("s"), dsbuild.task(
        "again", task_type="SUB_PROCESS", params={"processDefinitionCode": code})], [(None, "s"), ("s", "again")],
        code=code)
    with pytest.raises(DefinitionError) as e:
        parse_document(json.loads(json.dumps(doc)))
    (p,) = [p for p in e.value.problems if p.code == "sub-process-cycle"]
    assert p.task == "again" and p.pointer == "/0/taskDefinitionList/1/taskParams/processDefinitionCode"


def test_out_of_range_sub_process_code_is_refused() -> None:
    doc = dsbuild.export("huge", [dsbuild.task("s"), dsbuild.task(
        "c", task_type="SUB_PROCESS", params={"processDefinitionCode": 2**64})], [(None, "s"), ("s", "c")])
    with pytest.raises(DefinitionError) as e:
        parse_document(doc)
    assert [(p.code, p.task) for p in e.value.problems] == [("range", "c")]


def test_a_to_b_to_a_is_a_cycle_named_in_order() -> None:
    a_code, b_code = dsbuild.new_code(), dsbuild.new_code()
    a = definition("A", [b_code], a_code)
    b = definition("B", [a_code], b_code)
    problems = sub_process.check([b], graph_of(a, b), 10, ptr)
    assert [p.code for p in problems] == ["sub-process-cycle"]
    assert f"'B'({b_code}) -> 'A'({a_code}) -> 'B'({b_code})" in problems[0].message
    assert problems[0].task == "call0"
    assert problems[0].pointer == "/0/taskDefinitionList/1/taskParams/processDefinitionCode"


def test_calling_into_a_cycle_elsewhere_is_refused() -> None:
    x_code, y_code = dsbuild.new_code(), dsbuild.new_code()
    x, y = definition("X", [y_code], x_code), definition("Y", [x_code], y_code)
    caller = definition("caller", [x_code])
    (p,) = sub_process.check([caller], graph_of(x, y, caller), 10, ptr)
    assert p.code == "sub-process-cycle" and "'X'" in p.message and "'Y'" in p.message


def test_a_chain_deeper_than_the_limit_is_refused_and_one_at_the_limit_is_not() -> None:
    codes = [dsbuild.new_code() for _ in range(5)]
    chain = [definition(f"d{i}", [codes[i + 1]] if i + 1 < len(codes) else [], codes[i]) for i in range(5)]
    graph = graph_of(*chain)
    assert sub_process.check([chain[0]], graph, 4, ptr) == []  # d0 -> d1 -> d2 -> d3 -> d4: 4 levels
    (p,) = sub_process.check([chain[0]], graph, 3, ptr)
    assert p.code == "sub-process-depth" and "4 levels deep, over the limit of 3" in p.message
    assert sub_process.deepest(codes[0], graph) == codes


def test_a_diamond_is_not_a_cycle() -> None:
    leaf = definition("leaf", [])
    left, right = definition("left", [leaf.code]), definition("right", [leaf.code])
    top = definition("top", [left.code, right.code])
    assert sub_process.check([top], graph_of(top, left, right, leaf), 10, ptr) == []
    assert sub_process.find_cycle(top.code, graph_of(top, left, right, leaf)) is None


def test_reachable_loads_only_what_the_calls_reach() -> None:
    leaf = definition("leaf", [])
    mid = definition("mid", [leaf.code, 999])  # 999 does not exist
    loaded: list[int] = []
    store = {mid.code: sub_process.node(mid), leaf.code: sub_process.node(leaf)}

    def load(code: int) -> sub_process.Node | None:
        loaded.append(code)
        return store.get(code)

    top = definition("top", [mid.code])
    graph = sub_process.reachable([top.code], {top.code: sub_process.node(top)}, load)
    assert set(graph) == {top.code, mid.code, leaf.code} and sorted(loaded) == sorted([mid.code, leaf.code, 999])


def test_disabled_sub_process_tasks_do_not_call() -> None:
    code = dsbuild.new_code()
    doc = dsbuild.export("off", [dsbuild.task("s"), dsbuild.task(
        "c", task_type="SUB_PROCESS", params={"processDefinitionCode": code}, flag="NO")], [(None, "s"), ("s", "c")],
        code=code)
    (d,) = parse_document(doc)
    assert sub_process.calls(d) == {}


@pytest.mark.parametrize(("chain", "callee", "limit", "expected"), [
    ([1], 2, 10, None),
    ([1, 2, 3], 2, 10, "cycle (definitions 2 -> 3 -> 2)"),
    ([1], 1, 10, "cycle (definitions 1 -> 1)"),
    ([1, 2, 3], 4, 3, None),
    ([1, 2, 3, 4], 5, 3, "nest 4 levels deep, over the limit of 3"),
])
def test_run_time_refusal(chain: list[int], callee: int, limit: int, expected: str | None) -> None:
    why = sub_process.refusal_at_run_time(chain, callee, limit)
    assert (why is None) if expected is None else (why is not None and expected in why)
