"""Every contract that crosses the Temporal boundary, in one package.

* :mod:`.names`: the registered names (workflow types, activities, signals, queries, updates);
* :mod:`.run`: a DS workflow instance (``RunInput``, ``InstanceStatus``) and its task activities
  (``TaskRequest``, ``TaskResult``), re-exported here as ``core.contracts.X``;
* :mod:`.alerts`: the ``send_alerts`` activity; :mod:`.dependent`: the ``check_dependent`` activity;
* :mod:`.task_group`: task groups and serial execution types; :mod:`.complement`: complement data.

The workflows implementing them live in ``workflows/``, the activities in ``activities/``; both
import their contracts from here, so neither layer imports the other.
"""

from .names import TASK_ACTIVITIES, TASK_QUEUE, Activities, Queries, Signals, Updates, WorkflowTypes
from .run import (
    WORKFLOW_TASK_TIMEOUT,
    WORKFLOW_TYPE,
    AlertNote,
    AttemptOrigin,
    CarriedState,
    InstanceStatus,
    LostAttempt,
    LostAttemptQuery,
    NodeStatus,
    RunInput,
    TaskRequest,
    TaskResult,
    instance_summary,
)

__all__ = [
    "TASK_ACTIVITIES",
    "TASK_QUEUE",
    "WORKFLOW_TASK_TIMEOUT",
    "WORKFLOW_TYPE",
    "Activities",
    "AlertNote",
    "AttemptOrigin",
    "CarriedState",
    "InstanceStatus",
    "LostAttempt",
    "LostAttemptQuery",
    "NodeStatus",
    "Queries",
    "RunInput",
    "Signals",
    "TaskRequest",
    "TaskResult",
    "instance_summary",
    "Updates",
    "WorkflowTypes",
]
