"""Namespace and search-attribute registration through the operator API (core/registration.py), on
whichever Temporal the session targets (dev server or the real server of deploy/temporal/)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core import search_attributes as sa
from core.registration import RegistrationError, ensure_namespace, ensure_registered, remove_namespace


async def _custom(client: Client, namespace: str) -> dict[str, int]:
    resp = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    return dict(resp.custom_attributes)


async def test_a_fresh_namespace_is_created_with_every_attribute_once(client: Client) -> None:
    ns = f"porpoise-reg-{uuid.uuid4().hex[:8]}"
    try:
        first = await ensure_registered(client, ns, timeout=60)
        assert first.namespace_created
        assert sorted(first.attributes_added) == sorted(k.name for k in sa.ALL)
        have = await _custom(client, ns)
        assert {k.name for k in sa.ALL} <= have.keys()
        assert have["DsProjectCode"] == IndexedValueType.INDEXED_VALUE_TYPE_INT
        again = await ensure_registered(client, ns)  # idempotent: a second worker starting
        assert not again.namespace_created and again.attributes_added == []
    finally:
        await remove_namespace(client, ns)


async def test_an_attribute_of_the_wrong_type_is_refused_with_its_name(client: Client) -> None:
    ns = f"porpoise-reg-{uuid.uuid4().hex[:8]}"
    assert await ensure_namespace(client, ns, timedelta(days=1))
    # Someone registered DsState as an Int there before Porpoise came (retried while the new
    # namespace reaches the frontend's namespace cache).
    deadline = time.monotonic() + 60
    while True:
        try:
            await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
                namespace=ns, search_attributes={"DsState": IndexedValueType.INDEXED_VALUE_TYPE_INT}))
            break
        except RPCError as e:
            if e.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
    try:
        with pytest.raises(RegistrationError, match="DsState is INDEXED_VALUE_TYPE_INT, Porpoise needs KEYWORD"):
            await ensure_registered(client, ns)
    finally:
        await remove_namespace(client, ns)
