"""Dependencies injected into routes: the process's services context, settings, stores, client."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from temporalio.client import Client

from core.settings import Settings
from services.context import Services
from storage.definitions import DefinitionStore

AppState = Services  # what one API process holds: built once, shared by every request


def app_state(request: Request) -> Services:
    state: Services = request.app.state.porpoise
    return state


def get_settings(state: Annotated[Services, Depends(app_state)]) -> Settings:
    return state.settings


def get_store(state: Annotated[Services, Depends(app_state)]) -> DefinitionStore:
    return state.store


async def get_client(state: Annotated[Services, Depends(app_state)]) -> Client:
    return await state.client()


ServicesDep = Annotated[Services, Depends(app_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[DefinitionStore, Depends(get_store)]
ClientDep = Annotated[Client, Depends(get_client)]
