"""The `porpoise` CLI as a user runs it: a real process talking HTTP to the API."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import dsbuild
from tests.integration.helpers import run as run_via_api
from tests.samples import SAMPLES

# Each runnable shared sample and the result DS 3.2 gives it.
EXPECTED = {
    "ds-export-v32-shell-minimal.json": {"test": "SUCCESS"},
    "ds-export-v33-shell-minimal.json": {"test": "SUCCESS"},
    "ds-create-api-v32-two-shell-test-fixture.json": {"test1": "SUCCESS", "test2": "SUCCESS"},
    "ds-demo-v32-parameter-context-out-param.json": {"Upstream task node": "SUCCESS",
                                                      "Downstream task node": "SUCCESS"},
    "ds-demo-v32-conditions-coin-toss.json": {"condition": "SUCCESS", "coin": "SUCCESS", "head": "SUCCESS",
                                              "tail": "SKIPPED"},
    "ds-demo-v32-switch-global-param.json": {"switch node": "SUCCESS", "TaskA": "SUCCESS", "TaskB": "SKIPPED",
                                             "default": "SKIPPED"},
    "ds-demo-v32-sub-process.json": {"subprocess node": "SUCCESS"},
}


async def porpoise(api_url: str, *args: str, check: bool = False, columns: int = 200
                   ) -> subprocess.CompletedProcess[str]:
    """Run the CLI without blocking the event loop that the test worker polls on."""
    env = dict(os.environ, PORPOISE_API_URL=api_url, COLUMNS=str(columns))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "api", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    result = subprocess.CompletedProcess(list(args), proc.returncode or 0, out.decode(), err.decode())
    if check:
        result.check_returncode()
    return result


@pytest.fixture(scope="module")
async def sub_process_target(api_server: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The sub-process sample calls definition 7000000000001 (DS demo_shell); submit one first."""
    doc = dsbuild.export("demo_shell", [dsbuild.task("shell node", "echo demo_shell")], [(None, "shell node")],
                         code=7000000000001)
    path = tmp_path_factory.mktemp("cli") / "target.json"
    path.write_text(json.dumps(doc))
    await porpoise(api_server, "submit", str(path), check=True)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_run_each_runnable_sample(api_server: str, sub_process_target: None, name: str) -> None:
    result = await porpoise(api_server, "run", str(SAMPLES / name), "--json")
    assert result.returncode == 0, result.stderr
    status: dict[str, Any] = json.loads(result.stdout)
    assert status["state"] == "SUCCESS"
    assert {n["name"]: n["state"] for n in status["nodes"]} == EXPECTED[name]


async def test_run_failure_exits_1_and_prints_every_node(api_server: str, tmp_path: Path) -> None:
    doc = dsbuild.export("cli-fail", [dsbuild.task("bad", "exit 2"), dsbuild.task("never"),
                                      dsbuild.task("off", flag="NO")],
                         [(None, "bad"), ("bad", "never"), (None, "off")])
    path = tmp_path / "fail.json"
    path.write_text(json.dumps(doc))
    result = await porpoise(api_server, "run", str(path), "--json", "--param", "x=1")
    assert result.returncode == 1
    status = json.loads(result.stdout)
    assert {n["name"]: n["state"] for n in status["nodes"]} == {"bad": "FAILURE", "never": "DEPEND_FAILED",
                                                               "off": "FORBIDDEN"}
    shown = await porpoise(api_server, "status", status["instanceId"], "--json")
    assert json.loads(shown.stdout)["state"] == "FAILURE"
    code = next(n["code"] for n in status["nodes"] if n["name"] == "bad")
    log = await porpoise(api_server, "logs", status["instanceId"], str(code))
    assert log.returncode == 0 and "exit" in log.stdout


