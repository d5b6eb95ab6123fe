"""Keep a starved CPU from failing workflow tasks: the SDK's deadlock detector, made tolerant.

temporalio fails a workflow task whose activation has not yielded within 2 s of *wall* time
("[TMPRL1101] Potential deadlock detected"), interrupts the workflow thread and evicts the run. On a
machine whose cores are saturated (measured: load average 19 on 2 cores), an activation that needs
0.2 s of CPU takes several seconds of wall time, so a healthy run trips the detector, and its
replay (the next attempt) takes as long again: the run makes no progress while the load lasts.

Workflow code keeps activations short (`workflows/ds_workflow.py` dispatches at most
``DISPATCH_PER_ACTIVATION`` nodes per activation); this module gives the detector a wider window,
``Settings.workflow_deadlock_seconds`` (default 30 s), which still catches real deadlocks (code that
never yields). temporalio 1.35 has no public option for it outside ``debug_mode`` (which also runs
workflows on the event loop), so the window is set on the worker's workflow part; a temporalio
without that attribute keeps its 2 s and this is logged.
"""

from __future__ import annotations

import logging

from temporalio.worker import Worker

log = logging.getLogger(__name__)


def tolerate_starvation(worker: Worker, seconds: float) -> Worker:
    """Set the worker's deadlock-detection window to `seconds` (not in debug mode, where it is off)."""
    workflows = getattr(worker, "_workflow_worker", None)
    if workflows is None:
        return worker  # no workflows on this worker
    if not hasattr(workflows, "_deadlock_timeout_seconds"):
        log.warning("this temporalio has no deadlock window to widen; activations get 2 s")
        return worker
    if workflows._deadlock_timeout_seconds is not None and seconds > 0:
        workflows._deadlock_timeout_seconds = seconds
    return worker
