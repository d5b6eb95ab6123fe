"""Task groups (reference §4.17): named pools of `groupSize` concurrent slots shared across instances."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services import task_groups as service
from services.schemas import TaskGroup, TaskGroupView

from ..auth import ADMIN_ONLY
from ..deps import ServicesDep

router = APIRouter(prefix="/task-groups", tags=["task groups"])


@router.put("/{group_id}", response_model=TaskGroupView,
            summary="Create or resize a task group (administrators)", dependencies=[ADMIN_ONLY])
async def put(group_id: int, body: TaskGroup, ctx: ServicesDep) -> dict[str, Any]:
    return await service.put(ctx, group_id, body)


@router.get("", response_model=list[TaskGroupView], summary="List task groups")
async def list_groups(ctx: ServicesDep) -> list[dict[str, Any]]:
    return await service.list_groups(ctx)
