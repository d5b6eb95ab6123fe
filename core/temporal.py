"""Connecting to Temporal the one way every Porpoise process does (pydantic payloads, encrypted)."""

from __future__ import annotations

import dataclasses

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from .codec import codec_for
from .contracts import InstanceStatus
from .settings import Settings


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic payloads, encrypted by the payload codec (core/codec.py) before they reach Temporal."""
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec_for(settings))


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
    )


def ui_run_url(settings: Settings, workflow_id: str, run_id: str | None = None) -> str:
    base = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"
    return f"{base}/{run_id}/history" if run_id else base


async def final_status(client: Client, instance_id: str, status: WorkflowExecutionStatus | None,
                       run_id: str | None = None) -> InstanceStatus | None:
    """The DS status a finished instance ended with: its result, or the status its FAILURE carries
    (DsWorkflow fails with the status as the error's details). None when it has none (terminated,
    timed out, still running, or failed before it had a DAG). ``status`` and ``run_id`` come from the
    caller's ``describe()``: the run it describes is the one read, never a later one."""
    handle = client.get_workflow_handle(instance_id, run_id=run_id, result_type=InstanceStatus)
    if status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result(follow_runs=False)
    if status == WorkflowExecutionStatus.FAILED:
        try:
            await handle.result(follow_runs=False)
        except WorkflowFailureError as e:
            cause = e.cause
            if isinstance(cause, ApplicationError) and cause.details:
                return InstanceStatus.model_validate(cause.details[0])
    return None
