"""Semantic checks of a parsed definition: codes, names, relations, cycles, task parameters."""

from __future__ import annotations

from collections import Counter

from .definition import WorkflowDefinition
from .graph import Dag
from .problems import Problem, pointer
from .sub_process import offline_problems
from .task_types import branch_targets, check_task


def validate(
    definition: WorkflowDefinition,
    *,
    task_ptrs: dict[int, str] | None = None,
    relations_ptr: str = "/relations",
) -> list[Problem]:
    """Every problem with the definition; an empty list means it can be stored and run."""
    task_ptrs = task_ptrs or {t.code: pointer("tasks", i) for i, t in enumerate(definition.tasks)}
    problems: list[Problem] = []
    names = {t.code: t.name for t in definition.tasks}

    def tptr(code: int) -> str:
        return task_ptrs.get(code, "")

    for code, n in Counter(t.code for t in definition.tasks).items():
        if n > 1:
            problems.append(Problem(tptr(code) + "/code", f"task code {code} is used by {n} tasks",
                                    names.get(code), "duplicate"))
    for name, n in Counter(t.name for t in definition.tasks).items():
        if n > 1:
            code = next(t.code for t in definition.tasks if t.name == name)
            problems.append(Problem(tptr(code) + "/name",
                                    f"task name {name!r} is used by {n} tasks; names are unique in a workflow",
                                    name, "duplicate"))
    known = set(names)
    for i, r in enumerate(definition.relations):
        for side, code in (("preTaskCode", r.pre_task_code), ("postTaskCode", r.post_task_code)):
            if code != 0 and code not in known:
                problems.append(Problem(f"{relations_ptr}/{i}/{side}",
                                        f"relation names task code {code}, which is not in the task list",
                                        None, "unknown-code"))
    posts = {r.post_task_code for r in definition.relations}
    for t in definition.tasks:
        if t.code not in posts:
            problems.append(Problem(tptr(t.code), "the task appears in no relation as postTaskCode; DS would "
                                    "silently drop it. Add a relation with preTaskCode 0 to make it a root",
                                    t.name, "unlinked"))
    for t in definition.tasks:
        problems.extend(check_task(t, tptr(t.code)))
        for path, codes in branch_targets(t).items():
            for c in codes:
                if c not in known:
                    problems.append(Problem(f"{tptr(t.code)}/taskParams/{path}",
                                            f"branch target {c} is not a task of this workflow", t.name,
                                            "unknown-code"))
    problems.extend(offline_problems(definition, tptr))
    cycle = Dag.of(definition).find_cycle()
    if cycle:
        named = " -> ".join(f"{names.get(c, c)!s}({c})" for c in cycle)
        problems.append(Problem(relations_ptr, f"the task relations contain a cycle: {named}",
                                names.get(cycle[0]), "cycle"))
    return problems
