"""DS ``DataSourceController`` (``/datasources``; JSON bodies, DS's ``@RequestBody String``) on
Porpoise's datasource registry (passwords encrypted at rest, never returned).

Access is the native API's (``api.auth.require_datasource``): the creator owns a datasource; a general
user lists, reads and tests only their own and granted ones, and changes or deletes only their own
(DS's 30001, USER_NO_OPERATION_PERM, otherwise). Changing where it connects needs the password again."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from ..common import PorpoiseDep, ds_router
from ..deps import ParamsDep, Principal, PrincipalDep, require_datasource
from ..envelope import DsError, ds_error, ds_time, ok, page, paged
from ..params import paging, path_int
from ..porpoise import (
    ConnectionInfo,
    DatasourceConflict,
    DatasourceNotFound,
    DatasourcePatch,
    DatasourceSpec,
    DatasourceView,
    Porpoise,
    SecretKeyError,
    identity_changes,
)
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


async def _datasource(pp: Porpoise, ds_id: int, who: Principal, *, owner: bool = False) -> DatasourceView:
    v = await run_in_threadpool(pp.datasources.get, ds_id)
    if v is None:
        raise DsError(Status.RESOURCE_NOT_EXIST)
    await require_datasource(who, pp.request_app.state.security, ds_id, owner=owner)
    return v


async def _visible(pp: Porpoise, who: Principal, kind: str | None = None) -> list[DatasourceView]:
    """The datasources the caller may use: all for an administrator, else owned or granted."""
    rows = await run_in_threadpool(pp.datasources.list, kind)
    if who.is_admin:
        return list(rows)
    mine = await run_in_threadpool(pp.request_app.state.security.datasource_access, who.user_id)
    return [v for v in rows if v.id in mine]


@router.post("/datasources", openapi_extra=ds_error(Status.CREATE_DATASOURCE_ERROR))
async def create_datasource(request: Request, pp: PorpoiseDep, who: PrincipalDep) -> Response:
    fields = _datasource_fields(await _json_body(request))
    fields.pop("id", None)
    try:
        v = await run_in_threadpool(pp.datasources.create, DatasourceSpec.model_validate(fields))
    except DatasourceConflict:
        raise DsError(Status.DATASOURCE_EXIST) from None
    except (ValidationError, ValueError) as e:
        raise _bad_datasource(e) from None
    await run_in_threadpool(pp.request_app.state.security.set_datasource_owner, v.id, who.user_id)  # as DS
    return ok(_datasource_entity(v, pp.zone), 201)


@router.put("/datasources/{id}", openapi_extra=ds_error(Status.UPDATE_DATASOURCE_ERROR))
async def update_datasource(id: str, request: Request, pp: PorpoiseDep, who: PrincipalDep) -> Response:
    ds_id = path_int(id, "id")
    current = await _datasource(pp, ds_id, who, owner=True)
    fields = _datasource_fields(await _json_body(request))
    fields.pop("id", None)
    try:
        patch = DatasourcePatch.model_validate(fields)
    except (ValidationError, ValueError) as e:
        raise _bad_datasource(e) from None
    if (changed := identity_changes(current, patch)) and not patch.password and current.has_password:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "password",
                      msg=f"request parameter password is not valid: changing {', '.join(changed)} needs it again")
    try:
        v = await run_in_threadpool(pp.datasources.update, ds_id, patch)
    except DatasourceConflict:
        raise DsError(Status.DATASOURCE_EXIST) from None
    except (ValidationError, ValueError) as e:
        raise _bad_datasource(e) from None
    if v is None:
        raise DsError(Status.RESOURCE_NOT_EXIST)
    return ok(_datasource_entity(v, pp.zone))


@router.get("/datasources", openapi_extra=ds_error(Status.QUERY_DATASOURCE_ERROR))
@paged
async def list_datasources(pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep) -> Response:
    page_no, page_size = paging(p)
    search = (p.text("searchVal") or "").strip().lower()
    rows = [v for v in await _visible(pp, who) if search in v.name.lower()]
    rows.sort(key=lambda v: v.updated_at, reverse=True)
    chunk = rows[(page_no - 1) * page_size: page_no * page_size]
    return ok(page([_datasource_entity(v, pp.zone) for v in chunk], len(rows), page_no, page_size))


@router.get("/datasources/list", openapi_extra=ds_error(Status.QUERY_DATASOURCE_ERROR))
async def datasources_by_type(pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep) -> Response:
    kind = p.req("type").strip().upper()
    rows = await _visible(pp, who, kind)
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
async def connect_test(id: str, pp: PorpoiseDep, who: PrincipalDep) -> Response:
    ds_id = path_int(id, "id")
    await _datasource(pp, ds_id, who)
    try:
        info = await run_in_threadpool(pp.datasources.resolve, ds_id)
    except DatasourceNotFound:
        raise DsError(Status.RESOURCE_NOT_EXIST) from None
    except SecretKeyError as e:
        raise DsError(Status.CONNECTION_TEST_FAILURE, msg=f"{Status.CONNECTION_TEST_FAILURE.msg()}: {e}") from None
    return await _connect(pp, info)


@router.get("/datasources/{id}", openapi_extra=ds_error(Status.QUERY_DATASOURCE_ERROR))
async def get_datasource(id: str, pp: PorpoiseDep, who: PrincipalDep) -> Response:
    return ok(_datasource_dto(await _datasource(pp, path_int(id, "id"), who)))


@router.delete("/datasources/{id}", openapi_extra=ds_error(Status.DELETE_DATA_SOURCE_FAILURE))
async def delete_datasource(id: str, pp: PorpoiseDep, who: PrincipalDep) -> Response:
    ds_id = path_int(id, "id")
    await _datasource(pp, ds_id, who, owner=True)
    if not await run_in_threadpool(pp.datasources.delete, ds_id):
        raise DsError(Status.RESOURCE_NOT_EXIST)
    await run_in_threadpool(pp.request_app.state.security.forget_datasource, ds_id)
    return ok(None)
