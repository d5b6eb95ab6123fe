"""Workflow instances: start, list, status (every node), task logs, stop."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import Priority
from temporalio.service import RPCError, RPCStatusCode

from activities.store import DefinitionStore
from core import search_attributes as sa
from core.contracts import WORKFLOW_TASK_TIMEOUT, WORKFLOW_TYPE, InstanceStatus, RunInput
from core.settings import Settings
from core.temporal import final_status, ui_run_url
from model.clock import is_zone
from model.definition import WorkflowDefinition
from model.states import TaskState, WorkflowState

from ..auth import (
    AccessDep,
    PrincipalDep,
    project_filter,
    require_datasources_of,
    require_project,
    require_run,
    visibility_clause,
)
from ..deps import ClientDep, SettingsDep, StoreDep
from ..problems import ProblemError
from ..schemas import RunCreated, RunSummary, StartRun
from .definitions import load, not_runnable

router = APIRouter(tags=["runs"])

INLINE_DEFINITION_BYTES = 128 * 1024
INSTANCE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


def new_instance_id(code: int) -> str:
    return f"ds-{code}-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"


async def start_run(client: Client, settings: Settings, definition: Any, body: StartRun,
                    store: DefinitionStore | None = None) -> RunCreated:
    missing = [c for c in body.start_node_list if c not in {t.code for t in definition.tasks}]
    if missing:  # DS #13053: refuse start nodes that the version being run lacks
        raise ProblemError(422, "Unknown start nodes",
                           f"startNodeList names {missing}, not in version {definition.version}")
    timezone = body.timezone or settings.default_timezone
    if not is_zone(timezone):
        raise ProblemError(422, "Unknown timezone", f"timezone {timezone!r} is not an IANA time zone name")
    schedule_time = body.schedule_time
    if schedule_time is not None and schedule_time.tzinfo is None:  # DS "yyyy-MM-dd HH:mm:ss"
        schedule_time = schedule_time.replace(tzinfo=ZoneInfo(timezone))
    bad = not_runnable(definition)
    if bad:
        raise ProblemError(422, "Definition cannot run here",
                           f"these task types are not runnable in this Porpoise version: {', '.join(bad)}")
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
        log_dir=str(settings.resolved_log_dir),
        minute_seconds=settings.minute_seconds,
        instance_priority=body.instance_priority,
    )
    groups = {t.task_group_id for t in definition.tasks if t.task_group_id > 0}
    sizes = await run_in_threadpool(store.task_group_sizes, groups) if store is not None else {}
    run_input = run_input.model_copy(update={"task_group_sizes": sizes})
    if len(definition.model_dump_json()) > INLINE_DEFINITION_BYTES:
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
        static_summary=f"{definition.name} v{definition.version} ({run_input.command_type}, run {run_input.run_times})",
        priority=Priority(priority_key=run_input.instance_priority.rank + 1),
        task_timeout=WORKFLOW_TASK_TIMEOUT,
    )
    return RunCreated(
        instance_id=instance_id, workflow_id=instance_id, run_id=handle.result_run_id,
        definition_code=definition.code, definition_version=definition.version,
        temporal_ui_url=ui_run_url(settings, instance_id), status_url=f"/runs/{instance_id}",
    )


@router.post("/definitions/{code}/runs", status_code=201, summary="Start a workflow instance")
async def start(code: int, body: StartRun, client: ClientDep, settings: SettingsDep,
                store: StoreDep, principal: PrincipalDep, access: AccessDep) -> dict[str, Any]:
    definition = await load(store, code, body.version)
    require_project(principal, definition.project_code)
    await require_datasources_of(principal, access, definition)
    return (await start_run(client, settings, definition, body, store)).model_dump(by_alias=True)


def _handle(client: Client, instance_id: str) -> WorkflowHandle[Any, Any]:
    if not INSTANCE_ID.match(instance_id):
        raise ProblemError(422, "Invalid instance id", f"{instance_id!r} is not a workflow instance id")
    return client.get_workflow_handle(instance_id, result_type=InstanceStatus)


async def instance_status(client: Client, instance_id: str) -> tuple[InstanceStatus, str]:
    """The instance's DS state with every node. Running: the workflow's query, enriched with the
    attempt, PID, host and log that pending activities report in heartbeats. Finished: the result."""
    handle = _handle(client, instance_id)
    try:
        desc = await handle.describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not found", f"workflow instance {instance_id} does not exist") from e
        raise
    tstatus = desc.status.name if desc.status else "UNKNOWN"
    final = await final_status(client, instance_id, desc.status, desc.run_id)
    if final is not None:
        return final, tstatus
    try:
        status = await handle.query("status", result_type=InstanceStatus)
    except WorkflowQueryFailedError as e:
        raise ProblemError(503, "The workflow did not answer", str(e)) from e
    if desc.status == WorkflowExecutionStatus.RUNNING:
        for pending in desc.raw_description.pending_activities:
            try:
                node = next(n for n in status.nodes if str(n.code) == pending.activity_id)
            except StopIteration:
                continue
            node.attempts = pending.attempt
            if pending.heartbeat_details.payloads:
                details = await client.data_converter.decode(pending.heartbeat_details.payloads)
                info = details[0] if details and isinstance(details[0], dict) else {}
                node.pid = info.get("pid", node.pid)
                node.host = info.get("host", node.host)
                node.log_path = info.get("log_path", node.log_path)
    elif desc.status is not None:
        # Terminated or timed out from outside: not a DS state, so say so plainly.
        status.state = WorkflowState.STOP if status.state is WorkflowState.RUNNING_EXECUTION else status.state
    return status, tstatus


@router.get("/runs/{instance_id}", summary="A workflow instance with the state of every node")
async def get_run(instance_id: str, client: ClientDep, settings: SettingsDep, store: StoreDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    await require_run(principal, client, instance_id)
    status, tstatus = await instance_status(client, instance_id)
    if tstatus != "RUNNING":
        forced = await run_in_threadpool(store.forced_success, instance_id)
        for n in status.nodes:
            if n.code in forced:
                n.state = TaskState.FORCED_SUCCESS
    return status.model_dump(mode="json") | {
        "temporalStatus": tstatus,
        "temporalUiUrl": ui_run_url(settings, instance_id),
    }


@router.get("/runs", summary="List workflow instances (Temporal visibility)")
async def list_runs(client: ClientDep, settings: SettingsDep, principal: PrincipalDep,
                    definition_code: int | None = Query(None, alias="definitionCode"),
                    project_code: int | None = Query(None, alias="projectCode"),
                    state: WorkflowState | None = Query(None),
                    limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
    query = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
    if definition_code is not None:
        query.append(f"DsDefinitionCode = {int(definition_code)}")
    if project_code is not None:
        query.append(f"DsProjectCode = {int(project_code)}")
    if state is not None:
        query.append(f"DsState = '{state.value}'")
    if (only := visibility_clause(project_filter(principal, project_code))) is not None:
        query.append(only)
    out = []
    async for wf in client.list_workflows(" AND ".join(query), limit=limit):
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


@router.post("/runs/{instance_id}/stop", summary="Stop: kill running tasks; the instance ends STOP")
async def stop(instance_id: str, principal: PrincipalDep, client: ClientDep) -> dict[str, Any]:
    await require_run(principal, client, instance_id)
    return await _update(client, instance_id, "stop")


@router.get("/runs/{instance_id}/tasks/{task_code}/log", response_class=PlainTextResponse,
            summary="A task instance's log (the last attempt unless one is named); follow=true streams it")
async def task_log(instance_id: str, task_code: int, request: Request, client: ClientDep,
                   principal: PrincipalDep, settings: SettingsDep, attempt: int | None = Query(None, ge=1),
                   offset: int = Query(0, ge=0), tail: int | None = Query(None, ge=1),
                   lines: int | None = Query(None, ge=1, description="the last N lines"),
                   follow: bool = Query(False, description="stream until the attempt ends")) -> Response:
    """The attempt's log as stored (masked when written), masked again with the task type's rules as
    served. ``offset`` (file bytes), ``tail`` (last bytes) or ``lines`` (last lines) choose where to
    start; ``X-Log-Next-Offset`` says where to continue. A tail of a task past its output cap includes
    its live tail. ``follow=true`` streams from there, complete lines at a time, until the footer is
    written or the task is over."""
    await require_run(principal, client, instance_id)
    import asyncio

    from fastapi.responses import StreamingResponse

    from activities.logs import follow_log, read_log
    from activities.masking import rules_for

    status, _ = await instance_status(client, instance_id)
    node = next((n for n in status.nodes if n.code == task_code), None)
    if node is None:
        raise ProblemError(404, "Not found", f"task {task_code} is not a node of {instance_id}")
    no_instance = not node.state.has_instance or node.state is TaskState.SUBMITTED_SUCCESS
    may_start = follow and not node.state.is_finished and status.state is WorkflowState.RUNNING_EXECUTION
    if no_instance and not may_start:
        raise ProblemError(404, "No log", f"task {node.name!r} is {node.state.value}: it has no task instance")
    n = attempt or max(node.attempts, 1)
    path = Path(settings.resolved_log_dir) / instance_id / f"{task_code}.{n}.log"
    rules = rules_for(node.task_type, settings.log_mask_rules)

    async def still_running() -> bool:
        try:
            current, tstatus = await instance_status(client, instance_id)
        except ProblemError as e:
            return e.status == 503  # the workflow is busy: ask again later
        except Exception:  # Temporal unreachable for a moment: the footer still ends the stream
            return True
        now = next((c for c in current.nodes if c.code == task_code), None)
        return (tstatus == "RUNNING" and now is not None and not now.state.is_finished
                and (attempt is None or now.attempts <= n))

    if follow:  # the attempt may not have started writing yet
        for _ in range(100):
            if path.is_file() or not await still_running():
                break
            await asyncio.sleep(0.2)
    if not path.is_file():
        raise ProblemError(404, "No log", f"no log for task {node.name!r} attempt {n} on this host")
    part = await run_in_threadpool(read_log, path, offset=offset, tail=tail, lines=lines)
    headers = {"X-Log-Size": str(part.size), "X-Log-Path": str(path), "X-Log-Next-Offset": str(part.next_offset)}
    if part.live_tail:
        headers["X-Log-Live-Tail"] = str(part.live_tail)
    if not follow:
        return PlainTextResponse(rules.mask_bytes(part.data).decode("utf-8", "replace"), headers=headers)

    async def stream() -> Any:
        if part.data:
            yield rules.mask_bytes(part.data)
        async for chunk in follow_log(path, part.next_offset, still_running):
            yield rules.mask_bytes(chunk)

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8", headers=headers)


async def _definition_of(store: Any, run_input: RunInput) -> WorkflowDefinition:
    if run_input.definition is not None:
        return run_input.definition
    return await load(store, run_input.definition_code, run_input.definition_version)


async def _original_input(client: Client, instance_id: str) -> RunInput:
    """The latest run's RunInput, read back from its first history event."""
    handle = _handle(client, instance_id)
    async for event in handle.fetch_history_events():
        attrs = event.workflow_execution_started_event_attributes
        (run_input,) = await client.data_converter.decode(attrs.input.payloads, [RunInput])
        if not run_input.instance_id:  # started by a Temporal Schedule (api/routers/schedules.py)
            desc = await handle.describe()
            run_input = run_input.model_copy(update={
                "instance_id": instance_id,
                "schedule_time": run_input.schedule_time or desc.typed_search_attributes.get(sa.DS_SCHEDULE_TIME)})
        return run_input  # type: ignore[no-any-return]
    raise ProblemError(404, "Not found", f"workflow instance {instance_id} has no history")


