"""Workflow instances: start, list, status (every node), the operations (stop, pause, recover,
rerun, force success), and where a task attempt's log is."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import Priority
from temporalio.service import RPCError, RPCStatusCode

from core import payload_budget
from core import search_attributes as sa
from core.contracts import (
    WORKFLOW_TASK_TIMEOUT,
    WORKFLOW_TYPE,
    InstanceStatus,
    NodeStatus,
    Queries,
    RunInput,
    Updates,
    instance_summary,
)
from core.operations_deadline import NoAnswer, update_within
from core.settings import Settings
from core.temporal import final_status, ui_run_url
from core.worker_groups import normalise as normalise_group
from model.clock import is_zone
from model.definition import WorkflowDefinition
from model.states import TaskState, WorkflowState
from storage.definitions import DefinitionStore
from storage.security import Principal

from . import runnable
from .context import Services
from .definitions import load, not_runnable
from .errors import Conflict, DomainError, Invalid, NotFound, Unavailable
from .schemas import RunCreated, RunSummary, StartRun

INLINE_DEFINITION_BYTES = 128 * 1024
INSTANCE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


def new_instance_id(code: int) -> str:
    return f"ds-{code}-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"


async def start_run(client: Client, settings: Settings, definition: Any, body: StartRun,
                    store: DefinitionStore | None = None) -> RunCreated:
    missing = [c for c in body.start_node_list if c not in {t.code for t in definition.tasks}]
    if missing:  # DS #13053: refuse start nodes that the version being run lacks
        raise Invalid(f"startNodeList names {missing}, not in version {definition.version}",
                      title="Unknown start nodes")
    timezone = body.timezone or settings.default_timezone
    if not is_zone(timezone):
        raise Invalid(f"timezone {timezone!r} is not an IANA time zone name", title="Unknown timezone")
    schedule_time = body.schedule_time
    if schedule_time is not None and schedule_time.tzinfo is None:  # DS "yyyy-MM-dd HH:mm:ss"
        schedule_time = schedule_time.replace(tzinfo=ZoneInfo(timezone))
    bad = not_runnable(definition)
    if bad:
        raise Invalid(f"these task types are not runnable in this Porpoise version: {', '.join(bad)}",
                      title="Definition cannot run here")
    log_dir = str(settings.resolved_log_dir)  # a path resolution: once per start
    too_large = payload_budget.refusal(definition, settings.temporal_payload_limit_bytes, log_dir)
    if too_large:  # stored before submit checked this
        raise Invalid(too_large, title="Definition cannot run here")
    run_input = RunInput(
        definition=definition,
        instance_id=new_instance_id(definition.code),
        start_params=body.start_params,
        failure_strategy=body.failure_strategy,
        warning_type=body.warning_type,
        warning_group_id=body.warning_group_id or definition.warning_group_id,
        dry_run=body.dry_run,
        schedule_time=schedule_time,
        timezone=timezone,
        start_node_list=body.start_node_list,
        task_depend_type=body.task_depend_type,
        log_dir=log_dir,
        minute_seconds=settings.minute_seconds,
        instance_priority=body.instance_priority,
        max_sub_process_depth=settings.max_sub_process_depth,
        worker_group=normalise_group(body.worker_group),
        datax_worker_group=settings.datax_worker_group,
        datax_heavy_xmx_gb=settings.datax_k8s_min_xmx_gb,
    )
    groups = {t.task_group_id for t in definition.tasks if t.task_group_id > 0}
    if groups and store is not None:  # most definitions name none: no thread hop for them
        sizes = await run_in_threadpool(store.task_group_sizes, groups)
        run_input = run_input.model_copy(update={"task_group_sizes": sizes})
    if payload_budget.footprint(definition, log_dir).definition_chars > INLINE_DEFINITION_BYTES:
        # Big DAGs travel by reference: the workflow loads the pinned version (history budget).
        run_input = run_input.model_copy(update={"definition": None, "definition_code": definition.code,
                                                 "definition_version": definition.version})
    return await launch(client, settings, run_input, definition)


async def launch(client: Client, settings: Settings, run_input: RunInput,
                 definition: WorkflowDefinition) -> RunCreated:
    """Start a run of the generic workflow, findable by project, definition and state."""
    instance_id = run_input.instance_id
    handle = await client.start_workflow(
        WORKFLOW_TYPE,
        run_input,
        id=instance_id,
        task_queue=settings.task_queue,
        search_attributes=sa.of_instance(definition.project_code, definition.code, definition.name,
                                         definition.version, schedule_time=run_input.schedule_time),
        static_summary=instance_summary(definition.name, definition.version, run_input.command_type,
                                        run_input.run_times),
        priority=Priority(priority_key=run_input.instance_priority.rank + 1),
        task_timeout=WORKFLOW_TASK_TIMEOUT,
    )
    return RunCreated(
        instance_id=instance_id, workflow_id=instance_id, run_id=handle.result_run_id,
        definition_code=definition.code, definition_version=definition.version,
        temporal_ui_url=ui_run_url(settings, instance_id), status_url=f"/runs/{instance_id}",
    )


async def start(ctx: Services, code: int, body: StartRun, *, principal: Principal | None = None,
                definition: WorkflowDefinition | None = None) -> dict[str, Any]:
    """Start a workflow instance of definition ``code`` (the latest version unless ``body.version``;
    ``definition``: that version, already loaded by the caller). With ``principal``, its SUB_PROCESS and
    DEPENDENT tasks must name only definitions of projects the caller may use (checked again here: a
    named definition may have been made since the submit)."""
    if definition is None:
        definition = await load(ctx, code, body.version)
    await runnable.check_access(ctx.store, ctx.store.engine, [definition],
                                [body.warning_group_id or definition.warning_group_id], principal)
    return (await start_run(await ctx.client(), ctx.settings, definition, body, ctx.store)).model_dump(by_alias=True)


def checked_handle(client: Client, workflow_id: str, result_type: type, *, noun: str,
                   short: str) -> WorkflowHandle[Any, Any]:
    """The handle of a workflow the API started (an instance, a complement): its id is checked first, so
    a malformed id is a 422 naming it rather than a Temporal lookup. ``noun``/``short`` name the kind."""
    if not INSTANCE_ID.match(workflow_id):
        raise Invalid(f"{workflow_id!r} is not a {noun} id", title=f"Invalid {short} id")
    return client.get_workflow_handle(workflow_id, result_type=result_type)


async def described(handle: WorkflowHandle[Any, Any], noun: str) -> tuple[WorkflowExecutionDescription, str]:
    """The workflow's description and its Temporal status name; NotFound when Temporal has no such id."""
    try:
        desc = await handle.describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            raise NotFound(f"{noun} {handle.id} does not exist") from e
        raise
    return desc, desc.status.name if desc.status else "UNKNOWN"


