"""DS ``ExecutorController`` (start, execute), ``ProcessInstanceController`` (3.3:
``workflow-instances``), ``TaskInstanceController`` and ``LoggerController``.

A DS workflow instance id is the integer :mod:`storage.ds_ids` keeps for a Temporal workflow id; a
task instance id the one it keeps for (workflow id, run, task code, attempt). Instances started
outside these routes (schedules, ``/definitions/{code}/runs``) get their id when first listed."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Response
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from core import search_attributes as sa
from core.contracts import InstanceStatus, NodeStatus
from model.definition import FailureStrategy, Priority, TaskDependType, WarningType
from model.states import TaskState, WorkflowState
from storage.ds_ids import ONLINE, new_code

from ...problems import ProblemError
from ...schemas import StartRun
from .. import views
from ..common import PorpoiseDep, check_project, ds_router
from ..deps import ParamsDep
from ..envelope import DS_TIME, DsError, ds_error, ds_time, ok, page
from ..params import Params, paging, path_int
from ..porpoise import Porpoise
from ..status import Status

router = ds_router()

PROJECT_INSTANCE_SCAN = 200  # a task-instance list without an instance looks at this many recent instances


# -- start and execute ---------------------------------------------------------------------------------


def _start_fields(p: Params, version: int | None) -> dict[str, Any]:
    failure = p.enum("failureStrategy", FailureStrategy, required=True)
    warning = p.enum("warningType", WarningType, required=True)
    depend = p.enum("taskDependType", TaskDependType, TaskDependType.TASK_POST)
    priority = p.enum("processInstancePriority", Priority, Priority.MEDIUM, alias=("workflowInstancePriority",))
    fields: dict[str, Any] = {
        "failureStrategy": failure, "warningType": warning, "taskDependType": depend,
        "processInstancePriority": priority, "warningGroupId": p.integer("warningGroupId", 0) or 0,
        "dryRun": p.integer("dryRun", 0) or 0, "startNodeList": p.codes("startNodeList"), "version": version,
    }
    raw = (p.text("startParams") or "").strip()
    if raw:
        try:
            fields["startParams"] = json.loads(raw)
        except ValueError:
            raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "startParams") from None
    return fields


def _validated(kind: Any, fields: dict[str, Any]) -> Any:
    try:
        return kind.model_validate(fields)
    except ValidationError as e:
        names = ",".join(str(err["loc"][0]) for err in e.errors() if err.get("loc"))
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, names or "startParams") from None


def _start_body(p: Params, version: int | None) -> StartRun:
    fields = _start_fields(p, version)
    when = (p.text("scheduleTime") or "").strip()
    if when and not when.startswith("{"):  # 3.2 UI sends a JSON object even for a plain start
        try:
            fields["scheduleTime"] = datetime.strptime(when, DS_TIME)
        except ValueError:
            raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "scheduleTime") from None
    body: StartRun = _validated(StartRun, fields)
    return body


def _complement_fields(p: Params, version: int | None) -> dict[str, Any]:
    fields = _start_fields(p, version)
    fields["scheduleTime"] = p.req("scheduleTime")
    for name in ("runMode", "executionOrder", "complementDependentMode"):
        if (p.text(name) or "").strip():
            fields[name] = p.req(name).strip()
    parallelism = p.integer("expectedParallelismNumber")
    if parallelism is not None:
        fields["expectedParallelismNumber"] = parallelism
    return fields


async def _start(projectCode: str, pp: Porpoise, p: Params) -> tuple[int, int | None]:
    """Start as DS does: (trigger code, DS instance id; None for a complement, whose instances
    start one per date and appear in the instance list as they do)."""
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    code = p.req_int("processDefinitionCode", alias=("workflowDefinitionCode",))
    version = p.integer("version")
    d = await pp.definition(code, version)
    if d is None or d.project_code != project_code:
        raise DsError(Status.PROCESS_DEFINE_NOT_EXIST, code)
    meta = await run_in_threadpool(pp.ids.definition_meta, code)
    if meta.release_state != ONLINE:
        raise DsError(Status.PROCESS_DEFINE_NOT_RELEASE, code, d.version)
    exec_type = (p.text("execType") or "START_PROCESS").strip() or "START_PROCESS"
    if exec_type == "COMPLEMENT_DATA":
        missing = [c for c in p.codes("startNodeList") if c not in {t.code for t in d.tasks}]
        if missing:
            raise DsError(Status.START_NODE_NOT_EXIST_IN_LAST_PROCESS, ",".join(map(str, missing)))
        try:
            await pp.start_complement(code, _complement_fields(p, version))
        except ValidationError as e:
            names = ",".join(str(err["loc"][0]) for err in e.errors() if err.get("loc"))
            raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, names or "scheduleTime") from None
        except ProblemError as e:
            raise DsError(Status.START_PROCESS_INSTANCE_ERROR,
                          msg=f"{Status.START_PROCESS_INSTANCE_ERROR.msg()}: {_detail(e)}") from e
        return new_code(), None
    if exec_type not in ("START_PROCESS", "0"):
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "execType")
    body = _start_body(p, version)
    missing = [c for c in body.start_node_list if c not in {t.code for t in d.tasks}]
    if missing:
        raise DsError(Status.START_NODE_NOT_EXIST_IN_LAST_PROCESS, ",".join(map(str, missing)))
    trigger = new_code()
    try:
        workflow_id = await pp.start(d, body)
    except ProblemError as e:
        raise DsError(Status.START_PROCESS_INSTANCE_ERROR,
                      msg=f"{Status.START_PROCESS_INSTANCE_ERROR.msg()}: {_detail(e)}") from e
    ds_id = await run_in_threadpool(pp.ids.instance_id, workflow_id, d.project_code, d.code, trigger)
    return trigger, ds_id


def _detail(e: ProblemError) -> str:
    if e.problems:
        return "; ".join(f"{pr.pointer or '/'}: {pr.message}" for pr in e.problems)
    return e.detail or e.title


@router.post("/projects/{projectCode}/executors/start-check")
async def start_check(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    """DS ``start-check``: the definition exists and is ONLINE (Porpoise runs any sub-process version)."""
    project_code = path_int(projectCode, "projectCode")
    code = p.req_int("processDefinitionCode", alias=("workflowDefinitionCode",))
    d = await pp.definition(code)
    if d is None or d.project_code != project_code:
        raise DsError(Status.PROCESS_DEFINE_NOT_EXIST, code)
    if (await run_in_threadpool(pp.ids.definition_meta, code)).release_state != ONLINE:
        raise DsError(Status.PROCESS_DEFINE_NOT_RELEASE, code, d.version)
    return ok(None)


@router.post("/projects/{projectCode}/executors/start-process-instance",
             openapi_extra=ds_error(Status.START_PROCESS_INSTANCE_ERROR))
async def start_process_instance(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    """3.2: the answer's data is the trigger code (``GET .../process-instances/trigger`` lists its instances)."""
    trigger, _ = await _start(projectCode, pp, p)
    return ok(trigger)


