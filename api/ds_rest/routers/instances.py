"""DS ``ProcessInstanceController`` (3.3 ``WorkflowInstanceController``: ``workflow-instances``):
list with DS's filters, get, its task list, delete, by trigger code, sub-process navigation."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from core import search_attributes as sa
from model.states import WorkflowState

from .. import lookups, views
from ..common import PorpoiseDep, check_project, ds_router
from ..deps import ParamsDep, PrincipalDep
from ..envelope import DsError, ds_error, ds_time, ok, page, paged
from ..params import paging, path_int
from ..status import Status

router = ds_router()


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


@paged
async def list_instances(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    page_no, page_size = paging(p)
    state = p.enum("stateType", WorkflowState)
    rows, total = await pp.list_instances(
        project_code=project_code,
        definition_code=p.integer("processDefineCode", 0, alias=("workflowDefinitionCode", "processDefinitionCode")),
        state=state.value if state else None, name_like=(p.text("searchVal") or "").strip() or None,
        start_after=lookups.visibility_time(p.text("startDate"), "startDate", pp.zone),
        start_before=lookups.visibility_time(p.text("endDate"), "endDate", pp.zone),
        limit=page_no * page_size)
    chunk = rows[(page_no - 1) * page_size:]
    ids = await run_in_threadpool(pp.ids.instance_ids, [wf.id for wf in chunk])
    return ok(page([_visibility_row(wf, ids[wf.id], pp.zone) for wf in chunk], total, page_no, page_size))


async def get_instance(projectCode: str, id: str, pp: PorpoiseDep) -> Response:
    ds_id = path_int(id, "id")
    wid, st, _ = await lookups.instance(pp, path_int(projectCode, "projectCode"), ds_id)
    return ok(views.instance(st, ds_id, pp.zone, await pp.run_input(wid)))


async def instance_tasks(projectCode: str, id: str, pp: PorpoiseDep) -> Response:
    ds_id = path_int(id, "id")
    _, st, _ = await lookups.instance(pp, path_int(projectCode, "projectCode"), ds_id)
    return ok({"taskList": await lookups.task_rows(pp, st, ds_id), "processInstanceState": st.state.value})


async def delete_instance(projectCode: str, id: str, pp: PorpoiseDep) -> Response:
    ds_id = path_int(id, "id")
    wid, st, tstatus = await lookups.instance(pp, path_int(projectCode, "projectCode"), ds_id)
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
            _, st, _ = await lookups.instance(pp, project_code, ds_id)
        except DsError:
            continue
        out.append(views.instance(st, ds_id, pp.zone))
    return ok(out)


async def sub_by_parent(projectCode: str, pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep) -> Response:
    """The child instance a SUB_PROCESS task instance started: ``{"subProcessInstanceId": id}``."""
    project_code = path_int(projectCode, "projectCode")
    task_id = p.req_int("taskId")
    key = await run_in_threadpool(pp.ids.task_instance, task_id)
    if key is None:
        raise DsError(Status.TASK_INSTANCE_NOT_EXISTS, task_id)
    _, _st, node = await lookups.task(pp, task_id, who, project_code)
    if node.task_type not in ("SUB_PROCESS", "SUB_WORKFLOW"):
        raise DsError(Status.TASK_INSTANCE_NOT_SUB_WORKFLOW_INSTANCE, node.name)
    if not node.sub_instance_id:
        raise DsError(Status.SUB_PROCESS_INSTANCE_NOT_EXIST, task_id)
    child = await run_in_threadpool(pp.ids.instance_id, node.sub_instance_id)
    return ok({"subProcessInstanceId": child})


async def parent_by_sub(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    """The parent of a sub-process instance: ``{"parentWorkflowInstance": id}``."""
    sub_id = p.req_int("subId")
    wid, st, _ = await lookups.instance(pp, path_int(projectCode, "projectCode"), sub_id)
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
