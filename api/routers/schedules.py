"""DS schedules (reference §1.1, §4.18) as Temporal Schedules: create, update, online/offline, delete,
list, preview, trigger, and the runs a schedule started. The work is :mod:`services.schedules`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from services import schedules as service
from services.schedules import PreviewBody, ScheduleBody
from services.schemas import ScheduleDeleted, SchedulePreview, ScheduleRun, ScheduleTriggered, ScheduleView
from storage.schedules import OFFLINE, ONLINE

from ..auth import PrincipalDep, project_filter, require_project
from ..deps import ServicesDep

router = APIRouter(tags=["schedules"])


async def check(ctx: ServicesDep, principal: PrincipalDep, schedule_id: int) -> None:
    """403 unless the caller may use the schedule's project (an unknown schedule: the service's 404)."""
    rec = await run_in_threadpool(ctx.schedules.get, schedule_id)
    if rec is not None:
        require_project(principal, rec.project_code)


@router.post("/schedules", status_code=201, response_model=ScheduleView,
             summary="Create a definition's schedule (offline unless releaseState)")
async def create_schedule(body: ScheduleBody, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    if body.definition_code is not None and (
            definition := await run_in_threadpool(ctx.store.get, body.definition_code, None)) is not None:
        require_project(principal, definition.project_code)
    return await service.create(ctx, body, principal=principal)


@router.get("/schedules", response_model=list[ScheduleView], summary="List schedules")
async def list_schedules(ctx: ServicesDep, principal: PrincipalDep,
                         definition_code: int | None = Query(None, alias="definitionCode"),
                         project_code: int | None = Query(None, alias="projectCode"),
                         release_state: str | None = Query(None, alias="releaseState", pattern="^(ONLINE|OFFLINE)$"),
                         limit: int = Query(100, ge=1, le=10_000),
                         offset: int = Query(0, ge=0)) -> list[dict[str, Any]]:
    return await service.list_schedules(ctx, definition_code, project_code, release_state, limit, offset,
                                        projects=project_filter(principal, project_code))


@router.post("/schedules/preview", response_model=SchedulePreview,
             summary="The next fire times of a crontab (DS preview)")
async def preview(body: PreviewBody) -> dict[str, Any]:
    return await service.preview(body)


@router.get("/schedules/{schedule_id}", response_model=ScheduleView,
            summary="A schedule, with its next fire times and recent fires")
async def get_schedule(schedule_id: int, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    await check(ctx, principal, schedule_id)
    return await service.get(ctx, schedule_id)


@router.get("/definitions/{code}/schedule", response_model=ScheduleView, summary="A definition's schedule")
async def definition_schedule(code: int, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    if (rec := await run_in_threadpool(ctx.schedules.by_definition, code)) is not None:
        require_project(principal, rec.project_code)
    return await service.of_definition(ctx, code)


@router.put("/schedules/{schedule_id}", response_model=ScheduleView,
            summary="Update a schedule; what is not given stays")
async def update_schedule(schedule_id: int, body: ScheduleBody, ctx: ServicesDep,
                          principal: PrincipalDep) -> dict[str, Any]:
    await check(ctx, principal, schedule_id)
    return await service.update(ctx, schedule_id, body, principal=principal)


@router.post("/schedules/{schedule_id}/online", response_model=ScheduleView,
             summary="Online: the schedule fires (Temporal unpause)")
async def online(schedule_id: int, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    await check(ctx, principal, schedule_id)
    return await service.release(ctx, schedule_id, ONLINE, principal=principal)


@router.post("/schedules/{schedule_id}/offline", response_model=ScheduleView,
             summary="Offline: the schedule stops firing (Temporal pause)")
async def offline(schedule_id: int, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    await check(ctx, principal, schedule_id)
    return await service.release(ctx, schedule_id, OFFLINE)


@router.delete("/schedules/{schedule_id}", response_model=ScheduleDeleted,
               summary="Delete an offline schedule")
async def delete_schedule(schedule_id: int, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    await check(ctx, principal, schedule_id)
    return await service.delete(ctx, schedule_id)


@router.post("/schedules/{schedule_id}/trigger", status_code=202, response_model=ScheduleTriggered,
             summary="Fire now, once (scheduleTime = now), even when offline")
async def trigger(schedule_id: int, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    await check(ctx, principal, schedule_id)
    return await service.trigger(ctx, schedule_id, principal=principal)


@router.get("/schedules/{schedule_id}/runs", response_model=list[ScheduleRun],
            summary="The workflow instances a schedule started (newest first)")
async def schedule_runs(schedule_id: int, ctx: ServicesDep, principal: PrincipalDep,
                        limit: int = Query(100, ge=1, le=10_000)) -> list[dict[str, Any]]:
    await check(ctx, principal, schedule_id)
    return await service.runs(ctx, schedule_id, limit)
