"""Task types Porpoise knows, and the check of each task's parameters (reference §3).

The parameters themselves are typed models in :mod:`model.task_params`: parsing names a field of the
wrong type (problem code ``type``), each model's ``problems()`` what a type requires (``required``).

``RUNNABLE`` are the types the worker executes today. Other DS types are recognised so that a DS
export still parses and says clearly which task cannot run, instead of refusing the whole file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .definition import TaskDefinition
from .problems import Problem
from .task_params import BY_TYPE, ConditionsParams, SwitchParams, TaskParamsError, model_for, parse_params
from .task_params.datax import NON_JDBC
from .task_params.http import METHODS

# Types executed by activities (I/O) vs. decided inside the workflow (logic tasks).
ACTIVITY_TYPES = frozenset({"SHELL", "PYTHON", "HTTP", "SQL", "DATAX"})
LOGIC_TYPES = frozenset({"CONDITIONS", "SWITCH", "SUB_PROCESS", "DEPENDENT"})
RUNNABLE = ACTIVITY_TYPES | LOGIC_TYPES

# DS task types that parse and validate but do not run here yet (docs/compatibility.md).
RECOGNISED = frozenset(
    {
        "PROCEDURE", "SPARK", "FLINK", "FLINK_STREAM",
        "MR", "HIVECLI", "SQOOP", "SEATUNNEL", "K8S", "DYNAMIC", "JUPYTER", "MLFLOW", "OPENMLDB", "PYTORCH",
        "DVC", "SAGEMAKER", "DATASYNC", "DMS", "DATA_FACTORY", "EMR", "ZEPPELIN", "CHUNJUN", "DINKY",
        "LINKIS", "REMOTESHELL", "ALIYUN_SERVERLESS_SPARK", "DATA_QUALITY", "BLOCKING",
    }
)
KNOWN = RUNNABLE | RECOGNISED

HTTP_METHODS = METHODS
# DataX sides that are not JDBC datasources (activities/datax/builders.py).
DATAX_NON_JDBC = NON_JDBC

Check = Callable[[TaskDefinition | None, Mapping[str, Any]], list[tuple[str, str]]]


def _check_of(task_type: str) -> Check:
    def check(_: TaskDefinition | None, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        return model_for(task_type).of(params).problems()
    return check


# What each runnable type requires of its raw taskParams: ``(DS key, message)``.
CHECKS: dict[str, Check] = {t: _check_of(t) for t in BY_TYPE}


def branch_targets(task: TaskDefinition) -> dict[str, list[int]]:
    """Codes a CONDITIONS or SWITCH task may route to, keyed by the param path that names them."""
    if task.task_type not in ("CONDITIONS", "SWITCH"):
        return {}
    try:
        params = parse_params(task.task_type, task.task_params)
    except TaskParamsError:
        return {}  # reported by check_task
    assert isinstance(params, ConditionsParams | SwitchParams)
    return params.branch_targets()


def check_task(task: TaskDefinition, ptr: str) -> list[Problem]:
    if task.task_type not in KNOWN:
        return [Problem(ptr + "/taskType",
                        f"unknown task type {task.task_type!r}; supported: {', '.join(sorted(RUNNABLE))} "
                        f"(recognised, not yet runnable: {', '.join(sorted(RECOGNISED))})",
                        task.name, "unknown-type")]
    try:
        params = parse_params(task.task_type, task.task_params)
    except TaskParamsError as e:
        return [Problem(f"{ptr}/taskParams/{path}".rstrip("/"), msg, task.name, "type") for path, msg in e.problems]
    return [Problem(f"{ptr}/taskParams/{key}", msg, task.name, "required") for key, msg in params.problems()]
