"""Checks on the processes a test started and killed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

import psutil


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie not yet reaped counts as ended). A process that ends while
    it is being looked at is gone too: asking its status then raises NoSuchProcess."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def pid_beat(beats: Callable[[], Iterable[dict[str, Any]]], timeout: float = 10.0) -> dict[str, Any]:
    """The first heartbeat (among ``beats()``, read again until one appears) that names the started
    process."""
    deadline = time.monotonic() + timeout
    while (found := next((b for b in beats() if b.get("pid")), None)) is None:
        assert time.monotonic() < deadline, "no heartbeat with a pid"
        await asyncio.sleep(0.02)
    return dict(found)
