"""Datasources: create, list, get, update, delete, test-connect, rotate keys. Never returns a password.

The registry (:class:`storage.datasources.DatasourceStore`) is built by :func:`install` when the
app is created, so an API without a usable secret key refuses to start instead of failing later.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from activities.datasources import check_connection
from core.settings import Settings
from model.problems import Problem, pointer
from storage.datasources import (
    DatasourceConflict,
    DatasourceNotFound,
    DatasourcePatch,
    DatasourceSpec,
    DatasourceStore,
    DatasourceView,
    SecretKeyError,
)

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


def _invalid(e: ValidationError | ValueError) -> ProblemError:
    if isinstance(e, ValidationError):
        problems = [Problem(pointer(*err.get("loc", ())), str(err.get("msg", "invalid")), None, str(err.get("type")))
                    for err in e.errors()]
    else:
        problems = [Problem("", str(e), None, "invalid")]
    return ProblemError(422, "Invalid datasource", f"{len(problems)} problem(s) found", problems)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ProblemError(422, "Invalid datasource", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ProblemError(422, "Invalid datasource", "the body must be a JSON object")
    return body


async def _found(store: DatasourceStore, datasource_id: int) -> DatasourceView:
    view = await run_in_threadpool(store.get, datasource_id)
    if view is None:
        raise ProblemError(404, "Not found", f"datasource {datasource_id} does not exist")
    return view


@router.post("", status_code=201, summary="Create a datasource (the password is stored encrypted)")
async def create(request: Request, store: DatasourcesDep) -> dict[str, Any]:
    """Body: ``name``, ``type`` (MYSQL, POSTGRESQL, SQLITE, HIVE, ...), ``host``, ``port``, ``database``,
    ``userName``, ``password``, ``other`` (extra connection params), ``note``; optional ``id`` to keep
    the id a DolphinScheduler export refers to."""
    try:
        spec = DatasourceSpec.model_validate(await _body(request))
        view = await run_in_threadpool(store.create, spec)
    except ValidationError as e:
        raise _invalid(e) from None
    except DatasourceConflict as e:
        raise ProblemError(409, "Conflict", str(e)) from None
    except ValueError as e:
        raise _invalid(e) from None
    return view.as_dict()


@router.get("", summary="List datasources")
async def list_datasources(store: DatasourcesDep, type: str | None = Query(None)) -> list[dict[str, Any]]:
    return [v.as_dict() for v in await run_in_threadpool(store.list, type)]


@router.get("/{datasource_id}", summary="One datasource (never its password)")
async def get(datasource_id: int, store: DatasourcesDep) -> dict[str, Any]:
    return (await _found(store, datasource_id)).as_dict()


@router.put("/{datasource_id}", summary="Update a datasource; no (or an empty) password keeps the old one")
async def update(datasource_id: int, request: Request, store: DatasourcesDep) -> dict[str, Any]:
    """Only the fields given change. Every change bumps ``version``: workers drop their connection
    pool for this datasource and the next task run connects with the new settings."""
    try:
        patch = DatasourcePatch.model_validate(await _body(request))
        view = await run_in_threadpool(store.update, datasource_id, patch)
    except ValidationError as e:
        raise _invalid(e) from None
    except DatasourceConflict as e:
        raise ProblemError(409, "Conflict", str(e)) from None
    except ValueError as e:
        raise _invalid(e) from None
    if view is None:
        raise ProblemError(404, "Not found", f"datasource {datasource_id} does not exist")
    return view.as_dict()


@router.delete("/{datasource_id}", status_code=204, summary="Delete a datasource")
async def delete(datasource_id: int, store: DatasourcesDep) -> None:
    if not await run_in_threadpool(store.delete, datasource_id):
        raise ProblemError(404, "Not found", f"datasource {datasource_id} does not exist")


@router.post("/{datasource_id}/test", summary="Try to connect (from the API host); ok true or false")
async def test(datasource_id: int, store: DatasourcesDep) -> dict[str, Any]:
    """Connects once with the stored settings and runs a trivial query. The answer is 200 either way,
    with ``ok`` and a message (the database's error, password masked, when it fails)."""
    try:
        info = await run_in_threadpool(store.resolve, datasource_id)
    except DatasourceNotFound:
        raise ProblemError(404, "Not found", f"datasource {datasource_id} does not exist") from None
    except SecretKeyError as e:
        raise ProblemError(409, "Password unreadable", str(e)) from None
    outcome = await run_in_threadpool(check_connection, info)
    return {"id": info.id, "name": info.name, "type": info.type} | outcome.as_dict()


@router.post("/rotate-keys", summary="Re-encrypt every password with the primary (first) key")
async def rotate_keys(store: DatasourcesDep) -> dict[str, int]:
    """After putting a new key first in PORPOISE_SECRET_KEY (old keys after it) and restarting:
    re-encrypts what is still under an old key. Then the old key can be removed."""
    return await run_in_threadpool(store.rotate)
