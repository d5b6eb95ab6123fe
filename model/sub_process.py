"""SUB_PROCESS call graphs: refuse definitions that would nest forever, or deeper than a limit.

A SUB_PROCESS child always runs the *latest* version of its target (§4.9), so what can nest at run
time is the graph whose nodes are definition codes and whose edges go from a definition's latest
version to the codes its enabled SUB_PROCESS tasks name. Submit keeps that graph acyclic: a cycle
(a definition calling itself, A → B → A, or through a new version of any of them) and a chain deeper
than the limit are refused with the task that closes it. The workflow checks the same at run time
(definitions stored before this check, callers made deeper later) and fails the node instead of
starting the child.

Pure: the caller loads the stored part of the graph (:func:`reachable`) and passes it in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .definition import TaskDefinition, WorkflowDefinition
from .json_limits import in_int64
from .problems import Problem

DEFAULT_MAX_DEPTH = 10


def target(task: TaskDefinition) -> int | None:
    """The definition code an enabled SUB_PROCESS task starts, None for any other task."""
    if task.task_type != "SUB_PROCESS" or not task.enabled:
        return None
    try:
        code = int(task.task_params.get("processDefinitionCode") or 0)
    except (TypeError, ValueError):
        return None
    return code if code > 0 and in_int64(code) else None


def calls(definition: WorkflowDefinition) -> dict[int, int]:
    """SUB_PROCESS task code -> target definition code."""
    return {t.code: c for t in definition.tasks if (c := target(t)) is not None}


@dataclass(frozen=True)
class Node:
    """One definition in the call graph: its name and the codes its latest version calls."""

    name: str
    callees: frozenset[int]


def node(definition: WorkflowDefinition) -> Node:
    return Node(definition.name, frozenset(calls(definition).values()))


def reachable(roots: Iterable[int], known: Mapping[int, Node], load: Callable[[int], Node | None]
              ) -> dict[int, Node]:
    """The call graph below ``roots``: ``known`` nodes first, the rest from ``load`` (the store).
    Codes that do not exist are left out (a missing target fails at run time, as in DS)."""
    graph: dict[int, Node] = {}
    todo = list(roots)
    seen: set[int] = set()
    while todo:
        code = todo.pop()
        if code in seen:
            continue
        seen.add(code)
        n = known.get(code) or load(code)
        if n is None:
            continue
        graph[code] = n
        todo.extend(n.callees)
    return graph


def find_cycle(start: int, graph: Mapping[int, Node]) -> list[int] | None:
    """A call cycle reachable from ``start`` as a closed path ``[a, b, ..., a]``, or None. Iterative,
    so a long chain of definitions cannot exhaust the stack."""
    grey, black = 1, 2
    color: dict[int, int] = {}
    path: list[int] = []
    stack: list[tuple[int, list[int]]] = [(start, sorted(graph[start].callees) if start in graph else [])]
    color[start] = grey
    path.append(start)
    while stack:
        code, rest = stack[-1]
        if not rest:
            stack.pop()
            path.pop()
            color[code] = black
            continue
        nxt = rest.pop()
        if nxt not in graph:
            continue
        if color.get(nxt) == grey:
            return path[path.index(nxt):] + [nxt]
        if color.get(nxt) != black:
            color[nxt] = grey
            path.append(nxt)
            stack.append((nxt, sorted(graph[nxt].callees)))
    return None


def deepest(start: int, graph: Mapping[int, Node]) -> list[int]:
    """The longest chain of calls from ``start`` (``[start, child, grandchild, ...]``); the graph
    below ``start`` must be acyclic. Its nesting depth is ``len(chain) - 1``."""
    best: dict[int, list[int]] = {}
    order: list[int] = []
    stack: list[tuple[int, bool]] = [(start, False)]
    while stack:  # post-order, iteratively
        code, done = stack.pop()
        if done:
            order.append(code)
            continue
        if code in best or code not in graph:
            continue
        best[code] = []
        stack.append((code, True))
        stack.extend((c, False) for c in graph[code].callees if c not in best)
    for code in order:
        below = [best[c] for c in graph[code].callees if c in graph and best.get(c)]
        best[code] = [code] + max(below, key=len, default=[])
    return best.get(start) or [start]


def path_to(start: int, goal: int, graph: Mapping[int, Node]) -> list[int] | None:
    """A chain of calls ``[start, ..., goal]``, or None when ``goal`` is not reachable (BFS)."""
    parent: dict[int, int | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt: list[int] = []
        for code in frontier:
            if code == goal:
                chain = [code]
                while (p := parent[chain[-1]]) is not None:
                    chain.append(p)
                return chain[::-1]
            for c in sorted(graph[code].callees) if code in graph else []:
                if c not in parent:
                    parent[c] = code
                    nxt.append(c)
        frontier = nxt
    return None


def describe(chain: list[int], graph: Mapping[int, Node]) -> str:
    return " -> ".join(f"{graph[c].name!r}({c})" if c in graph else str(c) for c in chain)


def check(definitions: list[WorkflowDefinition], graph: Mapping[int, Node], max_depth: int,
          task_pointer: Callable[[int, int], str]) -> list[Problem]:
    """Problems of the submitted ``definitions`` against the call graph (the submitted ones already
    in it, the stored ones loaded by :func:`reachable`): per SUB_PROCESS task, the cycle it closes or
    enters, or the chain deeper than ``max_depth`` it starts. ``task_pointer(i, task_index)`` points
    at a task of the i-th submitted definition."""
    problems: list[Problem] = []
    for i, d in enumerate(definitions):
        index = {t.code: j for j, t in enumerate(d.tasks)}
        for task_code, callee in sorted(calls(d).items()):
            name = d.task(task_code).name
            where = task_pointer(i, index[task_code]) + "/taskParams/processDefinitionCode"
            back = path_to(callee, d.code, graph)
            if back is not None:
                problems.append(Problem(where, "SUB_PROCESS calls form a cycle, a run would nest forever: "
                                        + describe([d.code, *back], graph), name, "sub-process-cycle"))
                continue
            loop = find_cycle(callee, graph)
            if loop is not None:
                problems.append(Problem(where, f"SUB_PROCESS calls {describe([callee], graph)}, whose calls form a "
                                        "cycle, a run would nest forever: " + describe(loop, graph),
                                        name, "sub-process-cycle"))
                continue
            chain = [d.code, *deepest(callee, graph)]
            if len(chain) - 1 > max_depth:
                problems.append(Problem(where, f"SUB_PROCESS calls nest {len(chain) - 1} levels deep, over the "
                                        f"limit of {max_depth} (max_sub_process_depth): " + describe(chain, graph),
                                        name, "sub-process-depth"))
    return problems


def offline_problems(definition: WorkflowDefinition, task_ptr: Callable[[int], str]) -> list[Problem]:
    """What needs no store: a SUB_PROCESS naming its own definition, or a code no definition can have."""
    out = []
    for t in definition.tasks:
        where = task_ptr(t.code) + "/taskParams/processDefinitionCode"
        if definition.code and target(t) == definition.code:
            out.append(Problem(where, f"SUB_PROCESS calls its own definition {definition.code}: a run would nest "
                               "forever", t.name, "sub-process-cycle"))
        elif t.task_type == "SUB_PROCESS" and target(t) is None:
            try:
                code = int(t.task_params.get("processDefinitionCode") or 0)
            except (TypeError, ValueError):
                continue  # reported by the task-type check
            if not in_int64(code):
                out.append(Problem(where, f"{code} is out of range: at most a 64-bit integer", t.name, "range"))
    return out


def refusal_at_run_time(chain: list[int], callee: int, max_depth: int) -> str | None:
    """Why a SUB_PROCESS node must not start its child, or None. ``chain`` is the definition codes
    from the root instance down to the one running the node."""
    if callee in chain:
        loop = chain[chain.index(callee):] + [callee]
        return ("sub-process not started: SUB_PROCESS calls form a cycle (definitions "
                + " -> ".join(map(str, loop)) + "), a run would nest forever")
    if len(chain) > max_depth:
        return (f"sub-process not started: it would nest {len(chain)} levels deep, over the limit of "
                f"{max_depth} (max_sub_process_depth); definitions " + " -> ".join(map(str, chain + [callee])))
    return None
