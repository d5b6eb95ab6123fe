"""Every operation ends: stop and pause get an answer within a bounded time, whatever the run's state.

Stop and pause are workflow updates, answered by the worker that runs the instance. With no worker
(gone, or stuck on a starved machine) an update would wait forever, and the run would stay RUNNING /
READY_STOP for good. Here the update gets ``answer_seconds``; when nobody answered:

* stop, as a last resort, **terminates** the Temporal run. The reason is recorded twice: as
  Temporal's terminate reason (UI, ``temporal workflow describe``) and in the DS status the
  termination carries (state STOP, ``end_reason``), which :func:`terminated_status` reads back, so
  ``GET /runs/{id}`` says STOP and why without a worker. Children of a terminated parent are
  terminated by Temporal (parent close policy TERMINATE).
* pause is not forced (a forced pause could not be resumed where it stood): the caller gets a 503
  with Retry-After.

A worker that answers but whose tasks or children do not stop is bounded by the workflow itself
(``STOP_DEADLINE`` in workflows/ds_workflow.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import TerminatedError

from core import search_attributes as sa
from core.contracts import InstanceStatus
from model.definition import FailureStrategy
from model.states import WorkflowState

TERMINATED_BY = "porpoise"


@dataclass
class NoAnswer(Exception):
    """The worker did not take the update within the bound; the run was left as it is."""

    operation: str
    seconds: float


async def update_within(client: Client, instance_id: str, name: str, answer_seconds: float) -> Any:
    """Run update `name`; on no answer within `answer_seconds`, stop terminates the run (returns
    STOP), anything else raises :class:`NoAnswer`. Errors of the update itself pass through."""
    handle = client.get_workflow_handle(instance_id)
    try:
        return await asyncio.wait_for(handle.execute_update(name), answer_seconds)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):  # the SDK's name for our cancel
        if name != "stop":
            raise NoAnswer(name, answer_seconds) from None
    reason = (f"stop requested, but no worker answered within {answer_seconds:g} s: "
              f"terminated by {TERMINATED_BY}")
    await terminate_as(client, instance_id, WorkflowState.STOP, reason)
    return WorkflowState.STOP.value


async def terminate_as(client: Client, instance_id: str, state: WorkflowState, reason: str) -> None:
    """Terminate the running run, leaving a DS status with `state` and `reason` in its termination."""
    handle = client.get_workflow_handle(instance_id)
    desc = await handle.describe()
    if desc.status != WorkflowExecutionStatus.RUNNING:
        return  # it ended by itself meanwhile: its own end stands
    attrs = desc.typed_search_attributes
    status = InstanceStatus(
        instance_id=instance_id, definition_code=attrs.get(sa.DS_DEFINITION_CODE) or 0,
        definition_name=attrs.get(sa.DS_DEFINITION_NAME) or "",
        definition_version=attrs.get(sa.DS_DEFINITION_VERSION) or 0, project_code=attrs.get(sa.DS_PROJECT) or 0,
        state=state, failure_strategy=FailureStrategy.CONTINUE, start_time=desc.start_time,
        end_time=datetime.now(UTC), end_reason=reason,
    )
    await client.get_workflow_handle(instance_id, run_id=desc.run_id).terminate(
        status.model_dump(mode="json"), reason=reason)


async def terminated_status(client: Client, instance_id: str, run_id: str | None) -> InstanceStatus | None:
    """The DS status a run terminated by :func:`terminate_as` carries; None for other terminations."""
    handle = client.get_workflow_handle(instance_id, run_id=run_id)
    try:
        await handle.result(follow_runs=False)
    except WorkflowFailureError as e:
        cause = e.cause
        if isinstance(cause, TerminatedError) and cause.details and isinstance(cause.details[0], dict):
            try:
                return InstanceStatus.model_validate(cause.details[0])
            except ValueError:
                return None
    return None
