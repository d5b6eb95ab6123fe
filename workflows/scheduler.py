"""The DS 3.2 DAG scheduler as a pure state machine (reference §4.2-§4.7, §5).

:class:`DagScheduler` knows nothing of Temporal: the workflow asks it which nodes are ready, tells it
how each task ended, and asks it for the instance's final state. Keeping it pure makes every DS rule
unit-testable without a server and keeps the workflow small.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from core.contracts import NodeStatus
from model.definition import FailureStrategy, Property, TaskDefinition, TaskDependType, WorkflowDefinition
from model.graph import Dag
from model.states import TaskState, WorkflowState
from model.task_params import ConditionsParams, SwitchParams

RUNNING_STATES = {
    TaskState.SUBMITTED_SUCCESS,
    TaskState.DELAY_EXECUTION,
    TaskState.DISPATCH,
    TaskState.RUNNING_EXECUTION,
}


class DagScheduler:
    def __init__(
        self,
        definition: WorkflowDefinition,
        *,
        failure_strategy: FailureStrategy,
        start_nodes: Iterable[int] = (),
        depend_type: TaskDependType = TaskDependType.TASK_POST,
        prior: Iterable[NodeStatus] = (),
    ) -> None:
        self.definition = definition
        self.failure_strategy = failure_strategy
        self.tasks: dict[int, TaskDefinition] = {t.code: t for t in definition.tasks}
        full = Dag.of(definition)
        self.forbidden = {c for c in full.nodes if not self.tasks[c].enabled}
        self.dag = full.look_through(self.forbidden)
        starts = list(start_nodes)
        self.run_set = full.sub_dag(starts, depend_type) if starts else set(full.nodes)
        self.nodes: dict[int, NodeStatus] = {}
        for code in full.nodes:
            t = self.tasks[code]
            state = TaskState.WAITING
            if code in self.forbidden:
                state = TaskState.FORBIDDEN
            elif code not in self.run_set:
                state = TaskState.NOT_RUN
            self.nodes[code] = NodeStatus(
                code=code, name=t.name, task_type=t.task_type, state=state,
                max_attempts=t.fail_retry_times + 1,
            )
        self.stopping: WorkflowState | None = None  # READY_STOP once stop is requested
        self.pausing = False  # READY_PAUSE: running tasks finish, nothing new starts
        self._never_skip: set[int] = set()  # reachable from a chosen SWITCH branch
        self.draining = False  # finishing running tasks before continue-as-new
        self._order = {c: i for i, c in enumerate(self.dag.nodes)}
        self._topo = self.dag.topological()
        self._topo_index = {c: i for i, c in enumerate(self._topo)}
        self._dirty: set[int] = set(self.dag.nodes)
        self._deferred: dict[int, tuple[int, int]] = {}  # ready nodes -> (priority, order)
        self.end_requested = False  # END strategy hit a failure
        self._keep_prior(prior)

    def _keep_prior(self, prior: Iterable[NodeStatus]) -> None:
        """Recover (§4.14): successful nodes, and the branch decisions already taken, are kept;
        failed, killed, paused and unreached nodes run again."""
        for old in prior:
            node = self.nodes.get(old.code)
            if node is None or node.state is TaskState.FORBIDDEN:
                continue
            if old.state.is_success or old.state is TaskState.SKIPPED:
                self.nodes[old.code] = old.model_copy()

    # -- readiness -----------------------------------------------------------------------------

    def _preds(self, code: int) -> list[int]:
        """Effective predecessors: forbidden looked through, nodes outside the run set satisfied (§4.11)."""
        return [p for p in self.dag.preds[code] if p in self.run_set]

    def _feeds_condition(self, code: int) -> bool:
        return any(self.tasks[s].task_type == "CONDITIONS" for s in self.dag.succs[code])

    def _evaluate(self, code: int) -> TaskState | None:
        """Decide a waiting node: None = keep waiting, SUBMITTED_SUCCESS = ready, else a terminal state."""
        preds = self._preds(code)
        states = [self.nodes[p].state for p in preds]
        if any(s in RUNNING_STATES or s is TaskState.WAITING for s in states):
            return None
        if any(s is TaskState.KILL for s in states):
            return TaskState.NOT_RUN  # DS NON_EXEC: dropped silently (§4.2)
        if preds and all(s is TaskState.SKIPPED for s in states) and code not in self._never_skip:
            return TaskState.SKIPPED  # skip propagates only when every predecessor is skipped (§4.7)
        is_condition = self.tasks[code].task_type == "CONDITIONS"
        if preds and all(s is TaskState.SKIPPED for s in states):
            return TaskState.SUBMITTED_SUCCESS  # a join the chosen SWITCH branch must reach
        for s in states:
            if s is TaskState.SKIPPED:
                continue
            if (s.is_failure or s is TaskState.DEPEND_FAILED) and not is_condition:
                return TaskState.DEPEND_FAILED
            if s is TaskState.NOT_RUN or s is TaskState.PAUSE:
                return TaskState.NOT_RUN
        return TaskState.SUBMITTED_SUCCESS

    def ready(self, limit: int | None = None) -> list[int]:
        """Nodes to dispatch now, highest taskPriority first (§4.16), marking them SUBMITTED_SUCCESS.

        Resolving one node can resolve others (skips and depend-failures cascade), so this loops
        until nothing changes. At most `limit` nodes are released; the rest wait for a free slot.
        """
        if self.stopping or self.end_requested or self.pausing or self.draining:
            return []
        # Only nodes whose predecessors changed are looked at, in topological order, so a finished
        # task costs work proportional to its successors, not to the size of the DAG.
        heap = [self._topo_index[c] for c in self._dirty]
        heapq.heapify(heap)
        self._dirty.clear()
        seen: set[int] = set()
        while heap:
            code = self._topo[heapq.heappop(heap)]
            if code in seen or code in self._deferred:
                continue
            seen.add(code)
            node = self.nodes[code]
            if node.state is not TaskState.WAITING:
                continue
            verdict = self._evaluate(code)
            if verdict is None:
                continue
            if verdict is TaskState.SUBMITTED_SUCCESS:
                self._deferred[code] = (self.tasks[code].task_priority.rank, self._order[code])
                continue
            node.state = verdict  # skips, depend-failures and not-run cascade downstream now
            for s in self.dag.succs[code]:
                heapq.heappush(heap, self._topo_index[s])
        # Ready nodes stay WAITING until a slot frees; the best `limit` of them are released.
        take = len(self._deferred) if limit is None else max(limit, 0)
        out = heapq.nsmallest(take, self._deferred, key=self._deferred.__getitem__)
        for c in out:
            del self._deferred[c]
            self.nodes[c].state = TaskState.SUBMITTED_SUCCESS
        return out

    def _touch(self, code: int) -> None:
        """`code` changed state: its successors must be looked at again."""
        self._dirty.update(self.dag.succs[code])

    # -- transitions ---------------------------------------------------------------------------

    def set_state(self, code: int, state: TaskState, now: datetime | None = None, **fields: Any) -> None:
        node = self.nodes[code]
        node.state = state
        if state is TaskState.RUNNING_EXECUTION and now and node.start_time is None:
            node.start_time = now
        if state.is_finished and now:
            node.end_time = now
        for k, v in fields.items():
            setattr(node, k, v)
        if state.is_finished:
            self._touch(code)

    def finish(self, code: int, state: TaskState, now: datetime, **fields: Any) -> None:
        """A task instance ended. Under END a real failure stops everything else (§4.3)."""
        self.set_state(code, state, now, **fields)
        if (
            state is TaskState.FAILURE
            and self.failure_strategy is FailureStrategy.END
            and not self._feeds_condition(code)
        ):
            self.end_requested = True

    def carry(self) -> dict[str, object]:  # deferred nodes are WAITING and get re-evaluated
        """State for a continuation run: nodes that left WAITING, and the flags that steer the rest."""
        return {
            "nodes": [n.model_copy() for n in self.nodes.values() if n.state is not TaskState.WAITING],
            "never_skip": sorted(self._never_skip),
            "end_requested": self.end_requested,
            "stopping": self.stopping is not None,
        }

    def restore(self, nodes: Iterable[NodeStatus], never_skip: Iterable[int], end_requested: bool,
                stopping: bool) -> None:
        for n in nodes:
            if n.code in self.nodes:
                self.nodes[n.code] = n.model_copy()
        self._never_skip = set(never_skip)
        self._dirty = set(self.dag.nodes)
        self.end_requested = end_requested
        if stopping:
            self.stopping = WorkflowState.READY_STOP

    def request_stop(self) -> None:
        self.stopping = WorkflowState.READY_STOP

    def request_pause(self) -> None:
        self.pausing = True

    @property
    def transient_state(self) -> WorkflowState:
        """The instance state while it runs: READY_STOP / READY_PAUSE while draining (§5)."""
        if self.stopping:
            return WorkflowState.READY_STOP
        if self.pausing:
            return WorkflowState.READY_PAUSE
        return WorkflowState.RUNNING_EXECUTION

    def running(self) -> list[int]:
        return [c for c, n in self.nodes.items() if n.state in RUNNING_STATES]

    def to_kill(self) -> list[int]:
        """Running nodes that must be cancelled now (END after a failure, or stop)."""
        return self.running() if (self.stopping or self.end_requested) else []

    # -- logic tasks ---------------------------------------------------------------------------

    def evaluate_conditions(self, code: int) -> bool:
        """CONDITIONS (§4.7): compare dependItem states, combine with AND/OR; skip the other branch."""
        params = self.tasks[code].params
        assert isinstance(params, ConditionsParams)
        results = []
        for g in params.dependence.depend_task_list:
            item_results = []
            for item in g.depend_item_list:
                node = self.nodes.get(item.dep_task_code)
                item_results.append(node is not None and node.state.has_instance and node.state.value == item.status)
            results.append(_combine(g.relation, item_results))
        ok = _combine(params.dependence.relation, results)
        targets = params.branch_targets()
        chosen = targets.get("conditionResult/successNode" if ok else "conditionResult/failedNode", [])
        other = targets.get("conditionResult/failedNode" if ok else "conditionResult/successNode", [])
        self.nodes[code].branch = chosen
        for c in other:
            # The unchosen list is skipped unconditionally, even if the chosen branch reaches it (§4.7).
            if c in self.nodes and self.nodes[c].state is TaskState.WAITING:
                self.nodes[c].state = TaskState.SKIPPED
                self._touch(c)
        return ok

    def switch_branches(self, code: int) -> list[tuple[str, int | None]]:
        """SWITCH conditions in order, then the default branch with condition None (§4.8)."""
        params = self.tasks[code].params
        assert isinstance(params, SwitchParams)
        return params.branches()

    def default_branch(self, code: int) -> int | None:
        params = self.tasks[code].params
        assert isinstance(params, SwitchParams)
        return params.default_branch()

    def choose_switch(self, code: int, chosen: int | None) -> None:
        """Skip the branches a SWITCH did not take, after PR #14563 (§4.8).

        Every node reachable from the chosen target must still work, so only unchosen targets that the
        chosen branch cannot reach are skipped, and skipping spreads only to nodes whose predecessors
        are all skipped (done by :meth:`ready`). The shape DS 3.2 still gets wrong, an unchosen direct
        target that the chosen branch also reaches, is a join here: it runs after its non-skipped
        predecessors (docs/compatibility.md).
        """
        switch_targets = {c for _, c in self.switch_branches(code) if c is not None}
        default = self.default_branch(code)
        if default is not None:
            switch_targets.add(default)
        need_work: set[int] = set()
        if chosen is not None:
            need_work = {chosen} | self.dag.descendants([chosen])
        self.nodes[code].branch = [chosen] if chosen is not None else []
        self._never_skip |= need_work
        for target in switch_targets - need_work:
            if target in self.nodes and self.nodes[target].state is TaskState.WAITING:
                self.nodes[target].state = TaskState.SKIPPED
                self._touch(target)

    # -- outcome -------------------------------------------------------------------------------

    def mark_unreached(self, final: WorkflowState) -> None:
        """Nodes never reached. A paused instance keeps them WAITING: resume runs them."""
        if final is WorkflowState.PAUSE:
            return
        for n in self.nodes.values():
            if n.state is TaskState.WAITING:
                n.state = TaskState.NOT_RUN

    def instance_var_pool(self) -> list[Property]:
        """The instance's varPool: every successful task's OUT values, later end time wins (§6.4)."""
        done = sorted((n for n in self.nodes.values() if n.state.is_success and n.var_pool),
                      key=lambda n: n.end_time or datetime.min.replace(tzinfo=UTC))
        merged: dict[str, Property] = {}
        for n in done:
            for p in n.var_pool:
                merged[p.prop] = p
        return list(merged.values())

    def final_state(self) -> WorkflowState:
        """3.2 `getProcessInstanceState` for a drained instance (§5).

        Call before :meth:`mark_unreached`: nodes still WAITING are work the stop or pause left undone.
        """
        states = [(c, n.state) for c, n in self.nodes.items()]
        pending = any(s is TaskState.WAITING for _, s in states)
        if self.stopping is WorkflowState.READY_STOP:
            bad = any(s in (TaskState.KILL, TaskState.STOP, TaskState.FAILURE) for _, s in states)
            return WorkflowState.STOP if bad or pending else WorkflowState.SUCCESS
        if self.pausing and (pending or any(s is TaskState.PAUSE for _, s in states)):
            return WorkflowState.PAUSE
        for c, s in states:
            if s is TaskState.DEPEND_FAILED or s is TaskState.KILL:
                return WorkflowState.FAILURE
            if s in (TaskState.FAILURE, TaskState.NEED_FAULT_TOLERANCE) and not self._feeds_condition(c):
                return WorkflowState.FAILURE
            if s is TaskState.PAUSE:
                return WorkflowState.PAUSE  # a paused sub-process child
        return WorkflowState.SUCCESS

    # -- varPool -------------------------------------------------------------------------------

    def upstream_var_pool(self, code: int) -> list[tuple[datetime, list[Property]]]:
        """The direct (effective) predecessors' varPools with their end times, for the 3.2 merge (§6.4)."""
        out = []
        for p in self._preds(code):
            n = self.nodes[p]
            if n.state.is_success and n.var_pool:
                out.append((n.end_time or datetime.min.replace(tzinfo=UTC), list(n.var_pool)))
        return out


def _combine(relation: str, results: list[bool]) -> bool:
    """AND/OR of item results; an empty list is success (3.2 accepts empty dependTaskList, §4.7)."""
    if not results:
        return True
    return any(results) if relation.upper() == "OR" else all(results)
