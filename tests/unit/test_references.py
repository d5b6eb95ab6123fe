"""services.runnable.foreign_references: which SUB_PROCESS and DEPENDENT references a general user may
not make (issue 12), against an in-memory definition lookup."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.errors import Forbidden
from model.definition import WorkflowDefinition
from model.formats import parse_text
from services.runnable import check_references, foreign_references
from storage.security import Principal
from tests import dsbuild

A, B = 101, 202
ALICE = Principal(1, "alice", False, frozenset({A}))
ADMIN = Principal(2, "root", True)


def parse(doc: list[dict[str, Any]]) -> WorkflowDefinition:
    (d,) = parse_text(json.dumps(doc).encode())
    return d


class Lookup:
    def __init__(self, *definitions: WorkflowDefinition) -> None:
        self.by_code = {d.code: d for d in definitions}

    def get(self, code: int, version: int | None = None) -> WorkflowDefinition | None:
        return self.by_code.get(code)


def sub(name: str, code: int, **fields: Any) -> dict[str, Any]:
    return dsbuild.task(name, task_type="SUB_PROCESS", params={"processDefinitionCode": code}, **fields)


def dep(name: str, code: int, project: int) -> dict[str, Any]:
    return dsbuild.task(name, task_type="DEPENDENT", params={"dependence": {"dependTaskList": [
        {"relation": "AND", "dependItemList": [{"projectCode": project, "definitionCode": code,
                                                "depTaskCode": 0, "cycle": "day", "dateValue": "today"}]}]}})


def of(task: dict[str, Any], project: int = A, **meta: Any) -> WorkflowDefinition:
    return parse(dsbuild.export("d", [task], [(None, task["name"])], projectCode=project, **meta))


B_DEF = of(dsbuild.task("t"), B)
A_DEF = of(dsbuild.task("t"), A)
STORE = Lookup(A_DEF, B_DEF)


@pytest.mark.parametrize("task", [
    sub("s", B_DEF.code),
    sub("s", B_DEF.code, flag="NO"),  # disabled now, enabled by a later version or start
    dep("d", B_DEF.code, B),
    dep("d", B_DEF.code, A),  # declares A, names B's definition
    dep("d", A_DEF.code, B),  # names A's definition, declares B
    dep("d", 999_999, B),  # a definition that does not exist, in a project declared foreign
])
def test_a_reference_into_another_project_is_refused(task: dict[str, Any]) -> None:
    (problem,) = foreign_references(STORE, [of(task)], ALICE)
    assert problem.task == task["name"] and str(B) in problem.message
    assert problem.pointer == "/0/taskDefinitionList/0" and problem.code == "foreign-project"
    with pytest.raises(Forbidden, match=str(B)):
        check_references(STORE, [of(task)], ALICE)
    assert foreign_references(STORE, [of(task)], ADMIN) == []
    check_references(STORE, [of(task)], None)  # internal callers are not checked


@pytest.mark.parametrize("task", [sub("s", A_DEF.code), dep("d", A_DEF.code, A), dep("d", A_DEF.code, 0),
                                  sub("s", 999_999), dsbuild.task("plain")])
def test_references_within_the_project_pass(task: dict[str, Any]) -> None:
    assert foreign_references(STORE, [of(task)], ALICE) == []


def test_the_submitted_batch_wins_over_the_store() -> None:
    moved_to_a = of(dsbuild.task("t"), A, code=B_DEF.code)  # a new version of B's code in A (the API refuses
    caller = of(sub("s", B_DEF.code))                        # the move itself; this is only the lookup order)
    assert foreign_references(STORE, [caller, moved_to_a], ALICE) == []
    new_in_b = of(dsbuild.task("t"), B)
    problems = foreign_references(STORE, [of(sub("s", new_in_b.code)), new_in_b], ALICE)
    assert [p.task for p in problems] == ["s"]
