"""Registering Porpoise's namespace and search attributes on a real Temporal server.

The dev server gets them from its command line (``--namespace``, ``--search-attribute``); a real
server has only what its operators created. ``ensure_registered`` brings the namespace and every
attribute of :data:`core.search_attributes.ALL` into place through the operator API, and is
idempotent: what exists with the right type is left alone, so every worker may call it at start.
When the caller is not allowed (an authorizer, Temporal Cloud's API keys), it fails with what an
operator must create by hand instead of a bare gRPC error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    DeleteNamespaceRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from . import search_attributes as sa

_CLI_TYPES = {"INT": "Int", "KEYWORD": "Keyword", "DATETIME": "Datetime", "TEXT": "Text", "BOOL": "Bool",
              "FLOAT": "Double", "KEYWORD_LIST": "KeywordList"}
_DENIED = (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.UNIMPLEMENTED)


class RegistrationError(RuntimeError):
    """The namespace or a search attribute is missing and could not be created; says what to create."""


@dataclass
class Registration:
    namespace_created: bool = False
    attributes_added: list[str] = field(default_factory=list)


def _wire_type(key: SearchAttributeKey[Any]) -> int:
    return int(IndexedValueType.Value(f"INDEXED_VALUE_TYPE_{key.indexed_value_type.name}"))


def _manual_commands(namespace: str, keys: Sequence[SearchAttributeKey[Any]]) -> str:
    lines = [f"temporal operator search-attribute create --namespace {namespace} --name {k.name} "
             f"--type {_CLI_TYPES[k.indexed_value_type.name]}" for k in keys]
    return "\n  ".join(lines)


async def ensure_namespace(client: Client, namespace: str, retention: timedelta) -> bool:
    """Create ``namespace`` unless it exists; True when this call created it."""
    svc = client.workflow_service
    try:
        await svc.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
        return False
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:
            raise
    period = Duration()
    period.FromTimedelta(retention)
    try:
        await svc.register_namespace(RegisterNamespaceRequest(namespace=namespace,
                                                              workflow_execution_retention_period=period))
    except RPCError as e:
        if e.status == RPCStatusCode.ALREADY_EXISTS:
            return False  # another worker won the race
        if e.status in _DENIED:
            raise RegistrationError(
                f"namespace {namespace!r} does not exist and this client may not create it ({e.message}); "
                f"ask the Temporal operator to run: temporal operator namespace create --namespace {namespace}"
            ) from e
        raise
    return True


async def ensure_search_attributes(client: Client, namespace: str,
                                   keys: Sequence[SearchAttributeKey[Any]] = sa.ALL) -> list[str]:
    """Add the attributes of ``keys`` that ``namespace`` lacks; the names added."""
    ops = client.operator_service
    have = (await ops.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))).custom_attributes
    wrong = [f"{k.name} is {IndexedValueType.Name(have[k.name])}, Porpoise needs {k.indexed_value_type.name}"
             for k in keys if k.name in have and have[k.name] != _wire_type(k)]
    if wrong:
        raise RegistrationError(f"search attributes on namespace {namespace!r} have the wrong type: "
                                + "; ".join(wrong) + " (a search attribute's type cannot change: rename or "
                                "use another namespace)")
    missing = [k for k in keys if k.name not in have]
    if not missing:
        return []
    try:
        await ops.add_search_attributes(AddSearchAttributesRequest(
            namespace=namespace, search_attributes={k.name: _wire_type(k) for k in missing}))  # type: ignore[misc]
    except RPCError as e:
        if e.status == RPCStatusCode.ALREADY_EXISTS:
            return []
        if e.status in _DENIED or e.status == RPCStatusCode.INVALID_ARGUMENT:
            raise RegistrationError(
                f"cannot add search attributes {[k.name for k in missing]} to namespace {namespace!r}: "
                f"{e.message}. An operator can create them with:\n  {_manual_commands(namespace, missing)}"
            ) from e
        raise
    return [k.name for k in missing]


async def ensure_registered(client: Client, namespace: str | None = None, *,
                            retention: timedelta = timedelta(days=3), timeout: float = 60.0) -> Registration:
    """The namespace exists and carries Porpoise's search attributes (created where missing)."""
    ns = namespace or client.namespace
    result = Registration(namespace_created=await ensure_namespace(client, ns, retention))
    # A namespace just created is served once each frontend's namespace cache has refreshed (~10 s).
    deadline = time.monotonic() + timeout
    while True:
        try:
            result.attributes_added = await ensure_search_attributes(client, ns)
            return result
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def remove_namespace(client: Client, namespace: str | None = None) -> None:
    """Delete a namespace and, in the background on the server, its workflows (test sessions)."""
    await client.operator_service.delete_namespace(DeleteNamespaceRequest(namespace=namespace or client.namespace))
