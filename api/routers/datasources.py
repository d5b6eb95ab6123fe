"""Datasources: create, list, get, update, delete, test-connect, rotate keys. Never returns a password.

The registry (:class:`activities.datasources.DatasourceStore`) is built by :func:`install` when the
app is created, so an API without a usable secret key refuses to start instead of failing later.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from activities.datasources import (
    ConnectionInfo,
    DatasourceConflict,
    DatasourceNotFound,
    DatasourcePatch,
    DatasourceSpec,
    DatasourceStore,
    DatasourceView,
    SecretKeyError,
    check_connection,
)
from core.settings import Settings
from model.problems import Problem, pointer
from storage.security import SecurityStore

from ..auth import PrincipalDep, require_admin, require_datasource, security_store
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
async def create(request: Request, store: DatasourcesDep, principal: PrincipalDep,
                 access: Annotated[SecurityStore, Depends(security_store)]) -> dict[str, Any]:
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
    await run_in_threadpool(access.set_datasource_owner, view.id, principal.user_id)  # as DS: the creator owns it
    return view.as_dict()


@router.get("", summary="List datasources (a general user's own and granted ones)")
async def list_datasources(store: DatasourcesDep, principal: PrincipalDep,
                           access: Annotated[SecurityStore, Depends(security_store)],
                           type: str | None = Query(None)) -> list[dict[str, Any]]:
    mine = None if principal.is_admin else await run_in_threadpool(access.datasource_access, principal.user_id)
    return [v.as_dict() for v in await run_in_threadpool(store.list, type) if mine is None or v.id in mine]


@router.get("/{datasource_id}", summary="One datasource (never its password)")
async def get(datasource_id: int, store: DatasourcesDep, principal: PrincipalDep,
              access: Annotated[SecurityStore, Depends(security_store)]) -> dict[str, Any]:
    await require_datasource(principal, access, datasource_id)
    return (await _found(store, datasource_id)).as_dict()


# Where a datasource connects, and as whom: changing any of these needs the password again, so the
# stored password never goes to a host the caller chose (issue 12).
IDENTITY = ("type", "host", "port", "database", "user")


def _identity_changes(view: DatasourceView, patch: DatasourcePatch) -> list[str]:
    return [f for f in IDENTITY if f in patch.model_fields_set and getattr(patch, f) is not None
            and getattr(patch, f) != getattr(view, f)]


def _require_password(view: DatasourceView, patch: DatasourcePatch) -> None:
    changed = _identity_changes(view, patch)
    if changed and not patch.password and view.has_password:
        raise ProblemError(422, "Password required", f"changing {', '.join(changed)} needs the password again",
                           [Problem("/password", "required when type, host, port, database or userName change",
                                    None, "required")])


@router.put("/{datasource_id}", summary="Update a datasource; no (or an empty) password keeps the old one")
async def update(datasource_id: int, request: Request, store: DatasourcesDep, principal: PrincipalDep,
                 access: Annotated[SecurityStore, Depends(security_store)]) -> dict[str, Any]:
    """Only the fields given change. Every change bumps ``version``: workers drop their connection
    pool for this datasource and the next task run connects with the new settings. Changing type,
    host, port, database or userName needs the password again."""
    await require_datasource(principal, access, datasource_id, owner=True)
    try:
        patch = DatasourcePatch.model_validate(await _body(request))
        _require_password(await _found(store, datasource_id), patch)
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
async def delete(datasource_id: int, store: DatasourcesDep, principal: PrincipalDep,
                 access: Annotated[SecurityStore, Depends(security_store)]) -> None:
    await require_datasource(principal, access, datasource_id, owner=True)
    if not await run_in_threadpool(store.delete, datasource_id):
        raise ProblemError(404, "Not found", f"datasource {datasource_id} does not exist")
    await run_in_threadpool(access.forget_datasource, datasource_id)


@router.post("/{datasource_id}/test", summary="Try to connect (from the API host); ok true or false")
async def test(datasource_id: int, request: Request, store: DatasourcesDep, principal: PrincipalDep,
               access: Annotated[SecurityStore, Depends(security_store)]) -> dict[str, Any]:
    """Connects once with the stored settings and runs a trivial query. The answer is 200 either way,
    with ``ok`` and a message (the database's error, password masked, when it fails).

    A JSON body tries changed settings without saving them (the fields of an update). Then only what
    the caller sent is used: a changed type, host, port, database or userName needs the password in
    the body; the stored password is used only with the stored connection identity."""
    await require_datasource(principal, access, datasource_id)
    try:
        raw = await request.body()
        if raw.strip():
            try:
                patch = DatasourcePatch.model_validate(await _body(request))
            except ValidationError as e:
                raise _invalid(e) from None
            info = await _trial(store, datasource_id, patch)
        else:
            info = await run_in_threadpool(store.resolve, datasource_id)
    except DatasourceNotFound:
        raise ProblemError(404, "Not found", f"datasource {datasource_id} does not exist") from None
    except SecretKeyError as e:
        raise ProblemError(409, "Password unreadable", str(e)) from None
    outcome = await run_in_threadpool(check_connection, info)
    return {"id": info.id, "name": info.name, "type": info.type} | outcome.as_dict()


@router.post("/rotate-keys", summary="Re-encrypt every password with the primary (first) key (administrators)")
async def rotate_keys(store: DatasourcesDep, principal: PrincipalDep) -> dict[str, int]:
    """After putting a new key first in PORPOISE_SECRET_KEY (old keys after it) and restarting:
    re-encrypts what is still under an old key. Then the old key can be removed."""
    require_admin(principal)
    return await run_in_threadpool(store.rotate)


async def _trial(store: DatasourceStore, datasource_id: int, patch: DatasourcePatch) -> ConnectionInfo:
    """The settings to test: the stored ones overlaid by ``patch``, never saved."""
    view = await _found(store, datasource_id)
    changed = _identity_changes(view, patch)
    if patch.password:
        password = patch.password
    elif changed and view.has_password:
        raise ProblemError(422, "Password required", f"testing changed {', '.join(changed)} needs the password",
                           [Problem("/password", "required when type, host, port, database or userName change",
                                    None, "required")])
    else:
        password = (await run_in_threadpool(store.resolve, datasource_id)).password if not changed else ""
    fields = {f: getattr(patch, f) if f in changed else getattr(view, f) for f in IDENTITY}
    params = {k: str(v) for k, v in (patch.params if patch.params is not None else view.params).items()}
    return ConnectionInfo(id=view.id, name=view.name, params=params, version=view.version, password=password,
                          **fields)
