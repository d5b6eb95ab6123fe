"""Task logs end to end: size caps, masking per task type, follow while running, the CLI.

Runs go to a worker of this module's own, on its own task queue, built by ``api.worker.build_worker``
from a copy of the test settings with a small cap and custom mask rules; the API and CLI that read
the logs are the session's (they read the same log root).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from activities.logs import configure_task_logs, has_footer
from activities.masking import MASK
from api.worker import build_worker
from core.contracts import RunInput
from core.settings import Settings
from model.formats import parse_document
from tests import dsbuild
from tests.integration.helpers import nodes, wait

CAP, TAIL = 64 * 1024, 16 * 1024
RULES = {"PYTHON": [r"only-python-\w+"], "SHELL": [r"(?<=pin )\d+"]}


@pytest.fixture(scope="module")
async def capped(client: Client, settings: Settings) -> AsyncIterator[Settings]:
    own = settings.model_copy(update={
        "task_queue": f"{settings.task_queue}-logs-{uuid.uuid4().hex[:4]}",
        "log_max_bytes_per_task": CAP, "log_tail_bytes": TAIL, "log_mask_rules": RULES,
        "events_enabled": False,
    })
    configure_task_logs(own)  # what the worker's start-up does (api/worker.py)
    async with build_worker(client, own):
        yield own


async def start(client: Client, worker_settings: Settings, doc: list[dict[str, Any]]) -> str:
    definition = parse_document(doc)[0]
    instance_id = f"logs-{definition.code}-{uuid.uuid4().hex[:8]}"
    await client.start_workflow(
        "DsWorkflow",
        RunInput(definition=definition, instance_id=instance_id, log_dir=str(worker_settings.resolved_log_dir),
                 minute_seconds=worker_settings.minute_seconds),
        id=instance_id, task_queue=worker_settings.task_queue,
    )
    return instance_id


def output_of(text: bytes) -> bytes:
    return b"".join(line for line in text.splitlines(keepends=True) if not line.startswith(b"[porpoise] "))


async def test_a_task_printing_in_a_tight_loop_stays_under_its_cap(
    api: httpx.AsyncClient, client: Client, capped: Settings
) -> None:
    doc = dsbuild.export("storm", [dsbuild.task("storm", "seq 1 1000000; echo last line")], [(None, "storm")])
    instance_id = await start(client, capped, doc)
    status = await wait(api, instance_id, timeout=60)
    node = nodes(status)["storm"]
    assert status["state"] == "SUCCESS" and node["logPath"]  # the location is in the run state
    disk = Path(node["logPath"]).read_bytes()
    assert len(output_of(disk)) <= CAP + 1 and len(disk) <= CAP + 2048  # 6.9 MB of output printed
    r = await api.get(f"/runs/{instance_id}/tasks/{node['code']}/log")
    assert r.status_code == 200 and int(r.headers["X-Log-Size"]) == len(disk)
    assert r.text.startswith("[porpoise] start task='storm'")
    assert "\n1\n2\n3\n" in r.text and "\n999999\n1000000\nlast line\n" in r.text
    assert "bytes dropped of 6888906 bytes of output" in r.text
    last = await api.get(f"/runs/{instance_id}/tasks/{node['code']}/log", params={"lines": 2})
    assert last.text.startswith("last line\n[porpoise] end exit=0")


async def test_masking_per_type_and_resolved_secrets(api: httpx.AsyncClient, client: Client, capped: Settings) -> None:
    echo = "echo 'pin 4242 only-python-word jdbc:mysql://etl:JdbcPw9@db/x password=Assign7'; echo ${db_password}"
    py = "print('pin 4242 only-python-word')\nprint('${db_password}')"
    doc = dsbuild.export(
        "masking",
        [dsbuild.task("sh", echo), dsbuild.task("py", py, task_type="PYTHON")],
        [(None, "sh"), (None, "py")],
        global_params=json.dumps([{"prop": "db_password", "direct": "IN", "type": "VARCHAR", "value": "Gl0bal!Pw"}]),
    )
    instance_id = await start(client, capped, doc)
    status = await wait(api, instance_id, timeout=60)
    assert status["state"] == "SUCCESS", status
    sh, py_node = nodes(status)["sh"], nodes(status)["py"]
    for node in (sh, py_node):
        disk = Path(node["logPath"]).read_text()
        served = (await api.get(f"/runs/{instance_id}/tasks/{node['code']}/log")).text
        for text in (disk, served):  # never on disk, never served
            assert "Gl0bal!Pw" not in text and "JdbcPw9" not in text and "Assign7" not in text
    sh_log = Path(sh["logPath"]).read_text()
    py_log = Path(py_node["logPath"]).read_text()
    assert f"pin {MASK} only-python-word jdbc:mysql://etl:{MASK}@db/x password={MASK}\n{MASK}\n" in sh_log
    assert f"pin 4242 {MASK}\n{MASK}\n" in py_log  # SHELL's pin rule is not PYTHON's, and vice versa


async def _follow(api_server: str, instance_id: str, code: int, **params: Any) -> list[tuple[float, bytes]]:
    got: list[tuple[float, bytes]] = []
    async with (
        httpx.AsyncClient(base_url=api_server, timeout=httpx.Timeout(30, read=30),
                          headers={"authorization": f"Bearer {os.environ['PORPOISE_TOKEN']}"}) as c,
        c.stream("GET", f"/runs/{instance_id}/tasks/{code}/log", params={"follow": "true", **params}) as r,
    ):
        assert r.status_code == 200, await r.aread()
        async for chunk in r.aiter_bytes():
            got.append((time.monotonic(), chunk))
    return got


async def test_follow_streams_while_the_task_runs(api_server: str, api: httpx.AsyncClient, client: Client,
                                                  capped: Settings) -> None:
    script = "for i in 1 2 3 4 5; do echo \"tick $i password=Tick$i\"; sleep 0.4; done"
    doc = dsbuild.export("follow", [dsbuild.task("ticker", script)], [(None, "ticker")])
    code = dsbuild.codes(doc)["ticker"]
    instance_id = await start(client, capped, doc)
    started = time.monotonic()
    got = await _follow(api_server, instance_id, code)
    text = b"".join(c for _, c in got).decode()
    first_tick = next(t for t, c in got if b"tick 1" in c)
    assert first_tick - started < 1.5 and got[-1][0] - first_tick > 1.0  # lines came as they were printed
    assert [f"tick {i} password={MASK}" in text for i in range(1, 6)] == [True] * 5 and "Tick" not in text
    assert has_footer(text.encode())
    status = await wait(api, instance_id)
    assert text == Path(nodes(status)["ticker"]["logPath"]).read_text()


async def test_follow_a_storm_past_its_cap(api_server: str, api: httpx.AsyncClient, client: Client,
                                           capped: Settings) -> None:
    doc = dsbuild.export("storm2", [dsbuild.task("storm", "seq 1 300000; sleep 0.5; echo end")], [(None, "storm")])
    code = dsbuild.codes(doc)["storm"]
    instance_id = await start(client, capped, doc)
    streamed = b"".join(c for _, c in await _follow(api_server, instance_id, code))
    status = await wait(api, instance_id)
    assert streamed == Path(nodes(status)["storm"]["logPath"]).read_bytes()  # head, marker, tail, footer
    assert b"bytes dropped" in streamed and b"\nend\n[porpoise] end exit=0" in streamed and has_footer(streamed)


async def porpoise(api_url: str, *args: str) -> tuple[int, str, str]:
    env = dict(os.environ, PORPOISE_API_URL=api_url, COLUMNS="200")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "api", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_cli_logs_follow_and_tail(api_server: str, api: httpx.AsyncClient, client: Client,
                                        capped: Settings) -> None:
    script = "echo first; sleep 1; echo 'token=CliTok3n'; echo second"
    doc = dsbuild.export("cli-logs", [dsbuild.task("t", script)], [(None, "t")])
    code = dsbuild.codes(doc)["t"]
    instance_id = await start(client, capped, doc)
    rc, out, err = await porpoise(api_server, "logs", instance_id, str(code), "--follow")
    assert rc == 0, err
    assert "first\n" in out and f"token={MASK}\nsecond\n" in out and "CliTok3n" not in out
    assert out.rstrip("\n").rsplit("\n", 1)[-1].startswith("[porpoise] end exit=0")
    await wait(api, instance_id)
    rc, out, err = await porpoise(api_server, "logs", instance_id, str(code), "--tail", "2")
    assert rc == 0, err
    assert out.startswith("second\n[porpoise] end exit=0") and out.count("\n") == 2
