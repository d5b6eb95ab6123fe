"""The datasource registry's operations: create, list, read, update, delete, test-connect, rotate keys.

Bodies come in as parsed JSON objects; validation problems become one :class:`Invalid` "Invalid
datasource" listing each with a pointer. Passwords never come out (views say whether one is set).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from activities.datasources import check_connection
from storage.datasources import DatasourcePatch, DatasourceSpec, DatasourceStore, DatasourceView, SecretKeyError

from .errors import Conflict, DomainError, NotFound, invalid

TITLE = "Invalid datasource"


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


async def list_datasources(store: DatasourceStore, type_: str | None = None) -> list[dict[str, Any]]:
    return [v.as_dict() for v in await run_in_threadpool(store.list, type_)]


async def found(store: DatasourceStore, datasource_id: int) -> DatasourceView:
    view = await run_in_threadpool(store.get, datasource_id)
    if view is None:
        raise _not_found(datasource_id)
    return view


async def get(store: DatasourceStore, datasource_id: int) -> dict[str, Any]:
    return (await found(store, datasource_id)).as_dict()


async def update(store: DatasourceStore, datasource_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """Only the fields given change; every change bumps ``version`` (workers reconnect)."""
    try:
        patch = DatasourcePatch.model_validate(body)
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


async def test(store: DatasourceStore, datasource_id: int) -> dict[str, Any]:
    """Connect once with the stored settings; ``ok`` and a message either way (password masked)."""
    try:
        info = await run_in_threadpool(store.resolve, datasource_id)
    except SecretKeyError as e:
        raise Conflict(str(e), title="Password unreadable") from None
    outcome = await run_in_threadpool(check_connection, info)
    return {"id": info.id, "name": info.name, "type": info.type} | outcome.as_dict()


async def rotate_keys(store: DatasourceStore) -> dict[str, int]:
    return await run_in_threadpool(store.rotate)
