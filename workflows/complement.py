"""Complement data (backfill, reference §4.13) as one Temporal workflow: observable, stoppable, durable.

The API computes the business dates (the schedule's fire times in the range, or daily at midnight,
or the given list) and their order; this workflow runs one ``DsWorkflow`` child per date with
``command_type`` ``COMPLEMENT_DATA`` and ``schedule_time`` = the date, so ``system.biz.date`` and
``$[...]`` use it.

* **Serial** (``RUN_MODE_SERIAL``): one chain. The next date starts only after the previous one
  succeeded; a date that does not succeed stops the chain, as DS does (#12361), unless
  ``continue_on_failure``.
* **Parallel** (``RUN_MODE_PARALLEL``): ``chains`` chains, the dates dealt round-robin over them as
  DS 3.2 does (date ``i`` of the ordered list goes to chain ``i mod chains``); each chain is serial as
  above, so a failure stops only its own chain.

Stop = cancel the workflow (API, CLI or the Temporal UI): running children get DS's stop signal and
end STOP, nothing new starts, and the complement ends STOP. Terminating it cancels the children too
(parent close policy REQUEST_CANCEL, which DsWorkflow treats as a stop). Progress is the ``progress``
query. The history stays bounded: after ``max_children_per_run`` children (or when Temporal suggests
it) no new child starts; once the running ones end the workflow continues as new, carrying each
date's state.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

from temporalio import workflow
from temporalio.common import Priority
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from core import search_attributes as sa
    from core.contracts import WORKFLOW_TASK_TIMEOUT, WORKFLOW_TYPE, InstanceStatus, Signals
    from core.contracts.complement import (  # the contract; re-exported for the API and tests
        COMMAND_TYPE,
        COMPLEMENT_WORKFLOW_TYPE,
        PROGRESS_QUERY,
        ComplementInput,
        ComplementStatus,
        ExecutionOrder,
        RunMode,
        child_id,
    )
    from model.states import WorkflowState


def deal(n: int, chains: int) -> list[list[int]]:
    """Round-robin: date ``i`` (of the ordered list) goes to chain ``i mod chains`` (DS 3.2)."""
    chains = max(1, min(chains, n)) if n else 1
    return [list(range(c, n, chains)) for c in range(chains)]


_FINISHED = {WorkflowState.SUCCESS, WorkflowState.FAILURE, WorkflowState.STOP, WorkflowState.PAUSE}


@workflow.defn(name=COMPLEMENT_WORKFLOW_TYPE)
class ComplementWorkflow:
    @workflow.init
    def __init__(self, input: ComplementInput) -> None:
        self._in = input
        n = len(input.dates)
        self._states: list[WorkflowState | None] = list(input.states) if input.states else [None] * n
        self._lanes = deal(n, input.chains)
        self._stopping = False
        self._draining = False
        self._started_here = 0
        self._running: dict[int, str] = {}  # date index -> child instance id
        self._start: datetime | None = input.started_at
        self._end: datetime | None = None
        self._state = WorkflowState.RUNNING_EXECUTION

    @workflow.run
    async def run(self, input: ComplementInput) -> ComplementStatus:
        if self._start is None:
            self._start = workflow.now()
        chains = [asyncio.create_task(self._chain(lane)) for lane in self._lanes]

        def all_done() -> bool:
            return all(t.done() for t in chains)

        try:
            await workflow.wait_condition(all_done)
        except asyncio.CancelledError:  # cancelled from outside: a DS stop of the whole complement
            self._request_stop()
            await workflow.wait_condition(all_done)
        for t in chains:
            if t.exception() is not None:
                raise RuntimeError("Porpoise complement error") from t.exception()  # fails the task: retried
        if self._draining and not self._stopping and self._pending():
            await workflow.wait_condition(workflow.all_handlers_finished)
            workflow.continue_as_new(input.model_copy(update={
                "states": self._states, "started_at": self._start, "continued": input.continued + 1}))
        self._end = workflow.now()
        if self._stopping:
            self._state = WorkflowState.STOP
        elif all(s is WorkflowState.SUCCESS for s in self._states):
            self._state = WorkflowState.SUCCESS
        else:
            self._state = WorkflowState.FAILURE
        workflow.upsert_search_attributes([sa.DS_STATE.value_set(self._state.value)])
        status = self.progress()
        if self._state is WorkflowState.FAILURE:
            failed = sum(1 for s in self._states if s is not None and s is not WorkflowState.SUCCESS)
            raise ApplicationError(f"complement ended FAILURE: {failed} of {len(self._states)} dates did not "
                                   "succeed", status, type="ComplementFailure", non_retryable=True)
        return status

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> ComplementStatus:
        i = self._in
        state = self._state
        if state is WorkflowState.RUNNING_EXECUTION and self._stopping:
            state = WorkflowState.READY_STOP
        return ComplementStatus(
            complement_id=i.complement_id, definition_code=i.definition_code,
            definition_version=i.definition_version, definition_name=i.definition_name,
            project_code=i.project_code, state=state, run_mode=i.run_mode, chains=len(self._lanes),
            execution_order=i.execution_order, continue_on_failure=i.continue_on_failure, dates=i.dates,
            states=list(self._states), start_time=self._start, end_time=self._end, continued=i.continued,
        )

    # -- chains ----------------------------------------------------------------------------------

    def _pending(self) -> bool:
        """Some chain still has a date to run (not stopped by a failure)."""
        return any(self._next_in(lane) is not None for lane in self._lanes)

    def _next_in(self, lane: list[int]) -> int | None:
        """The lane's next date to start; None when the lane is done or stopped by a failure."""
        for i in lane:
            st = self._states[i]
            if st is None:
                return i
            if st is not WorkflowState.SUCCESS and not self._in.continue_on_failure:
                return None  # a failure stopped this chain (DS)
        return None

    async def _chain(self, lane: list[int]) -> None:
        while not self._stopping:
            i = self._next_in(lane)
            if i is None:
                return
            if self._draining or self._started_here >= self._in.max_children_per_run or \
                    workflow.info().is_continue_as_new_suggested():
                self._draining = True  # let running children end, then continue as new
                return
            self._started_here += 1
            # SUBMITTED until the server has the child: a status reader may look the instance up at once.
            self._states[i] = WorkflowState.SUBMITTED_SUCCESS
            self._states[i] = await self._run_date(i)

    async def _run_date(self, i: int) -> WorkflowState:
        inp = self._in
        date = inp.dates[i]
        cid = child_id(inp.complement_id, date)
        run_input = inp.template.model_copy(update={
            "instance_id": cid, "schedule_time": date, "command_type": COMMAND_TYPE})
        try:
            handle = await workflow.start_child_workflow(
                WORKFLOW_TYPE, run_input, id=cid, result_type=InstanceStatus,
                task_queue=inp.child_task_queue or workflow.info().task_queue,
                task_timeout=WORKFLOW_TASK_TIMEOUT,
                parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
                search_attributes=sa.of_instance(inp.project_code, inp.definition_code, inp.definition_name,
                                                 inp.definition_version, schedule_time=date),
                static_summary=f"{inp.definition_name} v{inp.definition_version} ({COMMAND_TYPE} "
                               f"{date.isoformat()}, date {i + 1} of {len(inp.dates)})",
                priority=Priority(priority_key=inp.template.instance_priority.rank + 1),
            )
        except Exception as e:  # e.g. the id exists already: the date did not run here
            workflow.logger.warning("complement date %s could not start: %s", date, e)
            return WorkflowState.FAILURE
        self._running[i] = cid
        self._states[i] = WorkflowState.RUNNING_EXECUTION
        if self._stopping:  # a stop that raced the start
            asyncio.create_task(self._signal_stop(cid))
        try:
            child: InstanceStatus = await handle
            return child.state if child.state in _FINISHED else WorkflowState.FAILURE
        except ChildWorkflowError as e:
            cause = e.cause
            if isinstance(cause, ApplicationError) and cause.details:
                with contextlib.suppress(Exception):
                    return InstanceStatus.model_validate(cause.details[0]).state
            if self._stopping:
                return WorkflowState.STOP
            return WorkflowState.FAILURE
        finally:
            self._running.pop(i, None)

    def _request_stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        workflow.upsert_search_attributes([sa.DS_STATE.value_set(WorkflowState.READY_STOP.value)])
        for cid in list(self._running.values()):
            asyncio.create_task(self._signal_stop(cid))

    async def _signal_stop(self, cid: str) -> None:
        # DsWorkflow's stop signal (a parent's stop): running tasks are killed, the instance ends STOP.
        # A child that already ended cannot be signalled, and keeps its state.
        with contextlib.suppress(Exception):
            await workflow.get_external_workflow_handle(cid).signal(Signals.STOP)


__all__ = ["COMMAND_TYPE", "COMPLEMENT_WORKFLOW_TYPE", "PROGRESS_QUERY", "ComplementInput", "ComplementStatus",
           "ComplementWorkflow", "ExecutionOrder", "RunMode", "child_id", "deal"]
