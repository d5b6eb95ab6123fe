"""Build DS 3.2 export documents for tests, in DS's own wire format (what users submit)."""

from __future__ import annotations

import itertools
from typing import Any

_codes = itertools.count(7_100_000_000_000)


def new_code() -> int:
    return next(_codes)


def task(name: str, script: str = "true", *, task_type: str = "SHELL", params: dict[str, Any] | None = None,
         **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": new_code(), "name": name, "version": 1, "taskType": task_type,
        "taskParams": params if params is not None else {"localParams": [], "rawScript": script,
                                                          "resourceList": []},
        "flag": "YES", "isCache": "NO", "taskPriority": "MEDIUM", "workerGroup": "default",
        "environmentCode": -1, "failRetryTimes": 0, "failRetryInterval": 0, "timeoutFlag": "CLOSE",
        "timeoutNotifyStrategy": None, "timeout": 0, "delayTime": 0, "taskGroupId": 0,
        "taskGroupPriority": 0, "cpuQuota": -1, "memoryMax": -1, "taskExecuteType": "BATCH",
    }
    body.update(fields)
    return body


def export(name: str, tasks: list[dict[str, Any]], edges: list[tuple[str | None, str]],
           global_params: str = "[]", code: int | None = None, **definition: Any) -> list[dict[str, Any]]:
    """A one-definition export; ``edges`` are (pre name or None for a root, post name)."""
    by_name = {t["name"]: t for t in tasks}
    wf_code = code or new_code()
    relations = [
        {"name": "", "preTaskCode": by_name[a]["code"] if a else 0, "preTaskVersion": 1 if a else 0,
         "postTaskCode": by_name[b]["code"], "postTaskVersion": 1, "conditionType": "NONE",
         "conditionParams": {}, "processDefinitionCode": wf_code, "processDefinitionVersion": 1}
        for a, b in edges
    ]
    meta = {"code": wf_code, "name": name, "version": 1, "releaseState": "OFFLINE", "projectCode": 42,
            "description": "", "globalParams": global_params, "locations": "[]", "timeout": 0,
            "flag": "YES", "executionType": "PARALLEL"} | definition
    return [{"processDefinition": meta, "processTaskRelationList": relations, "taskDefinitionList": tasks,
             "schedule": None}]


def codes(doc: list[dict[str, Any]]) -> dict[str, int]:
    return {t["name"]: t["code"] for t in doc[0]["taskDefinitionList"]}