def _handle(client: Client, instance_id: str) -> WorkflowHandle[Any, Any]:
    return checked_handle(client, instance_id, InstanceStatus, noun="workflow instance", short="instance")


async def instance_status(client: Client, instance_id: str) -> tuple[InstanceStatus, str]:
    """The instance's DS state with every node. Running: the workflow's query, enriched with the
    attempt, PID, host and log that pending activities report in heartbeats. Finished: the result."""
    handle = _handle(client, instance_id)
    desc, tstatus = await described(handle, "workflow instance")
    final = await final_status(client, instance_id, desc.status, desc.run_id)
    if final is not None:
        return final, tstatus
    try:
        status = await handle.query(Queries.STATUS, result_type=InstanceStatus)
    except WorkflowQueryFailedError as e:
        raise Unavailable(str(e), title="The workflow did not answer") from e
    if desc.status == WorkflowExecutionStatus.RUNNING:
        queues_seen: dict[str, bool] = {}
        for pending in desc.raw_description.pending_activities:
            try:
                node = next(n for n in status.nodes if str(n.code) == pending.activity_id)
            except StopIteration:
                continue
            node.attempts = pending.attempt
            if _never_started(pending):
                await _mark_waiting(client, node, pending, queues_seen)
            if pending.heartbeat_details.payloads:
                details = await client.data_converter.decode(  # through the payload codec (encrypted)
                    pending.heartbeat_details.payloads)
                info = details[0] if details and isinstance(details[0], dict) else {}
                node.pid = info.get("pid", node.pid)
                node.host = info.get("host", node.host)
                node.log_path = info.get("log_path", node.log_path)
    elif desc.status is not None:
        # Terminated or timed out from outside: not a DS state, so say so plainly.
        status.state = WorkflowState.STOP if status.state is WorkflowState.RUNNING_EXECUTION else status.state
    return status, tstatus


def _never_started(pending: Any) -> bool:
    """Dispatched to a task queue and not taken by any worker yet (this schedule of the task)."""
    return bool(pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
                and not pending.HasField("last_started_time"))


