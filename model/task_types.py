"""Task types Porpoise knows, and the parameters each one requires (reference §3).

``RUNNABLE`` are the types the worker executes today. Other DS types are recognised so that a DS
export still parses and says clearly which task cannot run, instead of refusing the whole file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .definition import TaskDefinition
from .problems import Problem

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

HTTP_METHODS = ("GET", "POST", "HEAD", "PUT", "DELETE")

Check = Callable[[TaskDefinition, Mapping[str, Any]], list[tuple[str, str]]]


def _non_empty_str(params: Mapping[str, Any], key: str) -> bool:
    return isinstance(params.get(key), str) and bool(params[key].strip())


def _codes(value: Any) -> list[int]:
    """Branch target lists: DS sends codes, sometimes as strings, and the UI leaves "" entries."""
    items = value if isinstance(value, list) else [value]
    out = []
    for v in items:
        if v in (None, ""):
            continue
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            out.append(-1)
    return out


def _script(_: TaskDefinition, p: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [] if _non_empty_str(p, "rawScript") else [("rawScript", "rawScript is required")]


def _http(_: TaskDefinition, p: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    if not _non_empty_str(p, "url"):
        out.append(("url", "url is required"))
    method = str(p.get("httpMethod") or p.get("httpRequestMethod") or "GET").upper()
    if method not in HTTP_METHODS:
        out.append(("httpMethod", f"httpMethod {method!r} is not one of {', '.join(HTTP_METHODS)}"))
    return out


def _sql(_: TaskDefinition, p: Mapping[str, Any]) -> list[tuple[str, str]]:
    out = []
    if not _non_empty_str(p, "sql"):
        out.append(("sql", "sql is required"))
    try:
        if int(p.get("datasource") or 0) <= 0:
            out.append(("datasource", "datasource id is required"))
    except (TypeError, ValueError):
        out.append(("datasource", f"datasource must be an id, got {p.get('datasource')!r}"))
    return out


# DataX sides that are not JDBC datasources (activities/datax/builders.py): configured by the task's
# sourceConfig/targetConfig instead of a datasource id, and a reader of these needs no SQL.
DATAX_NON_JDBC = frozenset({"HDFS", "HBASE", "HTTP", "TXTFILE", "STREAM"})


def _datax(_: TaskDefinition, p: Mapping[str, Any]) -> list[tuple[str, str]]:
    if str(p.get("customConfig", 0)) == "1":
        return [] if _non_empty_str(p, "json") else [("json", "customConfig 1 needs the DataX job in json")]
    source_jdbc = str(p.get("dsType") or "").upper() not in DATAX_NON_JDBC
    target_jdbc = str(p.get("dtType") or "").upper() not in DATAX_NON_JDBC
    out = []
    if source_jdbc and not _non_empty_str(p, "sql"):
        out.append(("sql", "sql is required in UI mode (customConfig 0)"))
    if target_jdbc and not _non_empty_str(p, "targetTable"):
        out.append(("targetTable", "targetTable is required in UI mode (customConfig 0)"))
    for k, jdbc in (("dataSource", source_jdbc), ("dataTarget", target_jdbc)):
        if jdbc and not p.get(k):
            out.append((k, f"{k} datasource id is required in UI mode (customConfig 0)"))
    return out


def _sub_process(_: TaskDefinition, p: Mapping[str, Any]) -> list[tuple[str, str]]:
    try:
        ok = int(p.get("processDefinitionCode") or 0) > 0
    except (TypeError, ValueError):
        ok = False
    return [] if ok else [("processDefinitionCode", "processDefinitionCode (or workflowDefinitionCode) is required")]


def _conditions(_: TaskDefinition, p: Mapping[str, Any]) -> list[tuple[str, str]]:
    result = p.get("conditionResult")
    if not isinstance(result, Mapping):
        return [("conditionResult", "conditionResult {successNode, failedNode} is required")]
    return []


def _switch(_: TaskDefinition, p: Mapping[str, Any]) -> list[tuple[str, str]]:
    result = p.get("switchResult")
    if not isinstance(result, Mapping):
        return [("switchResult", "switchResult {dependTaskList, nextNode} is required")]
    out = []
    for i, item in enumerate(result.get("dependTaskList") or []):
        if not isinstance(item, Mapping) or not str(item.get("condition") or "").strip():
            out.append((f"switchResult/dependTaskList/{i}/condition", "a switch branch needs a condition"))
    return out


def _dependent(_: TaskDefinition, p: Mapping[str, Any]) -> list[tuple[str, str]]:
    dep = p.get("dependence")
    if not isinstance(dep, Mapping) or not dep.get("dependTaskList"):
        return [("dependence", "dependence.dependTaskList is required")]
    return []


CHECKS: dict[str, Check] = {
    "SHELL": _script,
    "PYTHON": _script,
    "HTTP": _http,
    "SQL": _sql,
    "DATAX": _datax,
    "SUB_PROCESS": _sub_process,
    "CONDITIONS": _conditions,
    "SWITCH": _switch,
    "DEPENDENT": _dependent,
}


def branch_targets(task: TaskDefinition) -> dict[str, list[int]]:
    """Codes a CONDITIONS or SWITCH task may route to, keyed by the param path that names them."""
    p = task.task_params
    if task.task_type == "CONDITIONS" and isinstance(p.get("conditionResult"), Mapping):
        r = p["conditionResult"]
        return {"conditionResult/successNode": _codes(r.get("successNode")),
                "conditionResult/failedNode": _codes(r.get("failedNode"))}
    if task.task_type == "SWITCH" and isinstance(p.get("switchResult"), Mapping):
        r = p["switchResult"]
        out = {"switchResult/nextNode": _codes(r.get("nextNode"))}
        for i, item in enumerate(r.get("dependTaskList") or []):
            if isinstance(item, Mapping):
                out[f"switchResult/dependTaskList/{i}/nextNode"] = _codes(item.get("nextNode"))
        return out
    return {}


def check_task(task: TaskDefinition, ptr: str) -> list[Problem]:
    if task.task_type not in KNOWN:
        return [Problem(ptr + "/taskType",
                        f"unknown task type {task.task_type!r}; supported: {', '.join(sorted(RUNNABLE))} "
                        f"(recognised, not yet runnable: {', '.join(sorted(RECOGNISED & set(CHECKS)))})",
                        task.name, "unknown-type")]
    check = CHECKS.get(task.task_type)
    if check is None:
        return []
    return [Problem(f"{ptr}/taskParams/{key}", msg, task.name, "required")
            for key, msg in check(task, task.task_params)]
