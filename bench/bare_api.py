"""The floor of any Python HTTP API in front of Temporal, for bench_starts.

A bare ASGI app: no framework, no token, no database, no run input. Each POST starts the raw diamond
with what Porpoise starts every run with (``start_like_porpoise``), and answers 201 with the ids.
bench/stack.py runs it under uvicorn exactly as it runs the Porpoise API (one process, httptools
and uvloop). So in one bench_starts invocation:

- raw -> raw_attributes is what Porpoise's search attributes, summary and priority cost the server;
- raw_attributes -> bare_api is what an HTTP hop in Python costs on the same two cores;
- bare_api -> api is Porpoise's own work per start (token check, definition load and checks, the
  run's input through the payload codec, FastAPI).

    uvicorn bench.bare_api:app   # PORPOISE_TEMPORAL_ADDRESS says where Temporal is
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import Priority

from bench.baseline import TASK_QUEUE, BenchDiamond
from core import search_attributes as sa
from core.contracts import WORKFLOW_TASK_TIMEOUT, instance_summary
from model.definition import Priority as DsPriority

Message = dict[str, Any]


async def start_like_porpoise(client: Client, saved: dict[str, Any]) -> WorkflowHandle[Any, Any]:
    """Start the raw diamond with the search attributes, summary, priority and workflow-task timeout
    that services/runs.py: launch gives a default start of the definition ``saved`` (its summary)."""
    return await client.start_workflow(
        BenchDiamond.run, id=f"raw-{uuid.uuid4().hex}", task_queue=TASK_QUEUE,
        search_attributes=sa.of_instance(saved["projectCode"], saved["code"], saved["name"], saved["version"]),
        static_summary=instance_summary(saved["name"], saved["version"]),
        priority=Priority(priority_key=DsPriority.MEDIUM.rank + 1), task_timeout=WORKFLOW_TASK_TIMEOUT)


class BareApi:
    """POST a definition summary (``projectCode``, ``code``, ``name``, ``version``): one start."""

    def __init__(self) -> None:
        self.client: Client | None = None

    async def __call__(self, scope: Message, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        assert self.client is not None, "lifespan startup connects the client"
        handle = await start_like_porpoise(self.client, json.loads(body))
        out = json.dumps({"workflowId": handle.id, "runId": handle.result_run_id}).encode()
        await send({"type": "http.response.start", "status": 201,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
        await send({"type": "http.response.body", "body": out})

    async def _lifespan(self, receive: Callable[[], Awaitable[Message]],
                        send: Callable[[Message], Awaitable[None]]) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.client = await Client.connect(os.environ["PORPOISE_TEMPORAL_ADDRESS"])
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


app = BareApi()
