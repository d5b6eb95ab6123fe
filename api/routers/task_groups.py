"""Task groups (reference §4.17): named pools of `groupSize` concurrent slots shared across instances."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from workflows.semaphore import task_group_key

from ..auth import ADMIN_ONLY
from ..deps import ClientDep, StoreDep

router = APIRouter(prefix="/task-groups", tags=["task groups"])


class TaskGroup(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    group_size: int = Field(alias="groupSize", ge=1, le=100_000)
    project_code: int = Field(0, alias="projectCode")
    description: str = ""


@router.put("/{group_id}", summary="Create or resize a task group (administrators)", dependencies=[ADMIN_ONLY])
async def put(group_id: int, body: TaskGroup, store: StoreDep, client: ClientDep) -> dict[str, Any]:
    await run_in_threadpool(store.put_task_group, group_id, body.name, body.group_size, body.project_code,
                            body.description)
    # A live semaphore takes the new size at once; a new one is created with it on first use.
    with contextlib.suppress(Exception):
        await client.get_workflow_handle(task_group_key(group_id)).execute_update("set_capacity", body.group_size)
    return {"id": group_id, **body.model_dump(by_alias=True)}


@router.get("", summary="List task groups")
async def list_groups(store: StoreDep) -> list[dict[str, Any]]:
    return await run_in_threadpool(store.task_groups)
