"""DolphinScheduler's REST API (3.2, with 3.3's ``workflow-*`` aliases) under ``/dolphinscheduler``:
DS clients and scripts work against Porpoise with a change of base URL and token. See docs/ds-rest.md."""

from __future__ import annotations

from fastapi import APIRouter

from .routers import (
    access_tokens,
    alert_groups,
    datasources,
    definitions,
    executors,
    health,
    instances,
    login,
    logs,
    projects,
    schedules,
    task_groups,
    task_instances,
)

PREFIX = "/dolphinscheduler"


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["dolphinscheduler"])
    for module in (health, projects, definitions, executors, instances, task_instances, logs, schedules,
                   datasources, task_groups, alert_groups, login, access_tokens):
        router.include_router(module.router)
    return router


router = build_router()
