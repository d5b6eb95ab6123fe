"""The benches' client of the Porpoise API: the 5-task diamond they submit (a -> b, c -> d -> e, each
SHELL `true`) and the HTTP session they start its runs with.

The session is aiohttp, kept alive for every concurrent request. The client runs on the same two
cores as the stack it measures, so its own CPU counts against the figures: httpx cost 2.3-2.7 ms of
the bench's CPU per run start, aiohttp (already installed: the kubernetes client needs it) 0.5 ms, and
the raw Temporal client 0.6-1.0 ms (docs/performance.md, "Run starts through the API")."""

from __future__ import annotations

import random
from typing import Any

import aiohttp

from bench.stack import Stack

EDGES = [(None, "a"), ("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e")]


def five_task_export() -> list[dict[str, Any]]:
    # A fresh code per stack: on a shared server, earlier benches' runs must not be counted.
    base = 8_800_000_000_000 + random.randrange(10**8) * 10
    tasks = [{"code": base + i, "name": n, "version": 1, "taskType": "SHELL",
              "taskParams": {"localParams": [], "rawScript": "true", "resourceList": []}, "flag": "YES",
              "failRetryTimes": 0, "failRetryInterval": 1, "timeoutFlag": "CLOSE", "timeout": 0, "delayTime": 0}
             for i, n in enumerate("abcde", 1)]
    code = {t["name"]: t["code"] for t in tasks}
    rels = [{"preTaskCode": code[a] if a else 0, "postTaskCode": code[b]} for a, b in EDGES]
    return [{"processDefinition": {"code": base, "name": "bench-five", "projectCode": 1, "globalParams": "[]"},
             "processTaskRelationList": rels, "taskDefinitionList": tasks}]


def api_session(stack: Stack, concurrency: int, *, base_url: str | None = None) -> aiohttp.ClientSession:
    """A session on the stack's API (or ``base_url``) with its admin token and ``concurrency``
    keep-alive connections (past httpx's default of 20 idle connections, each request beyond them
    opened a new one)."""
    return aiohttp.ClientSession(base_url=base_url or stack.api_url, headers=stack.headers,
                                 timeout=aiohttp.ClientTimeout(total=120),
                                 connector=aiohttp.TCPConnector(limit=concurrency))


async def save_diamond(api: aiohttp.ClientSession) -> dict[str, Any]:
    """Submit the diamond (a fresh code each time) and return its summary."""
    async with api.post("/definitions", json=five_task_export()) as r:
        r.raise_for_status()
        saved: dict[str, Any] = (await r.json())[0]
    return saved
