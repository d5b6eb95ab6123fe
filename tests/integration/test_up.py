"""`porpoise up`: the embedded stack comes up, serves, and Ctrl-C stops every process it started."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import stat
import sys
from pathlib import Path

import httpx
import psutil

from tests.samples import SAMPLES


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path) -> tuple[dict[str, str], int, int]:
    tport, uiport, apiport = _free_port(), _free_port(), _free_port()
    env = dict(os.environ, PORPOISE_DATA_DIR=str(tmp_path / "data"), PORPOISE_TEMPORAL_ADDRESS=f"127.0.0.1:{tport}",
               PORPOISE_TEMPORAL_UI_PORT=str(uiport), PORPOISE_TEMPORAL_UI_URL=f"http://127.0.0.1:{uiport}",
               PORPOISE_API_PORT=str(apiport), PORPOISE_PULSAR_URL="")
    env.pop("PORPOISE_TOKEN", None)  # `up` makes the administrator token the CLI here finds
    return env, uiport, apiport


async def _banner(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    banner = b""
    while b"Press Ctrl-C" not in banner:
        line = await asyncio.wait_for(proc.stdout.readline(), 90)
        assert line, banner.decode()
        banner += line
    return banner.decode()


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a background job (`porpoise up &` in a script)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def _stop(proc: asyncio.subprocess.Process, children: list[psutil.Process]) -> None:
    """Last-resort cleanup of a failed test: nothing it started keeps running."""
    if proc.returncode is None:
        proc.kill()
        await proc.wait()
    for c in children:
        with contextlib.suppress(psutil.Error):
            c.kill()


async def test_up_serves_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    env, uiport, apiport = _env(tmp_path)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "api", "up", env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    children: list[psutil.Process] = []
    try:
        text = await _banner(proc)
        assert f"http://127.0.0.1:{apiport}/docs" in text and f"http://127.0.0.1:{uiport}" in text
        assert "Events       outbox only" in text  # no broker configured: events stay in the outbox
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 3
        async with httpx.AsyncClient() as c:
            assert (await c.get(f"http://127.0.0.1:{apiport}/docs")).status_code == 200
            assert (await c.get(f"http://127.0.0.1:{uiport}/")).status_code == 200
            sample = SAMPLES / "ds-export-v33-shell-minimal.json"
            r = await c.post(f"http://127.0.0.1:{apiport}/definitions", content=sample.read_bytes(),
                             headers={"content-type": "application/json"})
            assert r.status_code == 401  # no token
            token_file = tmp_path / "data" / "admin.token"
            assert "Admin token" in text and "admin.token" in text  # where the token is
            assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
            r = await c.post(f"http://127.0.0.1:{apiport}/definitions", content=sample.read_bytes(),
                             headers={"content-type": "application/json",
                                      "authorization": f"Bearer {token_file.read_text().strip()}"})
            assert r.status_code == 201
            # the Temporal UI decrypts payloads through the API's codec endpoint
            ui_settings = (await c.get(f"http://127.0.0.1:{uiport}/api/v1/settings")).json()
            assert f"http://127.0.0.1:{apiport}/codec/ui/" in json.dumps(ui_settings)
        # the README's CLI commands work with no extra step: the CLI finds up's token in the data dir
        cli = await asyncio.create_subprocess_exec(sys.executable, "-m", "api", "submit", str(sample), env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(cli.communicate(), 60)
        assert cli.returncode == 0 and b"code" in out, err.decode()
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "data" / "temporal.db").stat().st_mode) == 0o600
        assert (tmp_path / "data" / "temporal.db").exists()  # the SQLite file under the data dir
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        gone, alive = psutil.wait_procs(children, timeout=20)
        assert not alive, f"left running: {[p.pid for p in alive]}"
    finally:
        await _stop(proc, children)


async def test_up_started_with_sigint_ignored_still_stops_on_sigint(tmp_path: Path) -> None:
    """A script's `porpoise up &` inherits SIGINT ignored; Ctrl-C (SIGINT) must stop it all the same."""
    env, _, _ = _env(tmp_path)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "api", "up", env=env, preexec_fn=_ignore_sigint,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    children: list[psutil.Process] = []
    try:
        await _banner(proc)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        _, alive = psutil.wait_procs(children, timeout=20)
        assert not alive, f"left running: {[p.pid for p in alive]}"
    finally:
        await _stop(proc, children)


async def test_up_killed_outright_takes_its_children_along(tmp_path: Path) -> None:
    env, _, _ = _env(tmp_path)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "api", "up", "--workers", "2", env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    children: list[psutil.Process] = []
    try:
        await _banner(proc)
        await asyncio.sleep(2)  # the worker's own processes (--workers 2) are up too
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 5  # dev server, worker + 2 worker processes, API
        proc.kill()  # SIGKILL: no handler runs in `up`
        await proc.wait()
        _, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, f"left running: {[(p.pid, p.name()) for p in alive]}"
    finally:
        await _stop(proc, children)
