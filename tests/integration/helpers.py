"""Submit, start and wait through the real API."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

FINISHED = {"SUCCESS", "FAILURE", "STOP", "PAUSE"}


async def submit(api: httpx.AsyncClient, doc: Any) -> dict[str, Any]:
    r = await api.post("/definitions", json=doc)
    assert r.status_code == 201, r.text
    return r.json()[0]


async def start(api: httpx.AsyncClient, code: int, **body: Any) -> str:
    r = await api.post(f"/definitions/{code}/runs", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["instanceId"])


async def wait(api: httpx.AsyncClient, instance_id: str, timeout: float = 60,
               until: Any = None) -> dict[str, Any]:
    """Poll the run until it ends (or `until(status)` holds); return the status."""
    deadline = time.monotonic() + timeout
    while True:
        r = await api.get(f"/runs/{instance_id}")
        if r.status_code == 503 and time.monotonic() < deadline:  # a busy worker missed a query
            await asyncio.sleep(0.5)
            continue
        assert r.status_code == 200, r.text
        status: dict[str, Any] = r.json()
        if until is not None and until(status):
            return status
        if until is None and status["state"] in FINISHED and status["temporalStatus"] != "RUNNING":
            return status
        assert time.monotonic() < deadline, f"run did not finish in {timeout}s: {status}"
        await asyncio.sleep(0.2)


async def run(api: httpx.AsyncClient, doc: Any, timeout: float = 60, **body: Any) -> dict[str, Any]:
    saved = await submit(api, doc)
    return await wait(api, await start(api, saved["code"], **body), timeout)


def nodes(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in status["nodes"]}


def states(status: dict[str, Any]) -> dict[str, str]:
    return {n["name"]: n["state"] for n in status["nodes"]}
