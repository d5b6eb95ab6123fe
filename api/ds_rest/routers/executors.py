"""DS ``ExecutorController``: start a workflow instance (3.2 ``start-process-instance``, 3.3
``start-workflow-instance``, with ``execType=COMPLEMENT_DATA`` too), ``start-check`` and ``execute``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from model.definition import FailureStrategy, Priority, TaskDependType, WarningType
from model.states import WorkflowState
from storage.ds_ids import ONLINE, new_code

from .. import lookups
from ..common import PorpoiseDep, check_project, ds_router
from ..deps import ParamsDep
from ..envelope import DS_TIME, DsError, ds_error, ok
from ..params import Params, path_int
from ..porpoise import DomainError, Porpoise, StartRun
from ..status import Status

router = ds_router()


def _start_fields(p: Params, version: int | None) -> dict[str, Any]:
    failure = p.enum("failureStrategy", FailureStrategy, required=True)
    warning = p.enum("warningType", WarningType, required=True)
    depend = p.enum("taskDependType", TaskDependType, TaskDependType.TASK_POST)
    priority = p.enum("processInstancePriority", Priority, Priority.MEDIUM, alias=("workflowInstancePriority",))
    fields: dict[str, Any] = {
        "failureStrategy": failure, "warningType": warning, "taskDependType": depend,
        "processInstancePriority": priority, "warningGroupId": p.integer("warningGroupId", 0) or 0,
        "dryRun": p.integer("dryRun", 0) or 0, "startNodeList": p.codes("startNodeList"), "version": version,
    }
    group = (p.text("workerGroup") or "").strip()
    if group:  # DS: tasks left in `default` run in the run's worker group (core/worker_groups.py)
        fields["workerGroup"] = group
    raw = (p.text("startParams") or "").strip()
    if raw:
        try:
            fields["startParams"] = json.loads(raw)
        except ValueError:
            raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "startParams") from None
    return fields


def _validated(kind: Any, fields: dict[str, Any]) -> Any:
    try:
        return kind.model_validate(fields)
    except ValidationError as e:
        names = ",".join(str(err["loc"][0]) for err in e.errors() if err.get("loc"))
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, names or "startParams") from None


def _start_body(p: Params, version: int | None) -> StartRun:
    fields = _start_fields(p, version)
    when = (p.text("scheduleTime") or "").strip()
    if when and not when.startswith("{"):  # 3.2 UI sends a JSON object even for a plain start
        try:
            fields["scheduleTime"] = datetime.strptime(when, DS_TIME)
        except ValueError:
            raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "scheduleTime") from None
    body: StartRun = _validated(StartRun, fields)
    return body


def _complement_fields(p: Params, version: int | None) -> dict[str, Any]:
    fields = _start_fields(p, version)
    fields["scheduleTime"] = p.req("scheduleTime")
    for name in ("runMode", "executionOrder", "complementDependentMode"):
        if (p.text(name) or "").strip():
            fields[name] = p.req(name).strip()
    parallelism = p.integer("expectedParallelismNumber")
    if parallelism is not None:
        fields["expectedParallelismNumber"] = parallelism
    return fields


async def _start(projectCode: str, pp: Porpoise, p: Params) -> tuple[int, int | None]:
    """Start as DS does: (trigger code, DS instance id; None for a complement, whose instances
    start one per date and appear in the instance list as they do)."""
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    code = p.req_int("processDefinitionCode", alias=("workflowDefinitionCode",))
    version = p.integer("version")
    d = await pp.definition(code, version)
    if d is None or d.project_code != project_code:
        raise DsError(Status.PROCESS_DEFINE_NOT_EXIST, code)
    meta = await run_in_threadpool(pp.ids.definition_meta, code)
    if meta.release_state != ONLINE:
        raise DsError(Status.PROCESS_DEFINE_NOT_RELEASE, code, d.version)
    await pp.check_datasources(d)  # a general user runs only with datasources they may use
    exec_type = (p.text("execType") or "START_PROCESS").strip() or "START_PROCESS"
    if exec_type == "COMPLEMENT_DATA":
        missing = [c for c in p.codes("startNodeList") if c not in {t.code for t in d.tasks}]
        if missing:
            raise DsError(Status.START_NODE_NOT_EXIST_IN_LAST_PROCESS, ",".join(map(str, missing)))
        try:
            await pp.start_complement(code, _complement_fields(p, version))
        except ValidationError as e:
            names = ",".join(str(err["loc"][0]) for err in e.errors() if err.get("loc"))
            raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, names or "scheduleTime") from None
        except DomainError as e:
            raise DsError(Status.START_PROCESS_INSTANCE_ERROR,
                          msg=f"{Status.START_PROCESS_INSTANCE_ERROR.msg()}: {_detail(e)}") from e
        return new_code(), None
    if exec_type not in ("START_PROCESS", "0"):
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "execType")
    body = _start_body(p, version)
    missing = [c for c in body.start_node_list if c not in {t.code for t in d.tasks}]
    if missing:
        raise DsError(Status.START_NODE_NOT_EXIST_IN_LAST_PROCESS, ",".join(map(str, missing)))
    trigger = new_code()
    try:
        workflow_id = await pp.start(d, body)
    except DomainError as e:
        raise DsError(Status.START_PROCESS_INSTANCE_ERROR,
                      msg=f"{Status.START_PROCESS_INSTANCE_ERROR.msg()}: {_detail(e)}") from e
    ds_id = await run_in_threadpool(pp.ids.instance_id, workflow_id, d.project_code, d.code, trigger)
    return trigger, ds_id


def _detail(e: DomainError) -> str:
    if e.problems:
        return "; ".join(f"{pr.pointer or '/'}: {pr.message}" for pr in e.problems)
    return e.detail or e.title


@router.post("/projects/{projectCode}/executors/start-check")
async def start_check(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    """DS ``start-check``: the definition exists and is ONLINE (Porpoise runs any sub-process version)."""
    project_code = path_int(projectCode, "projectCode")
    code = p.req_int("processDefinitionCode", alias=("workflowDefinitionCode",))
    d = await pp.definition(code)
    if d is None or d.project_code != project_code:
        raise DsError(Status.PROCESS_DEFINE_NOT_EXIST, code)
    if (await run_in_threadpool(pp.ids.definition_meta, code)).release_state != ONLINE:
        raise DsError(Status.PROCESS_DEFINE_NOT_RELEASE, code, d.version)
    return ok(None)


@router.post("/projects/{projectCode}/executors/start-process-instance",
             openapi_extra=ds_error(Status.START_PROCESS_INSTANCE_ERROR))
async def start_process_instance(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    """3.2: the answer's data is the trigger code (``GET .../process-instances/trigger`` lists its instances)."""
    trigger, _ = await _start(projectCode, pp, p)
    return ok(trigger)