async def _mark_waiting(client: Client, node: NodeStatus, pending: Any, queues_seen: dict[str, bool]) -> None:
    """A task no worker has taken: say which worker group (task queue) it waits for, and whether a
    worker polls it at all. A task of a group other than default shows SUBMITTED_SUCCESS, as in DS,
    until a worker of its group takes it (docs/deploy.md "Worker groups")."""
    queue = pending.activity_options.task_queue.name if pending.HasField("activity_options") else ""
    polled: bool | None = None
    if queue:
        if queue not in queues_seen:
            queues_seen[queue] = await _has_pollers(client, queue)
        polled = queues_seen[queue]
    group = node.worker_group or "default"
    where = f"worker group {group!r}" + (f" (task queue {queue})" if queue else "")
    if "@" in queue:
        where = f"its lost worker's host (task queue {queue})"
    node.waiting = (f"waiting for a worker of {where}" if polled is not False
                    else f"waiting for a worker of {where}: no worker polls it")
    if node.worker_group and node.state is TaskState.RUNNING_EXECUTION:
        node.state = TaskState.SUBMITTED_SUCCESS


async def _has_pollers(client: Client, queue: str) -> bool:
    """Whether any worker polled ``queue`` for activities recently (the server keeps pollers of the
    last minutes). True when it cannot tell."""
    from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    try:
        resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
    except RPCError:
        return True
    return len(resp.pollers) > 0


async def get_run(ctx: Services, instance_id: str, wait_seconds: float = 0.0) -> dict[str, Any]:
    """A workflow instance with the state of every node (force-success marks applied once it ended).
    With ``wait_seconds``, a long poll: the answer comes when the instance ends, or after that long.
    Past ``api_long_poll_limit`` long polls at once the answer comes at once, as without ``wait``:
    the caller asks again (the CLI after its poll interval) and the API's connections stay bounded."""
    settings = ctx.settings
    client = await ctx.client()
    if wait_seconds > 0 and ctx.long_polls < settings.api_long_poll_limit:
        ctx.long_polls += 1  # one event loop: no lock needed between the check and the count
        try:
            await wait_closed(client, instance_id, wait_seconds)
        finally:
            ctx.long_polls -= 1
    status, tstatus = await instance_status(client, instance_id)
    if tstatus != "RUNNING":
        forced = await run_in_threadpool(ctx.store.forced_success, instance_id)
        for n in status.nodes:
            if n.code in forced:
                n.state = TaskState.FORCED_SUCCESS
    return status.model_dump(mode="json") | {
        "temporalStatus": tstatus,
        "temporalUiUrl": ui_run_url(settings, instance_id),
    }


async def wait_closed(client: Client, instance_id: str, seconds: float) -> None:
    """Return once the instance's workflow has closed (however it ended), or after ``seconds``.

    Why: a client following a run (``porpoise run``) otherwise polls, and learns of the end up to a poll
    interval late; Temporal's own long poll on the history answers as soon as the run closes. What
    went wrong, if anything (an unknown id, a failed run), is for the status read that follows."""
    with contextlib.suppress(TimeoutError, WorkflowFailureError, RPCError):
        await asyncio.wait_for(_handle(client, instance_id).result(), seconds)


def projects_clause(projects: frozenset[int] | None) -> str | None:
    """A Temporal visibility condition limiting a list to ``projects`` (None: no limit)."""
    if projects is None:
        return None
    if not projects:
        return "DsProjectCode = -1"  # no project: matches nothing
    return "DsProjectCode IN (" + ", ".join(str(int(c)) for c in sorted(projects)) + ")"


def visibility_query(workflow_type: str, *, definition_code: int | None = None, project_code: int | None = None,
                     state: WorkflowState | None = None, projects: frozenset[int] | None = None) -> str:
    """The Temporal visibility query behind every DS list (instances, complements): one type, and the
    definition, project, DS state and authorized-projects filters that are given."""
    query = [f"WorkflowType = '{workflow_type}'"]
    if definition_code is not None:
        query.append(f"DsDefinitionCode = {int(definition_code)}")
    if project_code is not None:
        query.append(f"DsProjectCode = {int(project_code)}")
    if state is not None:
        query.append(f"DsState = '{state.value}'")
    if (only := projects_clause(projects)) is not None:
        query.append(only)
    return " AND ".join(query)


