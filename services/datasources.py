"""The datasource registry's operations: create, list, read, update, delete, test-connect, rotate keys.

Bodies come in as parsed JSON objects; validation problems become one :class:`Invalid` "Invalid
datasource" listing each with a pointer. Passwords never come out (views say whether one is set).
Changing where a datasource connects, or as whom, needs the password again, so the stored password
never goes to a host the caller chose (docs/security.md); who may use which datasource is the API's
check (api/auth.py).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from activities.datasources import check_connection
from model.problems import Problem
from storage.datasources import (
    ConnectionInfo,
    DatasourcePatch,
    DatasourceSpec,
    DatasourceStore,
    DatasourceView,
    SecretKeyError,
)

from .errors import Conflict, DomainError, Invalid, NotFound, invalid

TITLE = "Invalid datasource"
# Where a datasource connects, and as whom: changing any of these needs the password again.
IDENTITY = ("type", "host", "port", "database", "user")


def _not_found(datasource_id: int) -> NotFound:
    return NotFound(f"datasource {datasource_id} does not exist")


async def create(store: DatasourceStore, body: dict[str, Any]) -> dict[str, Any]:
    try:
        spec = DatasourceSpec.model_validate(body)
        view = await run_in_threadpool(store.create, spec)
    except DomainError:
        raise
    except (ValidationError, ValueError) as e:
        raise invalid(e, TITLE) from None
    return view.as_dict()


async def list_datasources(store: DatasourceStore, type_: str | None = None, *,
                           only: set[int] | None = None) -> list[dict[str, Any]]:
    """``only``: just these ids (a general user's own and granted datasources; None: all)."""
    return [v.as_dict() for v in await run_in_threadpool(store.list, type_) if only is None or v.id in only]


async def found(store: DatasourceStore, datasource_id: int) -> DatasourceView:
    view = await run_in_threadpool(store.get, datasource_id)
    if view is None:
        raise _not_found(datasource_id)
    return view


async def get(store: DatasourceStore, datasource_id: int) -> dict[str, Any]:
    return (await found(store, datasource_id)).as_dict()


def identity_changes(view: DatasourceView, patch: DatasourcePatch) -> list[str]:
    """The connection identity fields ``patch`` changes."""
    return [f for f in IDENTITY if f in patch.model_fields_set and getattr(patch, f) is not None
            and getattr(patch, f) != getattr(view, f)]


def _password_required(doing: str, changed: list[str]) -> Invalid:
    return Invalid(f"{doing} {', '.join(changed)} needs the password again", title="Password required",
                   problems=[Problem("/password", "required when type, host, port, database or userName change",
                                     None, "required")])


async def update(store: DatasourceStore, datasource_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Only the fields given change; every change bumps ``version`` (workers reconnect). Changing
    type, host, port, database or userName of a datasource with a password needs the password."""
    try:
        patch = DatasourcePatch.model_validate(body)
        changed = identity_changes(current := await found(store, datasource_id), patch)
        if changed and not patch.password and current.has_password:
            raise _password_required("changing", changed)
        view = await run_in_threadpool(store.update, datasource_id, patch)
    except DomainError:
        raise
    except (ValidationError, ValueError) as e:
        raise invalid(e, TITLE) from None
    if view is None:
        raise _not_found(datasource_id)
    return view.as_dict()


async def delete(store: DatasourceStore, datasource_id: int) -> None:
    if not await run_in_threadpool(store.delete, datasource_id):
        raise _not_found(datasource_id)


async def test(store: DatasourceStore, datasource_id: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Connect once with the stored settings; ``ok`` and a message either way (password masked).

    ``body`` (the fields of an update) tries changed settings without saving them. Then only what the
    caller sent is used: a changed type, host, port, database or userName needs the password in the
    body; the stored password is used only with the stored connection identity."""
    try:
        if body is not None:
            try:
                patch = DatasourcePatch.model_validate(body)
            except (ValidationError, ValueError) as e:
                raise invalid(e, TITLE) from None
            info = await _trial(store, datasource_id, patch)
        else:
            info = await run_in_threadpool(store.resolve, datasource_id)  # DatasourceNotFound: a 404
    except SecretKeyError as e:
        raise Conflict(str(e), title="Password unreadable") from None
    outcome = await run_in_threadpool(check_connection, info)
    return {"id": info.id, "name": info.name, "type": info.type} | outcome.as_dict()


async def _trial(store: DatasourceStore, datasource_id: int, patch: DatasourcePatch) -> ConnectionInfo:
    """The settings to test: the stored ones overlaid by ``patch``, never saved."""
    view = await found(store, datasource_id)
    changed = identity_changes(view, patch)
    if patch.password:
        password = patch.password
    elif changed and view.has_password:
        raise _password_required("testing changed", changed)
    else:
        password = (await run_in_threadpool(store.resolve, datasource_id)).password if not changed else ""
    fields = {f: getattr(patch, f) if f in changed else getattr(view, f) for f in IDENTITY}
    params = {k: str(v) for k, v in (patch.params if patch.params is not None else view.params).items()}
    return ConnectionInfo(id=view.id, name=view.name, params=params, version=view.version, password=password,
                          **fields)


async def rotate_keys(store: DatasourceStore) -> dict[str, int]:
    return await run_in_threadpool(store.rotate)
