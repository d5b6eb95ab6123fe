"""The task-group (semaphore) contract: what requesters, :class:`~workflows.task_group.SemaphoreWorkflow`
and its activities exchange (docs: the protocol in :mod:`workflows.task_group`).

Plain dataclasses, serialised by temporalio's data converter; their field names are in running
histories, so fields may be added with defaults but never renamed or removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .names import Activities, Signals, WorkflowTypes

WORKFLOW_TYPE = WorkflowTypes.SEMAPHORE
SIGNAL_ACQUIRE = Signals.SEMAPHORE_ACQUIRE
SIGNAL_RELEASE = Signals.SEMAPHORE_RELEASE
SIGNAL_GRANTED = Signals.SEMAPHORE_GRANTED  # the host workflow must define this signal (see SemaphoreClient)
SIGNAL_STOP = Signals.STOP  # DsWorkflow's existing stop signal
ACTIVITY_SIGNAL_WITH_START = Activities.SEMAPHORE_SIGNAL_WITH_START
ACTIVITY_DEAD_HOLDERS = Activities.SEMAPHORE_DEAD_HOLDERS


class SemaphoreMode(StrEnum):
    WAIT = "WAIT"  # queue until a slot is free (task groups, SERIAL_WAIT)
    TRY = "TRY"  # granted now or refused now (SERIAL_DISCARD)
    PREEMPT = "PREEMPT"  # granted now; every other holder is told to stop, waiters refused (SERIAL_PRIORITY)
    RESUME = "RESUME"  # re-attach a permit this chain holds (after continue-as-new), or take a free slot


def task_group_key(group_id: int) -> str:
    return f"semaphore:taskgroup:{group_id}"


def serial_key(definition_code: int, definition_version: int) -> str:
    return f"semaphore:serial:{definition_code}:{definition_version}"


def serial_mode(execution_type: str) -> SemaphoreMode | None:
    """The semaphore mode of a DS executionType; None for PARALLEL (no semaphore)."""
    return {
        "SERIAL_WAIT": SemaphoreMode.WAIT,
        "SERIAL_DISCARD": SemaphoreMode.TRY,
        "SERIAL_PRIORITY": SemaphoreMode.PREEMPT,
    }.get(str(execution_type))


@dataclass
class SemaphoreOptions:
    check_interval_seconds: float = 60.0  # how often holders are validated while there are any
    idle_timeout_seconds: float = 300.0  # how long an empty semaphore lingers before it ends
    max_history_events: int = 10_000  # continue-as-new at this length even if the server does not suggest it


@dataclass
class AcquireRequest:
    request_id: str
    workflow_id: str  # the requester, signalled with the grant
    first_run_id: str  # the requester's execution chain, to tell a rerun of the same id apart
    capacity: int = 0  # > 0 sets the semaphore's capacity (groupSize); 0 keeps it
    priority: int = 0  # higher first
    mode: SemaphoreMode = SemaphoreMode.WAIT
    options: SemaphoreOptions | None = None  # set on the semaphore when given


@dataclass
class SemaphoreGrant:
    key: str
    request_id: str
    granted: bool = True
    reason: str = ""


@dataclass
class Entry:
    """A holder or a waiter."""

    request_id: str
    workflow_id: str
    first_run_id: str
    priority: int = 0
    seq: int = 0  # arrival order at the semaphore


@dataclass
class SemaphoreInput:
    key: str = ""  # defaults to the workflow id
    capacity: int = 1
    holders: list[Entry] = field(default_factory=list)
    waiters: list[Entry] = field(default_factory=list)
    seq: int = 0
    options: SemaphoreOptions = field(default_factory=SemaphoreOptions)
    generation: int = 0  # how many times this semaphore continued as new
    granted_total: int = 0


@dataclass
class SemaphoreState:
    key: str
    capacity: int
    holders: list[Entry]
    waiters: list[Entry]
    generation: int
    granted_total: int


@dataclass
class SignalWithStartRequest:
    """Input of the ``semaphore_signal_with_start`` activity."""

    key: str
    task_queue: str
    request: AcquireRequest