@router.post("/projects/{projectCode}/executors/start-workflow-instance",
             openapi_extra=ds_error(Status.START_PROCESS_INSTANCE_ERROR))
async def start_workflow_instance(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    """3.3: the answer's data is the list of workflow instance ids started."""
    _, ds_id = await _start(projectCode, pp, p)
    return ok([ds_id] if ds_id is not None else [])


async def _instance(pp: Porpoise, project_code: int, ds_id: int) -> tuple[str, InstanceStatus, str]:
    wid = await run_in_threadpool(pp.ids.workflow_id, ds_id)
    if wid is None:
        raise DsError(Status.PROCESS_INSTANCE_NOT_EXIST, ds_id)
    try:
        st, tstatus = await pp.status(wid)
    except ProblemError as e:
        if e.status == 404:
            raise DsError(Status.PROCESS_INSTANCE_NOT_EXIST, ds_id) from e
        raise
    if project_code and st.project_code and st.project_code != project_code:
        raise DsError(Status.PROCESS_INSTANCE_NOT_EXIST, ds_id)
    return wid, st, tstatus


EXECUTE_NEEDS = {
    "STOP": {WorkflowState.RUNNING_EXECUTION, WorkflowState.READY_PAUSE, WorkflowState.SUBMITTED_SUCCESS,
             WorkflowState.SERIAL_WAIT, WorkflowState.WAIT_TO_RUN},
    "PAUSE": {WorkflowState.RUNNING_EXECUTION, WorkflowState.SUBMITTED_SUCCESS},
    "RECOVER_SUSPENDED_PROCESS": {WorkflowState.PAUSE, WorkflowState.STOP},
    "START_FAILURE_TASK_PROCESS": {WorkflowState.FAILURE},
    "REPEAT_RUNNING": {WorkflowState.SUCCESS, WorkflowState.FAILURE, WorkflowState.STOP, WorkflowState.PAUSE},
}


@router.post("/projects/{projectCode}/executors/execute", openapi_extra=ds_error(Status.EXECUTE_PROCESS_INSTANCE_ERROR))
async def execute(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    ds_id = p.req_int("processInstanceId", alias=("workflowInstanceId",))
    kind = p.req("executeType").strip()
    if kind not in EXECUTE_NEEDS:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "executeType")
    wid, st, tstatus = await _instance(pp, project_code, ds_id)
    finished = tstatus != "RUNNING"
    if st.state not in EXECUTE_NEEDS[kind] or (kind in ("RECOVER_SUSPENDED_PROCESS", "START_FAILURE_TASK_PROCESS",
                                                        "REPEAT_RUNNING") and not finished):
        raise DsError(Status.PROCESS_INSTANCE_STATE_OPERATION_ERROR, st.definition_name, st.state.value, kind)
    try:
        if kind == "STOP":
            await pp.stop(wid)
        elif kind == "PAUSE":
            await pp.pause(wid)
        elif kind == "REPEAT_RUNNING":
            await pp.rerun(wid)
        else:
            await pp.recover(wid)
    except ProblemError as e:
        raise DsError(Status.PROCESS_INSTANCE_STATE_OPERATION_ERROR, st.definition_name, st.state.value, kind) from e
    return ok(None)


# -- workflow instances ----------------------------------------------------------------------------------


def _visibility_row(wf: Any, ds_id: int, zone: str) -> dict[str, Any]:
    """A DS ProcessInstance from Temporal visibility alone (no query per row)."""
    a = wf.typed_search_attributes
    state = a.get(sa.DS_STATE) or ("RUNNING_EXECUTION" if wf.status and wf.status.name == "RUNNING" else "STOP")
    name = a.get(sa.DS_DEFINITION_NAME) or ""
    start, end = wf.start_time, wf.close_time
    return {
        "id": ds_id, "processDefinitionCode": a.get(sa.DS_DEFINITION_CODE),
        "workflowDefinitionCode": a.get(sa.DS_DEFINITION_CODE),
        "processDefinitionVersion": a.get(sa.DS_DEFINITION_VERSION), "projectCode": a.get(sa.DS_PROJECT),
        "state": state, "name": views.instance_name(name, ds_id), "processDefinitionName": name,
        "startTime": ds_time(start, zone), "endTime": ds_time(end, zone),
        "scheduleTime": ds_time(a.get(sa.DS_SCHEDULE_TIME), zone), "host": None,
        "commandType": "SCHEDULER" if wf.id.startswith(f"ds-{a.get(sa.DS_DEFINITION_CODE)}-sched") else "START_PROCESS",
        "duration": views._duration(start, end), "recovery": "NO", "executorName": "porpoise",
        "tenantCode": "default", "isSubProcess": "NO", "temporalWorkflowId": wf.id, "dryRun": 0, "testFlag": 0,
    }


def _visibility_time(text: str | None, name: str, zone: str) -> str | None:
    if not text or not text.strip():
        return None
    try:
        t = datetime.strptime(text.strip(), DS_TIME).replace(tzinfo=ZoneInfo(zone))
    except ValueError:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, name) from None
    return t.isoformat()


