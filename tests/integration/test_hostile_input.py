"""Hostile input through the real API and CLI (issue 16): every case is a 4xx problem naming what is
wrong, never a 500, a traceback or a definition that is stored but can never run."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from starlette.concurrency import run_in_threadpool

from api.app import create_app
from core.settings import Settings
from model.formats import parse_document
from storage.definitions import DefinitionStore
from tests import dsbuild
from tests.integration.helpers import start, submit, wait

DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_ID = str(2**64)
JSON = {"content-type": "application/json"}  # raw bodies are labelled JSON (api/security.py refuses others)


def sub_task(name: str, code: int) -> dict[str, Any]:
    return dsbuild.task(name, task_type="SUB_PROCESS", params={"processDefinitionCode": code})


def calling(name: str, callees: list[int], code: int | None = None) -> list[dict[str, Any]]:
    tasks = [dsbuild.task("begin")] + [sub_task(f"call{i}", c) for i, c in enumerate(callees)]
    edges: list[tuple[str | None, str]] = [(None, "begin")] + [("begin", f"call{i}") for i in range(len(callees))]
    return dsbuild.export(name, tasks, edges, code=code)


def problem(r: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize("path", ["/definitions", "/definitions/validate", "/datasources", "/alert-groups",
                                  "/schedules", "/alert-templates/validate"])
async def test_deep_nesting_is_a_422_on_every_body(api: httpx.AsyncClient, path: str) -> None:
    body = problem(await api.post(path, content=DEEP, headers={"content-type": "application/json"}))
    assert "more than 64 levels deep" in body["detail"] and "max_json_depth" in body["detail"]


async def test_deep_nesting_in_start_params_and_form_fields(api: httpx.AsyncClient) -> None:
    saved = await submit(api, dsbuild.export("deep-params", [dsbuild.task("a")], [(None, "a")]))
    r = await api.post(f"/definitions/{saved['code']}/runs", json={"startParams": "[" * 5000 + "]" * 5000})
    assert r.status_code == 422, r.text
    r = await api.post("/definitions", content=b"name=f&taskRelationJson=[]&taskDefinitionJson=" + b"[" * 50_000,
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert problem(r)["problems"][0]["pointer"] == "/taskDefinitionJson"


async def test_bodies_over_their_limit_are_413(api: httpx.AsyncClient, settings: Settings) -> None:
    spec = {"name": "big", "type": "POSTGRESQL", "host": "h" * (settings.max_body_bytes + 10), "port": 5432}
    body = problem(await api.post("/datasources", json=spec), 413)
    assert "max_body_bytes" in body["detail"]
    body = problem(await api.post("/alert-groups", content=b" " * (settings.max_body_bytes + 1),
                                  headers={"content-type": "application/json"}), 413)
    assert "max_body_bytes" in body["detail"]
    doc = dsbuild.export("big", [dsbuild.task("a", "x" * (settings.max_definition_bytes + 1))], [(None, "a")])
    assert "max_definition_bytes" in problem(await api.post("/definitions/validate", json=doc), 413)["detail"]


@pytest.mark.parametrize(("method", "path"), [
    ("GET", f"/definitions/{HUGE_ID}"), ("GET", f"/definitions/{HUGE_ID}/versions/1"),
    ("GET", f"/datasources/{HUGE_ID}"), ("DELETE", f"/datasources/{HUGE_ID}"),
    ("GET", f"/alert-groups/{HUGE_ID}"), ("GET", f"/schedules/{HUGE_ID}"), ("GET", f"/schedules/{HUGE_ID}/runs"),
    ("POST", f"/schedules/{HUGE_ID}/online"), ("DELETE", f"/schedules/{HUGE_ID}"),
    ("GET", f"/schedules?offset={HUGE_ID}"), ("GET", f"/runs?definitionCode=-{HUGE_ID}"),
    ("GET", f"/definitions?projectCode={HUGE_ID}"),
])
async def test_ids_beyond_64_bits_are_422_with_the_parameter_named(api: httpx.AsyncClient, method: str,
                                                                   path: str) -> None:
    body = problem(await api.request(method, path))
    assert body["problems"][0]["code"] == "range" and "64-bit" in body["problems"][0]["message"]


async def test_null_and_nested_start_params_are_422(api: httpx.AsyncClient) -> None:
    saved = await submit(api, dsbuild.export("null-params", [dsbuild.task("a")], [(None, "a")]))
    for params in ([None, None], [{"value": 1}], {"a": {"b": 1}}, [1, 2]):
        for path in (f"/definitions/{saved['code']}/runs", f"/definitions/{saved['code']}/complements"):
            body = problem(await api.post(path, json={"startParams": params}))
            assert body["problems"][0]["pointer"] == "/startParams", body
    body = problem(await api.post(f"/definitions/{saved['code']}/runs", json={"version": 2**64}))
    assert body["problems"][0]["pointer"] == "/version"


async def test_huge_integers_in_a_definition_are_422(api: httpx.AsyncClient) -> None:
    doc = json.dumps(dsbuild.export("huge-int", [dsbuild.task("a")], [(None, "a")]))
    body = problem(await api.post("/definitions", content=doc.replace('"timeout": 0', '"timeout": ' + "9" * 4_300, 1),
                                   headers=JSON))
    assert body["problems"][0]["code"] in ("range", "malformed-json")
    body = problem(await api.post("/definitions", content=doc.replace('"timeout": 0', '"timeout": ' + "9" * 5_000, 1),
                                   headers=JSON))
    assert body["problems"][0]["code"] == "malformed-json"


async def test_sub_process_calling_itself_is_refused(api: httpx.AsyncClient) -> None:
    code = dsbuild.new_code()
    body = problem(await api.post("/definitions", json=calling("selfish", [code], code=code)))
    (p,) = [p for p in body["problems"] if p["code"] == "sub-process-cycle"]
    assert p["task"] == "call0" and p["pointer"] == "/0/taskDefinitionList/1/taskParams/processDefinitionCode"
    assert (await api.get(f"/definitions/{code}")).status_code == 404  # nothing stored


async def test_a_to_b_to_a_through_a_new_version_is_refused(api: httpx.AsyncClient) -> None:
    a = await submit(api, calling("cycle-a", []))
    b = await submit(api, calling("cycle-b", [a["code"]]))
    body = problem(await api.post("/definitions", json=calling("cycle-a", [b["code"]], code=a["code"])))
    (p,) = body["problems"]
    assert p["code"] == "sub-process-cycle" and p["task"] == "call0"
    assert f"'cycle-a'({a['code']}) -> 'cycle-b'({b['code']}) -> 'cycle-a'({a['code']})" in p["message"]
    assert (await api.get(f"/definitions/{a['code']}")).json()["version"] == 1  # the old version stands
    both = calling("cycle-c", [], code=dsbuild.new_code())  # one export closing a cycle inside itself
    d_code = dsbuild.new_code()
    both[0]["taskDefinitionList"].append(sub_task("to-d", d_code))
    both[0]["processTaskRelationList"].append({"preTaskCode": both[0]["taskDefinitionList"][0]["code"],
                                               "postTaskCode": both[0]["taskDefinitionList"][1]["code"]})
    both += calling("cycle-d", [both[0]["processDefinition"]["code"]], code=d_code)
    found = {p["pointer"] for p in problem(await api.post("/definitions", json=both))["problems"]}
    assert found == {"/0/taskDefinitionList/1/taskParams/processDefinitionCode",
                     "/1/taskDefinitionList/1/taskParams/processDefinitionCode"}


async def test_nesting_deeper_than_the_limit_is_refused(api: httpx.AsyncClient, settings: Settings) -> None:
    callee = (await submit(api, calling("level-leaf", [])))["code"]
    for level in range(settings.max_sub_process_depth):  # chains of 1..max levels are fine
        callee = (await submit(api, calling(f"level-{level}", [callee])))["code"]
    body = problem(await api.post("/definitions", json=calling("one-too-deep", [callee])))
    (p,) = body["problems"]
    assert p["code"] == "sub-process-depth" and p["task"] == "call0"
    assert f"{settings.max_sub_process_depth + 1} levels deep, over the limit of {settings.max_sub_process_depth}" \
        in p["message"]


async def test_a_definition_too_large_to_run_is_refused_naming_the_limit(api: httpx.AsyncClient) -> None:
    # ~2.9 MB submitted (under the suite's 3 MiB max_definition_bytes); random scripts, so still ~2.1 MB
    # once compressed (the budget counts what travels, core/payload_budget.py)
    tasks = [dsbuild.task(f"t{i}", secrets.token_urlsafe(13_875)) for i in range(150)]
    body = problem(await api.post("/definitions", json=dsbuild.export("too-big-to-run", tasks,
                                                                      [(None, t["name"]) for t in tasks])))
    (p,) = body["problems"]
    assert p["code"] == "too-large-to-run" and "temporal_payload_limit_bytes" in p["message"]


async def test_a_stored_cycle_fails_the_node_at_run_time(api: httpx.AsyncClient, settings: Settings) -> None:
    """A cycle stored before submit checked (or by two racing submits) ends FAILURE at its second
    level with the cycle named, instead of nesting until something breaks."""
    a_code, b_code = dsbuild.new_code(), dsbuild.new_code()
    store = DefinitionStore(settings.resolved_database_url)
    try:
        for doc in (calling("stored-a", [b_code], code=a_code), calling("stored-b", [a_code], code=b_code)):
            (d,) = parse_document(doc)
            await run_in_threadpool(store.save, d)
    finally:
        store.dispose()
    status = await wait(api, await start(api, a_code), timeout=120)
    assert status["state"] == "FAILURE"
    (call,) = [n for n in status["nodes"] if n["name"] == "call0"]
    child = (await api.get(f"/runs/{call['subInstanceId']}")).json()
    (refused,) = [n for n in child["nodes"] if n["name"] == "call0"]
    assert refused["state"] == "FAILURE" and refused["subInstanceId"] is None
    assert f"cycle (definitions {a_code} -> {b_code} -> {a_code})" in refused["error"]


def test_cli_validate_of_deep_json_exits_1_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_bytes(DEEP)
    result = subprocess.run([sys.executable, "-m", "api", "validate", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "levels deep" in result.stderr + result.stdout and "Traceback" not in result.stderr


PG_URL = os.environ.get("PORPOISE_TEST_POSTGRES_URL")


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="PORPOISE_TEST_POSTGRES_URL not set (.ci/run sets it)")
async def test_values_postgresql_refuses_are_422(tmp_path: Path) -> None:
    """PostgreSQL refuses a NUL byte in text (SQLite does not): the input's fault, not a 500."""
    settings = Settings(data_dir=tmp_path, database_url=PG_URL, secret_key=Fernet.generate_key().decode(),
                        temporal_address="127.0.0.1:1", allowed_hosts=["porpoise"])  # the client's Host
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://porpoise") as api:
            doc = dsbuild.export(f"nul-\u0000-{uuid.uuid4().hex[:6]}", [dsbuild.task("a")], [(None, "a")])
            body = problem(await api.post("/definitions", json=doc))
            assert body["title"] == "Value refused by the database" and "NUL" in body["detail"]
    finally:
        app.state.porpoise.store.dispose()
