"""The one generic Temporal workflow that interprets any DS workflow definition.

Each workflow instance pins a definition version (it travels in :class:`RunInput`), drives a
:class:`DagScheduler`, and runs task instances as activities called by task-type name (SHELL, HTTP,
...), so this module never imports activity code. Logic tasks (CONDITIONS, SWITCH, SUB_PROCESS,
DEPENDENT) are decided by the workflow itself, by the runners of :mod:`workflows.logic_nodes`.
DS semantics follow reference §4; the workflow instance is the Temporal workflow id, and each
recover or rerun of it is a new Temporal run of the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import (
    Priority,
    RetryPolicy,
    SearchAttributeKey,
)
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

with workflow.unsafe.imports_passed_through():
    from core import search_attributes as sa
    from core import worker_groups
    from core.contracts import (
        WORKFLOW_TASK_TIMEOUT,
        Activities,
        AttemptOrigin,
        CarriedState,
        InstanceStatus,
        LostAttempt,
        LostAttemptQuery,
        NodeStatus,
        RunInput,
        Signals,
        TaskRequest,
        TaskResult,
        WorkflowTypes,
    )
    from model import params as ds_params
    from model.clock import in_zone
    from model.definition import DataType, TaskDefinition, TimeoutStrategy, WorkflowDefinition
    from model.states import TaskState, WorkflowState
    from model.task_types import ACTIVITY_TYPES

    from . import patches
    from .alerting import Alerts
    from .logic_nodes import LogicNodes, merge_props
    from .scheduler import DagScheduler
    from .task_group import (
        SIGNAL_GRANTED,
        SemaphoreClient,
        SemaphoreGrant,
        SemaphoreMode,
        serial_key,
        serial_mode,
        task_group_key,
    )

SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
# A worker that died is noticed after this long and its tasks are retried elsewhere. Tasks beat every
# 5 s (activities/process.py), so a busy machine has 25 s of slack before a live task is taken for dead.
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
# A lost worker (docs/reliability.md): its attempt fails to the workflow at once (not retried by
# Temporal, which would count it as a DS retry) and is re-scheduled on its host's own task queue.
LOST_WORKER_TYPES = ("TemporalTimeout:Heartbeat", "WorkerShutdown")
# Task types whose process can outlive its worker: a lost attempt of theirs goes back to its host.
OUTLIVES_WORKER = frozenset({"SHELL", "PYTHON", "DATAX"})
LOST_WORKER_WAIT = timedelta(minutes=5)  # how long a lost attempt's host gets to poll again
MAX_HISTORY_EVENTS = 3500
NO_TIMEOUT = timedelta(days=30)  # DS tasks have no timeout unless one is configured
# Activations stay short whatever the DAG size (Temporal fails a workflow task whose activation does
# not yield within 2 s, and a starved CPU stretches every activation): at most this many nodes are
# dispatched per activation, then a short timer ends it and the next batch goes in the next one.
DISPATCH_PER_ACTIVATION = 100
BATCH_PAUSE = timedelta(milliseconds=10)
# A stop ends within this many DS minutes even if a task or a child never reports back (a worker
# that lost its process, a child instance that does not answer): what is still running is then
# abandoned as KILL with the reason, and children are terminated with the parent (close policy).
STOP_DEADLINE_MINUTES = 10
_ATTEMPT_IN_LOG = re.compile(r"\.(\d+)\.log$")


@workflow.defn(name=WorkflowTypes.DS)
class DsWorkflow(LogicNodes):
    @workflow.init
    def __init__(self, input: RunInput) -> None:
        # A Temporal Schedule starts runs with fixed arguments: the instance id is the workflow id it
        # made, and the business time is the scheduled fire time (DS scheduleTime, §4.18).
        info = workflow.info()
        if not input.instance_id:
            input = input.model_copy(update={"instance_id": info.workflow_id})
        if input.schedule_time is None and input.command_type == "SCHEDULER":
            fired = info.typed_search_attributes.get(SCHEDULED_START_TIME)
            input = input.model_copy(update={"schedule_time": fired or workflow.now()})
        self._input: RunInput | None = input
        self._dag: DagScheduler | None = None
        self._state = WorkflowState.SUBMITTED_SUCCESS
        self._start: datetime | None = None
        self._end: datetime | None = None
        self._timeout_warned = False
        self._handles: dict[int, Any] = {}  # running activity / child workflow handles by task code
        self._killed: set[int] = set()
        self._children: dict[int, str] = {}  # SUB_PROCESS task code -> running child instance id
        self._wake = False
        self._bug: BaseException | None = None
        self._node_tasks: set[asyncio.Task[None]] = set()  # strong references while they run
        self._semaphores = SemaphoreClient()  # task groups and executionType (workflows/task_group.py)
        self._dependent_started: dict[int, datetime] = {}  # DEPENDENT node -> first start (business date)
        self.created_status: InstanceStatus | None = None
        self._progress = 0  # nodes finished by this run
        self._alerts: Alerts | None = None  # docs/alerts.md; set once the input is complete

    @workflow.run
    async def run(self, input: RunInput) -> InstanceStatus:
        assert self._input is not None
        input = self._input  # as completed by __init__
        if input.command_type == "SCHEDULER" and input.schedule_time is not None and input.carried is None:
            workflow.upsert_search_attributes([sa.DS_SCHEDULE_TIME.value_set(input.schedule_time)])
        if input.definition is None:
            definition = await workflow.execute_activity(
                Activities.LOAD_DEFINITION, args=[input.definition_code, input.definition_version],
                result_type=WorkflowDefinition | None,  # type: ignore[arg-type]
                start_to_close_timeout=timedelta(seconds=30), retry_policy=RetryPolicy(maximum_attempts=10),
                summary=f"load definition {input.definition_code} v{input.definition_version}",
            )
            if definition is None:
                raise ApplicationError(f"definition {input.definition_code} v{input.definition_version} is gone",
                                       type="DefinitionNotFound", non_retryable=True)
            input = input.model_copy(update={"definition": definition})
        assert input.definition is not None
        self._input = input
        self._alerts = Alerts(input, input.carried.alerts if input.carried else None)
        self._dag = dag = DagScheduler(
            input.definition,
            failure_strategy=input.failure_strategy,
            start_nodes=input.start_node_list,
            depend_type=input.task_depend_type,
            prior=input.prior_nodes,
        )
        self._start = workflow.now()
        if input.carried:
            c = input.carried
            dag.restore(c.nodes, c.never_skip, c.end_requested, c.stopping)
            self._start, self._timeout_warned = c.start_time, c.timeout_warned
            self._dependent_started = dict(c.dependent_started)
        self.created_status = self.snapshot()  # the canvas before anything ran (WORKFLOW_INSTANCE_CREATED)
        self._state = WorkflowState.RUNNING_EXECUTION
        if not await self._serial_gate():
            self._request_stop()  # SERIAL_DISCARD while another instance runs, or stopped while waiting
        bounded = patches.patched(patches.BOUNDED_ACTIVATIONS)
        if bounded and len(dag.nodes) > DISPATCH_PER_ACTIVATION:
            # Building a big DAG took this activation's time; the first batch goes in the next one.
            try:
                await self._pause_between_batches()
            except asyncio.CancelledError:
                self._request_stop()  # cancelling the Temporal workflow is a DS stop (§4.14)
        watchdog = None
        if input.definition.timeout > 0 and not self._timeout_warned:
            elapsed = (workflow.now() - self._start).total_seconds()
            watchdog = asyncio.create_task(self._workflow_timeout(input.definition.timeout, elapsed))
        stop_deadline: asyncio.Task[None] | None = None
        while True:
            if dag.stopping and stop_deadline is None and patches.patched(patches.STOP_DEADLINE):
                stop_deadline = asyncio.create_task(self._stop_deadline())
            self._kill_running()
            if self._history_is_long():
                dag.draining = True  # let running tasks finish, then continue in a fresh history
            free = input.max_parallel_tasks - len(dag.running())
            dispatched = dag.ready(min(free, DISPATCH_PER_ACTIVATION) if bounded else free)
            for code in dispatched:
                node_task = asyncio.create_task(self._run_node(code))
                self._node_tasks.add(node_task)
                node_task.add_done_callback(self._node_tasks.discard)
            if not dag.running():
                if dag.draining and any(n.state is TaskState.WAITING for n in dag.nodes.values()):
                    await self._continue_as_new()
                break
            self._wake = False
            try:
                if bounded and len(dispatched) >= DISPATCH_PER_ACTIVATION:
                    await self._pause_between_batches()  # more may be ready: next batch, next activation
                else:
                    await workflow.wait_condition(lambda: self._wake)
            except asyncio.CancelledError:
                # Cancelling the Temporal workflow (UI, CLI, a parent) is a DS stop (§4.14).
                self._request_stop()
            if self._bug is not None:
                # A bug in our code, not a task failure: fail the workflow *task* so Temporal retries
                # it (and shows it in the UI) once a fixed worker is deployed; the run is not lost.
                raise RuntimeError("Porpoise interpreter error") from self._bug

        if watchdog:
            watchdog.cancel()
        if stop_deadline is not None and not stop_deadline.done():
            stop_deadline.cancel()
        await self._semaphores.release_all()  # the serial permit; never on the continue-as-new path
        self._state = dag.final_state()
        dag.mark_unreached(self._state)
        self._end = workflow.now()
        workflow.upsert_search_attributes([sa.DS_STATE.value_set(self._state.value)])
        self._alerts.workflow_end(self.status())
        await self._alerts.drain()  # bounded: an alert channel never holds the run for long
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

    async def _stop_deadline(self) -> None:
        """Bound a stop: after STOP_DEADLINE_MINUTES, nodes still running are given up as KILL."""
        await workflow.sleep(self._minutes(STOP_DEADLINE_MINUTES), summary="stop deadline")
        assert self._dag is not None
        for code in self._dag.running():
            self._dag.finish(code, TaskState.KILL, workflow.now(),
                             error=f"did not stop within {STOP_DEADLINE_MINUTES} minutes; abandoned")
            self._handles.pop(code, None)
        self._wake = True

    async def _pause_between_batches(self) -> None:
        """End the current activation (a short durable timer) so the work that follows runs in the next
        one. Costs a timer's events, only on big DAGs or big bursts."""
        await workflow.sleep(BATCH_PAUSE, summary="next batch of tasks")

    # -- queries, updates, signals ---------------------------------------------------------------

    @property
    def current_state(self) -> WorkflowState | None:
        """The DS state, cheap to read on every activation (the lifecycle interceptor watches it);
        None until the DAG is built."""
        if self._dag is None:
            return None
        if self._state.is_finished or self._state is WorkflowState.SERIAL_WAIT:
            return self._state
        return self._dag.transient_state

    @workflow.query
    def status(self) -> InstanceStatus:
        """The instance with every node. Serialized at once, so the nodes are not copied: a query on a
        10,000-task DAG must stay far below the 2 s an activation may take."""
        return self._status(copy=False)

    def snapshot(self) -> InstanceStatus:
        """The status as of now, safe to keep while the run goes on."""
        return self._status(copy=True)

    def _status(self, copy: bool) -> InstanceStatus:
        assert self._input is not None
        if self._dag is None or self._input.definition is None:  # still loading its definition
            return InstanceStatus(
                instance_id=self._input.instance_id, definition_code=self._input.definition_code,
                definition_name="", definition_version=self._input.definition_version, project_code=0,
                state=WorkflowState.SUBMITTED_SUCCESS, failure_strategy=self._input.failure_strategy,
                run_times=self._input.run_times, is_sub_process=self._input.is_sub_process,
            )
        d = self._definition
        return InstanceStatus(
            instance_id=self._input.instance_id,
            definition_code=d.code,
            definition_name=d.name,
            definition_version=d.version,
            project_code=d.project_code,
            state=self.current_state or self._state,
            failure_strategy=self._input.failure_strategy,
            start_time=self._start,
            end_time=self._end,
            schedule_time=self._input.schedule_time,
            dry_run=self._input.dry_run,
            timeout_warned=self._timeout_warned,
            nodes=[n.model_copy() for n in self._dag.nodes.values()] if copy else list(self._dag.nodes.values()),
            var_pool=self._dag.instance_var_pool(),
            run_times=self._input.run_times,
            is_sub_process=self._input.is_sub_process,
            alerts=list(self._alerts.notes) if self._alerts else [],
        )

    @workflow.update
    async def stop(self) -> str:
        """DS STOP (§4.14): running tasks are killed and end KILL; the instance ends STOP."""
        self._request_stop()
        return WorkflowState.READY_STOP.value

    @workflow.update
    async def pause(self) -> str:
        """DS PAUSE (§4.14): running tasks finish, nothing new starts; the instance ends PAUSE and
        `recover-suspended` resumes it from there."""
        self._request_pause()
        return WorkflowState.READY_PAUSE.value

    @stop.validator
    def _validate_stop(self) -> None:
        self._must_be_running("stop")

    @pause.validator
    def _validate_pause(self) -> None:
        self._must_be_running("pause")
        assert self._dag is not None
        if self._dag.stopping:
            raise ValueError("the workflow instance is already stopping")

    @workflow.signal(name=Signals.STOP)
    def stop_signal(self) -> None:
        """Stop pushed down by a parent instance; signals need no answer."""
        self._request_stop()

    @workflow.signal(name=SIGNAL_GRANTED)
    def semaphore_granted(self, grant: SemaphoreGrant) -> None:
        """Answers from semaphore workflows (task groups, executionType)."""
        self._semaphores.on_grant(grant)

    @workflow.signal(name=Signals.PAUSE)
    def pause_signal(self) -> None:
        self._request_pause()

    def _must_be_running(self, what: str) -> None:
        if self._state.is_finished or self._dag is None:
            raise ValueError(f"cannot {what}: the workflow instance already ended {self._state.value}")

    def _request_stop(self) -> None:
        if self._dag is None or self._state.is_finished or self._dag.stopping:
            return
        self._dag.request_stop()
        self._push_to_children(Signals.STOP)
        workflow.upsert_search_attributes([sa.DS_STATE.value_set(WorkflowState.READY_STOP.value)])
        self._wake = True

    def _request_pause(self) -> None:
        if self._dag is None or self._state.is_finished or self._dag.stopping or self._dag.pausing:
            return
        self._dag.request_pause()
        self._push_to_children(Signals.PAUSE)
        workflow.upsert_search_attributes([sa.DS_STATE.value_set(WorkflowState.READY_PAUSE.value)])
        self._wake = True

    def _push_to_children(self, signal: str) -> None:
        for child_id in list(self._children.values()):
            asyncio.create_task(self._signal_child(child_id, signal))

    async def _signal_child(self, child_id: str, signal: str) -> None:
        # A child that already finished cannot be signalled, and must not be touched: its terminal
        # state stands (DS #14169). The failed signal is the guard.
        with contextlib.suppress(Exception):
            await workflow.get_external_workflow_handle(child_id).signal(signal)

    # -- the loop's helpers ----------------------------------------------------------------------

    @property
    def _definition(self) -> WorkflowDefinition:
        assert self._input is not None and self._input.definition is not None
        return self._input.definition

    def _minutes(self, n: int) -> timedelta:
        """DS durations are in minutes (reference §2)."""
        assert self._input is not None
        return timedelta(seconds=n * self._input.minute_seconds)

    def _changed(self) -> None:
        self._wake = True

    def _kill_running(self) -> None:
        """Cancel the activities of nodes that must die (END after a failure, or stop). The node's own
        coroutine sees the outcome: KILL if the cancel won, the real result if the task finished first."""
        assert self._dag is not None
        for code in self._dag.to_kill():
            if code in self._killed:
                continue
            self._killed.add(code)
            handle = self._handles.get(code)
            if handle is not None and not handle.done():
                handle.cancel()
            if code in self._children:  # a child instance is stopped, never cancelled blindly
                asyncio.create_task(self._signal_child(self._children[code], Signals.STOP))
            self._wake = True

    def _must_die(self, code: int) -> bool:
        return code in self._killed

    def _history_is_long(self) -> bool:
        """Continue-as-new well before Temporal's suggestion (4,096 events / 4 MiB): a worker that lost
        its cache must replay the whole history inside one workflow task, and a Python replay of 4,000
        events takes seconds on a busy 2-core machine (measured: ~5 s idle). Only a run that got work
        done continues, so a continuation can never loop."""
        info = workflow.info()
        if self._progress == 0:
            return False
        return info.is_continue_as_new_suggested() or info.get_current_history_length() > MAX_HISTORY_EVENTS

    async def _continue_as_new(self) -> None:
        """Carry the DAG's state into a fresh run of the same instance (history budget, B8)."""
        assert self._input is not None and self._dag is not None and self._start is not None
        await workflow.wait_condition(workflow.all_handlers_finished)
        assert self._alerts is not None
        await self._alerts.drain()
        inp = self._input
        previous = inp.carried.continued if inp.carried else 0
        carried = CarriedState(**self._dag.carry(), start_time=self._start,  # type: ignore[arg-type]
                               timeout_warned=self._timeout_warned, continued=previous + 1,
                               dependent_started=self._dependent_started, alerts=self._alerts.notes)
        assert inp.definition is not None
        workflow.continue_as_new(inp.model_copy(update={
            "definition": None, "definition_code": inp.definition.code,
            "definition_version": inp.definition.version, "carried": carried, "prior_nodes": []}),
            task_timeout=WORKFLOW_TASK_TIMEOUT)

    async def _workflow_timeout(self, minutes: int, elapsed_seconds: float = 0.0) -> None:
        """3.2 only warns on a workflow timeout; nothing is killed (§4.5)."""
        remaining = self._minutes(minutes) - timedelta(seconds=elapsed_seconds)
        if remaining > timedelta(0):
            await workflow.sleep(remaining)
        self._timeout_warned = True
        workflow.logger.warning("workflow instance timeout warning after %s minutes", minutes)

    # -- nodes -----------------------------------------------------------------------------------

    async def _run_node(self, code: int) -> None:
        assert self._dag is not None
        dag = self._dag
        task = dag.tasks[code]
        try:
            if dag.stopping or dag.end_requested:
                # Submitted after a stop or an END failure: written straight as KILL (§4.3).
                dag.finish(code, TaskState.KILL, workflow.now())
                return
            if task.task_type == "CONDITIONS":
                self._run_conditions(code)
            elif task.task_type == "SWITCH":
                await self._run_switch(code, task)
            elif task.task_type == "SUB_PROCESS":
                if await self._take_slot(code, task):
                    await self._run_sub_process(code, task)
            elif task.task_type == "DEPENDENT":
                await self._run_dependent(code, task)
            elif task.task_type in ACTIVITY_TYPES:
                if task.delay_time > 0 and not await self._delay(code, task):
                    return
                if await self._take_slot(code, task):
                    await self._run_activity(code, task)
            else:
                dag.finish(code, TaskState.FAILURE, workflow.now(), attempts=1,
                           error=f"task type {task.task_type} cannot run in this Porpoise version")
        except Exception as e:
            self._bug = e
        finally:
            self._progress += 1
            if task.task_group_id > 0 and self._semaphores.held(task_group_key(task.task_group_id), tag=str(code)):
                await self._semaphores.release(task_group_key(task.task_group_id), tag=str(code))
            self._handles.pop(code, None)
            self._changed()

    async def _take_slot(self, code: int, task: TaskDefinition) -> bool:
        """Task groups (§4.17): wait in SUBMITTED_SUCCESS for a slot of the group's global semaphore,
        higher taskGroupPriority first. False when the node is killed (it ends KILL) or the instance
        pauses (it ends PAUSE, not started, and recover queues it again) while it waits."""
        if task.task_group_id <= 0:
            return True
        assert self._dag is not None and self._input is not None
        dag = self._dag
        dag.set_state(code, TaskState.SUBMITTED_SUCCESS)
        if await self._semaphores.acquire(
            task_group_key(task.task_group_id),
            capacity=self._input.task_group_sizes.get(task.task_group_id, 0),  # 0: keep the group's size
            priority=task.task_group_priority,
            tag=str(code),
            abort=lambda: self._must_die(code) or dag.pausing,
        ):
            return True
        self._not_started(code)
        return False

    def _not_started(self, code: int) -> None:
        """A node given up before it ran: KILL when killed, PAUSE when the instance pauses (§4.14:
        running tasks finish, nothing new starts, so a node still waiting would hold the pause)."""
        assert self._dag is not None
        self._dag.finish(code, TaskState.KILL if self._must_die(code) else TaskState.PAUSE, workflow.now())

    async def _serial_gate(self) -> bool:
        """executionType (§4.12): at most one running instance per definition code and version.
        False when this instance must not run (SERIAL_DISCARD while busy, stopped while waiting,
        preempted before a continue-as-new)."""
        assert self._input is not None and self._dag is not None
        d, dag = self._definition, self._dag
        mode = serial_mode(d.execution_type)
        if mode is None or self._input.is_sub_process:
            return True
        resuming = self._input.carried is not None  # the permit was taken by an earlier run of this chain
        if mode is SemaphoreMode.WAIT and not resuming:
            self._state = WorkflowState.SERIAL_WAIT
        try:
            return await self._semaphores.acquire(
                serial_key(d.code, d.version), capacity=1, mode=SemaphoreMode.RESUME if resuming else mode,
                abort=lambda: dag.stopping is not None,
            )
        except asyncio.CancelledError:
            return False  # cancelling the Temporal workflow is a DS stop (§4.14)
        finally:
            self._state = WorkflowState.RUNNING_EXECUTION

    async def _delay(self, code: int, task: TaskDefinition) -> bool:
        """`delayTime` minutes in DELAY_EXECUTION before dispatch (§2). False when killed or paused
        meanwhile (see :meth:`_not_started`); a recovered node waits its whole delay again."""
        assert self._dag is not None
        dag = self._dag
        dag.set_state(code, TaskState.DELAY_EXECUTION)
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(lambda: self._must_die(code) or dag.pausing,
                                          timeout=self._minutes(task.delay_time))
        if self._must_die(code) or dag.pausing:
            self._not_started(code)
            return False
        return True

    async def _run_activity(self, code: int, task: TaskDefinition) -> None:
        """One task instance as an activity, retried by Temporal ``failRetryTimes`` times (DS retries).

        A lost worker (heartbeat timeout, or a worker shutting down) is not a failure of the task
        (docs/reliability.md): the activity is scheduled again, without using up a DS retry, on the
        lost attempt's host's own task queue, where the next attempt re-attaches to the process the
        lost worker left running (activities/process.py). If no worker of that host comes back within
        ``LOST_WORKER_WAIT``, it goes to the shared queue and runs afresh, and its log says so.
        """
        assert self._dag is not None and self._input is not None
        dag = self._dag
        request = self._request(code, task)
        kills = task.timeout_enabled and task.timeout > 0 and task.timeout_strategy in (
            TimeoutStrategy.FAILED, TimeoutStrategy.WARNFAILED, None)
        warns = task.timeout_enabled and task.timeout > 0 and task.timeout_strategy in (
            TimeoutStrategy.WARN, TimeoutStrategy.WARNFAILED)
        dag.set_state(code, TaskState.RUNNING_EXECUTION, workflow.now())
        resumable = patches.patched(patches.LOST_WORKER)
        attempts_left = task.fail_retry_times + 1  # DS: the first run plus failRetryTimes retries
        offset = 0
        group_queue = self._group_queue(code, task)  # None: the shared queue (group default)
        queue: str | None = group_queue
        on_host = False  # queue is a lost attempt's host queue, which gets LOST_WORKER_WAIT to answer
        started = workflow.now()
        warner = asyncio.create_task(self._timeout_warning(code, task.timeout)) if warns else None
        try:
            while True:
                timeout = self._minutes(task.timeout) if kills else NO_TIMEOUT
                if resumable and kills:  # a re-scheduled attempt gets what is left of the task's timeout
                    timeout = max(timeout - (workflow.now() - started), timedelta(seconds=1))
                handle = workflow.start_activity(
                    task.task_type,
                    request,
                    result_type=TaskResult,
                    activity_id=f"{code}",
                    task_queue=queue,
                    start_to_close_timeout=timeout,
                    # No schedule-to-start timeout on a group's queue: a group with no live worker waits.
                    schedule_to_start_timeout=LOST_WORKER_WAIT if on_host else None,
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=RetryPolicy(
                        initial_interval=self._minutes(task.fail_retry_interval) or timedelta(seconds=1),
                        backoff_coefficient=1.0,
                        maximum_attempts=attempts_left,
                        non_retryable_error_types=["InvalidTaskParams", *(LOST_WORKER_TYPES if resumable else ())],
                    ),
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    summary=f"{task.name} ({task.task_type})",
                    # Across instances Temporal orders by the instance's priority (DS dispatch order, §4.16);
                    # within the instance, the scheduler already released tasks by taskPriority.
                    priority=Priority(priority_key=self._input.instance_priority.rank + 1),
                )
                self._handles[code] = handle
                try:
                    result: TaskResult = await handle
                    break
                except ActivityError as e:
                    if resumable and not self._must_die(code):
                        lost = _lost_attempt(e, offset, request.lost_attempt)
                        if lost is not None:  # the worker died: same task, no DS retry used
                            lost_queue = _heartbeat_field(e, "queue")
                            if (task.task_type in OUTLIVES_WORKER and request.lost_attempt is None
                                    and _timed_out(e, TimeoutType.HEARTBEAT)
                                    and patches.patched(patches.LOST_ATTEMPT_FROM_HISTORY)):
                                found = await self._lost_attempt_origin(e, offset, lost, group_queue)
                                if self._must_die(code):  # stopped meanwhile: nothing is scheduled again
                                    self._activity_failed(code, task, e, offset=offset, attempts_left=attempts_left)
                                    return
                                if found is not None:
                                    lost, lost_queue = found
                            if lost.attempt > offset:  # Temporal retries before it were failures
                                attempts_left -= lost.attempt - offset - 1
                                offset = lost.attempt
                                queue = lost_queue or group_queue
                                on_host = queue != group_queue
                            else:  # lost before its first heartbeat: it never got going, keep the old link
                                offset += 1
                            request = request.model_copy(update={"attempt_offset": offset, "lost_attempt": lost})
                            workflow.logger.warning("task %s: worker lost during attempt %s on %s; resuming",
                                                    code, lost.attempt, lost.host)
                            continue
                        if on_host and _timed_out(e, TimeoutType.SCHEDULE_TO_START):
                            # the lost host did not come back: run it on any worker of its group, afresh
                            queue, on_host = group_queue, False
                            continue
                    self._activity_failed(code, task, e, offset=offset, attempts_left=attempts_left)
                    return
        finally:
            if warner:
                warner.cancel()
        # The node's varPool is what it received plus what it exported, so OUT values flow on
        # transitively along paths as in 3.2 (§6.4); its own outputs win.
        now = workflow.now()
        pool = merge_props(ds_params.merge_var_pool(dag.upstream_var_pool(code)), result.var_pool)
        recovered = {"recovery": result.recovery} if result.recovery else {}
        dag.finish(code, TaskState.SUCCESS, now, attempts=result.attempt, host=result.host,
                   pid=result.pid, log_path=result.log_path, var_pool=pool, **recovered)

    async def _lost_attempt_origin(self, e: ActivityError, offset: int, lost: LostAttempt,
                                   group_queue: str | None) -> tuple[LostAttempt, str] | None:
        """The attempt that timed out on heartbeat and its host's queue, as the server recorded them
        when a worker took it (activities/lost_attempts.py). An attempt no longer heartbeats before its
        process starts, so the last heartbeat may be an earlier attempt's, or none. None when the
        history cannot say: the caller keeps what the heartbeat said."""
        if not e.started_event_id:
            return None
        info = workflow.info()
        try:
            origin: AttemptOrigin | None = await workflow.execute_local_activity(
                Activities.FIND_LOST_ATTEMPT,
                LostAttemptQuery(workflow_id=info.workflow_id, run_id=info.run_id,
                                 started_event_id=e.started_event_id),
                result_type=AttemptOrigin | None,  # type: ignore[arg-type]
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_attempts=5),
                summary=f"where task {e.activity_id} lost its worker (event {e.started_event_id})",
            )
        except ActivityError:
            return None
        if origin is None:
            return None
        attempt = offset + origin.attempt
        # The queue the lost attempt was on (this schedule's first: no earlier loss), on its host.
        queue = worker_groups.host_queue(group_queue or info.task_queue, origin.host)
        if lost.attempt == attempt:  # its own heartbeat: it says more (pid, log, a DataX Kubernetes job)
            return lost, queue
        return LostAttempt(attempt=attempt, host=origin.host), queue

    def _group(self, task: TaskDefinition) -> str:
        """The worker group the task instance runs in (DS's rule, core/worker_groups.py); a heavy DataX
        job of the default group goes to the run's ``datax_worker_group`` when one is set."""
        assert self._input is not None
        inp = self._input
        group = worker_groups.task_group(task.worker_group, inp.worker_group)
        if (group == worker_groups.DEFAULT_GROUP and inp.datax_worker_group and task.task_type == "DATAX"
                and worker_groups.is_heavy_datax(task.task_params, inp.datax_heavy_xmx_gb)):
            group = inp.datax_worker_group
        return group

    def _group_queue(self, code: int, task: TaskDefinition) -> str | None:
        """The task queue of the task's worker group; None for the default group (the shared queue the
        workflow itself runs on), so runs without worker groups issue the commands they always did."""
        assert self._dag is not None
        group = self._group(task)
        if group == worker_groups.DEFAULT_GROUP or not patches.patched(patches.WORKER_GROUPS):
            return None
        self._dag.nodes[code].worker_group = group
        return worker_groups.group_task_queue(workflow.info().task_queue, group)

    def _activity_failed(self, code: int, task: TaskDefinition, e: ActivityError, *, offset: int = 0,
                         attempts_left: int | None = None) -> None:
        assert self._dag is not None
        cause = e.cause
        details: dict[str, Any] = {}
        if isinstance(cause, ApplicationError) and cause.details and isinstance(cause.details[0], dict):
            details = cause.details[0]
        log_path = details.get("log_path")
        attempts = offset + (attempts_left if attempts_left is not None else task.fail_retry_times + 1)
        if e.retry_state is not RetryState.MAXIMUM_ATTEMPTS_REACHED and log_path:
            m = _ATTEMPT_IN_LOG.search(str(log_path))
            attempts = int(m.group(1)) if m else attempts
        if isinstance(cause, CancelledError):
            self._dag.finish(code, TaskState.KILL, workflow.now(), attempts=attempts, error="killed")
            return
        if isinstance(cause, TimeoutError) and cause.type == TimeoutType.HEARTBEAT:
            message = "worker lost: no heartbeat from the task's worker for 30 seconds"
        elif isinstance(cause, TimeoutError):
            message = f"task timed out after {task.timeout} minutes"
        elif isinstance(cause, ApplicationError):
            message = cause.message
        else:
            message = str(e)
        self._dag.finish(code, TaskState.FAILURE, workflow.now(), attempts=attempts, error=message,
                         log_path=log_path, host=details.get("host"), pid=details.get("pid"))
        assert self._alerts is not None
        self._alerts.task_failed(self.status, code)  # retries exhausted (§7): sent whatever warningType says

    async def _timeout_warning(self, code: int, minutes: int) -> None:
        await workflow.sleep(self._minutes(minutes))
        assert self._dag is not None
        self._dag.nodes[code].timeout_warned = True
        workflow.logger.warning("task %s timeout warning after %s minutes", code, minutes)
        assert self._alerts is not None
        self._alerts.task_timeout(self.status, code)

    # -- parameters ------------------------------------------------------------------------------

    def _prepared(self, code: int, task: TaskDefinition) -> tuple[dict[str, str], dict[str, Any]]:
        """The task's prepared parameters (§6.2) and their declared types (for SWITCH)."""
        assert self._dag is not None and self._input is not None
        inp, d = self._input, self._definition
        base = in_zone(inp.schedule_time or self._start or workflow.now(), inp.timezone)
        upstream = self._dag.upstream_var_pool(code)
        if not self._dag.dag.preds[code] and inp.var_pool:
            upstream = [(base, list(inp.var_pool))]  # a root of a sub-process child
        var_pool = ds_params.merge_var_pool(upstream)
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
        )
        prepared = ds_params.prepare(
            builtins=builtins,
            global_params=d.global_params,
            var_pool=var_pool,
            local_params=task.local_params,
            start_params=inp.start_params,
            base_time=base,
        )
        types = ds_params.merged_types(global_params=d.global_params, var_pool=var_pool,
                                       local_params=task.local_params, start_params=inp.start_params)
        return prepared, types

    def _request(self, code: int, task: TaskDefinition) -> TaskRequest:
        assert self._input is not None
        inp = self._input
        prepared, types = self._prepared(code, task)
        return TaskRequest(
            instance_id=inp.instance_id,
            task_code=code,
            task_name=task.name,
            task_type=task.task_type,
            task_params=task.task_params,
            params=prepared,
            param_types={k: v for k, v in types.items() if v is not DataType.VARCHAR},
            out_params=list(task.out_params),
            log_dir=f"{inp.log_dir.rstrip('/')}/{inp.instance_id}",
            dry_run=inp.dry_run,
            timezone=inp.timezone,
            project_code=self._definition.project_code,
            definition_code=self._definition.code,
            definition_version=self._definition.version,
            definition_name=self._definition.name,
            run_times=inp.run_times,
            is_sub_process=inp.is_sub_process,
        )


