"""DS ``TaskInstanceController``: the task-instance list with DS's filters, and force success."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from core.contracts import InstanceStatus
from model.states import TaskState

from .. import lookups
from ..common import PorpoiseDep, check_project, ds_router
from ..deps import ParamsDep, PrincipalDep
from ..envelope import DsError, ds_error, ok, page, paged
from ..params import Params, paging, path_int
from ..porpoise import DomainError
from ..status import Status

router = ds_router()

PROJECT_INSTANCE_SCAN = 200  # a list without processInstanceId looks at this many recent instances


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
@paged
async def list_task_instances(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    page_no, page_size = paging(p)
    state = p.enum("stateType", TaskState)
    start_after = lookups.visibility_time(p.text("startDate"), "startDate", pp.zone)
    start_before = lookups.visibility_time(p.text("endDate"), "endDate", pp.zone)
    instance_id = p.integer("processInstanceId", 0, alias=("workflowInstanceId",)) or 0
    statuses: list[tuple[int, InstanceStatus]] = []
    if instance_id:
        _, st, _ = await lookups.instance(pp, project_code, instance_id)
        statuses.append((instance_id, st))
    else:
        rows, _ = await pp.list_instances(project_code=project_code, start_after=start_after,
                                          start_before=start_before, limit=PROJECT_INSTANCE_SCAN)
        ids = await run_in_threadpool(pp.ids.instance_ids, [wf.id for wf in rows])
        for wf in rows:
            try:
                st, _ = await pp.status(wf.id)
            except DomainError:
                continue  # a busy or vanished instance is left out of a project-wide list
            statuses.append((ids[wf.id], st))
    out = []
    for ds_id, st in statuses:
        out += [r for r in await lookups.task_rows(pp, st, ds_id) if _matches(r, p, state)]
    out.sort(key=lambda r: (r["startTime"] or "", r["id"]), reverse=True)
    return ok(page(out[(page_no - 1) * page_size: page_no * page_size], len(out), page_no, page_size))


@router.post("/projects/{projectCode}/task-instances/{id}/force-success",
             openapi_extra=ds_error(Status.FORCE_TASK_SUCCESS_ERROR))
async def force_success(projectCode: str, id: str, pp: PorpoiseDep, who: PrincipalDep) -> Response:
    tid = path_int(id, "id")
    key, st, node = await lookups.task(pp, tid, who, path_int(projectCode, "projectCode"))
    if node.state not in (TaskState.FAILURE, TaskState.KILL, TaskState.NEED_FAULT_TOLERANCE):
        raise DsError(Status.TASK_INSTANCE_STATE_OPERATION_ERROR, node.name, node.state.value)
    try:
        await pp.force_success(key.workflow_id, key.task_code)
    except DomainError as e:
        raise DsError(Status.TASK_INSTANCE_STATE_OPERATION_ERROR, node.name, node.state.value) from e
    return ok(None)
