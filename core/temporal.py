"""Connecting to Temporal the one way every Porpoise process does (pydantic payloads, encrypted by
the payload codec of core/codec.py, failure messages and stack traces too).

A Temporal restart must be invisible to runs (docs/reliability.md). What rides it out:

* Client calls (start, signal, query, result, the worker's DEPENDENT and sub-process look-ups) retry
  for ``temporal_retry_seconds`` (minutes) with no cap on the number of retries, and a worker or CLI
  waits that long for its first connection too.
* Task polls are retried forever by sdk-core, whatever this says.
* A worker's own calls (activity completions, heartbeats, workflow-task completions) are NOT
  configurable: sdk-core's ``init_worker`` overwrites the connection's retry options with its
  default (10 retries within 10 s) and then drops the call ("Network error while completing
  activity"). A dropped workflow-task completion is retried by the server after the task timeout. A
  dropped activity completion leaves the attempt "started" until its heartbeat timeout; the workflow
  then re-schedules it as a lost worker, and the next attempt takes the result from the durable
  process record (activities/process.py) instead of running the task again.
* The API connects lazily with a short window and answers 503 with Retry-After while Temporal is
  away (api/problems.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.exceptions import ApplicationError
from temporalio.service import RetryConfig, TLSConfig

from .codec import codec_for
from .contracts import InstanceStatus
from .settings import Settings
from .worker_groups import host_queue

log = logging.getLogger("porpoise.temporal")
MAX_BACKOFF_MILLIS = 2000  # between retries of one call: a restarted server is noticed within 2 s


def data_converter(settings: Settings) -> DataConverter:
    """Pydantic payloads, encrypted by the payload codec (core/codec.py) before they reach Temporal.

    Failures too: a failure's message and stack trace (which can quote command output, SQL, a secret)
    travel in its ``encoded_attributes`` payload, which the codec encrypts; the plaintext message is
    Temporal's placeholder "Encoded failure". Every Porpoise client and worker (workers take their
    client's converter) decodes them back, so statuses, events and alerts read the real messages, and
    the codec server endpoints decrypt them for the Temporal UI and CLI. Failures written before this
    (plaintext message, no encoded attributes) still read as they are."""
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec_for(settings),
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)


def retry_config(seconds: float) -> RetryConfig:
    """Retry a failed call for ``seconds`` in all (unlimited retries within that window)."""
    return RetryConfig(initial_interval_millis=100, multiplier=1.5, max_interval_millis=MAX_BACKOFF_MILLIS,
                       max_elapsed_time_millis=int(seconds * 1000), max_retries=0)


async def connect(settings: Settings, *, interactive: bool = False) -> Client:
    """The client of a worker or CLI (retries for ``temporal_retry_seconds``, waits that long for the
    server to come up), or with ``interactive`` the API's (lazy: it starts without Temporal, retries
    ``api_temporal_retry_seconds``, and the caller gets a 503 after that)."""
    if interactive:
        return await Client.connect(
            settings.temporal_address, namespace=settings.temporal_namespace,
            data_converter=data_converter(settings), lazy=True,
            tls=tls_config(settings), api_key=api_key(settings),
            retry_config=retry_config(settings.api_temporal_retry_seconds))
    deadline = time.monotonic() + settings.temporal_retry_seconds
    delay = 0.2
    while True:
        try:
            return await Client.connect(
                settings.temporal_address, namespace=settings.temporal_namespace,
                data_converter=data_converter(settings), identity=worker_identity(),
                tls=tls_config(settings), api_key=api_key(settings),
                retry_config=retry_config(settings.temporal_retry_seconds))
        except RuntimeError as e:  # "Failed client connect": nothing listens (yet)
            if time.monotonic() + delay > deadline:
                raise
            log.warning("Temporal at %s unreachable (%s); retrying", settings.temporal_address, e)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_MILLIS / 1000)


def host_task_queue(task_queue: str) -> str:
    """This host's own task queue next to the shared ``task_queue`` (samples-python
    ``worker_specific_task_queues``): every worker process on the host polls it, so the next attempt of
    a task whose worker died comes back to the host that holds its process (activities/process.py)."""
    return host_queue(task_queue, socket.gethostname())


def worker_identity() -> str:
    """``pid@host``, the identity a worker gives Temporal (the SDK's default, said once here). The
    server records it in each activity's started event, and that is how the workflow learns on which
    host an attempt that never heartbeat was lost (activities/lost_attempts.py): keep the host last."""
    return f"{os.getpid()}@{socket.gethostname()}"


def identity_host(identity: str) -> str:
    """The host of a :func:`worker_identity` ('' when it names none)."""
    return identity.rpartition("@")[2] if "@" in identity else ""


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS towards an external Temporal: False (plaintext, the dev server), True (system roots), or
    the CA / client certificate (mTLS) / server name the settings give."""
    if not settings.temporal_uses_tls:
        return False
    if not (settings.temporal_tls_ca_file or settings.temporal_tls_cert_file or settings.temporal_tls_server_name):
        return True
    return TLSConfig(
        server_root_ca_cert=settings.temporal_tls_ca_file.read_bytes() if settings.temporal_tls_ca_file else None,
        client_cert=settings.temporal_tls_cert_file.read_bytes() if settings.temporal_tls_cert_file else None,
        client_private_key=settings.temporal_tls_key_file.read_bytes() if settings.temporal_tls_key_file else None,
        domain=settings.temporal_tls_server_name or None,
    )


def api_key(settings: Settings) -> str | None:
    return settings.temporal_api_key.get_secret_value() or None


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
    if status == WorkflowExecutionStatus.TERMINATED:  # by Porpoise, as a last resort (operations_deadline)
        from core.operations_deadline import terminated_status

        return await terminated_status(client, instance_id, run_id)
    return None
