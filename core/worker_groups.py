"""Worker groups (DS ``workerGroup``) as Temporal task queues (docs/deploy.md "Worker groups").

A task instance runs in one worker group; the group is a task queue that only the workers started
with ``porpoise worker --group NAME`` poll:

* ``default`` is the shared task queue (``settings.task_queue``), where the workflows run too;
* group ``G`` is ``<task_queue>-G`` (the Helm chart's ``porpoise.taskQueue`` helper says the same).

Which group a task instance runs in is DS's rule (``WorkflowExecuteRunnable`` / ``TaskInstanceUtils``):
the task's own ``workerGroup``, except that a task left in ``default`` (or blank) takes the workflow
instance's group when that is not ``default``. The instance's group is the start command's
``workerGroup``, the schedule row's, or, for a sub-process child, its SUB_PROCESS task's group.

Pure functions: the workflow calls them (deterministic), the worker and the API too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DEFAULT_GROUP = "default"
# A group name becomes part of a task queue name and of Kubernetes labels; '@' separates a queue from
# its host (core.temporal.host_task_queue), so it is refused.
GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def normalise(group: str | None) -> str:
    """Blank means ``default`` (DS treats an empty workerGroup so)."""
    return (group or "").strip() or DEFAULT_GROUP


def check_name(group: str) -> str:
    """``group`` when it can name a worker group, else ValueError saying why."""
    if not GROUP_NAME.match(group):
        raise ValueError(f"worker group {group!r}: use 1-63 letters, digits, '_', '.' or '-', "
                         f"starting with a letter or digit")
    return group


def task_group(task_group_name: str | None, instance_group: str | None) -> str:
    """DS's rule: a task in ``default`` runs in the instance's group, any other group stays its own."""
    own, instance = normalise(task_group_name), normalise(instance_group)
    if own == DEFAULT_GROUP and instance != DEFAULT_GROUP:
        return instance
    return own


def group_task_queue(task_queue: str, group: str) -> str:
    """The task queue of ``group`` next to the shared ``task_queue``."""
    group = normalise(group)
    return task_queue if group == DEFAULT_GROUP else f"{task_queue}-{group}"


def host_queue(task_queue: str, host: str) -> str:
    """``host``'s own task queue next to ``task_queue`` (a shared or a group queue): where the attempt
    after a lost one goes, to find the process the lost worker left on ``host``."""
    return f"{task_queue.split('@', 1)[0]}@{host}"


def is_heavy_datax(task_params: Mapping[str, Any], min_xmx_gb: int) -> bool:
    """A DataX job that should leave the default group when ``datax_worker_group`` is set: the task
    says ``runOn: k8s``, or does not say ``local`` and asks ``xmx`` >= ``min_xmx_gb`` (the same
    threshold that sends it to Kubernetes, activities/datax/routing.py)."""
    asked = str(task_params.get("runOn") or "").strip().lower()
    if asked == "k8s":
        return True
    if asked == "local":
        return False
    try:
        xmx = int(str(task_params.get("xmx") or 1).strip())
    except ValueError:
        return False  # the activity reports the bad value
    return xmx >= min_xmx_gb
