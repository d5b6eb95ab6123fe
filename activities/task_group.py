"""The two activities behind :mod:`workflows.task_group`: creating a semaphore on first use, and
telling which holders ended without releasing.

Both are ``async def`` and use the worker's own client (``activity.client()``), so they need no
constructor arguments: register ``semaphore_signal_with_start`` and ``semaphore_dead_holders`` on
every worker whose task queue runs semaphore requesters or :class:`SemaphoreWorkflow`.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from core.contracts.task_group import (
    ACTIVITY_DEAD_HOLDERS,
    ACTIVITY_SIGNAL_WITH_START,
    SIGNAL_ACQUIRE,
    WORKFLOW_TYPE,
    Entry,
    SemaphoreInput,
    SemaphoreOptions,
    SignalWithStartRequest,
)

DESCRIBE_CONCURRENCY = 20


@activity.defn(name=ACTIVITY_SIGNAL_WITH_START)
async def semaphore_signal_with_start(req: SignalWithStartRequest) -> None:
    """Deliver an acquire to the semaphore, starting it if no run is open (atomic on the server).

    A retry may deliver the acquire twice; the semaphore deduplicates by request id.
    """
    options = req.request.options or SemaphoreOptions()
    await activity.client().start_workflow(
        WORKFLOW_TYPE,
        SemaphoreInput(key=req.key, capacity=max(1, req.request.capacity), options=options),
        id=req.key,
        task_queue=req.task_queue,
        start_signal=SIGNAL_ACQUIRE,
        start_signal_args=[req.request],
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"semaphore {req.key}",
    )


@activity.defn(name=ACTIVITY_DEAD_HOLDERS)
async def semaphore_dead_holders(holders: list[Entry]) -> list[str]:
    """Request ids of holders whose workflow is no longer running, or runs in another execution chain
    (the same workflow id started afresh, e.g. a DS rerun). Unknown states count as alive; an RPC
    failure other than not-found fails the activity so that the semaphore keeps every slot."""
    client = activity.client()
    limit = asyncio.Semaphore(DESCRIBE_CONCURRENCY)

    async def dead(h: Entry) -> bool:
        async with limit:
            try:
                desc = await client.get_workflow_handle(h.workflow_id).describe()
            except RPCError as e:
                if e.status == RPCStatusCode.NOT_FOUND:
                    return True
                raise
        if desc.status != WorkflowExecutionStatus.RUNNING:
            return True
        first = desc.raw_description.workflow_execution_info.first_run_id
        return bool(h.first_run_id and first and first != h.first_run_id)

    verdicts = await asyncio.gather(*(dead(h) for h in holders))
    return [h.request_id for h, d in zip(holders, verdicts, strict=True) if d]
