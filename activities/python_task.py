"""The PYTHON task (reference §3): like SHELL, but the script file is run by a Python interpreter.

DS runs it with ``${PYTHON_LAUNCHER}``; so do we when that environment variable is set on the worker
(it may carry arguments, e.g. ``/usr/bin/env python3 -u``), and with the worker's own interpreter
otherwise, so a fresh install works without configuration. Placeholder and setValue rules are SHELL's.
"""

from __future__ import annotations

import os
import shlex
import sys

from temporalio import activity

from activities.process import run_script_task
from core.contracts import TaskRequest, TaskResult


def python_launcher() -> list[str]:
    """Read at each run, not import time, so an operator can change it without restarting the worker."""
    configured = os.environ.get("PYTHON_LAUNCHER", "").strip()
    return shlex.split(configured) if configured else [sys.executable]


@activity.defn(name="PYTHON")
async def run_python(request: TaskRequest) -> TaskResult:
    """Run ``rawScript`` as ``<launcher> <log_dir>/<task_code>.<attempt>.py``."""
    return await run_script_task(request, launcher=python_launcher(), suffix=".py")