async def list_runs(ctx: Services, definition_code: int | None = None, project_code: int | None = None,
                    state: WorkflowState | None = None, limit: int = 50, *,
                    projects: frozenset[int] | None = None) -> list[dict[str, Any]]:
    """Workflow instances, newest first (Temporal visibility); ``projects``: only these projects'
    (the caller's authorized ones; None: all)."""
    client, settings = await ctx.client(), ctx.settings
    query = visibility_query(WORKFLOW_TYPE, definition_code=definition_code, project_code=project_code,
                             state=state, projects=projects)
    out = []
    async for wf in client.list_workflows(query, limit=limit):
        attrs = wf.typed_search_attributes
        out.append(RunSummary(
            instance_id=wf.id, definition_code=attrs.get(sa.DS_DEFINITION_CODE),
            definition_name=attrs.get(sa.DS_DEFINITION_NAME), state=attrs.get(sa.DS_STATE),
            temporal_status=wf.status.name if wf.status else "UNKNOWN", start_time=wf.start_time,
            close_time=wf.close_time, temporal_ui_url=ui_run_url(settings, wf.id),
        ).model_dump(by_alias=True, mode="json"))
        if len(out) >= limit:
            break
    return out


async def stop(ctx: Services, instance_id: str) -> dict[str, Any]:
    """Stop: kill running tasks; the instance ends STOP."""
    return await _update(await ctx.client(), instance_id, Updates.STOP, ctx.settings.operation_answer_seconds)


async def pause(ctx: Services, instance_id: str) -> dict[str, Any]:
    """Pause: running tasks finish, nothing new starts."""
    return await _update(await ctx.client(), instance_id, Updates.PAUSE, ctx.settings.operation_answer_seconds)


@dataclass(frozen=True)
class LogTarget:
    """Where a task attempt's log is, and how to mask it when served."""

    node: NodeStatus
    attempt: int
    path: Path
    rules: Any  # activities.masking rules for the task type


async def log_target(ctx: Services, instance_id: str, task_code: int, attempt: int | None,
                     follow: bool) -> LogTarget:
    """The attempt's log file, once it exists (``follow``: wait a little for it to start).
    NotFound when the task has no instance (yet) or the file is not on this host."""
    from activities.masking import rules_for

    client, settings = await ctx.client(), ctx.settings
    status, _ = await instance_status(client, instance_id)
    node = next((n for n in status.nodes if n.code == task_code), None)
    if node is None:
        raise NotFound(f"task {task_code} is not a node of {instance_id}")
    no_instance = not node.state.has_instance or node.state is TaskState.SUBMITTED_SUCCESS
    may_start = follow and not node.state.is_finished and status.state is WorkflowState.RUNNING_EXECUTION
    if no_instance and not may_start:
        raise NotFound(f"task {node.name!r} is {node.state.value}: it has no task instance", title="No log")
    n = attempt or max(node.attempts, 1)
    path = Path(settings.resolved_log_dir) / instance_id / f"{task_code}.{n}.log"
    target = LogTarget(node, n, path, rules_for(node.task_type, settings.log_mask_rules))
    if follow:  # the attempt may not have started writing yet
        for _ in range(100):
            if path.is_file() or not await still_running(ctx, instance_id, task_code, attempt, n):
                break
            await asyncio.sleep(0.2)
    if not path.is_file():
        raise NotFound(f"no log for task {node.name!r} attempt {n} on this host", title="No log")
    return target


async def still_running(ctx: Services, instance_id: str, task_code: int, attempt: int | None, n: int) -> bool:
    """Whether attempt ``n`` of the task may still write to its log (a followed log goes on)."""
    try:
        current, tstatus = await instance_status(await ctx.client(), instance_id)
    except Unavailable:
        return True  # the workflow is busy: ask again later
    except DomainError:
        return False
    except Exception:  # Temporal unreachable for a moment: the footer still ends the stream
        return True
    now = next((c for c in current.nodes if c.code == task_code), None)
    return (tstatus == "RUNNING" and now is not None and not now.state.is_finished
            and (attempt is None or now.attempts <= n))


async def _definition_of(ctx: Services, run_input: RunInput) -> WorkflowDefinition:
    if run_input.definition is not None:
        return run_input.definition
    return await load(ctx, run_input.definition_code, run_input.definition_version)


async def original_input(client: Client, instance_id: str) -> RunInput:
    """The latest run's RunInput (command, warning settings, priority, start params), read back from its
    first history event and decrypted; rerun and recover start from it, and the DS REST API shows it."""
    handle = _handle(client, instance_id)
    async for event in handle.fetch_history_events():
        attrs = event.workflow_execution_started_event_attributes
        (run_input,) = await client.data_converter.decode(attrs.input.payloads, [RunInput])  # decrypts too
        if not run_input.instance_id:  # started by a Temporal Schedule (services/schedules.py)
            desc = await handle.describe()
            run_input = run_input.model_copy(update={
                "instance_id": instance_id,
                "schedule_time": run_input.schedule_time or desc.typed_search_attributes.get(sa.DS_SCHEDULE_TIME)})
        return run_input  # type: ignore[no-any-return]
    raise NotFound(f"workflow instance {instance_id} has no history")


