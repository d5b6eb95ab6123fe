"""The SHELL task (reference §3): the DS script, ``${param}``-substituted, run by ``bash`` on the worker.

Exactly like DolphinScheduler, placeholders are replaced textually before bash sees the script, an
unresolved ``${x}`` is left for bash to expand from its environment, a non-zero exit code fails the
attempt, and ``${setValue(k=v)}`` lines in the output set declared OUT parameters (§6.4).
"""

from __future__ import annotations

from temporalio import activity

from activities.process import run_script_task
from core.contracts import TaskRequest, TaskResult


@activity.defn(name="SHELL")
async def run_shell(request: TaskRequest) -> TaskResult:
    """Run ``rawScript`` as ``bash <log_dir>/<task_code>.<attempt>.sh``; see :mod:`activities.process`."""
    return await run_script_task(request, launcher=["bash"], suffix=".sh")
