"""The complement-data contract (reference §4.13): the ComplementWorkflow's input, its progress
query's answer, and the ids of its children. The workflow is :mod:`workflows.complement`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from model.states import WorkflowState

from .names import Queries, WorkflowTypes
from .run import RunInput

COMPLEMENT_WORKFLOW_TYPE = WorkflowTypes.COMPLEMENT
PROGRESS_QUERY = Queries.PROGRESS
COMMAND_TYPE = "COMPLEMENT_DATA"


class RunMode(StrEnum):
    RUN_MODE_SERIAL = "RUN_MODE_SERIAL"
    RUN_MODE_PARALLEL = "RUN_MODE_PARALLEL"


class ExecutionOrder(StrEnum):
    DESC_ORDER = "DESC_ORDER"  # newest date first (DS default)
    ASC_ORDER = "ASC_ORDER"


class ComplementInput(BaseModel):
    """One complement command. ``dates`` are aware datetimes, already in execution order."""

    complement_id: str  # = the workflow id
    definition_code: int
    definition_version: int
    definition_name: str = ""
    project_code: int = 0
    template: RunInput  # each date's run: definition by reference, instance id and schedule time set per date
    dates: list[datetime]
    run_mode: RunMode = RunMode.RUN_MODE_SERIAL
    chains: int = 1
    execution_order: ExecutionOrder = ExecutionOrder.DESC_ORDER
    continue_on_failure: bool = False
    child_task_queue: str = ""  # "" = this workflow's task queue
    max_children_per_run: int = 500  # children started per Temporal run before continue-as-new
    # Carried over continue-as-new.
    states: list[WorkflowState | None] = Field(default_factory=list)  # per date; None = not started
    started_at: datetime | None = None
    continued: int = 0


class ComplementStatus(BaseModel):
    complement_id: str
    definition_code: int
    definition_version: int
    definition_name: str
    project_code: int
    state: WorkflowState  # RUNNING_EXECUTION, READY_STOP, then SUCCESS, FAILURE or STOP
    run_mode: RunMode
    chains: int
    execution_order: ExecutionOrder
    continue_on_failure: bool
    dates: list[datetime]
    states: list[WorkflowState | None]  # per date, same order; None = not started (yet)
    start_time: datetime | None = None
    end_time: datetime | None = None
    continued: int = 0


def child_id(complement_id: str, date: datetime) -> str:
    """The workflow instance id of one date's run."""
    return f"{complement_id}.{date.astimezone(UTC):%Y%m%d%H%M%S}"
