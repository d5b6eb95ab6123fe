"""The logic-node runners of :class:`~workflows.ds_workflow.DsWorkflow`: CONDITIONS, SWITCH,
SUB_PROCESS and DEPENDENT (reference §4.7 to §4.10).

These task types run no task activity of their own: the workflow decides them (a CONDITIONS branch,
a SWITCH condition evaluated in a local activity, a child instance of the same generic workflow, a
durable polling loop over other instances). They live here as a mixin of ``DsWorkflow`` so the
workflow module keeps the loop, the task activities and the operations; the commands they emit are
the same as when they were methods of ``DsWorkflow`` (recorded histories replay unchanged).

The mixin reads the instance's state (DAG, input, child handles) through the attributes and helpers
that ``DsWorkflow`` defines; :class:`LogicNodes` declares them so each is typed in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, ChildWorkflowError

with workflow.unsafe.imports_passed_through():
    from core import search_attributes as sa
    from core.contracts import (
        WORKFLOW_TASK_TIMEOUT,
        Activities,
        InstanceStatus,
        RunInput,
        Signals,
        WorkflowTypes,
    )
    from core.contracts.dependent import DependentCheckRequest, DependentCheckResponse
    from model import dependent as ds_dependent
    from model import params as ds_params
    from model import sub_process as ds_sub_process
    from model.definition import Property, TaskDefinition, TimeoutStrategy, WorkflowDefinition
    from model.states import TaskState, WorkflowState
    from model.task_params import DependentParams, SubProcessParams, TaskParamsError

    from . import patches
    from .alerting import Alerts
    from .scheduler import DagScheduler

CHILD_STATE = {  # child instance end state -> SUB_PROCESS task state (3.1/3.3 mapping, §4.9)
    WorkflowState.SUCCESS: TaskState.SUCCESS,
    WorkflowState.FAILURE: TaskState.FAILURE,
    WorkflowState.STOP: TaskState.KILL,
    WorkflowState.PAUSE: TaskState.PAUSE,
}
RECOVER_COMMANDS = frozenset({"START_FAILURE_TASK_PROCESS", "RECOVER_SUSPENDED_PROCESS"})
RESUMABLE_CHILD = frozenset({TaskState.PAUSE, TaskState.FAILURE, TaskState.KILL})


def merge_props(base: list[Property], extra: list[Property]) -> list[Property]:
    """``base`` with ``extra`` laid over it by name (a node's own outputs win over what it received)."""
    merged = {p.prop: p for p in base}
    for p in extra:
        merged[p.prop] = p
    return list(merged.values())


class LogicNodes:
    """CONDITIONS, SWITCH, SUB_PROCESS and DEPENDENT nodes, run by the workflow itself."""

    # The instance state and helpers of DsWorkflow that the runners use.
    _dag: DagScheduler | None
    _input: RunInput | None
    _start: datetime | None
    _alerts: Alerts | None
    _children: dict[int, str]
    _dependent_started: dict[int, datetime]

    if TYPE_CHECKING:  # defined by DsWorkflow
        @property
        def _definition(self) -> WorkflowDefinition: ...

        def status(self) -> InstanceStatus: ...

        def _minutes(self, n: int) -> timedelta: ...

        def _must_die(self, code: int) -> bool: ...

        def _group(self, task: TaskDefinition) -> str: ...

        def _prepared(self, code: int, task: TaskDefinition) -> tuple[dict[str, str], dict[str, Any]]: ...

        async def _signal_child(self, child_id: str, signal: str) -> None: ...

    def _run_conditions(self, code: int) -> None:
        """CONDITIONS (§4.7): decided from the states of its upstream nodes, at once, in workflow code."""
        assert self._dag is not None
        dag = self._dag
        dag.set_state(code, TaskState.RUNNING_EXECUTION, workflow.now())
        dag.evaluate_conditions(code)
        dag.finish(code, TaskState.SUCCESS, workflow.now(), attempts=1)

    async def _run_switch(self, code: int, task: TaskDefinition) -> None:
        """SWITCH (§4.8): the first condition that is true wins, else the default branch.

        Conditions are JavaScript, evaluated by a sandboxed engine in a local activity, so the decision
        is recorded in history and replays take the same branch without evaluating again.
        """
        assert self._dag is not None and self._input is not None
        dag = self._dag
        dag.set_state(code, TaskState.RUNNING_EXECUTION, workflow.now())
        params, types = self._prepared(code, task)
        branches = dag.switch_branches(code)
        scripts: list[str | None] = []
        for condition, _target in branches:
            try:
                scripts.append(ds_params.switch_condition_js(condition, params, types))
            except ValueError:
                scripts.append(None)  # a value that does not parse as its type: not matched
        index: int | None = None
        if any(s is not None for s in scripts):
            index = await workflow.execute_local_activity(
                Activities.EVALUATE_SWITCH, scripts, result_type=int | None,  # type: ignore[arg-type]
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
                summary=f"{task.name}: evaluate {len(scripts)} conditions",
            )
        chosen = branches[index][1] if index is not None else dag.default_branch(code)
        if chosen is not None and chosen not in dag.nodes:
            dag.finish(code, TaskState.FAILURE, workflow.now(), attempts=1,
                       error=f"switch branch {chosen} is not a task of this workflow")
            return
        dag.choose_switch(code, chosen)
        dag.finish(code, TaskState.SUCCESS, workflow.now(), attempts=1,
                   var_pool=ds_params.merge_var_pool(dag.upstream_var_pool(code)))

    async def _run_sub_process(self, code: int, task: TaskDefinition) -> None:
        """SUB_PROCESS / SUB_WORKFLOW (§4.9): a child instance of the same generic workflow running
        the referenced definition's current version."""
        assert self._dag is not None and self._input is not None
        dag, inp = self._dag, self._input
        dag.set_state(code, TaskState.RUNNING_EXECUTION, workflow.now())
        sub_params = task.params
        assert isinstance(sub_params, SubProcessParams)
        child_code = sub_params.definition_code
        chain = [*inp.call_chain, self._definition.code]
        if patches.patched(patches.SUB_PROCESS_LIMITS):
            refused = ds_sub_process.refusal_at_run_time(chain, child_code, inp.max_sub_process_depth)
            if refused is not None:
                dag.finish(code, TaskState.FAILURE, workflow.now(), attempts=1, error=refused)
                return
        previous = await self._previous_child(code)
        child_def: WorkflowDefinition | None = await workflow.execute_activity(
            Activities.LOAD_DEFINITION, args=[child_code, previous.definition_version if previous else None],
            result_type=WorkflowDefinition | None,  # type: ignore[arg-type]
            start_to_close_timeout=timedelta(seconds=30), retry_policy=RetryPolicy(maximum_attempts=5),
            summary=f"{task.name}: load definition {child_code}",
        )
        if child_def is None:
            dag.finish(code, TaskState.FAILURE, workflow.now(), attempts=1,
                       error=f"sub-process definition {child_code} does not exist")
            return
        params, _ = self._prepared(code, task)
        # Child globals: the child's own, overridden by the parent's (parent wins), overridden by the
        # SUB_PROCESS task's IN localParams with their resolved values (fatherParams).
        parent_globals = {p.prop: p for p in self._definition.global_params}
        for k, v in inp.start_params.items():
            parent_globals[k] = Property(prop=k, value=v)
        merged = {p.prop: p for p in child_def.global_params} | parent_globals
        for p in task.local_params:
            if p.direct.value == "IN":
                merged[p.prop] = p.model_copy(update={"value": params.get(p.prop, p.value)})
        child_def = child_def.model_copy(update={"global_params": tuple(merged.values())})
        child_id = f"{inp.instance_id}.sub-{code}.r{inp.run_times}"
        child_input = RunInput(
            definition=child_def, instance_id=child_id, failure_strategy=inp.failure_strategy,
            warning_type=inp.warning_type, warning_group_id=inp.warning_group_id, dry_run=inp.dry_run,
            schedule_time=inp.schedule_time or self._start, timezone=inp.timezone, log_dir=inp.log_dir,
            minute_seconds=inp.minute_seconds, var_pool=ds_params.merge_var_pool(dag.upstream_var_pool(code)),
            is_sub_process=True, parent_instance_id=inp.instance_id, command_type="START_PROCESS",
            call_chain=chain, max_sub_process_depth=inp.max_sub_process_depth,
            # DS: the child's worker group is the SUB_PROCESS task's (reference §4.9)
            worker_group=self._group(task), datax_worker_group=inp.datax_worker_group,
            datax_heavy_xmx_gb=inp.datax_heavy_xmx_gb,
        )
        if previous is not None:  # resume the child where it stopped: its successful nodes are kept
            child_input = child_input.model_copy(update={
                "prior_nodes": previous.nodes, "command_type": inp.command_type,
                "run_times": previous.run_times + 1})
        dag.nodes[code].sub_instance_id = child_id
        handle = await workflow.start_child_workflow(
            WorkflowTypes.DS, child_input, id=child_id, result_type=InstanceStatus,
            task_queue=workflow.info().task_queue, task_timeout=WORKFLOW_TASK_TIMEOUT,
            search_attributes=sa.of_instance(child_def.project_code, child_def.code, child_def.name, child_def.version,
                                             schedule_time=child_input.schedule_time or workflow.now()),
            static_summary=f"sub-process of {self._definition.name}: {child_def.name} v{child_def.version}",
        )
        self._children[code] = child_id
        if self._must_die(code) or dag.pausing:  # a kill or pause that raced the child's start
            asyncio.create_task(self._signal_child(child_id, Signals.PAUSE if dag.pausing else Signals.STOP))
        try:
            child: InstanceStatus = await handle
        except ChildWorkflowError as e:
            cause = e.cause
            if isinstance(cause, ApplicationError) and cause.details:
                child = InstanceStatus.model_validate(cause.details[0])
            else:
                dag.finish(code, TaskState.FAILURE, workflow.now(), attempts=1, error=str(cause or e))
                return
        finally:
            self._children.pop(code, None)
        state = CHILD_STATE.get(child.state, TaskState.FAILURE)
        # Declared OUT params come back from the child's varPool (3.1 behaviour, docs/compatibility.md).
        produced = {p.prop: p.value or "" for p in child.var_pool}
        pool = ds_params.task_var_pool(ds_params.merge_var_pool(dag.upstream_var_pool(code)),
                                       task.out_params, produced)
        dag.finish(code, state, workflow.now(), attempts=1, var_pool=pool,
                   error=None if state is TaskState.SUCCESS else f"sub-process ended {child.state.value}")

    async def _previous_child(self, code: int) -> InstanceStatus | None:
        """On recover (§4.14), the end status of the child this SUB_PROCESS node ran last time, when it
        did not succeed: DS resumes that child instance rather than starting it over."""
        assert self._input is not None
        inp = self._input
        if inp.command_type not in RECOVER_COMMANDS:
            return None
        old = next((n for n in inp.prior_nodes if n.code == code), None)
        if old is None or not old.sub_instance_id or old.state not in RESUMABLE_CHILD:
            return None
        previous: InstanceStatus | None = await workflow.execute_activity(
            Activities.LOAD_INSTANCE_STATUS, old.sub_instance_id,
            result_type=InstanceStatus | None,  # type: ignore[arg-type]
            start_to_close_timeout=timedelta(seconds=30), retry_policy=RetryPolicy(maximum_attempts=5),
            summary=f"recover: the last state of {old.sub_instance_id}",
        )
        return previous

    async def _run_dependent(self, code: int, task: TaskDefinition) -> None:
        """DEPENDENT (§4.10): poll other definitions' instances every checkInterval seconds (durable
        timers) until every dependTaskList group has an outcome, then end SUCCESS or FAILURE.

        Business date: the instance's schedule time; a manual run's is "now" at the task's first start
        (DS), kept across continue-as-new so its windows do not move. A SUCCESS item is final and not
        checked again (DS dependResultMap); FAILED and WAITING items are checked on every poll.
        """
        assert self._dag is not None and self._input is not None
        dag, inp = self._dag, self._input
        started = self._dependent_started.setdefault(code, workflow.now())
        dag.set_state(code, TaskState.RUNNING_EXECUTION, started)
        try:
            dep_params = task.params
            assert isinstance(dep_params, DependentParams)
            if dep_params.dependence is None:
                raise TaskParamsError([("dependence", "dependence: dependence is required")])
            dependence = dep_params.dependence
        except TaskParamsError as e:  # the message names the field: "invalid dependence: relation must be ..."
            dag.finish(code, TaskState.FAILURE, workflow.now(), attempts=1, error=f"invalid {e}")
            return
        business = inp.schedule_time or started
        kills = task.timeout_enabled and task.timeout > 0 and task.timeout_strategy in (
            TimeoutStrategy.FAILED, TimeoutStrategy.WARNFAILED, None)
        warns = task.timeout_enabled and task.timeout > 0 and task.timeout_strategy in (
            TimeoutStrategy.WARN, TimeoutStrategy.WARNFAILED)
        deadline = started + self._minutes(task.timeout)
        ok = ds_dependent.DependResult.SUCCESS
        checks: dict[str, ds_dependent.ItemCheck] = {}
        while True:
            pending = [i for i in dependence.items if i.key not in checks or checks[i.key].result is not ok]
            if pending:
                response: DependentCheckResponse = await workflow.execute_activity(
                    Activities.CHECK_DEPENDENT,
                    DependentCheckRequest(
                        business_date=business, timezone=inp.timezone, items=pending,
                        instance_id=inp.instance_id, definition_code=self._definition.code, task_code=code,
                        scheduled=inp.schedule_time is not None, started=self._start,
                    ),
                    result_type=DependentCheckResponse,
                    start_to_close_timeout=timedelta(minutes=2),
                    retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
                    summary=f"{task.name}: check {len(pending)} dependencies",
                )
                checks.update({c.key: c for c in response.items})
            now = workflow.now()
            outcome = ds_dependent.decide(dependence, {k: c.result for k, c in checks.items()},
                                          now - business, self._minutes(1))
            if outcome is not None:
                break
            if warns and not dag.nodes[code].timeout_warned and now >= deadline:
                dag.nodes[code].timeout_warned = True
                workflow.logger.warning("task %s timeout warning after %s minutes", code, task.timeout)
                assert self._alerts is not None
                self._alerts.task_timeout(self.status, code)
            if kills and now >= deadline:
                dag.finish(code, TaskState.FAILURE, now, attempts=1,
                           error=f"task timed out after {task.timeout} minutes")
                return
            wait = timedelta(seconds=dependence.check_interval)
            if (kills or warns) and deadline > now:
                wait = min(wait, deadline - now)
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(lambda: self._must_die(code) or dag.pausing, timeout=wait)
            if self._must_die(code):
                dag.finish(code, TaskState.KILL, workflow.now(), attempts=1, error="killed")
                return
            if dag.pausing:  # DS DependentLogicTask.pause(): the task instance ends PAUSE
                dag.finish(code, TaskState.PAUSE, workflow.now(), attempts=1)
                return
            if workflow.info().is_continue_as_new_suggested():
                # Hand over to a fresh history: back to WAITING, re-dispatched by the continuation with
                # the same business date (self._dependent_started is carried).
                dag.draining = True
                dag.set_state(code, TaskState.WAITING)
                return
        pool = ds_params.merge_var_pool(dag.upstream_var_pool(code))
        if outcome is ok:
            pool = merge_props(pool, ds_dependent.passed_var_pool(dependence, checks))
            dag.finish(code, TaskState.SUCCESS, workflow.now(), attempts=1, var_pool=pool)
            return
        failed = "; ".join(f"{k}: {c.result.value} ({c.detail})" for k, c in checks.items() if c.result is not ok)
        dag.finish(code, TaskState.FAILURE, workflow.now(), attempts=1, var_pool=pool,
                   error=f"dependence failed: {failed}")
