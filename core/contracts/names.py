"""The names Temporal knows Porpoise by: workflow types, activities, signals, queries, updates.

These strings are registered with Temporal and recorded in every history, schedule and client call:
renaming one breaks running instances and their replay. They are defined here once; workflows call
activities by these constants, activities register under them (``@activity.defn(name=...)``).
"""

from __future__ import annotations

from typing import Final

TASK_QUEUE: Final = "porpoise"


class WorkflowTypes:
    DS: Final = "DsWorkflow"  # one DS workflow instance (workflows/ds_workflow.py)
    SEMAPHORE: Final = "Semaphore"  # a task group or serial executionType (workflows/task_group.py)
    COMPLEMENT: Final = "Complement"  # complement data, one child per date (workflows/complement.py)


class Activities:
    """Activities other than the task types. A task-type activity is named after its DS task type
    (``SHELL``, ``PYTHON``, ``HTTP``, ``SQL``, ``DATAX``: :data:`TASK_ACTIVITIES`)."""

    LOAD_DEFINITION: Final = "load_definition"
    LOAD_INSTANCE_STATUS: Final = "load_instance_status"
    CHECK_DEPENDENT: Final = "check_dependent"
    EVALUATE_SWITCH: Final = "evaluate_switch"  # local activity
    FIND_LOST_ATTEMPT: Final = "find_lost_attempt"  # local activity (activities/lost_attempts.py)
    SEND_ALERTS: Final = "send_alerts"
    APPEND_EVENTS: Final = "append_events"  # local activity (workflows/lifecycle.py)
    SEMAPHORE_SIGNAL_WITH_START: Final = "semaphore_signal_with_start"
    SEMAPHORE_DEAD_HOLDERS: Final = "semaphore_dead_holders"


# Task types run as an activity of the same name (model.task_types.ACTIVITY_TYPES).
TASK_ACTIVITIES: Final = ("SHELL", "PYTHON", "HTTP", "SQL", "DATAX")


class Signals:
    STOP: Final = "stop_signal"  # DsWorkflow: DS stop pushed by a parent or a preempting serial permit
    PAUSE: Final = "pause_signal"  # DsWorkflow: DS pause pushed by a parent
    SEMAPHORE_ACQUIRE: Final = "semaphore_acquire"
    SEMAPHORE_RELEASE: Final = "semaphore_release"
    SEMAPHORE_GRANTED: Final = "semaphore_granted"  # to the requester (DsWorkflow)


class Queries:
    STATUS: Final = "status"  # DsWorkflow -> InstanceStatus
    PROGRESS: Final = "progress"  # ComplementWorkflow -> ComplementStatus
    SEMAPHORE_STATE: Final = "state"  # SemaphoreWorkflow -> SemaphoreState


class Updates:
    STOP: Final = "stop"  # DsWorkflow
    PAUSE: Final = "pause"  # DsWorkflow
    SET_CAPACITY: Final = "set_capacity"  # SemaphoreWorkflow
    FORCE_GRANT: Final = "force_grant"  # SemaphoreWorkflow