async def _update(client: Client, instance_id: str, name: str) -> dict[str, Any]:
    handle = _handle(client, instance_id)
    try:
        state = await handle.execute_update(name)
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:
            raise ProblemError(409, f"Cannot {name}", e.message) from e
        status, _ = await instance_status(client, instance_id)  # 404 when it does not exist at all
        raise ProblemError(409, f"Cannot {name}",
                           f"workflow instance {instance_id} already ended {status.state.value}") from e
    except Exception as e:  # rejected by the workflow's validator
        raise ProblemError(409, f"Cannot {name}", str(getattr(e, "cause", None) or e)) from e
    return {"instanceId": instance_id, "state": state}


@router.post("/runs/{instance_id}/pause", summary="Pause: running tasks finish, nothing new starts")
async def pause(instance_id: str, principal: PrincipalDep, client: ClientDep) -> dict[str, Any]:
    await require_run(principal, client, instance_id)
    return await _update(client, instance_id, "pause")


@router.post("/runs/{instance_id}/recover", status_code=201,
             summary="Recover: from FAILURE re-run failed and killed tasks; from PAUSE or STOP resume")
async def recover(instance_id: str, client: ClientDep, settings: SettingsDep, store: StoreDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    """DS START_FAILURE_TASK_PROCESS / RECOVER_SUSPENDED_PROCESS (§4.14): successful nodes are kept,
    failed, killed, paused and unreached ones run again, as a new Temporal run of the same instance."""
    await require_run(principal, client, instance_id)
    status, tstatus = await instance_status(client, instance_id)
    if tstatus == "RUNNING":
        raise ProblemError(409, "Cannot recover", f"{instance_id} is still {status.state.value}")
    if status.state not in (WorkflowState.FAILURE, WorkflowState.PAUSE, WorkflowState.STOP):
        raise ProblemError(409, "Cannot recover", f"{instance_id} ended {status.state.value}; use rerun")
    old = await _original_input(client, instance_id)
    forced = await run_in_threadpool(store.forced_success, instance_id)
    nodes = [n.model_copy(update={"state": TaskState.FORCED_SUCCESS}) if n.code in forced else n
             for n in status.nodes]
    command = "START_FAILURE_TASK_PROCESS" if status.state is WorkflowState.FAILURE else "RECOVER_SUSPENDED_PROCESS"
    run_input = old.model_copy(update={"prior_nodes": nodes, "run_times": old.run_times + 1,
                                       "command_type": command, "carried": None})
    created = await launch(client, settings, run_input, await _definition_of(store, run_input))
    await run_in_threadpool(store.clear_forced_success, instance_id)
    return created.model_dump(by_alias=True)


@router.post("/runs/{instance_id}/rerun", status_code=201, summary="Rerun the whole DAG as a new run")
async def rerun(instance_id: str, client: ClientDep, settings: SettingsDep, store: StoreDep,
                principal: PrincipalDep) -> dict[str, Any]:
    """DS REPEAT_RUNNING: the whole DAG again, same instance, runTimes + 1, linked as the next run."""
    await require_run(principal, client, instance_id)
    status, tstatus = await instance_status(client, instance_id)
    if tstatus == "RUNNING":
        raise ProblemError(409, "Cannot rerun", f"{instance_id} is still {status.state.value}")
    old = await _original_input(client, instance_id)
    run_input = old.model_copy(update={"prior_nodes": [], "run_times": old.run_times + 1,
                                       "command_type": "REPEAT_RUNNING", "carried": None})
    created = await launch(client, settings, run_input, await _definition_of(store, run_input))
    await run_in_threadpool(store.clear_forced_success, instance_id)
    return created.model_dump(by_alias=True)


@router.post("/runs/{instance_id}/tasks/{task_code}/force-success",
             summary="Force a failed task of a finished instance to success; recover continues from it")
async def force_success(instance_id: str, task_code: int, client: ClientDep, store: StoreDep,
                        principal: PrincipalDep) -> dict[str, Any]:
    await require_run(principal, client, instance_id)
    status, tstatus = await instance_status(client, instance_id)
    if tstatus == "RUNNING":  # as DS 3.2 (#15855): not while the instance runs
        raise ProblemError(409, "Cannot force success", f"{instance_id} is still {status.state.value}")
    node = next((n for n in status.nodes if n.code == task_code), None)
    if node is None:
        raise ProblemError(404, "Not found", f"task {task_code} is not a node of {instance_id}")
    if node.state not in (TaskState.FAILURE, TaskState.KILL):
        raise ProblemError(409, "Cannot force success", f"task {node.name!r} is {node.state.value}, not failed")
    await run_in_threadpool(store.force_success, instance_id, task_code)
    return {"instanceId": instance_id, "taskCode": task_code, "state": TaskState.FORCED_SUCCESS.value}
