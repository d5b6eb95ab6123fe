"""DS ``TaskGroupController`` (``/task-group``) on Porpoise's task groups (a live group takes a new
size at once). As Porpoise's own ``/task-groups``: only administrators create or resize them (DS's 30001
otherwise); anyone lists them, a project's list only for who may use the project."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from ..common import PorpoiseDep, ds_router
from ..deps import ADMIN_ONLY, ParamsDep, PrincipalDep, project_perm
from ..envelope import DsError, ds_error, ok, page, paged
from ..params import paging
from ..porpoise import (
    Porpoise,
)
from ..status import Status

router = ds_router()


def _task_group(g: dict[str, Any]) -> dict[str, Any]:
    return {"id": g["id"], "name": g["name"], "projectCode": g["projectCode"], "description": g["description"],
            "groupSize": g["groupSize"], "useSize": 0, "userId": 1, "status": 1, "createTime": None,
            "updateTime": None}


def _group_size(p: Any) -> int:
    size = p.req_int("groupSize")
    if size < 1:
        raise DsError(Status.TASK_GROUP_SIZE_ERROR)
    return int(size)


@router.post("/task-group/create", openapi_extra=ds_error(Status.CREATE_TASK_GROUP_ERROR), dependencies=[ADMIN_ONLY])
async def create_task_group(pp: PorpoiseDep, p: ParamsDep) -> Response:
    name = p.req("name").strip()
    if not name:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "name")
    size, project_code = _group_size(p), p.integer("projectCode", 0) or 0
    groups = await pp.task_groups()
    if any(g["name"] == name and g["projectCode"] == project_code for g in groups):
        raise DsError(Status.TASK_GROUP_NAME_EXSIT)
    new_id = max((int(g["id"]) for g in groups), default=0) + 1
    await pp.put_task_group(new_id, name, size, project_code, p.text("description", "") or "")
    got = next(g for g in await pp.task_groups() if g["id"] == new_id)
    return ok(_task_group(got), 201)


@router.post("/task-group/update", openapi_extra=ds_error(Status.UPDATE_TASK_GROUP_ERROR), dependencies=[ADMIN_ONLY])
async def update_task_group(pp: PorpoiseDep, p: ParamsDep) -> Response:
    group_id = p.req_int("id")
    groups = {g["id"]: g for g in await pp.task_groups()}
    if group_id not in groups:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "id")  # DS has no "task group not found"
    name, size = p.req("name").strip(), _group_size(p)
    if any(g["name"] == name and g["id"] != group_id and g["projectCode"] == groups[group_id]["projectCode"]
           for g in groups.values()):
        raise DsError(Status.TASK_GROUP_NAME_EXSIT)
    await pp.put_task_group(group_id, name, size, int(groups[group_id]["projectCode"]),
                            p.text("description", "") or "")
    got = next(g for g in await pp.task_groups() if g["id"] == group_id)
    return ok(_task_group(got), 201)


async def _task_group_page(pp: Porpoise, p: Any, project_code: int | None) -> Response:
    page_no, page_size = paging(p)
    name = (p.text("name") or "").strip().lower()
    rows = [g for g in await pp.task_groups()
            if name in str(g["name"]).lower() and (project_code is None or g["projectCode"] == project_code)]
    chunk = rows[(page_no - 1) * page_size: page_no * page_size]
    return ok(page([_task_group(g) for g in chunk], len(rows), page_no, page_size))


@router.get("/task-group/list-paging", openapi_extra=ds_error(Status.QUERY_TASK_GROUP_LIST_ERROR))
@paged
async def task_groups_paging(pp: PorpoiseDep, p: ParamsDep) -> Response:
    return await _task_group_page(pp, p, None)


@router.get("/task-group/query-list-by-projectCode", openapi_extra=ds_error(Status.QUERY_TASK_GROUP_LIST_ERROR))
@paged
async def task_groups_by_project(pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep) -> Response:
    project_code = p.integer("projectCode", 0) or 0
    if project_code:
        project_perm(who, project_code)
    return await _task_group_page(pp, p, project_code)


@router.get("/task-group/query-list-by-status", openapi_extra=ds_error(Status.QUERY_TASK_GROUP_LIST_ERROR))
@paged
async def task_groups_by_status(pp: PorpoiseDep, p: ParamsDep) -> Response:
    return await _task_group_page(pp, p, None)  # every Porpoise task group is open (status 1)
