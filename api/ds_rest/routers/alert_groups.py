"""DS ``AlertGroupController`` (``/alert-groups``) on Porpoise's alert groups. As Porpoise's own
``/alert-groups`` (services/alerts.py): a general user lists and reads the groups of their projects
and the global ones; through this API only administrators create, change or delete them (DS's
30001 otherwise; DS's form has no project to put a group in)."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from services.alerts import may_read

from ..common import PorpoiseDep, ds_router
from ..deps import ADMIN_ONLY, ParamsDep
from ..envelope import DsError, ds_error, ds_time, ok, page, paged
from ..params import paging, path_int
from ..porpoise import (
    AlertConflict,
    GroupPatch,
    GroupSpec,
    Porpoise,
)
from ..status import Status

router = ds_router()


async def _groups(pp: Porpoise) -> list[Any]:
    """The groups the caller may see (services.alerts.may_read; all for an administrator)."""
    who = pp.principal
    return list(await run_in_threadpool(pp.alerts.list_groups, who.listed_projects if who is not None else None))


def _alert_group(g: Any, zone: str) -> dict[str, Any]:
    return {"id": g.id, "groupName": g.name, "description": g.description,
            "alertInstanceIds": ",".join(str(c.id) for c in g.channels), "createUserId": 1,
            "createTime": ds_time(g.created_at, zone), "updateTime": ds_time(g.updated_at, zone)}


@router.post("/alert-groups", openapi_extra=ds_error(Status.CREATE_ALERT_GROUP_ERROR), dependencies=[ADMIN_ONLY])
async def create_alert_group(pp: PorpoiseDep, p: ParamsDep) -> Response:
    """``alertInstanceIds`` is accepted and ignored: Porpoise's channels belong to one group and are
    added with ``POST /alert-groups/{id}/channels`` (docs/alerts.md)."""
    name = p.req("groupName").strip()
    p.req("alertInstanceIds")
    try:
        g = await run_in_threadpool(pp.alerts.create_group,
                                    GroupSpec.model_validate(
                                        {"name": name, "description": p.text("description", "") or ""}))
    except AlertConflict:
        raise DsError(Status.ALERT_GROUP_EXIST) from None
    except ValidationError:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "groupName") from None
    return ok(_alert_group(g, pp.zone), 201)


@router.get("/alert-groups", openapi_extra=ds_error(Status.LIST_PAGING_ALERT_GROUP_ERROR))
@paged
async def alert_groups_paging(pp: PorpoiseDep, p: ParamsDep) -> Response:
    page_no, page_size = paging(p)
    search = (p.text("searchVal") or "").strip().lower()
    rows = [g for g in await _groups(pp) if search in g.name.lower()]
    chunk = rows[(page_no - 1) * page_size: page_no * page_size]
    return ok(page([_alert_group(g, pp.zone) for g in chunk], len(rows), page_no, page_size))


@router.get("/alert-groups/list", openapi_extra=ds_error(Status.QUERY_ALL_ALERTGROUP_ERROR))
async def alert_groups_all(pp: PorpoiseDep) -> Response:
    return ok([_alert_group(g, pp.zone) for g in await _groups(pp)])


@router.get("/alert-groups/normal-list", openapi_extra=ds_error(Status.QUERY_ALL_ALERTGROUP_ERROR))
async def alert_groups_normal(pp: PorpoiseDep) -> Response:
    return await alert_groups_all(pp)


@router.get("/alert-groups/verify-name")
async def verify_alert_group_name(pp: PorpoiseDep, p: ParamsDep) -> Response:
    name = p.req("groupName")
    if any(g.name == name for g in await run_in_threadpool(pp.alerts.list_groups)):  # unique across projects
        raise DsError(Status.ALERT_GROUP_EXIST)
    return ok(None)


@router.post("/alert-groups/query", openapi_extra=ds_error(Status.QUERY_ALERT_GROUP_ERROR))
async def query_alert_group(pp: PorpoiseDep, p: ParamsDep) -> Response:
    g = await run_in_threadpool(pp.alerts.get_group, p.req_int("id"))
    if g is None or not may_read(pp.principal, g.project_code):  # another project's group: as if absent (no probing)
        raise DsError(Status.ALERT_GROUP_NOT_EXIST)
    return ok(_alert_group(g, pp.zone))


@router.put("/alert-groups/{id}", openapi_extra=ds_error(Status.UPDATE_ALERT_GROUP_ERROR), dependencies=[ADMIN_ONLY])
async def update_alert_group(id: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    group_id = path_int(id, "id")
    name = p.req("groupName").strip()
    p.req("alertInstanceIds")
    try:
        g = await run_in_threadpool(pp.alerts.update_group, group_id,
                                    GroupPatch.model_validate(
                                        {"name": name, "description": p.text("description")}))
    except AlertConflict:
        raise DsError(Status.ALERT_GROUP_EXIST) from None
    except ValidationError:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "groupName") from None
    if g is None:
        raise DsError(Status.ALERT_GROUP_NOT_EXIST)
    return ok(_alert_group(g, pp.zone))


@router.delete("/alert-groups/{id}", openapi_extra=ds_error(Status.DELETE_ALERT_GROUP_ERROR), dependencies=[ADMIN_ONLY])
async def delete_alert_group(id: str, pp: PorpoiseDep) -> Response:
    if not await run_in_threadpool(pp.alerts.delete_group, path_int(id, "id")):
        raise DsError(Status.ALERT_GROUP_NOT_EXIST)
    return ok(None)
