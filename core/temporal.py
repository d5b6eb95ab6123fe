"""Connecting to Temporal the one way every Porpoise process does (pydantic payloads)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from .settings import Settings


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


def ui_run_url(settings: Settings, workflow_id: str, run_id: str | None = None) -> str:
    base = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"
    return f"{base}/{run_id}/history" if run_id else base
