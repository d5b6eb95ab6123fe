"""The FastAPI application: one router per resource, settings and store injected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from core.settings import Settings, get_settings
from services.context import Services

from . import docs, ds_rest, problems
from .limits import BodyLimits, int64_params
from .routers import alerts, complements, datasources, definitions, runs, schedules, task_groups


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.porpoise.dispose()

    app = FastAPI(title="Porpoise", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="DolphinScheduler workflow definitions, run durably on Temporal.",
                  dependencies=[Depends(int64_params)])
    app.add_middleware(BodyLimits, settings=settings)  # size and depth limits on every body
    docs.install(app)  # Swagger UI and ReDoc from local assets; / redirects to /docs
    app.state.porpoise = Services(settings, interactive=True)  # 503 + Retry-After while Temporal is away
    problems.install(app)
    app.include_router(definitions.router)
    app.include_router(runs.router)
    app.include_router(task_groups.router)
    app.include_router(schedules.router)
    app.include_router(complements.router)
    app.include_router(ds_rest.router)  # DS's REST API under /dolphinscheduler (docs/ds-rest.md)
    datasources.install(app, settings)  # refuses to start without a secret key outside dev mode
    alerts.install(app, settings)  # channel secrets use the same key

    @app.get("/health", tags=["health"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "temporalUi": settings.temporal_ui_url}

    return app
