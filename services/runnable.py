"""Submit-time checks that need more than the document: the stored definitions and Temporal's limits.

A definition is refused (422, every problem with a JSON pointer and task name) when no run of it could
work: its SUB_PROCESS calls close a cycle or enter one, or nest deeper than ``max_sub_process_depth``
(model/sub_process.py, against the latest stored version of every definition they reach); or its
definition or node status cannot fit in a Temporal payload (core/payload_budget.py).

And a general user's definition may not reach into a project they are not authorized for (403,
:func:`check_references`): a SUB_PROCESS task would start, and a DEPENDENT task read the runs (and,
with parameter passing, the varPool) of, another project's definition; nor may its runs alert
another project's alert group (:func:`check_alert_group`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from core.errors import Forbidden
from core.payload_budget import refusal
from core.settings import Settings
from model import sub_process
from model.definition import TaskDefinition, WorkflowDefinition
from model.dependent import parse_dependence
from model.problems import DefinitionError, Problem, pointer
from model.task_params import SubProcessParams, TaskParamsError
from storage.alerts import group_project
from storage.security import Principal


class DefinitionLookup(Protocol):
    def get(self, code: int, version: int | None = None) -> WorkflowDefinition | None: ...


def task_pointer(definitions: list[WorkflowDefinition], i: int, j: int) -> str:
    """Where the j-th task of the i-th submitted definition was, as the parser numbers it: a DS
    export is an array of definitions, the create-API form one definition with taskDefinitionJson."""
    if definitions[i].source_format.startswith("export"):
        return pointer(i, "taskDefinitionList", j)
    return pointer("taskDefinitionJson", j)


def definition_pointer(definitions: list[WorkflowDefinition], i: int) -> str:
    return pointer(i) if definitions[i].source_format.startswith("export") else ""


def problems(store: DefinitionLookup, definitions: list[WorkflowDefinition], settings: Settings) -> list[Problem]:
    found: list[Problem] = []
    for i, d in enumerate(definitions):
        why = refusal(d, settings.temporal_payload_limit_bytes, str(settings.resolved_log_dir))
        if why:
            found.append(Problem(definition_pointer(definitions, i), why, None, "too-large-to-run"))

    def load(code: int) -> sub_process.Node | None:
        stored = store.get(code)
        return sub_process.node(stored) if stored is not None else None

    known = {d.code: sub_process.node(d) for d in definitions if d.code}
    callees = [c for d in definitions for c in sub_process.calls(d).values()]
    graph = sub_process.reachable([*known, *callees], known, load)
    found += sub_process.check(definitions, graph, settings.max_sub_process_depth,
                               lambda i, j: task_pointer(definitions, i, j))
    return found


def check(store: DefinitionLookup, definitions: list[WorkflowDefinition], settings: Settings) -> None:
    """Raise :class:`DefinitionError` when a submitted definition could never run."""
    found = problems(store, definitions, settings)
    if found:
        raise DefinitionError(found)


# -- cross-project references ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A definition a task names: ``project`` is the project the task itself declares (a DEPENDENT
    item's ``projectCode``; 0 when it names none)."""

    task: TaskDefinition
    definition_code: int
    project: int = 0


def references(definition: WorkflowDefinition) -> list[Reference]:
    """Every definition the SUB_PROCESS and DEPENDENT tasks name, disabled tasks too (a later start
    may enable them). Unreadable parameters are validation's business, not this check's."""
    found: list[Reference] = []
    for task in definition.tasks:
        if task.task_type == "SUB_PROCESS":
            try:
                code = SubProcessParams.of(task.task_params).definition_code
            except (TaskParamsError, ValueError):
                continue
            if code > 0:
                found.append(Reference(task, code))
        elif task.task_type == "DEPENDENT":
            try:
                items = parse_dependence(task.task_params).items
            except (TaskParamsError, ValueError):
                continue
            found += [Reference(task, i.definition_code, i.project_code) for i in items]
    return found


def foreign_references(store: DefinitionLookup, definitions: list[WorkflowDefinition],
                       principal: Principal) -> list[Problem]:
    """The references of ``definitions`` into projects ``principal`` is not authorized for: the project
    a DEPENDENT item declares, and the project the named definition really is in (the submitted batch's
    own definitions first, then the latest stored version, which is what a SUB_PROCESS starts). A
    definition that does not exist is not refused here: it fails at run time, as in DS, and whoever
    creates it later in a foreign project is caught by the check at start."""
    if principal.is_admin:
        return []
    batch = {d.code: d.project_code for d in definitions if d.code}
    stored: dict[int, int | None] = {}

    def project_of(code: int) -> int | None:
        if code in batch:
            return batch[code]
        if code not in stored:
            d = store.get(code)
            stored[code] = d.project_code if d is not None else None
        return stored[code]

    found: list[Problem] = []
    for i, d in enumerate(definitions):
        positions = {id(t): j for j, t in enumerate(d.tasks)}
        for ref in references(d):
            projects = {p for p in (ref.project, project_of(ref.definition_code)) if p}
            denied = sorted(p for p in projects if not principal.may_use_project(int(p)))
            if denied:
                found.append(Problem(
                    task_pointer(definitions, i, positions[id(ref.task)]),
                    f"task {ref.task.name!r} ({ref.task.task_type}) references definition {ref.definition_code} "
                    f"of project {', '.join(map(str, denied))}, which you are not authorized for",
                    ref.task.name, "foreign-project"))
    return found


def check_references(store: DefinitionLookup, definitions: list[WorkflowDefinition],
                     principal: Principal | None) -> None:
    """Raise :class:`Forbidden` (403) naming each task that references another project's definition
    the caller may not use. ``principal`` None: an internal caller (a schedule, the worker): no check."""
    if principal is None:
        return
    found = foreign_references(store, definitions, principal)
    if found:
        raise Forbidden("; ".join(p.message for p in found), title="Forbidden", problems=found)


async def check_access(store: DefinitionLookup, engine: Engine, definitions: list[WorkflowDefinition],
                       group_ids: list[int | None], principal: Principal | None) -> None:
    """:func:`check_references` and :func:`check_alert_group` in one trip to the thread pool, and none
    for an internal caller or an administrator, whom neither refuses (a run start asks both)."""
    if principal is None or principal.is_admin:
        return

    def both() -> None:
        check_references(store, definitions, principal)
        check_alert_group(engine, group_ids, principal)

    await run_in_threadpool(both)


def check_alert_group(engine: Engine, group_ids: list[int | None], principal: Principal | None) -> None:
    """Raise :class:`Forbidden` when a run's ``warningGroupId`` names an alert group of a project
    ``principal`` is not authorized for: its channels would get this run's status and start params.
    Global groups and unknown ids pass (an unknown group alerts nobody, as in DS)."""
    if principal is None or principal.is_admin:
        return
    for group_id in {g for g in group_ids if g}:
        _, project = group_project(engine, int(group_id))
        if project is not None and not principal.may_use_project(int(project)):
            raise Forbidden(f"warningGroupId {group_id} is an alert group of project {project}, which you are not "
                            "authorized for", title="Forbidden")
