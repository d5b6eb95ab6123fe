"""The ``workflow.patched`` ids of the DS workflow, and the one marker a new run records for them all.

Each id guards a change to the commands of instances that were already running when it shipped
(docs/reliability.md, "Upgrading"). A ``workflow.patched`` call that is not replaying records a
marker, and sdk-core adds an upsert of the ``TemporalChangeVersion`` search attribute with it: two
history events and one more visibility update per id and run. That was 6 of the 7 events a run had
over the raw diamond, and about 1 ms of server CPU per id (docs/performance.md).

So a run started on this code calls :func:`patched` instead. It records :data:`ALL` once, and that
marker answers every id in :data:`COVERED`. A history recorded before :data:`ALL` existed has no such
marker, so each id falls back to its own ``workflow.patched`` call and its own marker, exactly as
before (tests/unit/test_replay.py replays those histories).

A later change needs an id of its own, outside :data:`COVERED`: a run recorded with :data:`ALL`
took none of the paths that change adds, and its replay must keep it that way.
"""

from __future__ import annotations

from temporalio import workflow

# SUB_PROCESS refuses a call back up the chain or too deep a nesting at run time.
SUB_PROCESS_LIMITS = "sub-process-cycle-and-depth-limit"
# Instance events handed to the worker, not sent by local activity (workflows/lifecycle.py).
INSTANCE_EVENTS_BY_WORKER = "instance-events-by-worker"
# A lost worker's attempt fails to the workflow at once and is re-scheduled on its host's task queue.
LOST_WORKER = "lost-worker-resume-v1"
# At most DISPATCH_PER_ACTIVATION nodes are dispatched per activation.
BOUNDED_ACTIVATIONS = "bounded-activations"
# A stop ends within STOP_DEADLINE_MINUTES even if a task or a child never reports back.
STOP_DEADLINE = "stop-deadline"
# Tasks of a worker group other than default are scheduled on that group's task queue.
WORKER_GROUPS = "worker-groups"
# A task's attempt lost before it heartbeat is found in the history: its host and attempt number.
LOST_ATTEMPT_FROM_HISTORY = "lost-attempt-from-history"

ALL = "porpoise-patches-1"
COVERED = frozenset({SUB_PROCESS_LIMITS, INSTANCE_EVENTS_BY_WORKER, LOST_WORKER, BOUNDED_ACTIVATIONS,
                     STOP_DEADLINE, WORKER_GROUPS})


def patched(patch_id: str) -> bool:
    """``workflow.patched(patch_id)``, answered by the one :data:`ALL` marker for an id it covers.

    ``workflow.patched`` is memoized per run, so :data:`ALL` is recorded (or, on replay, looked up)
    once, at the run's first call of this function."""
    if patch_id in COVERED and workflow.patched(ALL):
        return True
    return workflow.patched(patch_id)
