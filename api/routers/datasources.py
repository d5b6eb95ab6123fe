"""Datasources: create, list, get, update, delete, test-connect, rotate keys. Never returns a password.

The registry (:class:`storage.datasources.DatasourceStore`) is built by :func:`install` when the
app is created, so an API without a usable secret key refuses to start instead of failing later.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from starlette.concurrency import run_in_threadpool

from core.settings import Settings
from services import datasources as service
from services.schemas import ConnectionTest, DatasourceView, KeysRotated, request_body
from storage.datasources import DatasourcePatch, DatasourceSpec, DatasourceStore

from ..auth import AccessDep, PrincipalDep, require_admin, require_datasource
from ..problems import ProblemError

router = APIRouter(prefix="/datasources", tags=["datasources"])


def install(app: FastAPI, settings: Settings) -> None:
    """Open the registry (raises SecretKeyError without a key outside dev mode) and add the routes."""
    app.state.datasources = DatasourceStore.from_settings(settings)
    app.include_router(router)


def get_datasources(request: Request) -> DatasourceStore:
    store: DatasourceStore = request.app.state.datasources
    return store


DatasourcesDep = Annotated[DatasourceStore, Depends(get_datasources)]


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ProblemError(422, "Invalid datasource", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ProblemError(422, "Invalid datasource", "the body must be a JSON object")
    return body


@router.post("", status_code=201, response_model=DatasourceView, openapi_extra=request_body(DatasourceSpec),
             summary="Create a datasource (the password is stored encrypted)")
async def create(request: Request, store: DatasourcesDep, principal: PrincipalDep,
                 access: AccessDep) -> dict[str, Any]:
    """Body: ``name``, ``type`` (MYSQL, POSTGRESQL, SQLITE, HIVE, ...), ``host``, ``port``, ``database``,
    ``userName``, ``password``, ``other`` (extra connection params), ``note``; optional ``id`` to keep
    the id a DolphinScheduler export refers to."""
    view = await service.create(store, await _body(request))
    await run_in_threadpool(access.set_datasource_owner, view["id"], principal.user_id)  # as DS: the creator owns it
    return view


@router.get("", response_model=list[DatasourceView], summary="List datasources (a general user's own and granted ones)")
async def list_datasources(store: DatasourcesDep, principal: PrincipalDep, access: AccessDep,
                           type: str | None = Query(None)) -> list[dict[str, Any]]:
    mine = None if principal.is_admin else set(await run_in_threadpool(access.datasource_access, principal.user_id))
    return await service.list_datasources(store, type, only=mine)


@router.get("/{datasource_id}", response_model=DatasourceView, summary="One datasource (never its password)")
async def get(datasource_id: int, store: DatasourcesDep, principal: PrincipalDep, access: AccessDep) -> dict[str, Any]:
    await require_datasource(principal, access, datasource_id)
    return await service.get(store, datasource_id)


@router.put("/{datasource_id}", response_model=DatasourceView, openapi_extra=request_body(DatasourcePatch),
            summary="Update a datasource; no (or an empty) password keeps the old one")
async def update(datasource_id: int, request: Request, store: DatasourcesDep, principal: PrincipalDep,
                 access: AccessDep) -> dict[str, Any]:
    """Only the fields given change. Every change bumps ``version``: workers drop their connection
    pool for this datasource and the next task run connects with the new settings. Changing type,
    host, port, database or userName needs the password again. The owner's (or an administrator's)."""
    await require_datasource(principal, access, datasource_id, owner=True)
    return await service.update(store, datasource_id, await _body(request))


@router.delete("/{datasource_id}", status_code=204, summary="Delete a datasource")
async def delete(datasource_id: int, store: DatasourcesDep, principal: PrincipalDep, access: AccessDep) -> None:
    await require_datasource(principal, access, datasource_id, owner=True)
    await service.delete(store, datasource_id)
    await run_in_threadpool(access.forget_datasource, datasource_id)


@router.post("/{datasource_id}/test", response_model=ConnectionTest,
             summary="Try to connect (from the API host); ok true or false")
async def test(datasource_id: int, request: Request, store: DatasourcesDep, principal: PrincipalDep,
               access: AccessDep) -> dict[str, Any]:
    """Connects once with the stored settings and runs a trivial query. The answer is 200 either way,
    with ``ok`` and a message (the database's error, password masked, when it fails).

    A JSON body tries changed settings without saving them (the fields of an update). Then only what
    the caller sent is used: a changed type, host, port, database or userName needs the password in
    the body; the stored password is used only with the stored connection identity."""
    await require_datasource(principal, access, datasource_id)
    body = await _body(request) if (await request.body()).strip() else None
    return await service.test(store, datasource_id, body)


@router.post("/rotate-keys", response_model=KeysRotated,
             summary="Re-encrypt every password with the primary (first) key (administrators)")
async def rotate_keys(store: DatasourcesDep, principal: PrincipalDep) -> dict[str, int]:
    """After putting a new key first in PORPOISE_SECRET_KEY (old keys after it) and restarting:
    re-encrypts what is still under an old key. Then the old key can be removed."""
    require_admin(principal)
    return await service.rotate_keys(store)