async def test_validate_exit_codes(tmp_path: Path) -> None:
    ok = await porpoise("http://127.0.0.1:9", "validate", str(SAMPLES / "ds-export-v33-shell-minimal.json"), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["valid"] is True
    bad = tmp_path / "bad.json"
    doc = dsbuild.export("cycle", [dsbuild.task("a"), dsbuild.task("b")], [(None, "a"), ("a", "b"), ("b", "a")])
    bad.write_text(json.dumps(doc))
    res = await porpoise("http://127.0.0.1:9", "validate", str(bad), "--json")
    assert res.returncode == 1
    problems = json.loads(res.stdout)["problems"]
    assert problems[0]["code"] == "cycle" and "a(" in problems[0]["message"]
    missing = await porpoise("http://127.0.0.1:9", "validate", str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr


async def test_submit_without_api_says_how_to_start_it(tmp_path: Path) -> None:
    res = await porpoise("http://127.0.0.1:9", "submit", str(SAMPLES / "ds-export-v33-shell-minimal.json"))
    assert res.returncode == 1 and "porpoise up" in res.stderr and "Traceback" not in res.stderr


async def test_definitions_list_runs_list_and_stop_print_tables_or_json(api_server: str, tmp_path: Path) -> None:
    name = f"cli-list-{os.getpid()}-{id(tmp_path) % 10_000}"
    doc = dsbuild.export(name, [dsbuild.task("sleepy", "sleep 30")], [(None, "sleepy")])
    path = tmp_path / "list.json"
    path.write_text(json.dumps(doc))
    started = await porpoise(api_server, "run", str(path), "--no-wait", "--json", check=True)
    instance_id = json.loads(started.stdout)["instanceId"]
    definitions = await porpoise(api_server, "definitions", "list", "--json", check=True)
    code = next(d["code"] for d in json.loads(definitions.stdout) if d["name"] == name)
    table = await porpoise(api_server, "definitions", "list", check=True)
    assert name in table.stdout and str(code) in table.stdout
    runs = await porpoise(api_server, "runs", "list", "--definition", str(code), "--json", check=True)
    assert [r["instanceId"] for r in json.loads(runs.stdout)] == [instance_id]
    runs_table = await porpoise(api_server, "runs", "list", "--definition", str(code), check=True)
    assert instance_id in runs_table.stdout
    stopped = await porpoise(api_server, "stop", instance_id, check=True)
    assert json.loads(stopped.stdout)["instanceId"] == instance_id  # JSON, not a Python dict


async def test_help_shows_no_bool_type_on_flags() -> None:
    result = await porpoise("http://127.0.0.1:9", "run", "--help", check=True)
    assert "--dry-run" in result.stdout and "--json" in result.stdout
    assert "<bool>" not in result.stdout
    assert "<str>" in result.stdout  # options that take a value keep their type


def _keys(value: Any) -> Any:
    """The key structure of a JSON value: every object's keys, nested (lists: their items' union)."""
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            shape = _keys(item)
            if isinstance(shape, dict):
                merged |= shape
        return [merged] if merged else []
    return None


async def test_json_output_has_the_api_shapes(api: httpx.AsyncClient, api_server: str, tmp_path: Path) -> None:
    """`--json` prints what the API answers (the same response models): the same keys, camelCase."""
    name = f"cli-shapes-{os.getpid()}-{id(tmp_path) % 10_000}"
    doc = dsbuild.export(name, [dsbuild.task("a", "echo a"), dsbuild.task("b", "exit 3")], [(None, "a"), ("a", "b")])
    status = await run_via_api(api, doc)
    code, instance_id = status["definitionCode"], status["instanceId"]
    pairs = [
        (["status", instance_id], f"/runs/{instance_id}", {}),
        (["runs", "list", "--definition", str(code)], "/runs", {"definitionCode": code}),
        (["definitions", "list"], "/definitions", {}),
    ]
    for args, path, params in pairs:
        shown = json.loads((await porpoise(api_server, *args, "--json", check=True)).stdout)
        answer = (await api.get(path, params=params)).json()
        assert _keys(shown) == _keys(answer), args
    shown = json.loads((await porpoise(api_server, "status", instance_id, "--json", check=True)).stdout)
    assert {"instanceId", "definitionName", "varPool", "temporalUiUrl"} <= shown.keys()
    assert {"taskType", "startTime", "logPath", "maxAttempts"} <= shown["nodes"][0].keys()
    assert not [k for k in shown if "_" in k]


async def test_tables_fit_80_columns(api: httpx.AsyncClient, api_server: str, tmp_path: Path) -> None:
    name = f"cli-narrow-{os.getpid()}-with-a-rather-long-definition-name-{id(tmp_path) % 10_000}"
    doc = dsbuild.export(name, [dsbuild.task("a task with a long name that needs folding", "exit 4")],
                         [(None, "a task with a long name that needs folding")])
    status = await run_via_api(api, doc)
    code, instance_id = status["definitionCode"], status["instanceId"]
    for args in (["status", instance_id], ["runs", "list", "--definition", str(code)], ["definitions", "list"]):
        shown = await porpoise(api_server, *args, columns=80, check=True)
        lines = (shown.stdout + shown.stderr).splitlines()
        assert lines and max(len(line) for line in lines) <= 80, "\n".join(lines)
    table = (await porpoise(api_server, "status", instance_id, columns=80, check=True)).stderr
    assert "FAILURE" in table and instance_id[:10] in table
