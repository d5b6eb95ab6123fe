"""The FastAPI application: one router per resource, settings and store injected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from core.heap import freeze_startup_heap
from core.settings import Settings, get_settings
from services.context import Services
from services.schemas import Health
from storage.security import SecurityStore

from . import docs, ds_rest, problems
from .auth import authenticate
from .limits import BodyLimits, int64_params
from .routers import access, alerts, codec, complements, datasources, definitions, runs, schedules, task_groups
from .security import CrossSiteGuard


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        freeze_startup_heap()  # the app is built: full collections no longer walk it
        yield
        app.state.porpoise.dispose()
        app.state.security.dispose()

    app = FastAPI(title="Porpoise", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="DolphinScheduler workflow definitions, run durably on Temporal.",
                  # a token on every route but health and the docs (api/auth.py); 64-bit ids (api/limits.py)
                  dependencies=[Depends(authenticate), Depends(int64_params)])
    app.add_middleware(BodyLimits, settings=settings)  # size and depth limits on every body
    docs.install(app)  # Swagger UI and ReDoc from local assets; / redirects to /docs
    app.state.porpoise = Services(settings, interactive=True)  # 503 + Retry-After while Temporal is away
    app.state.security = SecurityStore(app.state.porpoise.store.engine)
    problems.install(app)
    app.add_middleware(CrossSiteGuard, settings=settings)  # Host allow-list, JSON bodies, CORS (api/security.py)
    app.include_router(definitions.router)
    app.include_router(runs.router)
    app.include_router(task_groups.router)
    app.include_router(schedules.router)
    app.include_router(complements.router)
    app.include_router(codec.router)
    app.include_router(access.router)
    app.include_router(ds_rest.router)  # DS's REST API under /dolphinscheduler (docs/ds-rest.md)
    app.include_router(codec.ui_router)  # its own path secret, for the Temporal UI (no token)
    datasources.install(app, settings)  # refuses to start without a secret key outside dev mode
    alerts.install(app, settings)  # channel secrets use the same key

    @app.get("/health", tags=["health"])
    async def health() -> Health:
        return Health(status="ok", temporal_ui=settings.temporal_ui_url)

    return app
