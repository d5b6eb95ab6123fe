"""Workflow instances: start, list, status (every node), task logs, stop, pause, recover, rerun,
force success. The work is :mod:`services.runs`; this module is HTTP only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from activities.logs import follow_log, read_log
from model.states import WorkflowState
from services import runs as service
from services.definitions import load
from services.schemas import ForcedSuccess, RunCreated, RunOperation, RunStatus, RunSummary, StartRun

from ..auth import AccessDep, PrincipalDep, project_filter, require_datasources_of, require_project, require_run
from ..deps import ServicesDep

router = APIRouter(tags=["runs"])
MAX_WAIT_SECONDS = 60.0  # a long poll of GET /runs/{id}; under the CLI's 60 s read timeout with the status read


@router.post("/definitions/{code}/runs", status_code=201, response_model=RunCreated,
             summary="Start a workflow instance")
async def start(code: int, body: StartRun, ctx: ServicesDep, principal: PrincipalDep,
                access: AccessDep) -> dict[str, Any]:
    definition = await load(ctx, code, body.version)
    require_project(principal, definition.project_code)
    await require_datasources_of(principal, access, definition)
    return await service.start(ctx, code, body, principal=principal, definition=definition)


async def check_run(ctx: ServicesDep, principal: PrincipalDep, instance_id: str) -> None:
    """403 unless the caller may use the run's project (404 for an unknown run)."""
    await require_run(principal, await ctx.client(), instance_id)


@router.get("/runs/{instance_id}", response_model=RunStatus, summary="A workflow instance with the state of every node")
async def get_run(instance_id: str, ctx: ServicesDep, principal: PrincipalDep,
                  wait: float = Query(0, ge=0, le=MAX_WAIT_SECONDS, description=(
                      "a long poll: answer as soon as the instance ends, or after this many seconds"))
                  ) -> dict[str, Any]:
    await check_run(ctx, principal, instance_id)
    return await service.get_run(ctx, instance_id, wait)


@router.get("/runs", response_model=list[RunSummary], summary="List workflow instances (Temporal visibility)")
async def list_runs(ctx: ServicesDep, principal: PrincipalDep,
                    definition_code: int | None = Query(None, alias="definitionCode"),
                    project_code: int | None = Query(None, alias="projectCode"),
                    state: WorkflowState | None = Query(None),
                    limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
    return await service.list_runs(ctx, definition_code, project_code, state, limit,
                                   projects=project_filter(principal, project_code))


@router.post("/runs/{instance_id}/stop", response_model=RunOperation,
             summary="Stop: kill running tasks; the instance ends STOP")
async def stop(instance_id: str, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    await check_run(ctx, principal, instance_id)
    return await service.stop(ctx, instance_id)


@router.get("/runs/{instance_id}/tasks/{task_code}/log", response_class=PlainTextResponse,
            summary="A task instance's log (the last attempt unless one is named); follow=true streams it")
async def task_log(instance_id: str, task_code: int, ctx: ServicesDep, principal: PrincipalDep,
                   attempt: int | None = Query(None, ge=1),
                   offset: int = Query(0, ge=0), tail: int | None = Query(None, ge=1),
                   lines: int | None = Query(None, ge=1, description="the last N lines"),
                   follow: bool = Query(False, description="stream until the attempt ends")) -> Response:
    """The attempt's log as stored (masked when written), masked again with the task type's rules as
    served. ``offset`` (file bytes), ``tail`` (last bytes) or ``lines`` (last lines) choose where to
    start; ``X-Log-Next-Offset`` says where to continue. A tail of a task past its output cap includes
    its live tail. ``follow=true`` streams from there, complete lines at a time, until the footer is
    written or the task is over."""
    await check_run(ctx, principal, instance_id)
    target = await service.log_target(ctx, instance_id, task_code, attempt, follow)
    path, rules = target.path, target.rules
    part = await run_in_threadpool(read_log, path, offset=offset, tail=tail, lines=lines)
    headers = {"X-Log-Size": str(part.size), "X-Log-Path": str(path), "X-Log-Next-Offset": str(part.next_offset)}
    if part.live_tail:
        headers["X-Log-Live-Tail"] = str(part.live_tail)
    if not follow:
        return PlainTextResponse(rules.mask_bytes(part.data).decode("utf-8", "replace"), headers=headers)

    async def still_running() -> bool:
        return await service.still_running(ctx, instance_id, task_code, attempt, target.attempt)

    async def stream() -> Any:
        if part.data:
            yield rules.mask_bytes(part.data)
        async for chunk in follow_log(path, part.next_offset, still_running):
            yield rules.mask_bytes(chunk)

    return StreamingResponse(stream(), media_type="text/plain; charset=utf-8", headers=headers)


@router.post("/runs/{instance_id}/pause", response_model=RunOperation,
             summary="Pause: running tasks finish, nothing new starts")
async def pause(instance_id: str, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    await check_run(ctx, principal, instance_id)
    return await service.pause(ctx, instance_id)


@router.post("/runs/{instance_id}/recover", status_code=201, response_model=RunCreated,
             summary="Recover: from FAILURE re-run failed and killed tasks; from PAUSE or STOP resume")
async def recover(instance_id: str, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """DS START_FAILURE_TASK_PROCESS / RECOVER_SUSPENDED_PROCESS (§4.14): successful nodes are kept,
    failed, killed, paused and unreached ones run again, as a new Temporal run of the same instance."""
    await check_run(ctx, principal, instance_id)
    return await service.recover(ctx, instance_id)


@router.post("/runs/{instance_id}/rerun", status_code=201, response_model=RunCreated,
             summary="Rerun the whole DAG as a new run")
async def rerun(instance_id: str, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """DS REPEAT_RUNNING: the whole DAG again, same instance, runTimes + 1, linked as the next run."""
    await check_run(ctx, principal, instance_id)
    return await service.rerun(ctx, instance_id)


@router.post("/runs/{instance_id}/tasks/{task_code}/force-success", response_model=ForcedSuccess,
             summary="Force a failed task of a finished instance to success; recover continues from it")
async def force_success(instance_id: str, task_code: int, ctx: ServicesDep,
                        principal: PrincipalDep) -> dict[str, Any]:
    await check_run(ctx, principal, instance_id)
    return await service.force_success(ctx, instance_id, task_code)
