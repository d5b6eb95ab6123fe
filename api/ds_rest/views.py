"""Porpoise objects rendered as DS's entities (``dao/entity/*.java`` of 3.2): the field names, enum
names and date format a DS client reads. 3.3 names (``workflow*``) are added next to 3.2's where a 3.3
client reads them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from core.contracts import InstanceStatus, NodeStatus, RunInput
from model.definition import Property, TaskDefinition, WorkflowDefinition
from model.states import TaskState
from storage.ds_ids import DefinitionMeta, Project

from .envelope import ds_time

# DS keeps no task instance for these node states (reference §5): they are left out of task lists.
NO_INSTANCE = {TaskState.WAITING, TaskState.NOT_RUN, TaskState.FORBIDDEN, TaskState.SKIPPED,
               TaskState.DEPEND_FAILED}


def _props(ps: tuple[Property, ...]) -> list[dict[str, Any]]:
    return [{"prop": p.prop, "direct": p.direct.value, "type": p.type.value, "value": p.value} for p in ps]


def project(p: Project, zone: str, def_count: int = 0) -> dict[str, Any]:
    return {"id": p.id, "userId": p.owner_id, "userName": p.user_name, "code": p.code, "name": p.name,
            "description": p.description, "createTime": ds_time(p.created_at, zone),
            "updateTime": ds_time(p.updated_at, zone), "perm": 7, "defCount": def_count, "instRunningCount": 0}


def definition(d: WorkflowDefinition, meta: DefinitionMeta, zone: str, project_name: str = "",
               updated: datetime | None = None, schedule: dict[str, Any] | None = None,
               user_name: str = "") -> dict[str, Any]:
    gp = _props(d.global_params)
    return {
        "id": meta.id, "code": d.code, "name": d.name, "version": d.version, "releaseState": meta.release_state,
        "projectCode": d.project_code, "description": d.description, "globalParams": json.dumps(gp),
        "globalParamList": gp, "globalParamMap": {p["prop"]: p["value"] for p in gp},
        "createTime": ds_time(meta.created_at, zone), "updateTime": ds_time(updated or meta.created_at, zone),
        "flag": "YES", "userId": 1, "userName": user_name or "porpoise", "projectName": project_name or d.project_name,
        "locations": meta.locations or None,
        "scheduleReleaseState": schedule.get("releaseState") if schedule else None, "schedule": schedule,
        "timeout": d.timeout, "modifyBy": user_name, "warningGroupId": d.warning_group_id or None,
        "executionType": d.execution_type.value,
    }


def task_definition(t: TaskDefinition, project_code: int, zone: str, when: datetime | None = None) -> dict[str, Any]:
    params = dict(t.task_params)
    params["localParams"] = _props(t.local_params)
    params.setdefault("resourceList", [])
    return {
        "id": None, "code": t.code, "name": t.name, "version": t.version, "description": t.description,
        "projectCode": project_code, "userId": 1, "taskType": t.task_type, "taskParams": params,
        "taskParamList": params["localParams"], "flag": "YES" if t.enabled else "NO",
        "isCache": "YES" if t.is_cache else "NO", "taskPriority": t.task_priority.value,
        "workerGroup": t.worker_group, "environmentCode": t.environment_code,
        "failRetryTimes": t.fail_retry_times, "failRetryInterval": t.fail_retry_interval,
        "timeoutFlag": "OPEN" if t.timeout_enabled else "CLOSE",
        "timeoutNotifyStrategy": t.timeout_strategy.value if t.timeout_strategy else None,
        "timeout": t.timeout, "delayTime": t.delay_time, "taskGroupId": t.task_group_id,
        "taskGroupPriority": t.task_group_priority, "cpuQuota": t.cpu_quota, "memoryMax": t.memory_max,
        "taskExecuteType": t.task_execute_type, "createTime": ds_time(when, zone), "updateTime": ds_time(when, zone),
    }


def relations(d: WorkflowDefinition, zone: str, when: datetime | None = None) -> list[dict[str, Any]]:
    versions = {t.code: t.version for t in d.tasks}
    return [{
        "id": None, "name": "", "processDefinitionVersion": d.version, "projectCode": d.project_code,
        "processDefinitionCode": d.code, "preTaskCode": r.pre_task_code,
        "preTaskVersion": versions.get(r.pre_task_code, 0), "postTaskCode": r.post_task_code,
        "postTaskVersion": versions.get(r.post_task_code, 1), "conditionType": "NONE", "conditionParams": {},
        "createTime": ds_time(when, zone), "updateTime": ds_time(when, zone),
    } for r in d.relations]


def dag(d: WorkflowDefinition, meta: DefinitionMeta, zone: str, **kw: Any) -> dict[str, Any]:
    """DS ``DagData``: what ``GET .../process-definition/{code}`` answers."""
    when = kw.get("updated")
    return {"processDefinition": definition(d, meta, zone, **kw),
            "processTaskRelationList": relations(d, zone, when),
            "taskDefinitionList": [task_definition(t, d.project_code, zone, when) for t in d.tasks]}


def _duration(start: datetime | None, end: datetime | None) -> str | None:
    if start is None:
        return None
    if end is None:
        return None
    secs = int((end - start).total_seconds())
    h, rest = divmod(max(secs, 0), 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m}m {s}s" if h else (f"{m}m {s}s" if m else f"{s}s")


def instance_name(definition_name: str, ds_id: int) -> str:
    return f"{definition_name}-{ds_id}"


def instance(st: InstanceStatus, ds_id: int, zone: str, run: RunInput | None = None) -> dict[str, Any]:
    """DS ``ProcessInstance``; the start settings come from the run's input when it could be read."""
    host = next((n.host for n in st.nodes if n.host), None)
    return {
        "id": ds_id, "processDefinitionCode": st.definition_code, "processDefinitionVersion": st.definition_version,
        "workflowDefinitionCode": st.definition_code, "workflowDefinitionVersion": st.definition_version,
        "projectCode": st.project_code, "state": st.state.value, "recovery": "NO",
        "startTime": ds_time(st.start_time, zone), "endTime": ds_time(st.end_time, zone), "runTimes": st.run_times,
        "name": instance_name(st.definition_name, ds_id), "host": host,
        "commandType": run.command_type if run else "START_PROCESS",
        "taskDependType": run.task_depend_type.value if run else "TASK_POST", "maxTryTimes": 0,
        "failureStrategy": st.failure_strategy.value, "warningType": run.warning_type.value if run else "NONE",
        "warningGroupId": (run.warning_group_id or None) if run else None,
        "scheduleTime": ds_time(st.schedule_time, zone), "commandStartTime": ds_time(st.start_time, zone),
        "globalParams": None, "executorId": 1, "executorName": "porpoise", "tenantCode": "default",
        "isSubProcess": "YES" if st.is_sub_process else "NO",
        "duration": _duration(st.start_time, st.end_time),
        "processInstancePriority": run.instance_priority.value if run else "MEDIUM",
        "workerGroup": "default", "environmentCode": -1, "timeout": 0,
        "varPool": json.dumps(_props(tuple(st.var_pool))), "dryRun": 1 if st.dry_run else 0, "testFlag": 0,
        "restartTime": ds_time(st.start_time, zone), "processDefinitionName": st.definition_name,
        "temporalWorkflowId": st.instance_id,
    }


