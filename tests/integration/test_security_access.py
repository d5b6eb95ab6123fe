"""Tokens and project permissions against the real stack (API, Temporal dev server, worker, SQLite).

Every route but health and the docs refuses without a valid token; a general user's token reaches
only its projects' definitions, runs, task logs, schedules and complements, and only datasources it
owns or was granted; administrators alone manage users, tokens, task groups and keys."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from core.settings import Settings
from tests import dsbuild
from tests.integration.conftest_sql import sql_task
from tests.integration.helpers import start, submit, wait

NO_TOKEN = {"authorization": ""}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def make_token(api: httpx.AsyncClient, name: str, projects: list[int], **extra: Any) -> str:
    r = await api.post("/tokens", json={"name": name, "projects": projects, **extra})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token"].startswith("pp_") and body["user"] == name
    return str(body["token"])


def _project() -> int:
    return int(uuid.uuid4().int % 10**12) + 10**12


# DS's own token-free routes (api/ds_rest/routers/health.py), as DS serves them.
DS_PUBLIC = ("/dolphinscheduler/actuator/health", "/dolphinscheduler/actuator/info", "/dolphinscheduler/version",
             "/dolphinscheduler/login")  # login: user name and password (test_ds_login.py)


async def test_every_route_but_health_and_docs_needs_a_token(api: httpx.AsyncClient, settings: Settings) -> None:
    schema = create_app(settings).openapi()  # every documented route (the UI codec path is not one)
    routes = [(m.upper(), path) for path, ops in schema["paths"].items() for m in ops]
    assert len(routes) > 50
    checked = 0
    for method, path in routes:
        if path in ("/health", *DS_PUBLIC) or path.startswith("/codec/ui/"):
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        for headers in (NO_TOKEN, bearer("pp_not-a-real-token"), {"token": "wrong"}, {"authorization": "Basic eDp5"}):
            r = await api.request(method, url, headers=headers)
            assert r.status_code == 401, (method, path, headers, r.status_code, r.text)
        checked += 1
    assert checked > 50
    for public in ("/health", "/docs", "/openapi.json"):
        assert (await api.get(public, headers=NO_TOKEN)).status_code == 200
    # DS's `token` header works like Authorization: Bearer
    admin = api.headers.get("authorization") or ""
    token = await make_token(api, f"ds-{uuid.uuid4().hex[:6]}", [])
    assert (await api.get("/projects", headers={"token": token})).status_code == 200
    assert admin == ""  # the admin header is added per request by the test shim, not a client default


async def test_expired_and_revoked_tokens_are_refused_and_only_hashes_are_stored(
        api: httpx.AsyncClient, settings: Settings) -> None:
    short = await make_token(api, f"short-{uuid.uuid4().hex[:6]}", [], expiresDays=1.5 / 86400)  # 1.5 s
    assert (await api.get("/projects", headers=bearer(short))).status_code == 200
    await asyncio.sleep(2)
    r = await api.get("/projects", headers=bearer(short))
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    name = f"gone-{uuid.uuid4().hex[:6]}"
    revoked = await make_token(api, name, [])
    (row,) = [t for t in (await api.get("/tokens")).json() if t["user"] == name]
    assert (await api.delete(f"/tokens/{row['id']}")).status_code == 204
    assert (await api.get("/projects", headers=bearer(revoked))).status_code == 401
    listed = (await api.get("/tokens")).text
    assert revoked not in listed and short not in listed
    db = settings.resolved_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert revoked not in dump and short not in dump, "a token is stored in plaintext"


async def test_a_project_token_reaches_only_its_project(api: httpx.AsyncClient) -> None:
    pa, pb = _project(), _project()
    alice = await make_token(api, f"alice-{uuid.uuid4().hex[:6]}", [pa])
    bob = await make_token(api, f"bob-{uuid.uuid4().hex[:6]}", [pb])
    a_doc = dsbuild.export("in-a", [dsbuild.task("t", "echo from-a")], [(None, "t")], projectCode=pa)
    b_doc = dsbuild.export("in-b", [dsbuild.task("t", "echo from-b")], [(None, "t")], projectCode=pb)
    async with httpx.AsyncClient(transport=api._transport, base_url=str(api.base_url),  # noqa: SLF001
                                 headers=bearer(alice)) as a:
        # definitions: create in A, not in B; not overwrite or move B's
        r = await a.post("/definitions", json=a_doc)
        assert r.status_code == 201, r.text
        a_code = r.json()[0]["code"]
        assert (await a.post("/definitions", json=b_doc)).status_code == 403
        b_code = (await submit(api, b_doc))["code"]  # the admin makes B's
        moved = dsbuild.export("stolen", [dsbuild.task("t", "echo mine")], [(None, "t")], code=b_code,
                               projectCode=pa)
        assert (await a.post("/definitions", json=moved)).status_code == 403
        assert (await api.get(f"/definitions/{b_code}")).json()["projectCode"] == pb
        for path in (f"/definitions/{b_code}", f"/definitions/{b_code}/versions", f"/definitions/{b_code}/versions/1"):
            assert (await a.get(path)).status_code == 403, path
        assert (await a.get(f"/definitions/{a_code}")).status_code == 200
        listed = {d["code"] for d in (await a.get("/definitions", params={"limit": 1000})).json()}
        assert a_code in listed and b_code not in listed
        assert (await a.get("/definitions", params={"projectCode": pb})).status_code == 403

        # runs: start A's, not B's; B's run is closed to alice, A's to bob
        assert (await a.post(f"/definitions/{b_code}/runs", json={})).status_code == 403
        a_run = await start(a, a_code)
        status = await wait(a, a_run)
        assert status["state"] == "SUCCESS"
        b_run = await start(api, b_code)
        await wait(api, b_run)
        task_b = dsbuild.codes(b_doc)["t"]
        for method, path in (("GET", f"/runs/{b_run}"), ("GET", f"/runs/{b_run}/tasks/{task_b}/log"),
                             ("POST", f"/runs/{b_run}/stop"), ("POST", f"/runs/{b_run}/pause"),
                             ("POST", f"/runs/{b_run}/recover"), ("POST", f"/runs/{b_run}/rerun"),
                             ("POST", f"/runs/{b_run}/tasks/{task_b}/force-success")):
            assert (await a.request(method, path)).status_code == 403, (method, path)
        ids = {r["instanceId"] for r in (await a.get("/runs", params={"limit": 1000})).json()}
        assert a_run in ids and b_run not in ids
        assert (await a.get("/runs", params={"projectCode": pb})).status_code == 403
        r = await a.get(f"/runs/{a_run}/tasks/{dsbuild.codes(a_doc)['t']}/log")
        assert r.status_code == 200 and "from-a" in r.text
    async with httpx.AsyncClient(transport=api._transport, base_url=str(api.base_url),  # noqa: SLF001
                                 headers=bearer(bob)) as b:
        assert (await b.get(f"/runs/{a_run}")).status_code == 403
        assert (await b.get(f"/runs/{b_run}")).status_code == 200
        # an alert preview does not read another project's run (its start params)
        r = await api.post("/alert-groups", json={"name": f"sec-{uuid.uuid4().hex[:6]}"})
        assert r.status_code == 201, r.text
        gid = r.json()["id"]
        assert (await b.post(f"/alert-groups/{gid}/preview", json={"runId": a_run})).status_code == 403
        assert (await b.post(f"/alert-groups/{gid}/preview", json={"runId": b_run})).status_code == 200

        # schedules and complements: B's are bob's alone
        r = await api.post("/schedules", json={"processDefinitionCode": a_code, "crontab": "0 0 2 * * ? *",
                                               "timezoneId": "UTC"})
        assert r.status_code == 201, r.text
        a_sched = r.json()["id"]
        for method, path in (("GET", f"/schedules/{a_sched}"), ("PUT", f"/schedules/{a_sched}"),
                             ("POST", f"/schedules/{a_sched}/online"), ("POST", f"/schedules/{a_sched}/offline"),
                             ("POST", f"/schedules/{a_sched}/trigger"), ("GET", f"/schedules/{a_sched}/runs"),
                             ("DELETE", f"/schedules/{a_sched}"), ("GET", f"/definitions/{a_code}/schedule")):
            kwargs: dict[str, Any] = {"json": {"crontab": "0 0 3 * * ? *"}} if method == "PUT" else {}
            assert (await b.request(method, path, **kwargs)).status_code == 403, (method, path)
        assert (await b.post("/schedules", json={"processDefinitionCode": a_code, "crontab": "0 0 2 * * ? *"})
                ).status_code == 403
        assert a_sched not in {s["id"] for s in (await b.get("/schedules")).json()}
        assert (await b.post(f"/definitions/{a_code}/complements",
                             json={"scheduleTime": {"complementStartDate": "2024-06-01 00:00:00",
                                                    "complementEndDate": "2024-06-02 00:00:00"}})
                ).status_code == 403
    await api.delete(f"/schedules/{a_sched}")


async def test_admin_only_routes(api: httpx.AsyncClient) -> None:
    user = await make_token(api, f"plain-{uuid.uuid4().hex[:6]}", [])
    h = bearer(user)
    for method, path, body in (("GET", "/users", None), ("POST", "/users", {"name": "x"}),
                               ("GET", "/tokens", None), ("POST", "/tokens", {"name": "x", "admin": True}),
                               ("DELETE", "/tokens/1", None), ("PUT", "/task-groups/9", {"name": "g", "groupSize": 1}),
                               ("POST", "/datasources/rotate-keys", None),
                               ("POST", "/alert-channels/rotate-keys", None),
                               ("POST", "/alert-groups", {"name": "g"}), ("POST", "/projects", {"code": 1})):
        r = await api.request(method, path, json=body, headers=h)
        assert r.status_code == 403, (method, path, r.status_code)
    assert (await api.get("/users")).status_code == 200  # the admin may


async def test_datasources_are_owned_and_shared_by_grant(api: httpx.AsyncClient) -> None:
    suffix = uuid.uuid4().hex[:6]
    alice_name, bob_name = f"dsa-{suffix}", f"dsb-{suffix}"
    alice = bearer(await make_token(api, alice_name, []))
    bob = bearer(await make_token(api, bob_name, []))
    r = await api.post("/datasources", headers=alice, json={
        "name": f"pg-{suffix}", "type": "POSTGRESQL", "host": "127.0.0.1", "port": 5432, "database": "porpoise",
        "userName": "porpoise", "password": "stored-secret"})
    assert r.status_code == 201, r.text
    ds = r.json()["id"]
    assert (await api.get(f"/datasources/{ds}", headers=bob)).status_code == 403
    assert ds not in {d["id"] for d in (await api.get("/datasources", headers=bob)).json()}
    assert (await api.post(f"/datasources/{ds}/test", headers=bob)).status_code == 403
    assert (await api.put(f"/datasources/{ds}/grants/{alice_name}", headers=bob)).status_code == 403
    # a task cannot borrow a datasource its author was not granted (bob, project pb)
    pb = _project()
    r = await api.post("/projects", json={"code": pb, "name": "b", "owner": bob_name})
    assert r.status_code == 201, r.text
    borrow = dsbuild.export("borrow", [sql_task("q", "select 1", ds)], [(None, "q")], projectCode=pb)
    r = await api.post("/definitions", headers=bob, json=borrow)
    assert r.status_code == 403 and str(ds) in r.json()["detail"]
    assert (await api.put(f"/datasources/{ds}/grants/{bob_name}", headers=alice)).status_code == 204
    assert (await api.post("/definitions", headers=bob, json=borrow)).status_code == 201
    assert (await api.get(f"/datasources/{ds}", headers=bob)).status_code == 200
    assert ds in {d["id"] for d in (await api.get("/datasources", headers=bob)).json()}
    assert (await api.put(f"/datasources/{ds}", headers=bob, json={"note": "x"})).status_code == 403  # owner only
    assert (await api.delete(f"/datasources/{ds}", headers=bob)).status_code == 403

    # issue 12 item 4: a new host (port, user, ...) needs the password again, in updates and in tests
    for change in ({"host": "10.0.0.1"}, {"port": 6543}, {"userName": "postgres"}, {"database": "other"},
                   {"type": "MYSQL"}):
        r = await api.put(f"/datasources/{ds}", headers=alice, json=change)
        assert r.status_code == 422 and r.json()["problems"][0]["pointer"] == "/password", (change, r.text)
        r = await api.post(f"/datasources/{ds}/test", headers=alice, json=change)
        assert r.status_code == 422, (change, r.text)
    assert (await api.get(f"/datasources/{ds}", headers=alice)).json()["host"] == "127.0.0.1"
    # a test of changed settings uses only what the caller sent: its own password, nothing stored
    r = await api.post(f"/datasources/{ds}/test", headers=alice,
                       json={"port": _closed_port(), "password": "caller-sent"})
    assert r.status_code == 200 and r.json()["ok"] is False
    assert "stored-secret" not in r.text
    r = await api.put(f"/datasources/{ds}", headers=alice, json={"note": "only a note"})
    assert r.status_code == 200  # no identity change: no password needed
    r = await api.put(f"/datasources/{ds}", headers=alice, json={"port": 5433, "password": "new-secret"})
    assert r.status_code == 200 and r.json()["port"] == 5433
    assert (await api.delete(f"/datasources/{ds}", headers=alice)).status_code == 204


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _cli(api_url: str, *args: str, token: str | None = None) -> tuple[int, str, str]:
    env = dict(os.environ, PORPOISE_API_URL=api_url)
    if token is not None:
        env["PORPOISE_TOKEN"] = token
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "api", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_cli_token_commands(api_server: str, tmp_path: Path) -> None:
    project = _project()
    code, out, err = await _cli(api_server, "token", "create", f"cli-{uuid.uuid4().hex[:6]}", "--project",
                                str(project), "--expires", "1")
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    assert re.fullmatch(r"pp_[\w-]{40,}", token)
    async with httpx.AsyncClient(base_url=api_server) as c:
        r = await c.get("/projects", headers=bearer(token))
        assert r.status_code == 200 and [p["code"] for p in r.json()] == [project]
        assert (await c.get("/projects")).status_code == 401
    code, out, err = await _cli(api_server, "token", "list")
    assert code == 0 and token not in out
    token_id = next(line.split("\t")[0] for line in out.splitlines() if "cli-" in line and "active" in line)
    # the new token is no administrator: it cannot list tokens
    code, _, err = await _cli(api_server, "token", "list", token=token)
    assert code == 1 and "administrator" in err
    # a token file must be private
    token_file = tmp_path / "token"
    token_file.write_text(token)
    token_file.chmod(0o644)
    env_file = {"PORPOISE_TOKEN_FILE": str(token_file)}
    os.environ.update(env_file)
    try:
        code, _, err = await _cli(api_server, "token", "list", token="")
        assert code != 0 and "chmod 600" in err
        token_file.chmod(0o600)
        code, _, err = await _cli(api_server, "token", "list", token="")
        assert code == 1 and "administrator" in err  # the file's token was sent
    finally:
        os.environ.pop("PORPOISE_TOKEN_FILE", None)
    code, out, err = await _cli(api_server, "token", "revoke", token_id)
    assert code == 0, err
    async with httpx.AsyncClient(base_url=api_server) as c:
        assert (await c.get("/projects", headers=bearer(token))).status_code == 401
        # the cross-site trigger: no token, no run
        assert (await c.post("/schedules/1/trigger")).status_code == 401


@pytest.mark.parametrize("header", ["authorization", "token"])
async def test_header_forms(api: httpx.AsyncClient, header: str) -> None:
    token = await make_token(api, f"hdr-{uuid.uuid4().hex[:6]}", [])
    value = f"Bearer {token}" if header == "authorization" else token
    assert (await api.get("/projects", headers={header: value})).status_code == 200
    assert (await api.get("/projects", headers={header: value + "x"})).status_code == 401
