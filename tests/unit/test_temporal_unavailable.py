"""Temporal unreachable: the API starts anyway and answers 503 with Retry-After (core/temporal.py,
api/problems.py); a worker's connect waits for the server within its retry window."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from core.settings import Settings
from core.temporal import connect


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path, temporal_address=f"127.0.0.1:{closed_port()}",
                    database_url=f"sqlite:///{tmp_path / 'p.db'}", **kw)  # type: ignore[arg-type]


async def test_api_answers_503_with_retry_after_while_temporal_is_down(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path, api_temporal_retry_seconds=1))  # 127.0.0.1: an allowed Host
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as api:
        started = time.monotonic()
        r = await asyncio.wait_for(api.get("/runs/ds-1-20240101000000-abcdef12"), 30)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "5"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert time.monotonic() - started < 20  # the API's short window, not the workers' minutes


async def test_worker_connect_gives_up_only_after_its_window(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="Failed client connect"):
        await asyncio.wait_for(connect(settings(tmp_path, temporal_retry_seconds=1.5)), 30)
    assert time.monotonic() - started >= 1.0  # it kept trying for (most of) the window
