"""DEPENDENT checks (reference §4.10): find other workflows' instances through Temporal visibility.

One call judges each item once; the workflow polls every ``checkInterval`` seconds and combines the
results (:func:`model.dependent.decide`). For each item and each of its date intervals the latest
instance of the target definition whose business time falls in the interval is judged:

* business time = ``DsScheduleTime`` when the run has one, else its ``StartTime`` (DS: scheduled
  instances by schedule time, manual ones by start time);
* "latest" = the most recently created instance (DS: the higher instance id). An instance is a
  workflow id; reruns and recovers are later runs of it, and its current state is its latest run's.

Nothing here raises for "not found": a missing or unreadable instance is WAITING. Errors reaching
the Temporal service itself propagate, so the activity is retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from temporalio import activity
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError, RPCStatusCode

from core import search_attributes as sa
from core.contracts import WORKFLOW_TYPE, Activities, InstanceStatus, NodeStatus, Queries
from core.contracts.dependent import DependentCheckRequest, DependentCheckResponse
from core.temporal import final_status
from model.definition import Property
from model.dependent import (
    ALL_TASKS,
    WORKFLOW,
    DependItem,
    DependResult,
    ItemCheck,
    date_intervals,
    has_task_instance,
    instance_result,
)
from model.states import TaskState, WorkflowState

__all__ = ["DependentActivities"]

QUERY_TIMEOUT = timedelta(seconds=10)  # a running instance that cannot answer (no worker) is WAITING


@dataclass
class _Run:
    workflow_id: str
    start_time: datetime
    schedule_time: datetime | None

    @property
    def business_time(self) -> datetime:
        return self.schedule_time or self.start_time


@dataclass
class _Instance:
    instance_id: str
    state: WorkflowState
    finished: bool
    nodes: list[NodeStatus] = field(default_factory=list)
    var_pool: list[Property] = field(default_factory=list)
    end_time: datetime | None = None
    readable: bool = True  # False: closed from outside and its status could not be read


def _ts(moment: datetime) -> str:
    """RFC 3339 in UTC, as visibility queries want it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def newest_first(runs: Sequence[_Run], start: datetime, end: datetime) -> list[str]:
    """Instances with a run whose business time is in [start, end], the most recently (re)started
    first: an instance's order is its latest matching run's start, so a rerun makes it the latest, as
    DS's "order by end_time desc" does for a rerun that finished last. Ties: larger workflow id first."""
    latest: dict[str, datetime] = {}
    for r in runs:
        if start <= r.business_time <= end:
            t = latest.get(r.workflow_id)
            latest[r.workflow_id] = r.start_time if t is None else max(t, r.start_time)
    return [wid for wid, _ in sorted(latest.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


class DependentActivities:
    """``check_dependent``, with the Temporal client it reads visibility through.

    ``forced_success(instance_id) -> task codes`` is the API store's record of tasks forced to
    success on finished instances (DS FORCED_SUCCESS counts as success); optional.
    """

    def __init__(self, client: Client, forced_success: Callable[[str], set[int]] | None = None,
                 workflow_type: str = WORKFLOW_TYPE) -> None:
        self.client = client
        self.forced_success = forced_success
        self.workflow_type = workflow_type

    @activity.defn(name=Activities.CHECK_DEPENDENT)
    async def check_dependent(self, request: DependentCheckRequest) -> DependentCheckResponse:
        zone = _zone(request.timezone)
        business = request.business_date
        business = (business.replace(tzinfo=zone) if business.tzinfo is None else business).astimezone(zone)
        instances: dict[str, _Instance | None] = {}
        out = []
        for item in request.items:
            check = await self._check_item(item, request, business, instances)
            activity.logger.info("dependent item %s: %s (%s)", check.key, check.result.value, check.detail)
            out.append(check)
        return DependentCheckResponse(items=out)

    # -- one item ----------------------------------------------------------------------------------

    async def _check_item(self, item: DependItem, request: DependentCheckRequest, business: datetime,
                          instances: dict[str, _Instance | None]) -> ItemCheck:
        key = item.key
        if self._self_dependent(item, request) and await self._is_first_instance(item, request, business):
            return ItemCheck(key=key, result=DependResult.SUCCESS,
                             detail="depends on its own definition and this is its first instance")
        intervals = date_intervals(business, item.date_value)
        if not intervals:
            return ItemCheck(key=key, result=DependResult.FAILED, detail=f"unknown dateValue {item.date_value!r}")
        runs = await self._runs(item.definition_code, intervals[0][0], intervals[-1][1])
        result = DependResult.FAILED
        matched: str | None = None
        pool: dict[str, Property] = {}
        end_time: datetime | None = None
        detail = ""
        for start, end in intervals:
            inst = await self._candidate(item, newest_first(runs, start, end), instances)
            if inst is None:
                what = "instance"
                if item.dep_task_code not in (WORKFLOW, ALL_TASKS):
                    what = f"instance that ran task {item.dep_task_code}"
                return ItemCheck(key=key, result=DependResult.WAITING,
                                 detail=f"no {what} in [{start.isoformat()}, {end.isoformat()}]")
            matched = inst.instance_id
            if not inst.readable:
                result, detail = DependResult.FAILED, f"instance ended {inst.state.value}"
                break
            result, out_pool, finished_at, detail = instance_result(
                item.dep_task_code, state=inst.state, finished=inst.finished, nodes=inst.nodes,
                var_pool=inst.var_pool, end_time=inst.end_time)
            if result is not DependResult.SUCCESS:
                break
            for p in out_pool:  # DS addItemVarPool: putAll, a later interval overrides an earlier one
                pool[p.prop] = p
            if finished_at is not None:
                end_time = finished_at if end_time is None else max(end_time, finished_at)
        return ItemCheck(
            key=key, result=result, instance_id=matched, detail=detail,
            end_time=end_time if result is DependResult.SUCCESS else None,
            var_pool=list(pool.values()) if item.parameter_passing and result is DependResult.SUCCESS else [],
        )

    async def _candidate(self, item: DependItem, instance_ids: Sequence[str],
                         instances: dict[str, _Instance | None]) -> _Instance | None:
        """The newest instance that qualifies for the item (:func:`has_task_instance`). One whose
        status cannot be read right now stops the search: judging an older one instead could give a
        stale answer, so the item waits."""
        for instance_id in instance_ids:
            if instance_id not in instances:
                instances[instance_id] = await self._instance(instance_id)
            inst = instances[instance_id]
            if inst is None:
                return None
            if not inst.readable or has_task_instance(item.dep_task_code, inst.nodes):
                return inst
        return None

    # -- visibility --------------------------------------------------------------------------------

    def _base_query(self, definition_code: int) -> str:
        return f"WorkflowType = {_quote(self.workflow_type)} AND DsDefinitionCode = {int(definition_code)}"

    async def _runs(self, definition_code: int, start: datetime, end: datetime) -> list[_Run]:
        """Every run of the definition whose business time is in [start, end], in one query."""
        a, b = _quote(_ts(start)), _quote(_ts(end))
        query = (f"{self._base_query(definition_code)} AND ((DsScheduleTime >= {a} AND DsScheduleTime <= {b})"
                 f" OR (DsScheduleTime IS NULL AND StartTime >= {a} AND StartTime <= {b}))")
        runs = []
        async for wf in self.client.list_workflows(query):
            runs.append(_Run(wf.id, wf.start_time, wf.typed_search_attributes.get(sa.DS_SCHEDULE_TIME)))
        return runs

    async def _count(self, query: str) -> int:
        return (await self.client.count_workflows(query)).count

    @staticmethod
    def _self_dependent(item: DependItem, request: DependentCheckRequest) -> bool:
        """DS ``isSelfDependent``: same definition, and the item is "all tasks" or this very task."""
        return bool(request.definition_code) and item.definition_code == request.definition_code and (
            item.dep_task_code == ALL_TASKS or item.dep_task_code == request.task_code)

    async def _is_first_instance(self, item: DependItem, request: DependentCheckRequest, business: datetime) -> bool:
        """DS ``isFirstProcessInstance``: the first instance by schedule time (any scheduled one wins
        over manual ones), else by start time, is the requester."""
        base = f"{self._base_query(item.definition_code)} AND WorkflowId != {_quote(request.instance_id)}"
        if request.scheduled:
            return await self._count(f"{base} AND DsScheduleTime < {_quote(_ts(business))}") == 0
        if await self._count(f"{base} AND DsScheduleTime IS NOT NULL") > 0:
            return False
        if request.started is None:
            return False
        return await self._count(f"{base} AND StartTime < {_quote(_ts(request.started))}") == 0

    # -- one instance ------------------------------------------------------------------------------

    async def _instance(self, instance_id: str) -> _Instance | None:
        """The instance's DS status as the API shows it; None when it cannot be told right now."""
        try:
            desc = await self.client.get_workflow_handle(instance_id).describe()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        handle = self.client.get_workflow_handle(instance_id, run_id=desc.run_id, result_type=InstanceStatus)
        status: InstanceStatus | None = None
        closed_from_outside = False
        try:
            if desc.status in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.FAILED):
                status = await final_status(self.client, instance_id, desc.status, desc.run_id)
                if status is None:  # failed before it had a DAG (definition gone, ...)
                    return _Instance(instance_id, WorkflowState.FAILURE, True, readable=False)
            elif desc.status == WorkflowExecutionStatus.RUNNING:
                status = await handle.query(Queries.STATUS, result_type=InstanceStatus, rpc_timeout=QUERY_TIMEOUT)
            else:  # terminated, cancelled or timed out from outside Porpoise
                closed_from_outside = True
                try:
                    status = await handle.query(Queries.STATUS, result_type=InstanceStatus, rpc_timeout=QUERY_TIMEOUT)
                except (WorkflowQueryFailedError, WorkflowQueryRejectedError, RPCError):
                    return _Instance(instance_id, WorkflowState.STOP, True, readable=False)
        except (WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return None  # a running instance that cannot answer yet (no worker, first task pending)
        except RPCError as e:
            if e.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.DEADLINE_EXCEEDED):
                return None
            raise
        assert status is not None
        finished = desc.status != WorkflowExecutionStatus.RUNNING
        state = status.state
        if finished and not state.is_finished:
            state = WorkflowState.STOP if closed_from_outside else WorkflowState.FAILURE
        nodes = status.nodes
        if finished and self.forced_success is not None:
            forced = await asyncio.to_thread(self.forced_success, instance_id)
            if forced:
                nodes = [n.model_copy(update={"state": TaskState.FORCED_SUCCESS})
                         if n.code in forced and n.state in (TaskState.FAILURE, TaskState.KILL) else n
                         for n in nodes]
        return _Instance(instance_id, state, finished, nodes=nodes, var_pool=status.var_pool,
                         end_time=status.end_time or desc.close_time)
