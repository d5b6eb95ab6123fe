"""The DAG of a workflow definition, and the graph algorithms DS semantics need.

Built from relations as DS builds it (reference §4.1): nodes are the tasks named as `postTaskCode`,
edges are relations with `preTaskCode` != 0, roots are nodes without predecessors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .definition import TaskDependType, WorkflowDefinition


@dataclass(frozen=True)
class Dag:
    nodes: tuple[int, ...]  # in definition order
    preds: dict[int, tuple[int, ...]] = field(default_factory=dict)
    succs: dict[int, tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def from_edges(cls, nodes: Iterable[int], edges: Iterable[tuple[int, int]]) -> Dag:
        node_list = list(dict.fromkeys(nodes))
        preds: dict[int, list[int]] = {n: [] for n in node_list}
        succs: dict[int, list[int]] = {n: [] for n in node_list}
        for a, b in edges:
            if a in preds and b in preds and a not in preds[b]:
                preds[b].append(a)
                succs[a].append(b)
        return cls(
            tuple(node_list),
            {k: tuple(v) for k, v in preds.items()},
            {k: tuple(v) for k, v in succs.items()},
        )

    @classmethod
    def of(cls, definition: WorkflowDefinition) -> Dag:
        """Nodes are post-task codes that name a task; tasks with no relation row are dropped (§1.1)."""
        known = {t.code for t in definition.tasks}
        posts = {r.post_task_code for r in definition.relations}
        nodes = [t.code for t in definition.tasks if t.code in posts]
        edges = [
            (r.pre_task_code, r.post_task_code)
            for r in definition.relations
            if r.pre_task_code != 0 and r.pre_task_code in known and r.post_task_code in known
        ]
        return cls.from_edges(nodes, edges)

    @property
    def roots(self) -> tuple[int, ...]:
        return tuple(n for n in self.nodes if not self.preds[n])

    def find_cycle(self) -> list[int] | None:
        """A cycle as a closed list of codes ``[a, b, ..., a]``, or None when the graph is acyclic."""
        white, grey, black = 0, 1, 2
        color = dict.fromkeys(self.nodes, white)
        stack: list[int] = []
        for start in self.nodes:
            if color[start] != white:
                continue
            # iterative DFS keeping the grey path in `stack`
            iters = [iter(self.succs[start])]
            color[start] = grey
            stack.append(start)
            while iters:
                nxt = next(iters[-1], None)
                if nxt is None:
                    iters.pop()
                    color[stack.pop()] = black
                    continue
                if color[nxt] == grey:
                    return stack[stack.index(nxt) :] + [nxt]
                if color[nxt] == white:
                    color[nxt] = grey
                    stack.append(nxt)
                    iters.append(iter(self.succs[nxt]))
        return None

    def topological(self) -> list[int]:
        indeg = {n: len(self.preds[n]) for n in self.nodes}
        ready = [n for n in self.nodes if indeg[n] == 0]
        out: list[int] = []
        while ready:
            n = ready.pop(0)
            out.append(n)
            for s in self.succs[n]:
                indeg[s] -= 1
                if indeg[s] == 0:
                    ready.append(s)
        return out

    def descendants(self, starts: Iterable[int]) -> set[int]:
        return self._walk(starts, self.succs)

    def ancestors(self, starts: Iterable[int]) -> set[int]:
        return self._walk(starts, self.preds)

    @staticmethod
    def _walk(starts: Iterable[int], adj: dict[int, tuple[int, ...]]) -> set[int]:
        seen: set[int] = set()
        todo = list(starts)
        while todo:
            n = todo.pop()
            for m in adj.get(n, ()):
                if m not in seen:
                    seen.add(m)
                    todo.append(m)
        return seen

    def look_through(self, forbidden: set[int]) -> Dag:
        """The DAG with forbidden nodes bypassed: A -> [forbidden B] -> C behaves as A -> C (§4.6).

        Forbidden nodes stay in the graph (they are shown as FORBIDDEN) but have no edges.
        """
        edges: list[tuple[int, int]] = []
        for n in self.nodes:
            if n in forbidden:
                continue
            for p in self._effective_preds(n, forbidden):
                edges.append((p, n))
        return Dag.from_edges(self.nodes, edges)

    def _effective_preds(self, node: int, forbidden: set[int]) -> list[int]:
        out: list[int] = []
        todo = list(self.preds[node])
        seen: set[int] = set()
        while todo:
            p = todo.pop(0)
            if p in seen:
                continue
            seen.add(p)
            if p in forbidden:
                todo.extend(self.preds[p])
            else:
                out.append(p)
        return out

    def sub_dag(self, start_nodes: Iterable[int], depend: TaskDependType) -> set[int]:
        """Nodes run for a start-node list and taskDependType (reference §4.11)."""
        starts = set(start_nodes)
        if not starts:
            return set(self.nodes) if depend is TaskDependType.TASK_POST else set()
        if depend is TaskDependType.TASK_ONLY:
            return starts
        if depend is TaskDependType.TASK_PRE:
            return starts | self.ancestors(starts)
        return starts | self.descendants(starts)
