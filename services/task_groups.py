"""Task groups (reference §4.17): named pools of ``groupSize`` concurrent slots shared across instances."""

from __future__ import annotations

import contextlib
from typing import Any

from starlette.concurrency import run_in_threadpool

from core.contracts import Updates
from core.contracts.task_group import task_group_key

from .context import Services
from .schemas import TaskGroup

__all__ = ["TaskGroup", "list_groups", "put"]


async def put(ctx: Services, group_id: int, body: TaskGroup) -> dict[str, Any]:
    """Create or resize a task group; a live semaphore takes the new size at once."""
    client = await ctx.client()
    await run_in_threadpool(ctx.store.put_task_group, group_id, body.name, body.group_size, body.project_code,
                            body.description)
    # A new semaphore is created with the new size on first use.
    with contextlib.suppress(Exception):
        await client.get_workflow_handle(task_group_key(group_id)).execute_update(Updates.SET_CAPACITY, body.group_size)
    return {"id": group_id, **body.model_dump(by_alias=True)}


async def list_groups(ctx: Services) -> list[dict[str, Any]]:
    return await run_in_threadpool(ctx.store.task_groups)