@router.post("/projects/{projectCode}/executors/start-workflow-instance",
             openapi_extra=ds_error(Status.START_PROCESS_INSTANCE_ERROR))
async def start_workflow_instance(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    """3.3: the answer's data is the list of workflow instance ids started."""
    _, ds_id = await _start(projectCode, pp, p)
    return ok([ds_id] if ds_id is not None else [])


EXECUTE_NEEDS = {
    "STOP": {WorkflowState.RUNNING_EXECUTION, WorkflowState.READY_PAUSE, WorkflowState.SUBMITTED_SUCCESS,
             WorkflowState.SERIAL_WAIT, WorkflowState.WAIT_TO_RUN},
    "PAUSE": {WorkflowState.RUNNING_EXECUTION, WorkflowState.SUBMITTED_SUCCESS},
    "RECOVER_SUSPENDED_PROCESS": {WorkflowState.PAUSE, WorkflowState.STOP},
    "START_FAILURE_TASK_PROCESS": {WorkflowState.FAILURE},
    "REPEAT_RUNNING": {WorkflowState.SUCCESS, WorkflowState.FAILURE, WorkflowState.STOP, WorkflowState.PAUSE},
}


@router.post("/projects/{projectCode}/executors/execute", openapi_extra=ds_error(Status.EXECUTE_PROCESS_INSTANCE_ERROR))
async def execute(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    ds_id = p.req_int("processInstanceId", alias=("workflowInstanceId",))
    kind = p.req("executeType").strip()
    if kind not in EXECUTE_NEEDS:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "executeType")
    wid, st, tstatus = await lookups.instance(pp, project_code, ds_id)
    finished = tstatus != "RUNNING"
    if st.state not in EXECUTE_NEEDS[kind] or (kind in ("RECOVER_SUSPENDED_PROCESS", "START_FAILURE_TASK_PROCESS",
                                                        "REPEAT_RUNNING") and not finished):
        raise DsError(Status.PROCESS_INSTANCE_STATE_OPERATION_ERROR, st.definition_name, st.state.value, kind)
    try:
        if kind == "STOP":
            await pp.stop(wid)
        elif kind == "PAUSE":
            await pp.pause(wid)
        elif kind == "REPEAT_RUNNING":
            await pp.rerun(wid)
        else:
            await pp.recover(wid)
    except DomainError as e:
        raise DsError(Status.PROCESS_INSTANCE_STATE_OPERATION_ERROR, st.definition_name, st.state.value, kind) from e
    return ok(None)