async def list_instances(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    page_no, page_size = paging(p)
    state = p.enum("stateType", WorkflowState)
    rows, total = await pp.list_instances(
        project_code=project_code,
        definition_code=p.integer("processDefineCode", 0, alias=("workflowDefinitionCode", "processDefinitionCode")),
        state=state.value if state else None, name_like=(p.text("searchVal") or "").strip() or None,
        start_after=_visibility_time(p.text("startDate"), "startDate", pp.zone),
        start_before=_visibility_time(p.text("endDate"), "endDate", pp.zone),
        limit=page_no * page_size)
    chunk = rows[(page_no - 1) * page_size:]
    ids = await run_in_threadpool(pp.ids.instance_ids, [wf.id for wf in chunk])
    return ok(page([_visibility_row(wf, ids[wf.id], pp.zone) for wf in chunk], total, page_no, page_size))


async def get_instance(projectCode: str, id: str, pp: PorpoiseDep) -> Response:
    ds_id = path_int(id, "id")
    wid, st, _ = await _instance(pp, path_int(projectCode, "projectCode"), ds_id)
    return ok(views.instance(st, ds_id, pp.zone, await pp.run_input(wid)))


async def _task_rows(pp: Porpoise, st: InstanceStatus, instance_ds_id: int) -> list[dict[str, Any]]:
    out = []
    for n in st.nodes:
        if n.state in views.NO_INSTANCE:
            continue
        tid = await run_in_threadpool(pp.ids.task_instance_id, st.instance_id, st.run_times, n.code, max(n.attempts, 1))
        out.append(views.task_instance(n, tid, st, instance_ds_id, pp.zone))
    return out


async def instance_tasks(projectCode: str, id: str, pp: PorpoiseDep) -> Response:
    ds_id = path_int(id, "id")
    _, st, _ = await _instance(pp, path_int(projectCode, "projectCode"), ds_id)
    return ok({"taskList": await _task_rows(pp, st, ds_id), "processInstanceState": st.state.value})


async def delete_instance(projectCode: str, id: str, pp: PorpoiseDep) -> Response:
    ds_id = path_int(id, "id")
    wid, st, tstatus = await _instance(pp, path_int(projectCode, "projectCode"), ds_id)
    if tstatus == "RUNNING" or not st.state.is_finished:
        raise DsError(Status.PROCESS_INSTANCE_STATE_OPERATION_ERROR, st.definition_name, st.state.value, "delete")
    await pp.delete_instance(wid)
    await run_in_threadpool(pp.ids.mark_deleted, ds_id, st.project_code)
    return ok(None)


async def by_trigger(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    out = []
    for ds_id, _wid in await run_in_threadpool(pp.ids.by_trigger, p.req_int("triggerCode")):
        try:
            _, st, _ = await _instance(pp, project_code, ds_id)
        except DsError:
            continue
        out.append(views.instance(st, ds_id, pp.zone))
    return ok(out)


async def sub_by_parent(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    """The child instance a SUB_PROCESS task instance started: ``{"subProcessInstanceId": id}``."""
    path_int(projectCode, "projectCode")
    task_id = p.req_int("taskId")
    key = await run_in_threadpool(pp.ids.task_instance, task_id)
    if key is None:
        raise DsError(Status.TASK_INSTANCE_NOT_EXISTS, task_id)
    _, _st, node = await _task(pp, task_id)
    if node.task_type not in ("SUB_PROCESS", "SUB_WORKFLOW"):
        raise DsError(Status.TASK_INSTANCE_NOT_SUB_WORKFLOW_INSTANCE, node.name)
    if not node.sub_instance_id:
        raise DsError(Status.SUB_PROCESS_INSTANCE_NOT_EXIST, task_id)
    child = await run_in_threadpool(pp.ids.instance_id, node.sub_instance_id)
    return ok({"subProcessInstanceId": child})


async def parent_by_sub(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    """The parent of a sub-process instance: ``{"parentWorkflowInstance": id}``."""
    sub_id = p.req_int("subId")
    wid, st, _ = await _instance(pp, path_int(projectCode, "projectCode"), sub_id)
    if not st.is_sub_process:
        raise DsError(Status.PROCESS_INSTANCE_NOT_SUB_PROCESS_INSTANCE, views.instance_name(st.definition_name, sub_id))
    run = await pp.run_input(wid)
    if run is None or not run.parent_instance_id:
        raise DsError(Status.SUB_PROCESS_INSTANCE_NOT_EXIST)
    parent = await run_in_threadpool(pp.ids.instance_id, run.parent_instance_id)
    return ok({"parentWorkflowInstance": parent})


for base in ("process-instances", "workflow-instances"):
    prefix = f"/projects/{{projectCode}}/{base}"
    router.add_api_route(prefix, list_instances, methods=["GET"], name=f"{base}:list")
    router.add_api_route(prefix + "/trigger", by_trigger, methods=["GET"], name=f"{base}:trigger")
    router.add_api_route(prefix + "/query-sub-by-parent", sub_by_parent, methods=["GET"], name=f"{base}:sub")
    router.add_api_route(prefix + "/query-parent-by-sub", parent_by_sub, methods=["GET"], name=f"{base}:parent")
    router.add_api_route(prefix + "/{id}", get_instance, methods=["GET"], name=f"{base}:get",
                         openapi_extra=ds_error(Status.QUERY_PROCESS_INSTANCE_BY_ID_ERROR))
    router.add_api_route(prefix + "/{id}/tasks", instance_tasks, methods=["GET"], name=f"{base}:tasks")
    router.add_api_route(prefix + "/{id}", delete_instance, methods=["DELETE"], name=f"{base}:delete")


# -- task instances -----------------------------------------------------------------------------------------


def _matches(row: dict[str, Any], p: Params, state: TaskState | None) -> bool:
    def has(key: str, name: str) -> bool:
        want = (p.text(name) or "").strip()
        return not want or want.lower() in str(row.get(key) or "").lower()
    if state is not None and row["state"] != state.value:
        return False
    code = p.integer("taskCode")
    if code is not None and row["taskCode"] != code:
        return False
    return (has("name", "taskName") and has("name", "searchVal") and has("host", "host")
            and has("processInstanceName", "processInstanceName")
            and has("processInstanceName", "workflowInstanceName")
            and has("processDefinitionName", "processDefinitionName")
            and has("processDefinitionName", "workflowDefinitionName"))


@router.get("/projects/{projectCode}/task-instances")
async def list_task_instances(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    page_no, page_size = paging(p)
    state = p.enum("stateType", TaskState)
    start_after = _visibility_time(p.text("startDate"), "startDate", pp.zone)
    start_before = _visibility_time(p.text("endDate"), "endDate", pp.zone)
    instance_id = p.integer("processInstanceId", 0, alias=("workflowInstanceId",)) or 0
    statuses: list[tuple[int, InstanceStatus]] = []
    if instance_id:
        _, st, _ = await _instance(pp, project_code, instance_id)
        statuses.append((instance_id, st))
    else:
        rows, _ = await pp.list_instances(project_code=project_code, start_after=start_after,
                                          start_before=start_before, limit=PROJECT_INSTANCE_SCAN)
        ids = await run_in_threadpool(pp.ids.instance_ids, [wf.id for wf in rows])
        for wf in rows:
            try:
                st, _ = await pp.status(wf.id)
            except ProblemError:
                continue  # a busy or vanished instance is left out of a project-wide list
            statuses.append((ids[wf.id], st))
    out = []
    for ds_id, st in statuses:
        out += [r for r in await _task_rows(pp, st, ds_id) if _matches(r, p, state)]
    out.sort(key=lambda r: (r["startTime"] or "", r["id"]), reverse=True)
    return ok(page(out[(page_no - 1) * page_size: page_no * page_size], len(out), page_no, page_size))


async def _task(pp: Porpoise, task_instance_id: int) -> tuple[Any, InstanceStatus, NodeStatus]:
    key = await run_in_threadpool(pp.ids.task_instance, task_instance_id)
    if key is None:
        raise DsError(Status.TASK_INSTANCE_NOT_FOUND)
    try:
        st, _ = await pp.status(key.workflow_id)
    except ProblemError as e:
        if e.status == 404:
            raise DsError(Status.TASK_INSTANCE_NOT_FOUND) from e
        raise
    node = next((n for n in st.nodes if n.code == key.task_code), None)
    if node is None:
        raise DsError(Status.TASK_INSTANCE_NOT_FOUND)
    return key, st, node


@router.post("/projects/{projectCode}/task-instances/{id}/force-success",
             openapi_extra=ds_error(Status.FORCE_TASK_SUCCESS_ERROR))
async def force_success(projectCode: str, id: str, pp: PorpoiseDep) -> Response:
    tid = path_int(id, "id")
    key, st, node = await _task(pp, tid)
    if node.state not in (TaskState.FAILURE, TaskState.KILL, TaskState.NEED_FAULT_TOLERANCE):
        raise DsError(Status.TASK_INSTANCE_STATE_OPERATION_ERROR, node.name, node.state.value)
    try:
        await pp.force_success(key.workflow_id, key.task_code)
    except ProblemError as e:
        raise DsError(Status.TASK_INSTANCE_STATE_OPERATION_ERROR, node.name, node.state.value) from e
    return ok(None)


# -- logs -------------------------------------------------------------------------------------------------


async def _log_text(pp: Porpoise, p: Params) -> tuple[str, str]:
    tid = p.req_int("taskInstanceId")
    key, _st, node = await _task(pp, tid)
    path = pp.log_path(key.workflow_id, key.task_code, key.attempt)
    if not path.is_file():
        if node.host is None and not node.state.is_finished:
            raise DsError(Status.TASK_INSTANCE_HOST_IS_NULL)
        return "", node.name
    return await pp.read_log(path, node.task_type), node.name


async def log_detail(pp: PorpoiseDep, p: ParamsDep, projectCode: str | None = None) -> Response:
    """``ResponseTaskLog {lineNum, message}``: ``limit`` lines after the first ``skipLineNum``."""
    if projectCode is not None:
        path_int(projectCode, "projectCode")
    skip, limit = p.req_int("skipLineNum"), p.req_int("limit")
    if skip < 0:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "skipLineNum")
    if limit < 0:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "limit")
    text, _ = await _log_text(pp, p)
    lines = text.splitlines(keepends=True)[skip: skip + limit]
    return ok({"lineNum": len(lines), "message": "".join(lines)})


async def download_log(pp: PorpoiseDep, p: ParamsDep, projectCode: str | None = None) -> Response:
    text, name = await _log_text(pp, p)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "task"
    return PlainTextResponse(text, headers={"Content-Disposition": f'attachment; filename="{safe}.log"'})


router.add_api_route("/log/detail", log_detail, methods=["GET"], name="log:detail",
                     openapi_extra=ds_error(Status.QUERY_TASK_INSTANCE_LOG_ERROR))
router.add_api_route("/log/{projectCode}/detail", log_detail, methods=["GET"], name="log:project-detail",
                     openapi_extra=ds_error(Status.QUERY_TASK_INSTANCE_LOG_ERROR))
router.add_api_route("/log/download-log", download_log, methods=["GET"], name="log:download")
router.add_api_route("/log/{projectCode}/download-log", download_log, methods=["GET"], name="log:project-download")
