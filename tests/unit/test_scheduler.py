"""The pure DAG scheduler against DS 3.2 rules (reference §4.2-§4.7, §5), without a server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from model.definition import (
    FailureStrategy,
    Priority,
    Relation,
    TaskDefinition,
    TaskDependType,
    WorkflowDefinition,
)
from model.states import TaskState, WorkflowState
from workflows.scheduler import DagScheduler

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def definition(edges: list[tuple[str, str]], **tasks: dict[str, Any]) -> WorkflowDefinition:
    names = sorted({n for e in edges for n in e if n} | set(tasks))
    code = {n: 1000000000000 + i for i, n in enumerate(names, 1)}
    defs = []
    for n in names:
        extra = tasks.get(n, {})
        defs.append(TaskDefinition(code=code[n], name=n, task_type=extra.pop("task_type", "SHELL"),
                                   task_params=extra.pop("task_params", {"rawScript": "true"}), **extra))
    rels = [Relation(pre_task_code=code[a] if a else 0, post_task_code=code[b]) for a, b in edges]
    return WorkflowDefinition(code=1, name="wf", tasks=tuple(defs), relations=tuple(rels))


def by_name(s: DagScheduler) -> dict[str, TaskState]:
    return {n.name: n.state for n in s.nodes.values()}


def code_of(s: DagScheduler, name: str) -> int:
    return next(c for c, n in s.nodes.items() if n.name == name)


def step(s: DagScheduler, outcomes: dict[str, TaskState]) -> list[str]:
    """Dispatch what is ready, finish each with its outcome (default SUCCESS); return the dispatch order."""
    ready = s.ready()
    for c in ready:
        s.set_state(c, TaskState.RUNNING_EXECUTION, NOW)
    names = [s.nodes[c].name for c in ready]
    for c in ready:
        s.finish(c, outcomes.get(s.nodes[c].name, TaskState.SUCCESS), NOW)
    return names


def drain(s: DagScheduler, outcomes: dict[str, TaskState] | None = None) -> list[list[str]]:
    waves = []
    while wave := step(s, outcomes or {}):
        waves.append(wave)
    s.mark_unreached(s.final_state())
    return waves


FIVE = [("", "a"), ("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e")]


def test_waves_follow_the_dag() -> None:
    s = DagScheduler(definition(FIVE), failure_strategy=FailureStrategy.CONTINUE)
    assert drain(s) == [["a"], ["b", "c"], ["d"], ["e"]]
    assert s.final_state() is WorkflowState.SUCCESS


def test_continue_runs_independent_branches_but_never_downstream_of_a_failure() -> None:
    d = definition([("", "a"), ("a", "b"), ("", "x"), ("x", "y")])
    s = DagScheduler(d, failure_strategy=FailureStrategy.CONTINUE)
    drain(s, {"a": TaskState.FAILURE})
    assert by_name(s) == {"a": TaskState.FAILURE, "b": TaskState.DEPEND_FAILED,
                          "x": TaskState.SUCCESS, "y": TaskState.SUCCESS}
    assert s.final_state() is WorkflowState.FAILURE


def test_end_stops_dispatch_and_kills_running() -> None:
    d = definition([("", "a"), ("", "slow"), ("a", "b"), ("slow", "c")])
    s = DagScheduler(d, failure_strategy=FailureStrategy.END)
    ready = s.ready()
    for c in ready:
        s.set_state(c, TaskState.RUNNING_EXECUTION, NOW)
    s.finish(code_of(s, "a"), TaskState.FAILURE, NOW)
    assert s.to_kill() == [code_of(s, "slow")]
    assert s.ready() == []
    s.finish(code_of(s, "slow"), TaskState.KILL, NOW)
    s.mark_unreached(s.final_state())
    assert by_name(s) == {"a": TaskState.FAILURE, "slow": TaskState.KILL, "b": TaskState.NOT_RUN,
                          "c": TaskState.NOT_RUN}
    assert s.final_state() is WorkflowState.FAILURE


def test_forbidden_nodes_are_looked_through() -> None:
    d = definition([("", "a"), ("a", "f"), ("f", "c")], f={"enabled": False})
    s = DagScheduler(d, failure_strategy=FailureStrategy.CONTINUE)
    assert drain(s) == [["a"], ["c"]]
    assert by_name(s)["f"] is TaskState.FORBIDDEN
    assert s.final_state() is WorkflowState.SUCCESS


def test_forbidden_root_lets_its_successor_start() -> None:
    d = definition([("", "f"), ("f", "c")], f={"enabled": False})
    s = DagScheduler(d, failure_strategy=FailureStrategy.CONTINUE)
    assert drain(s) == [["c"]]


def test_task_priority_orders_ready_tasks() -> None:
    d = definition([("", "low"), ("", "high"), ("", "mid")],
                   low={"task_priority": "LOWEST"}, high={"task_priority": "HIGHEST"})
    s = DagScheduler(d, failure_strategy=FailureStrategy.CONTINUE)
    assert step(s, {}) == ["high", "mid", "low"]


def test_priority_rank_is_the_ds_ordinal() -> None:
    assert [p.rank for p in Priority] == [0, 1, 2, 3, 4]
    assert Priority("HIGHEST").rank == 0 and Priority.LOWEST.rank == 4


def test_killed_predecessor_drops_successor_and_fails_instance() -> None:
    s = DagScheduler(definition([("", "a"), ("a", "b")]), failure_strategy=FailureStrategy.CONTINUE)
    drain(s, {"a": TaskState.KILL})
    assert by_name(s)["b"] is TaskState.NOT_RUN
    assert s.final_state() is WorkflowState.FAILURE


def test_stop_ends_stop_when_something_was_killed() -> None:
    s = DagScheduler(definition([("", "a"), ("a", "b")]), failure_strategy=FailureStrategy.CONTINUE)
    (a,) = s.ready()
    s.set_state(a, TaskState.RUNNING_EXECUTION, NOW)
    s.request_stop()
    assert s.to_kill() == [a]
    s.finish(a, TaskState.KILL, NOW)
    s.mark_unreached(s.final_state())
    assert s.final_state() is WorkflowState.STOP


CONDITION = {
    "task_type": "CONDITIONS",
    "task_params": {
        "dependence": {"relation": "AND", "dependTaskList": [
            {"relation": "AND", "dependItemList": [{"depTaskCode": 1000000000001, "status": "SUCCESS"}]}]},
        "conditionResult": {"successNode": [1000000000006], "failedNode": [1000000000005]},
    },
}
# names sort to codes: a=1, after_no=2, cond=3, join=4, no=5, yes=6
COND_EDGES = [("", "a"), ("a", "cond"), ("cond", "yes"), ("cond", "no"), ("no", "after_no"),
              ("yes", "join"), ("after_no", "join")]


def test_conditions_success_branch_skips_the_other_and_skip_propagates() -> None:
    s = DagScheduler(definition(COND_EDGES, cond=dict(CONDITION)), failure_strategy=FailureStrategy.CONTINUE)
    step(s, {})
    (cond,) = s.ready()
    s.set_state(cond, TaskState.RUNNING_EXECUTION, NOW)
    assert s.evaluate_conditions(cond) is True
    s.finish(cond, TaskState.SUCCESS, NOW)
    drain(s)
    states = by_name(s)
    assert states["no"] is TaskState.SKIPPED and states["after_no"] is TaskState.SKIPPED
    assert states["yes"] is TaskState.SUCCESS
    assert states["join"] is TaskState.SUCCESS  # one non-skipped predecessor: it runs
    assert s.final_state() is WorkflowState.SUCCESS


def test_failed_task_feeding_a_condition_does_not_fail_the_workflow() -> None:
    s = DagScheduler(definition(COND_EDGES, cond=dict(CONDITION)), failure_strategy=FailureStrategy.END)
    step(s, {"a": TaskState.FAILURE})
    assert not s.end_requested
    (cond,) = s.ready()
    assert s.evaluate_conditions(cond) is False
    s.finish(cond, TaskState.SUCCESS, NOW)
    drain(s)
    states = by_name(s)
    assert states["yes"] is TaskState.SKIPPED and states["no"] is TaskState.SUCCESS
    assert s.final_state() is WorkflowState.SUCCESS


def test_start_nodes_task_post_and_task_only() -> None:
    d = definition(FIVE)
    s = DagScheduler(d, failure_strategy=FailureStrategy.CONTINUE, start_nodes=[d.tasks[2].code])  # c
    assert drain(s) == [["c"], ["d"], ["e"]]
    assert by_name(s)["a"] is TaskState.NOT_RUN
    s = DagScheduler(d, failure_strategy=FailureStrategy.CONTINUE, start_nodes=[d.tasks[3].code],
                     depend_type=TaskDependType.TASK_ONLY)
    assert drain(s) == [["d"]]
