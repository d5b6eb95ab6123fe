"""DolphinScheduler's REST API (3.2, with 3.3's ``workflow-*`` aliases) under ``/dolphinscheduler``:
DS clients and scripts work against Porpoise with a change of base URL and token. See docs/ds-rest.md."""

from __future__ import annotations

from fastapi import APIRouter

from .routers import definitions, health, instances, projects, resources, schedules

PREFIX = "/dolphinscheduler"


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["dolphinscheduler"])
    for module in (health, projects, definitions, instances, schedules, resources):
        router.include_router(module.router)
    return router


router = build_router()