def task_instance(n: NodeStatus, ds_id: int, st: InstanceStatus, instance_ds_id: int, zone: str) -> dict[str, Any]:
    """DS ``TaskInstance`` for one attempt of one node."""
    return {
        "id": ds_id, "name": n.name, "taskType": n.task_type, "processInstanceId": instance_ds_id,
        "workflowInstanceId": instance_ds_id, "processInstanceName": instance_name(st.definition_name, instance_ds_id),
        "projectCode": st.project_code, "taskCode": n.code, "taskDefinitionVersion": st.definition_version,
        "processDefinitionName": st.definition_name, "state": n.state.value,
        "firstSubmitTime": ds_time(n.start_time, zone), "submitTime": ds_time(n.start_time, zone),
        "startTime": ds_time(n.start_time, zone), "endTime": ds_time(n.end_time, zone), "host": n.host,
        "executePath": None, "logPath": n.log_path, "retryTimes": max(n.attempts - 1, 0), "alertFlag": "NO",
        "pid": n.pid or 0, "appLink": None, "flag": "YES", "isCache": "NO",
        "duration": _duration(n.start_time, n.end_time), "maxRetryTimes": max(n.max_attempts - 1, 0),
        "retryInterval": 0, "taskInstancePriority": "MEDIUM", "processInstancePriority": "MEDIUM",
        "workerGroup": "default", "environmentCode": -1, "executorId": 1, "executorName": "porpoise",
        "varPool": json.dumps(_props(tuple(n.var_pool))), "delayTime": 0, "dryRun": 1 if st.dry_run else 0,
        "taskGroupId": 0, "taskExecuteType": "BATCH", "testFlag": 0, "temporalWorkflowId": st.instance_id,
        "attempt": max(n.attempts, 1),
    }


def schedule(v: dict[str, Any], zone: str) -> dict[str, Any]:
    """DS ``Schedule`` from Porpoise's schedule view."""
    def t(iso: str | None) -> str | None:
        return ds_time(datetime.fromisoformat(iso), zone) if iso else None
    return {
        "id": v["id"], "processDefinitionCode": v["processDefinitionCode"],
        "workflowDefinitionCode": v["processDefinitionCode"], "processDefinitionName": v["processDefinitionName"],
        "projectName": None, "definitionDescription": None, "startTime": v["startTime"], "endTime": v["endTime"],
        "timezoneId": v["timezoneId"], "crontab": v["crontab"], "failureStrategy": v["failureStrategy"],
        "warningType": v["warningType"], "createTime": t(v.get("createTime")), "updateTime": t(v.get("updateTime")),
        "userId": 1, "userName": "porpoise", "releaseState": v["releaseState"],
        "warningGroupId": v["warningGroupId"], "processInstancePriority": v["processInstancePriority"],
        "workflowInstancePriority": v["processInstancePriority"], "workerGroup": v["workerGroup"],
        "tenantCode": v["tenantCode"], "environmentCode": v["environmentCode"], "environmentName": None,
    }
