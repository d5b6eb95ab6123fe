"""Complement data (backfill, reference §4.13): start one, follow it, stop it (:mod:`services.complements`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from model.states import WorkflowState
from services import complements as service
from services.complements import ComplementStatus, StartComplement
from services.definitions import load
from services.schemas import ComplementCreated, ComplementStopped, ComplementSummary, ComplementView

from ..auth import PrincipalDep, project_filter, require_project
from ..deps import ServicesDep

router = APIRouter(tags=["complements"])


@router.post("/definitions/{code}/complements", status_code=201, response_model=ComplementCreated,
             summary="Complement data (backfill): run the definition once per business date")
async def start_complement(code: int, body: StartComplement, ctx: ServicesDep,
                           principal: PrincipalDep) -> dict[str, Any]:
    require_project(principal, (await load(ctx, code, body.version)).project_code)
    return await service.start(ctx, code, body, principal=principal)


async def check(ctx: ServicesDep, principal: PrincipalDep, complement_id: str) -> tuple[ComplementStatus, str]:
    """The complement's status, after a 403 unless the caller may use its project (404 if unknown)."""
    st, tstatus = await service.complement_status(await ctx.client(), complement_id)
    require_project(principal, st.project_code)
    return st, tstatus


@router.get("/complements/{complement_id}", response_model=ComplementView,
            summary="A complement: every date's instance and state")
async def get_complement(complement_id: str, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    st, tstatus = await check(ctx, principal, complement_id)
    return service.status_view(st, tstatus, ctx.settings)


@router.post("/complements/{complement_id}/stop", response_model=ComplementStopped,
             summary="Stop: running dates are stopped (STOP), no new date starts; the complement ends STOP")
async def stop_complement(complement_id: str, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    await check(ctx, principal, complement_id)
    return await service.stop(ctx, complement_id)


@router.get("/complements", response_model=list[ComplementSummary], summary="List complements (Temporal visibility)")
async def list_complements(ctx: ServicesDep, principal: PrincipalDep,
                           definition_code: int | None = Query(None, alias="definitionCode"),
                           state: WorkflowState | None = Query(None),
                           limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
    return await service.list_complements(ctx, definition_code, state, limit, projects=project_filter(principal))
