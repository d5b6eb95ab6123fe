"""DS ``SchedulerController`` (``/projects/{projectCode}/schedules``) on Porpoise's schedules (Temporal
Schedules; ids are Porpoise's schedule ids, already integers)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from model.definition import FailureStrategy, Priority, WarningType
from model.quartz import QuartzError, parse
from storage.ds_ids import ONLINE

from .. import views
from ..common import PorpoiseDep, check_project, ds_router
from ..deps import ParamsDep
from ..envelope import DS_TIME, DsError, ds_error, ok, page, paged
from ..params import Params, paging, path_int
from ..porpoise import DomainError, Porpoise, ScheduleRecord
from ..status import Status

router = ds_router()
BASE = "/projects/{projectCode}/schedules"


def _schedule_json(p: Params, bad_cron: Status = Status.REQUEST_PARAMS_NOT_VALID_ERROR,
                   times: bool = True) -> dict[str, Any]:
    """DS's ``ScheduleParam`` JSON, checked in DS's order: start/end equal (10141) or reversed
    (80003), then the crontab (create: 10001 naming it, update: 10024, preview: 10140)."""
    raw = p.req("schedule")
    try:
        doc = json.loads(raw)
    except ValueError:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "schedule") from None
    if not isinstance(doc, dict):
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "schedule")
    start, end = doc.get("startTime"), doc.get("endTime")
    parsed = {}
    for name, v in (("startTime", start), ("endTime", end)):
        if v:
            try:
                parsed[name] = datetime.strptime(str(v), DS_TIME)
            except ValueError:
                raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, f"schedule.{name}") from None
        elif times:  # DS needs both
            raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, f"schedule.{name}")
    if len(parsed) == 2:
        if parsed["startTime"] == parsed["endTime"]:
            raise DsError(Status.SCHEDULE_START_TIME_END_TIME_SAME)
        if parsed["startTime"] > parsed["endTime"]:
            raise DsError(Status.START_TIME_BIGGER_THAN_END_TIME_ERROR)
    crontab = str(doc.get("crontab") or "").strip()
    try:
        parse(crontab)
    except QuartzError:
        raise DsError(bad_cron, crontab) from None
    zone = str(doc.get("timezoneId") or "")
    if zone:
        try:
            ZoneInfo(zone)
        except (KeyError, ValueError):
            raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "schedule.timezoneId") from None
    return {"crontab": crontab, "startTime": start, "endTime": end, "timezoneId": zone or None}


def _fields(p: Params, failure_default: FailureStrategy, bad_cron: Status) -> dict[str, Any]:
    out: dict[str, Any] = _schedule_json(p, bad_cron)
    out |= {
        "warningType": p.enum("warningType", WarningType, WarningType.NONE),
        "warningGroupId": p.integer("warningGroupId", 0),
        "failureStrategy": p.enum("failureStrategy", FailureStrategy, failure_default),
        "workerGroup": p.text("workerGroup", "default") or "default",
        "tenantCode": p.text("tenantCode", "default") or "default",
        "environmentCode": p.integer("environmentCode", -1),
        "processInstancePriority": p.enum("processInstancePriority", Priority, Priority.MEDIUM,
                                          alias=("workflowInstancePriority",)),
    }
    return {k: v for k, v in out.items() if v is not None}


def _porpoise_error(e: DomainError, status: Status) -> DsError:
    detail = e.detail or e.title
    if e.problems:
        detail = "; ".join(f"{pr.pointer}: {pr.message}" for pr in e.problems)
    return DsError(status, msg=f"{status.msg()}: {detail}")


async def _record(pp: Porpoise, project_code: int, schedule_id: int) -> ScheduleRecord:
    rec = await run_in_threadpool(pp.schedules.get, schedule_id)
    if rec is None or (project_code and rec.project_code != project_code):  # the route's project: deps.py
        raise DsError(Status.SCHEDULE_NOT_EXISTS, schedule_id)
    return rec


def _view(pp: Porpoise, rec: ScheduleRecord) -> dict[str, Any]:
    return views.schedule(pp.schedule_view(rec), pp.zone)


@router.post(BASE, openapi_extra=ds_error(Status.CREATE_SCHEDULE_ERROR))
async def create(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    code = p.req_int("processDefinitionCode", alias=("workflowDefinitionCode",))
    d = await pp.definition(code)
    if d is None or d.project_code != project_code:
        raise DsError(Status.PROCESS_DEFINE_NOT_EXIST, code)
    meta = await run_in_threadpool(pp.ids.definition_meta, code)
    if meta.release_state != ONLINE:  # DS checkProcessDefinitionValid
        raise DsError(Status.PROCESS_DEFINE_NOT_RELEASE, code, d.version)
    existing = await run_in_threadpool(pp.schedules.by_definition, code)
    if existing is not None:
        raise DsError(Status.SCHEDULE_ALREADY_EXISTS, code, existing.id)
    fields = _fields(p, FailureStrategy.CONTINUE, Status.REQUEST_PARAMS_NOT_VALID_ERROR)
    fields |= {"processDefinitionCode": code, "releaseState": "OFFLINE"}
    try:
        v = await pp.create_schedule(fields)
    except DomainError as e:
        raise _porpoise_error(e, Status.CREATE_SCHEDULE_ERROR) from e
    return ok(views.schedule(v, pp.zone), 201)


@router.get(BASE)
@paged
async def list_paging(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    page_no, page_size = paging(p)
    code = p.integer("processDefinitionCode", 0, alias=("workflowDefinitionCode",)) or None
    search = (p.text("searchVal") or "").strip().lower()
    rows = await run_in_threadpool(lambda: pp.schedules.list(definition_code=code, project_code=project_code,
                                                             limit=1_000_000))
    rows = [r for r in rows if search in r.definition_name.lower()]
    chunk = rows[(page_no - 1) * page_size: page_no * page_size]
    return ok(page([_view(pp, r) for r in chunk], len(rows), page_no, page_size))


@router.post(BASE + "/list")
async def list_all(projectCode: str, pp: PorpoiseDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    rows = await run_in_threadpool(lambda: pp.schedules.list(project_code=project_code, limit=1_000_000))
    return ok([_view(pp, r) for r in rows])


@router.post(BASE + "/preview", openapi_extra=ds_error(Status.PREVIEW_SCHEDULE_ERROR))
async def preview(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    path_int(projectCode, "projectCode")
    s = _schedule_json(p, Status.PARSE_TO_CRON_EXPRESSION_ERROR, times=False)
    zone = s.get("timezoneId") or pp.zone
    try:
        v = await pp.preview_schedule(s["crontab"], zone, s.get("startTime"), s.get("endTime"), 5)
    except DomainError as e:
        raise _porpoise_error(e, Status.PREVIEW_SCHEDULE_ERROR) from e
    times = [datetime.fromisoformat(t).astimezone(ZoneInfo(zone)).strftime(DS_TIME) for t in v["fireTimes"]]
    return ok(times, 201)


@router.put(BASE + "/{id}", openapi_extra=ds_error(Status.UPDATE_SCHEDULE_ERROR))
async def update(projectCode: str, id: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    rec = await _record(pp, path_int(projectCode, "projectCode"), path_int(id, "id"))
    if rec.online:
        raise DsError(Status.SCHEDULE_CRON_ONLINE_FORBID_UPDATE)
    try:
        v = await pp.update_schedule(rec.id, _fields(p, FailureStrategy.END, Status.SCHEDULE_CRON_CHECK_FAILED))
    except DomainError as e:
        raise _porpoise_error(e, Status.UPDATE_SCHEDULE_ERROR) from e
    return ok(views.schedule(v, pp.zone))


@router.put(BASE + "/update/{code}", openapi_extra=ds_error(Status.UPDATE_SCHEDULE_ERROR))
async def update_by_definition(projectCode: str, code: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    rec = await run_in_threadpool(pp.schedules.by_definition, path_int(code, "code"))
    if rec is None:
        raise DsError(Status.SCHEDULE_NOT_EXISTS, code)
    return await update(projectCode, str(rec.id), pp, p)


async def _release(pp: Porpoise, project_code: int, schedule_id: int, online: bool) -> Response:
    rec = await _record(pp, project_code, schedule_id)
    if rec.online == online:  # DS 3.2: already so is a success
        return ok(None)
    if online:
        d = await pp.definition(rec.definition_code)
        meta = await run_in_threadpool(pp.ids.definition_meta, rec.definition_code)
        if d is None or meta.release_state != ONLINE:  # DS: the definition must be online first
            raise DsError(Status.PROCESS_DEFINE_NOT_RELEASE, rec.definition_code, d.version if d else "?")
    try:
        await pp.release_schedule(rec.id, online)
    except DomainError as e:
        status = Status.PUBLISH_SCHEDULE_ONLINE_ERROR if online else Status.OFFLINE_SCHEDULE_ERROR
        raise _porpoise_error(e, status) from e
    return ok(None)


@router.post(BASE + "/{id}/online", openapi_extra=ds_error(Status.PUBLISH_SCHEDULE_ONLINE_ERROR))
async def online(projectCode: str, id: str, pp: PorpoiseDep) -> Response:
    return await _release(pp, path_int(projectCode, "projectCode"), path_int(id, "id"), True)


@router.post(BASE + "/{id}/offline", openapi_extra=ds_error(Status.OFFLINE_SCHEDULE_ERROR))
async def offline(projectCode: str, id: str, pp: PorpoiseDep) -> Response:
    return await _release(pp, path_int(projectCode, "projectCode"), path_int(id, "id"), False)


@router.delete(BASE + "/{id}")
async def delete(projectCode: str, id: str, pp: PorpoiseDep) -> Response:
    rec = await _record(pp, path_int(projectCode, "projectCode"), path_int(id, "id"))
    if rec.online:
        raise DsError(Status.SCHEDULE_STATE_ONLINE, rec.id)
    await pp.delete_schedule(rec.id)
    return ok(None)
