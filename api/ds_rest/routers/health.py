"""Spring actuator health (no token, as DS) and what a client reads to learn the server version."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse

from ..common import ds_router
from ..envelope import answers, ok

router = ds_router(token=False)

DS_API_VERSION = "3.2.2"  # the DS REST API these routes follow (3.3 path names accepted as aliases)


@router.get("/actuator/health")
@answers(dict[str, str])
async def health() -> Response:
    return JSONResponse({"status": "UP"})


@router.get("/actuator/info")
@answers(dict[str, Any])
async def info() -> Response:
    return JSONResponse({"app": {"name": "porpoise", "dolphinscheduler": DS_API_VERSION}})


@router.get("/version")
async def version() -> Response:
    """Not a DS route (DS exposes no version over REST): Porpoise's answer, in DS's envelope."""
    return ok({"version": DS_API_VERSION, "server": "porpoise"})
