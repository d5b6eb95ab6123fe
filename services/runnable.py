"""Submit-time checks that need more than the document: the stored definitions and Temporal's limits.

A definition is refused (422, every problem with a JSON pointer and task name) when no run of it could
work: its SUB_PROCESS calls close a cycle or enter one, or nest deeper than ``max_sub_process_depth``
(model/sub_process.py, against the latest stored version of every definition they reach); or its
definition or node status cannot fit in a Temporal payload (core/payload_budget.py).
"""

from __future__ import annotations

from typing import Protocol

from core.payload_budget import refusal
from core.settings import Settings
from model import sub_process
from model.definition import WorkflowDefinition
from model.problems import DefinitionError, Problem, pointer


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
