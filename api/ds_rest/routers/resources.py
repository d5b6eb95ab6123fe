"""DS ``DataSourceController`` (``/datasources``, JSON bodies as DS's ``@RequestBody String``),
``TaskGroupController`` (``/task-group``) and ``AlertGroupController`` (``/alert-groups``) on
Porpoise's datasource registry, task groups and alert groups."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from activities.alerts.store import AlertConflict, GroupPatch, GroupSpec
from activities.datasources import (
    ConnectionInfo,
    DatasourceConflict,
    DatasourceNotFound,
    DatasourcePatch,
    DatasourceSpec,
    DatasourceView,
    SecretKeyError,
)

from ..common import PorpoiseDep, ds_router
from ..deps import ParamsDep
from ..envelope import DsError, ds_error, ds_time, ok, page
from ..params import paging, path_int
from ..porpoise import Porpoise
from ..status import Status

router = ds_router()

# BaseDataSourceParamDTO fields Porpoise keeps; DS's UI also sends mode/principal/... which are dropped.
DATASOURCE_KEYS = ("id", "name", "type", "host", "port", "database", "userName", "password", "other", "note")


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        doc = json.loads(raw) if raw.strip() else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "body (a JSON object)")
    return doc


def _datasource_fields(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: doc[k] for k in DATASOURCE_KEYS if k in doc}
    if isinstance(out.get("other"), str):  # DS's UI sends "other" as a JSON string or an object
        try:
            out["other"] = json.loads(out["other"]) if out["other"].strip() else {}
        except ValueError:
            raise DsError(Status.DATASOURCE_OTHER_PARAMS_ILLEGAL) from None
    if out.get("other") is None:
        out.pop("other", None)
    if out.get("port") in ("", None):
        out.pop("port", None)
    return out


def _bad_datasource(e: ValidationError | ValueError) -> DsError:
    if isinstance(e, ValidationError):
        names = ",".join(str(err["loc"][0]) for err in e.errors() if err.get("loc")) or "body"
        return DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, names)
    return DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, str(e))


def _datasource_dto(v: DatasourceView) -> dict[str, Any]:
    """DS ``BaseDataSourceParamDTO`` (what ``GET /datasources/{id}`` answers); never the password."""
    return {"id": v.id, "name": v.name, "note": v.note, "host": v.host, "port": v.port, "database": v.database,
            "userName": v.user, "password": "", "other": dict(v.params), "type": v.type}


def _datasource_entity(v: DatasourceView, zone: str) -> dict[str, Any]:
    """DS ``DataSource`` entity (what the lists answer)."""
    params = {"address": f"{v.host}:{v.port}" if v.host else "", "database": v.database, "user": v.user,
              "other": dict(v.params)}
    return {"id": v.id, "userId": 1, "userName": "porpoise", "name": v.name, "note": v.note, "type": v.type,
            "connectionParams": json.dumps(params), "createTime": ds_time(v.created_at, zone),
            "updateTime": ds_time(v.updated_at, zone)}


async def _datasource(pp: Porpoise, ds_id: int) -> DatasourceView:
    v = await run_in_threadpool(pp.datasources.get, ds_id)
    if v is None:
        raise DsError(Status.RESOURCE_NOT_EXIST)
    return v


@router.post("/datasources", openapi_extra=ds_error(Status.CREATE_DATASOURCE_ERROR))
async def create_datasource(request: Request, pp: PorpoiseDep) -> Response:
    fields = _datasource_fields(await _json_body(request))
    fields.pop("id", None)
    try:
        v = await run_in_threadpool(pp.datasources.create, DatasourceSpec.model_validate(fields))
    except DatasourceConflict:
        raise DsError(Status.DATASOURCE_EXIST) from None
    except (ValidationError, ValueError) as e:
        raise _bad_datasource(e) from None
    return ok(_datasource_entity(v, pp.zone), 201)


@router.put("/datasources/{id}", openapi_extra=ds_error(Status.UPDATE_DATASOURCE_ERROR))
async def update_datasource(id: str, request: Request, pp: PorpoiseDep) -> Response:
    ds_id = path_int(id, "id")
    await _datasource(pp, ds_id)
    fields = _datasource_fields(await _json_body(request))
    fields.pop("id", None)
    try:
        v = await run_in_threadpool(pp.datasources.update, ds_id, DatasourcePatch.model_validate(fields))
    except DatasourceConflict:
        raise DsError(Status.DATASOURCE_EXIST) from None
    except (ValidationError, ValueError) as e:
        raise _bad_datasource(e) from None
    if v is None:
        raise DsError(Status.RESOURCE_NOT_EXIST)
    return ok(_datasource_entity(v, pp.zone))


@router.get("/datasources", openapi_extra=ds_error(Status.QUERY_DATASOURCE_ERROR))
async def list_datasources(pp: PorpoiseDep, p: ParamsDep) -> Response:
    page_no, page_size = paging(p)
    search = (p.text("searchVal") or "").strip().lower()
    rows = [v for v in await run_in_threadpool(pp.datasources.list) if search in v.name.lower()]
    rows.sort(key=lambda v: v.updated_at, reverse=True)
    chunk = rows[(page_no - 1) * page_size: page_no * page_size]
    return ok(page([_datasource_entity(v, pp.zone) for v in chunk], len(rows), page_no, page_size))


@router.get("/datasources/list", openapi_extra=ds_error(Status.QUERY_DATASOURCE_ERROR))
async def datasources_by_type(pp: PorpoiseDep, p: ParamsDep) -> Response:
    kind = p.req("type").strip().upper()
    rows = await run_in_threadpool(pp.datasources.list, kind)
    return ok([{"id": v.id, "name": v.name, "type": v.type} for v in rows])


@router.get("/datasources/verify-name")
async def verify_datasource_name(pp: PorpoiseDep, p: ParamsDep) -> Response:
    name = p.req("name")
    if any(v.name == name for v in await run_in_threadpool(pp.datasources.list)):
        raise DsError(Status.DATASOURCE_EXIST)
    return ok(None)


async def _connect(pp: Porpoise, info: ConnectionInfo) -> Response:
    outcome = await run_in_threadpool(pp.check_datasource, info)
    if not outcome.ok:
        raise DsError(Status.CONNECTION_TEST_FAILURE,
                      msg=f"{Status.CONNECTION_TEST_FAILURE.msg()}: {outcome.message}")
    return ok(True)


@router.post("/datasources/connect", openapi_extra=ds_error(Status.CONNECT_DATASOURCE_FAILURE))
async def connect(request: Request, pp: PorpoiseDep) -> Response:
    """Test settings without saving them (DS ``/datasources/connect``)."""
    fields = _datasource_fields(await _json_body(request))
    fields.pop("id", None)
    fields.setdefault("name", "connect-test")
    try:
        spec = DatasourceSpec.model_validate(fields)
    except (ValidationError, ValueError) as e:
        raise _bad_datasource(e) from None
    info = ConnectionInfo(id=0, name=spec.name, type=spec.type, host=spec.host, port=spec.port,
                          database=spec.database, user=spec.user, params=dict(spec.params), version=0,
                          password=spec.password or "")
    return await _connect(pp, info)


@router.get("/datasources/{id}/connect-test", openapi_extra=ds_error(Status.CONNECTION_TEST_FAILURE))
async def connect_test(id: str, pp: PorpoiseDep) -> Response:
    ds_id = path_int(id, "id")
    try:
        info = await run_in_threadpool(pp.datasources.resolve, ds_id)
    except DatasourceNotFound:
        raise DsError(Status.RESOURCE_NOT_EXIST) from None
    except SecretKeyError as e:
        raise DsError(Status.CONNECTION_TEST_FAILURE, msg=f"{Status.CONNECTION_TEST_FAILURE.msg()}: {e}") from None
    return await _connect(pp, info)


@router.get("/datasources/{id}", openapi_extra=ds_error(Status.QUERY_DATASOURCE_ERROR))
async def get_datasource(id: str, pp: PorpoiseDep) -> Response:
    return ok(_datasource_dto(await _datasource(pp, path_int(id, "id"))))


@router.delete("/datasources/{id}", openapi_extra=ds_error(Status.DELETE_DATA_SOURCE_FAILURE))
async def delete_datasource(id: str, pp: PorpoiseDep) -> Response:
    ds_id = path_int(id, "id")
    if not await run_in_threadpool(pp.datasources.delete, ds_id):
        raise DsError(Status.RESOURCE_NOT_EXIST)
    return ok(None)


# -- task groups ----------------------------------------------------------------------------------------


def _task_group(g: dict[str, Any]) -> dict[str, Any]:
    return {"id": g["id"], "name": g["name"], "projectCode": g["projectCode"], "description": g["description"],
            "groupSize": g["groupSize"], "useSize": 0, "userId": 1, "status": 1, "createTime": None,
            "updateTime": None}


def _group_size(p: Any) -> int:
    size = p.req_int("groupSize")
    if size < 1:
        raise DsError(Status.TASK_GROUP_SIZE_ERROR)
    return int(size)


@router.post("/task-group/create", openapi_extra=ds_error(Status.CREATE_TASK_GROUP_ERROR))
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


@router.post("/task-group/update", openapi_extra=ds_error(Status.UPDATE_TASK_GROUP_ERROR))
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
async def task_groups_paging(pp: PorpoiseDep, p: ParamsDep) -> Response:
    return await _task_group_page(pp, p, None)


@router.get("/task-group/query-list-by-projectCode", openapi_extra=ds_error(Status.QUERY_TASK_GROUP_LIST_ERROR))
async def task_groups_by_project(pp: PorpoiseDep, p: ParamsDep) -> Response:
    return await _task_group_page(pp, p, p.integer("projectCode", 0) or 0)


@router.get("/task-group/query-list-by-status", openapi_extra=ds_error(Status.QUERY_TASK_GROUP_LIST_ERROR))
async def task_groups_by_status(pp: PorpoiseDep, p: ParamsDep) -> Response:
    return await _task_group_page(pp, p, None)  # every Porpoise task group is open (status 1)


# -- alert groups -----------------------------------------------------------------------------------------


def _alert_group(g: Any, zone: str) -> dict[str, Any]:
    return {"id": g.id, "groupName": g.name, "description": g.description,
            "alertInstanceIds": ",".join(str(c.id) for c in g.channels), "createUserId": 1,
            "createTime": ds_time(g.created_at, zone), "updateTime": ds_time(g.updated_at, zone)}


@router.post("/alert-groups", openapi_extra=ds_error(Status.CREATE_ALERT_GROUP_ERROR))
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
async def alert_groups_paging(pp: PorpoiseDep, p: ParamsDep) -> Response:
    page_no, page_size = paging(p)
    search = (p.text("searchVal") or "").strip().lower()
    rows = [g for g in await run_in_threadpool(pp.alerts.list_groups) if search in g.name.lower()]
    chunk = rows[(page_no - 1) * page_size: page_no * page_size]
    return ok(page([_alert_group(g, pp.zone) for g in chunk], len(rows), page_no, page_size))


@router.get("/alert-groups/list", openapi_extra=ds_error(Status.QUERY_ALL_ALERTGROUP_ERROR))
async def alert_groups_all(pp: PorpoiseDep) -> Response:
    return ok([_alert_group(g, pp.zone) for g in await run_in_threadpool(pp.alerts.list_groups)])


@router.get("/alert-groups/normal-list", openapi_extra=ds_error(Status.QUERY_ALL_ALERTGROUP_ERROR))
async def alert_groups_normal(pp: PorpoiseDep) -> Response:
    return await alert_groups_all(pp)


@router.get("/alert-groups/verify-name")
async def verify_alert_group_name(pp: PorpoiseDep, p: ParamsDep) -> Response:
    name = p.req("groupName")
    if any(g.name == name for g in await run_in_threadpool(pp.alerts.list_groups)):
        raise DsError(Status.ALERT_GROUP_EXIST)
    return ok(None)


@router.post("/alert-groups/query", openapi_extra=ds_error(Status.QUERY_ALERT_GROUP_ERROR))
async def query_alert_group(pp: PorpoiseDep, p: ParamsDep) -> Response:
    g = await run_in_threadpool(pp.alerts.get_group, p.req_int("id"))
    if g is None:
        raise DsError(Status.ALERT_GROUP_NOT_EXIST)
    return ok(_alert_group(g, pp.zone))


@router.put("/alert-groups/{id}", openapi_extra=ds_error(Status.UPDATE_ALERT_GROUP_ERROR))
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


@router.delete("/alert-groups/{id}", openapi_extra=ds_error(Status.DELETE_ALERT_GROUP_ERROR))
async def delete_alert_group(id: str, pp: PorpoiseDep) -> Response:
    if not await run_in_threadpool(pp.alerts.delete_group, path_int(id, "id")):
        raise DsError(Status.ALERT_GROUP_NOT_EXIST)
    return ok(None)
