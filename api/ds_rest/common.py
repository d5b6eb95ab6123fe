"""Shared by the DS routers: the router factory and the project check every project route makes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from storage.ds_ids import Project

from .deps import ds_principal
from .envelope import DsError, DsRoute
from .porpoise import Porpoise, porpoise
from .status import Status

PorpoiseDep = Annotated[Porpoise, Depends(porpoise)]


def ds_router(*, token: bool = True) -> APIRouter:
    """A router whose routes answer DS envelopes, behind DS's ``token`` header unless told."""
    deps = [Depends(ds_principal)] if token else []
    return APIRouter(route_class=DsRoute, dependencies=deps)


async def check_project(pp: Porpoise, code: int) -> Project | None:
    """The project, or None for an implicit one (definitions carry its code but it was never created
    here, e.g. imported through ``/definitions``); PROJECT_NOT_FOUND when neither."""
    p = await run_in_threadpool(pp.ids.project, code)
    if p is not None:
        return p
    if await pp.definitions(code):
        return None
    raise DsError(Status.PROJECT_NOT_FOUND, code)
