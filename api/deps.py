"""Dependencies injected into routes: settings, the definition store, the Temporal client."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request
from temporalio.client import Client

from activities.store import DefinitionStore
from core.settings import Settings
from core.temporal import connect

from .problems import ProblemError


class AppState:
    """What one API process holds: built once in the lifespan, shared by every request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = DefinitionStore(settings.resolved_database_url)
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await connect(self.settings, interactive=True)
                except Exception as e:  # the server being down is not the user's fault, nor a 500
                    raise ProblemError(503, "Temporal is unavailable",
                                       f"cannot reach Temporal at {self.settings.temporal_address}: {e}") from e
            return self._client


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.porpoise
    return state


def get_settings(state: Annotated[AppState, Depends(app_state)]) -> Settings:
    return state.settings


def get_store(state: Annotated[AppState, Depends(app_state)]) -> DefinitionStore:
    return state.store


async def get_client(state: Annotated[AppState, Depends(app_state)]) -> Client:
    return await state.client()


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[DefinitionStore, Depends(get_store)]
ClientDep = Annotated[Client, Depends(get_client)]