__all__ = ["DsWorkflow", "NodeStatus"]


def _heartbeat_field(e: ActivityError, name: str) -> Any:
    """A field of the last heartbeat of the attempt that ended in ``e`` (None when there is none)."""
    cause = e.cause
    details: Any = ()
    if isinstance(cause, TimeoutError):
        details = cause.last_heartbeat_details
    elif isinstance(cause, ApplicationError) and cause.type == "WorkerShutdown":
        details = cause.details  # activities/process.py leaves the process running and says where
    if details and isinstance(details[0], dict):
        return details[0].get(name)
    return None


def _timed_out(e: ActivityError, kind: TimeoutType) -> bool:
    return isinstance(e.cause, TimeoutError) and e.cause.type == kind


def _lost_attempt(e: ActivityError, offset: int, previous: LostAttempt | None) -> LostAttempt | None:
    """The attempt that ``e`` says lost its worker: a heartbeat timeout (the worker died or hung) or a
    worker that shut down before the task ended. None for a failure of the task itself. An attempt
    lost before it ever heartbeat (e.g. handed to a worker that was dying) started nothing: the
    attempt to re-attach to stays ``previous`` (or, with none, the first attempt of this schedule)."""
    cause = e.cause
    shutdown = isinstance(cause, ApplicationError) and cause.type == "WorkerShutdown"
    if not shutdown and not _timed_out(e, TimeoutType.HEARTBEAT):
        return None
    attempt = _heartbeat_field(e, "attempt")
    if not isinstance(attempt, int) or attempt <= offset:
        return previous or LostAttempt(attempt=offset + 1)
    last = {k: _heartbeat_field(e, k) for k in ("k8s_job",) if _heartbeat_field(e, k) is not None}
    return LostAttempt(attempt=attempt, host=str(_heartbeat_field(e, "host") or ""), pid=_heartbeat_field(e, "pid"),
                       log_path=str(_heartbeat_field(e, "log_path") or ""), details=last)
