"""The one generic Temporal workflow that interprets any DS workflow definition.

Each workflow instance pins a definition version (it travels in :class:`RunInput`), drives a
:class:`DagScheduler`, and runs task instances as activities called by task-type name (SHELL, HTTP,
...), so this module never imports activity code. DS failure strategies, retries, timeouts, delays,
forbidden nodes and CONDITIONS follow reference §4.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import Priority, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError

with workflow.unsafe.imports_passed_through():
    from core import search_attributes as sa
    from core.contracts import InstanceStatus, NodeStatus, RunInput, TaskRequest, TaskResult
    from model import params as ds_params
    from model.clock import in_zone
    from model.definition import TaskDefinition, TimeoutStrategy
    from model.states import TaskState, WorkflowState
    from model.task_types import ACTIVITY_TYPES

    from .scheduler import DagScheduler

HEARTBEAT_TIMEOUT = timedelta(seconds=10)
NO_TIMEOUT = timedelta(days=30)  # DS tasks have no timeout unless one is configured


@workflow.defn(name="DsWorkflow")
class DsWorkflow:
    def __init__(self) -> None:
        self._input: RunInput | None = None
        self._dag: DagScheduler | None = None
        self._state = WorkflowState.SUBMITTED_SUCCESS
        self._start: datetime | None = None
        self._end: datetime | None = None
        self._timeout_warned = False
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._wake = False
        self._bug: BaseException | None = None

    @workflow.run
    async def run(self, input: RunInput) -> InstanceStatus:
        self._input = input
        self._dag = dag = DagScheduler(
            input.definition,
            failure_strategy=input.failure_strategy,
            start_nodes=input.start_node_list,
            depend_type=input.task_depend_type,
        )
        self._start = workflow.now()
        self._state = WorkflowState.RUNNING_EXECUTION
        watchdog = None
        if input.definition.timeout > 0:
            watchdog = asyncio.create_task(self._workflow_timeout(input.definition.timeout))

        while True:
            for code in dag.to_kill():
                task = self._tasks.get(code)
                if task and not task.done():
                    task.cancel()
            for code in dag.ready():
                self._tasks[code] = asyncio.create_task(self._run_node(code))
            if not dag.running():
                break
            self._wake = False
            await workflow.wait_condition(lambda: self._wake)
            if self._bug is not None:
                # A bug in our code, not a task failure: fail the workflow *task* so Temporal retries
                # it (and shows it in the UI) once a fixed worker is deployed; the run is not lost.
                raise RuntimeError("Porpoise interpreter error") from self._bug

        if watchdog:
            watchdog.cancel()
        dag.mark_unreached()
        self._state = dag.final_state()
        self._end = workflow.now()
        workflow.upsert_search_attributes([sa.DS_STATE.value_set(self._state.value)])
        status = self.status()
        if self._state is WorkflowState.FAILURE:
            failed = [n.name for n in status.nodes if n.state in (TaskState.FAILURE, TaskState.KILL,
                                                                   TaskState.DEPEND_FAILED)]
            raise ApplicationError(
                f"workflow instance ended FAILURE; failed tasks: {', '.join(failed) or '-'}",
                status,
                type="WorkflowInstanceFailure",
                non_retryable=True,
            )
        return status

    # -- queries, updates ----------------------------------------------------------------------

    @workflow.query
    def status(self) -> InstanceStatus:
        assert self._input is not None and self._dag is not None
        d = self._input.definition
        return InstanceStatus(
            instance_id=self._input.instance_id,
            definition_code=d.code,
            definition_name=d.name,
            definition_version=d.version,
            project_code=d.project_code,
            state=self._dag.stopping if (self._dag.stopping and not self._state.is_finished) else self._state,
            failure_strategy=self._input.failure_strategy,
            start_time=self._start,
            end_time=self._end,
            schedule_time=self._input.schedule_time,
            dry_run=self._input.dry_run,
            timeout_warned=self._timeout_warned,
            nodes=[n.model_copy() for n in self._dag.nodes.values()],
        )

    @workflow.update
    async def stop(self) -> str:
        """DS STOP (§4.14): running tasks are killed and end KILL; the instance ends STOP."""
        assert self._dag is not None
        self._dag.request_stop()
        self._wake = True
        return WorkflowState.READY_STOP.value

    @stop.validator
    def _validate_stop(self) -> None:
        if self._state.is_finished:
            raise ValueError(f"the workflow instance already ended {self._state.value}")

    # -- nodes ---------------------------------------------------------------------------------

    def _minutes(self, n: int) -> timedelta:
        """DS durations are in minutes (reference §2)."""
        assert self._input is not None
        return timedelta(seconds=n * self._input.minute_seconds)

    def _changed(self) -> None:
        self._wake = True

    async def _workflow_timeout(self, minutes: int) -> None:
        """3.2 only warns on a workflow timeout; nothing is killed (§4.5)."""
        await workflow.sleep(self._minutes(minutes))
        self._timeout_warned = True
        workflow.logger.warning("workflow instance timeout warning after %s minutes", minutes)

    async def _run_node(self, code: int) -> None:
        assert self._dag is not None
        dag = self._dag
        task = dag.tasks[code]
        try:
            if task.task_type == "CONDITIONS":
                dag.set_state(code, TaskState.RUNNING_EXECUTION, workflow.now())
                dag.evaluate_conditions(code)
                dag.finish(code, TaskState.SUCCESS, workflow.now(), attempts=1)
                return
            if task.task_type not in ACTIVITY_TYPES:
                dag.finish(code, TaskState.FAILURE, workflow.now(), attempts=1,
                           error=f"task type {task.task_type} cannot run in this Porpoise version")
                return
            if task.delay_time > 0:
                dag.set_state(code, TaskState.DELAY_EXECUTION)
                await workflow.sleep(self._minutes(task.delay_time))
            await self._run_activity(code, task)
        except asyncio.CancelledError:
            dag.finish(code, TaskState.KILL, workflow.now())
        except Exception as e:
            self._bug = e
        finally:
            self._changed()

    async def _run_activity(self, code: int, task: TaskDefinition) -> None:
        assert self._dag is not None and self._input is not None
        dag = self._dag
        request = self._request(code, task)
        kills = task.timeout_enabled and task.timeout > 0 and task.timeout_strategy in (
            TimeoutStrategy.FAILED, TimeoutStrategy.WARNFAILED, None)
        warns = task.timeout_enabled and task.timeout > 0 and task.timeout_strategy in (
            TimeoutStrategy.WARN, TimeoutStrategy.WARNFAILED)
        dag.set_state(code, TaskState.RUNNING_EXECUTION, workflow.now())
        handle = workflow.start_activity(
            task.task_type,
            request,
            result_type=TaskResult,
            activity_id=f"{code}",
            start_to_close_timeout=self._minutes(task.timeout) if kills else NO_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=self._minutes(task.fail_retry_interval) or timedelta(seconds=1),
                backoff_coefficient=1.0,
                maximum_attempts=task.fail_retry_times + 1,
                non_retryable_error_types=["TaskFailedNonRetryable"],
            ),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"{task.name} ({task.task_type})",
            priority=Priority(priority_key=task.task_priority.rank + 1),
        )
        warner = asyncio.create_task(self._timeout_warning(code, task.timeout)) if warns else None
        try:
            result: TaskResult = await handle
        except ActivityError as e:
            attempts = task.fail_retry_times + 1
            cause = e.cause
            if isinstance(cause, CancelledError):
                dag.finish(code, TaskState.KILL, workflow.now(), attempts=attempts, error="killed")
                return
            message = cause.message if isinstance(cause, ApplicationError | TimeoutError) else str(e)
            if isinstance(cause, TimeoutError):
                message = f"task timed out after {task.timeout} minutes"
            dag.finish(code, TaskState.FAILURE, workflow.now(), attempts=attempts, error=message,
                       log_path=f"{request.log_dir}/{code}.{attempts}.log")
            return
        except asyncio.CancelledError:
            handle.cancel()
            with contextlib.suppress(ActivityError, asyncio.CancelledError):
                await handle
            raise
        finally:
            if warner:
                warner.cancel()
        # The node's varPool is what it received plus what it exported, so OUT values flow on
        # transitively along paths as in 3.2 (§6.4); its own outputs win.
        upstream = ds_params.merge_var_pool(dag.upstream_var_pool(code))
        now = workflow.now()
        pool = ds_params.merge_var_pool([(now, upstream), (now + timedelta(microseconds=1), result.var_pool)])
        dag.finish(code, TaskState.SUCCESS, now, attempts=result.attempt, host=result.host,
                   pid=result.pid, log_path=result.log_path, var_pool=pool)

    async def _timeout_warning(self, code: int, minutes: int) -> None:
        await workflow.sleep(self._minutes(minutes))
        assert self._dag is not None
        self._dag.nodes[code].timeout_warned = True
        workflow.logger.warning("task %s timeout warning after %s minutes", code, minutes)

    def _request(self, code: int, task: TaskDefinition) -> TaskRequest:
        assert self._dag is not None and self._input is not None
        inp, d = self._input, self._input.definition
        base = in_zone(inp.schedule_time or self._start or workflow.now(), inp.timezone)
        var_pool = ds_params.merge_var_pool(self._dag.upstream_var_pool(code))
        instance_log_dir = f"{inp.log_dir.rstrip('/')}/{inp.instance_id}"
        builtins = ds_params.builtins(
            base,
            workflow_instance_id=inp.instance_id,
            definition_code=d.code,
            definition_name=d.name,
            project_code=d.project_code,
            project_name=d.project_name,
            task_code=code,
            task_name=task.name,
            task_instance_id=f"{inp.instance_id}/{code}",
            execute_path=f"{instance_log_dir}/{code}.work",
        )
        prepared = ds_params.prepare(
            builtins=builtins,
            global_params=d.global_params,
            var_pool=var_pool,
            local_params=task.local_params,
            start_params=inp.start_params,
            base_time=base,
        )
        return TaskRequest(
            instance_id=inp.instance_id,
            task_code=code,
            task_name=task.name,
            task_type=task.task_type,
            task_params=task.task_params,
            params=prepared,
            out_params=list(task.out_params),
            log_dir=instance_log_dir,
            dry_run=inp.dry_run,
        )


__all__ = ["DsWorkflow", "NodeStatus"]
