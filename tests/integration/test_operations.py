"""Stop and pause against tasks that are retrying, delayed, and waiting for a task-group slot (§4.14).

No operation may leave an instance in READY_STOP or READY_PAUSE: each case must end promptly in STOP or
PAUSE, and a paused one must recover to SUCCESS. (Running tasks: tests/integration/test_runs.py and
test_control_flow.py.) Minutes are seconds in tests (settings.minute_seconds = 1).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import dsbuild

from .helpers import nodes, start, states, submit, wait

Prepare = Callable[[httpx.AsyncClient, Path], Awaitable[tuple[dict[str, Any], Callable[[], Awaitable[None]]]]]


async def _retrying(api: httpx.AsyncClient, tmp: Path) -> tuple[dict[str, Any], Callable[[], Awaitable[None]]]:
    """`t` fails its first attempt and sits in a 10 s retry backoff; the second attempt succeeds."""
    marker = tmp / "failed-once"
    doc = dsbuild.export("op-retrying", [
        dsbuild.task("t", f"if [ -f {marker} ]; then echo ok; else touch {marker}; exit 1; fi",
                     failRetryTimes=1, failRetryInterval=10),
        dsbuild.task("after")], [(None, "t"), ("t", "after")])

    async def in_backoff() -> None:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline, "the first attempt never ran"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the attempt has failed; the retry is 9 s away
    return doc, in_backoff


async def _delayed(api: httpx.AsyncClient, tmp: Path) -> tuple[dict[str, Any], Callable[[], Awaitable[None]]]:
    doc = dsbuild.export("op-delayed", [dsbuild.task("t", delayTime=15), dsbuild.task("after")],
                         [(None, "t"), ("t", "after")])
    return doc, lambda: asyncio.sleep(0)


HOLDER_GROUP = 7301


async def _waiting(api: httpx.AsyncClient, tmp: Path) -> tuple[dict[str, Any], Callable[[], Awaitable[None]]]:
    """`t` waits for the only slot of a task group that another instance holds."""
    r = await api.put(f"/task-groups/{HOLDER_GROUP}", json={"name": "one-slot", "groupSize": 1})
    assert r.status_code == 200, r.text
    holder = await submit(api, dsbuild.export("op-holder", [dsbuild.task("hold", "sleep 60",
                                                                         taskGroupId=HOLDER_GROUP)],
                                              [(None, "hold")]))
    holder_id = await start(api, holder["code"])
    await wait(api, holder_id, until=lambda s: nodes(s)["hold"]["state"] == "RUNNING_EXECUTION")
    doc = dsbuild.export("op-waiting", [dsbuild.task("t", taskGroupId=HOLDER_GROUP), dsbuild.task("after")],
                         [(None, "t"), ("t", "after")])
    tmp.joinpath("holder").write_text(holder_id)
    return doc, lambda: asyncio.sleep(0)


SITUATIONS: dict[str, tuple[Prepare, str]] = {
    # name: (prepare, the node's state while in that situation)
    "retrying": (_retrying, "RUNNING_EXECUTION"),
    "delayed": (_delayed, "DELAY_EXECUTION"),
    "waiting": (_waiting, "SUBMITTED_SUCCESS"),
}


async def _release_holder(api: httpx.AsyncClient, tmp: Path) -> None:
    holder = tmp / "holder"
    if holder.exists():
        await api.post(f"/runs/{holder.read_text()}/stop")
        await wait(api, holder.read_text())


async def _start_in(api: httpx.AsyncClient, tmp: Path, situation: str) -> str:
    """Start an instance and return once its task `t` is in the situation."""
    prepare, shown = SITUATIONS[situation]
    doc, settle = await prepare(api, tmp)
    instance = await start(api, (await submit(api, doc))["code"])
    await wait(api, instance, until=lambda s: nodes(s)["t"]["state"] == shown)
    await settle()
    return instance


@pytest.mark.parametrize("situation", sorted(SITUATIONS))
async def test_stop(api: httpx.AsyncClient, tmp_path: Path, situation: str) -> None:
    try:
        instance = await _start_in(api, tmp_path, situation)
        asked = time.monotonic()
        r = await api.post(f"/runs/{instance}/stop")
        assert r.status_code == 200 and r.json()["state"] == "READY_STOP", r.text
        ended = await wait(api, instance, timeout=20)
        assert time.monotonic() - asked < 8, "the stop waited for the situation to end"
        assert ended["state"] == "STOP" and states(ended) == {"t": "KILL", "after": "NOT_RUN"}, states(ended)
    finally:
        await _release_holder(api, tmp_path)


@pytest.mark.parametrize("situation", sorted(SITUATIONS))
async def test_pause_then_recover(api: httpx.AsyncClient, tmp_path: Path, situation: str) -> None:
    try:
        instance = await _start_in(api, tmp_path, situation)
        r = await api.post(f"/runs/{instance}/pause")
        assert r.status_code == 200 and r.json()["state"] == "READY_PAUSE", r.text
        paused = await wait(api, instance, timeout=30)
        assert paused["state"] == "PAUSE"
        if situation == "retrying":  # a running task finishes, its retries included; nothing new starts
            assert states(paused) == {"t": "SUCCESS", "after": "WAITING"}
        else:  # not started yet: it stops waiting, and is queued again on recover
            assert states(paused) == {"t": "PAUSE", "after": "WAITING"}
        await _release_holder(api, tmp_path)
        assert (await api.post(f"/runs/{instance}/recover")).status_code == 201
        done = await wait(api, instance, timeout=60)
        assert done["state"] == "SUCCESS" and states(done) == {"t": "SUCCESS", "after": "SUCCESS"}
    finally:
        await _release_holder(api, tmp_path)