async def _update(client: Client, instance_id: str, name: str, answer_seconds: float) -> dict[str, Any]:
    _handle(client, instance_id)  # a valid instance id
    try:  # bounded: no answer in time terminates a stop, refuses a pause (core/operations_deadline.py)
        state = await update_within(client, instance_id, name, answer_seconds)
    except NoAnswer as e:
        raise Unavailable(f"no worker answered within {e.seconds:g} s; try again", title=f"Cannot {name}") from e
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:
            raise Conflict(e.message, title=f"Cannot {name}") from e
        status, _ = await instance_status(client, instance_id)  # NotFound when it does not exist at all
        raise Conflict(f"workflow instance {instance_id} already ended {status.state.value}",
                       title=f"Cannot {name}") from e
    except Exception as e:  # rejected by the workflow's validator
        raise Conflict(str(getattr(e, "cause", None) or e), title=f"Cannot {name}") from e
    return {"instanceId": instance_id, "state": state}


async def recover(ctx: Services, instance_id: str) -> dict[str, Any]:
    """DS START_FAILURE_TASK_PROCESS / RECOVER_SUSPENDED_PROCESS (§4.14): successful nodes are kept,
    failed, killed, paused and unreached ones run again, as a new Temporal run of the same instance."""
    client, settings, store = await ctx.client(), ctx.settings, ctx.store
    status, tstatus = await instance_status(client, instance_id)
    if tstatus == "RUNNING":
        raise Conflict(f"{instance_id} is still {status.state.value}", title="Cannot recover")
    if status.state not in (WorkflowState.FAILURE, WorkflowState.PAUSE, WorkflowState.STOP):
        raise Conflict(f"{instance_id} ended {status.state.value}; use rerun", title="Cannot recover")
    old = await original_input(client, instance_id)
    forced = await run_in_threadpool(store.forced_success, instance_id)
    nodes = [n.model_copy(update={"state": TaskState.FORCED_SUCCESS}) if n.code in forced else n
             for n in status.nodes]
    command = "START_FAILURE_TASK_PROCESS" if status.state is WorkflowState.FAILURE else "RECOVER_SUSPENDED_PROCESS"
    run_input = old.model_copy(update={"prior_nodes": nodes, "run_times": old.run_times + 1,
                                       "command_type": command, "carried": None})
    created = await launch(client, settings, run_input, await _definition_of(ctx, run_input))
    await run_in_threadpool(store.clear_forced_success, instance_id)
    return created.model_dump(by_alias=True)


async def rerun(ctx: Services, instance_id: str) -> dict[str, Any]:
    """DS REPEAT_RUNNING: the whole DAG again, same instance, runTimes + 1, linked as the next run."""
    client, settings, store = await ctx.client(), ctx.settings, ctx.store
    status, tstatus = await instance_status(client, instance_id)
    if tstatus == "RUNNING":
        raise Conflict(f"{instance_id} is still {status.state.value}", title="Cannot rerun")
    old = await original_input(client, instance_id)
    run_input = old.model_copy(update={"prior_nodes": [], "run_times": old.run_times + 1,
                                       "command_type": "REPEAT_RUNNING", "carried": None})
    created = await launch(client, settings, run_input, await _definition_of(ctx, run_input))
    await run_in_threadpool(store.clear_forced_success, instance_id)
    return created.model_dump(by_alias=True)


async def force_success(ctx: Services, instance_id: str, task_code: int) -> dict[str, Any]:
    """Force a failed task of a finished instance to success; the next recover continues from it."""
    status, tstatus = await instance_status(await ctx.client(), instance_id)
    if tstatus == "RUNNING":  # as DS 3.2 (#15855): not while the instance runs
        raise Conflict(f"{instance_id} is still {status.state.value}", title="Cannot force success")
    node = next((n for n in status.nodes if n.code == task_code), None)
    if node is None:
        raise NotFound(f"task {task_code} is not a node of {instance_id}")
    if node.state not in (TaskState.FAILURE, TaskState.KILL):
        raise Conflict(f"task {node.name!r} is {node.state.value}, not failed", title="Cannot force success")
    await run_in_threadpool(ctx.store.force_success, instance_id, task_code)
    return {"instanceId": instance_id, "taskCode": task_code, "state": TaskState.FORCED_SUCCESS.value}
