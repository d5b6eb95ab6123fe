"""General users on the DS REST API: the native API's project and datasource rules, in DS's words, and
one project registry for DS and Porpoise. Against the in-process app with real storage, Temporal and a
worker (the session's ``api``); each user has a token of its own (``POST /tokens`` as the admin).

DS answers a project the caller may not use with ``USER_NO_OPERATION_PROJECT_PERM`` (30002) and any
other refusal with ``USER_NO_OPERATION_PERM`` (30001), both HTTP 200 (``ApiExceptionHandler``)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from api.app import create_app
from core.settings import Settings
from tests import dsbuild
from tests.integration import test_ds_rest
from tests.integration.conftest_sql import sql_task
from tests.integration.test_ds_rest import DS, envelope_err, envelope_ok

NO_PROJECT_PERM, NO_PERM = 30002, 30001
PAGE = {"pageNo": 1, "pageSize": 100}


async def user_token(api: httpx.AsyncClient, name: str, projects: list[int] | None = None) -> dict[str, str]:
    """A general user's DS ``token`` header (the user is made with the token)."""
    r = await api.post("/tokens", json={"name": name, "projects": projects or []})
    assert r.status_code == 201, r.text
    return {"token": r.json()["token"]}


async def ds(api: httpx.AsyncClient, who: dict[str, str], method: str, path: str,
             data: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
    return await api.request(method, DS + path, data=data, headers=who, **kw)


async def project_of(api: httpx.AsyncClient, who: dict[str, str], name: str) -> int:
    return int(envelope_ok(await ds(api, who, "POST", "/projects", {"projectName": name}), 201)["code"])


def _names(page: dict[str, Any]) -> set[str]:
    return {p["name"] for p in page["totalList"]}


async def test_projects_are_one_registry_and_a_general_user_sees_only_theirs(api: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    alice = await user_token(api, f"pa-{tag}")
    admin = test_ds_rest.TOKEN
    mine = await project_of(api, alice, f"mine-{tag}")  # a general user may create a project: its owner
    other = await project_of(api, admin, f"other-{tag}")

    # the project list shows only the caller's projects (the admin's: all)
    listed = envelope_ok(await ds(api, alice, "GET", "/projects", params=PAGE | {"searchVal": tag}))
    assert _names(listed) == {f"mine-{tag}"} and listed["total"] == 1
    assert listed["totalList"][0]["userName"] == f"pa-{tag}"
    assert _names(envelope_ok(await ds(api, alice, "GET", "/v2/projects", params=PAGE | {"searchVal": tag}))) == {
        f"mine-{tag}"}
    assert {p["code"] for p in envelope_ok(await ds(api, alice, "GET", "/projects/list"))} == {mine}
    assert _names(envelope_ok(await ds(api, admin, "GET", "/projects", params=PAGE | {"searchVal": tag}))) == {
        f"mine-{tag}", f"other-{tag}"}

    # own project: read, change, its definitions; another's: DS's project permission error
    assert envelope_ok(await ds(api, alice, "GET", f"/projects/{mine}"))["code"] == mine
    envelope_ok(await ds(api, alice, "PUT", f"/projects/{mine}", {"projectName": f"mine-{tag}", "description": "x"}))
    envelope_ok(await ds(api, alice, "GET", f"/projects/{mine}/process-definition", params=PAGE))
    for method, path, data in (("GET", f"/projects/{other}", None), ("GET", f"/v2/projects/{other}", None),
                               ("PUT", f"/projects/{other}", {"projectName": "taken-over"}),
                               ("DELETE", f"/projects/{other}", None),
                               ("GET", f"/projects/{other}/process-definition", PAGE),
                               ("GET", f"/projects/{other}/process-definition/simple-list", None),
                               ("GET", f"/projects/{other}/process-instances", PAGE),
                               ("GET", f"/projects/{other}/task-instances", PAGE),
                               ("GET", f"/projects/{other}/schedules", PAGE),
                               ("POST", f"/projects/{other}/executors/start-process-instance",
                                {"processDefinitionCode": 1}),
                               ("GET", "/projects/0/process-definition", PAGE)):  # "no project" is nobody's
        kw = {"params": data} if method == "GET" else {"data": data}
        r = await api.request(method, DS + path, headers=alice, **kw)
        msg = envelope_err(r, NO_PROJECT_PERM)
        assert f"pa-{tag}" in msg, (method, path, msg)
    assert envelope_ok(await ds(api, admin, "GET", f"/projects/{other}"))["name"] == f"other-{tag}"  # untouched

    # the same project for Porpoise's own API: its list, and the native project check
    alice_bearer = {"authorization": f"Bearer {alice['token']}"}
    native = await api.get("/projects", headers=alice_bearer)
    assert native.status_code == 200 and {p["code"] for p in native.json()} == {mine}
    assert native.json()[0]["owner"] == f"pa-{tag}"
    assert (await api.get("/definitions", params={"projectCode": mine}, headers=alice_bearer)).status_code == 200
    assert (await api.get("/definitions", params={"projectCode": other}, headers=alice_bearer)).status_code == 403

    # a token authorized for a DS project (`porpoise token create --project CODE`) reaches it
    bob = await user_token(api, f"pb-{tag}", [other])
    assert envelope_ok(await ds(api, bob, "GET", f"/projects/{other}"))["code"] == other
    assert _names(envelope_ok(await ds(api, bob, "GET", "/projects", params=PAGE | {"searchVal": tag}))) == {
        f"other-{tag}"}
    envelope_err(await ds(api, bob, "GET", f"/projects/{mine}"), NO_PROJECT_PERM)

    # the owner deletes their project; it is gone for Porpoise too
    envelope_ok(await ds(api, alice, "DELETE", f"/projects/{mine}"))
    assert (await api.get("/projects", headers=alice_bearer)).json() == []


async def test_a_general_user_runs_in_their_project_and_nobody_else_reads_it(
        api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    tag = uuid.uuid4().hex[:8]
    alice, eve = await user_token(api, f"ra-{tag}"), await user_token(api, f"re-{tag}")
    project = await project_of(api, alice, f"run-{tag}")
    monkeypatch.setattr(test_ds_rest, "TOKEN", alice)  # test_ds_rest's helpers as alice
    d = await test_ds_rest.create_definition(api, project, f"run-{tag}")
    envelope_ok(await ds(api, alice, "POST", f"/projects/{project}/process-definition/{d['code']}/release",
                         {"releaseState": "ONLINE"}))
    trigger = envelope_ok(await ds(api, alice, "POST", f"/projects/{project}/executors/start-process-instance",
                                   {"processDefinitionCode": d["code"], "failureStrategy": "CONTINUE",
                                    "warningType": "NONE", "scheduleTime": ""}))
    (found,) = envelope_ok(await ds(api, alice, "GET", f"/projects/{project}/process-instances/trigger",
                                    params={"triggerCode": trigger}))
    inst = await test_ds_rest.poll_instance(api, project, found["id"])
    assert inst["state"] == "SUCCESS"
    tasks = envelope_ok(await ds(api, alice, "GET", f"/projects/{project}/process-instances/{found['id']}/tasks"))
    task_id = tasks["taskList"][0]["id"]
    log = {"taskInstanceId": task_id, "skipLineNum": 0, "limit": 100}
    assert envelope_ok(await ds(api, alice, "GET", "/log/detail", params=log))["lineNum"] >= 1

    # eve: not authorized for alice's project, by its own path or through her own project's path
    envelope_err(await ds(api, eve, "GET", f"/projects/{project}/process-instances/{found['id']}"), NO_PROJECT_PERM)
    envelope_err(await ds(api, eve, "GET", f"/projects/{project}/process-definition/{d['code']}"), NO_PROJECT_PERM)
    envelope_err(await ds(api, eve, "POST", f"/projects/{project}/executors/execute",
                          {"processInstanceId": found["id"], "executeType": "REPEAT_RUNNING"}), NO_PROJECT_PERM)
    envelope_err(await ds(api, eve, "GET", "/log/detail", params=log), NO_PROJECT_PERM)  # no project in the path
    envelope_err(await ds(api, eve, "GET", "/log/download-log", params={"taskInstanceId": task_id}), NO_PROJECT_PERM)
    hers = await project_of(api, eve, f"eve-{tag}")
    envelope_err(await ds(api, eve, "GET", f"/projects/{hers}/process-instances/{found['id']}"), 50001)
    envelope_err(await ds(api, eve, "GET", f"/log/{hers}/detail", params=log), 10008)
    envelope_err(await ds(api, eve, "POST", f"/projects/{hers}/task-instances/{task_id}/force-success"), 10008)
    envelope_err(await ds(api, eve, "GET", f"/projects/{hers}/process-definition/{d['code']}"), 50003)
    listed = envelope_ok(await ds(api, eve, "GET", f"/projects/{hers}/process-instances", params=PAGE))
    assert found["id"] not in {i["id"] for i in listed["totalList"]}


async def test_datasources_are_the_owners_or_granted(api: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    alice_name, bob_name = f"da-{tag}", f"db-{tag}"
    alice, bob = await user_token(api, alice_name), await user_token(api, bob_name)
    body = {"type": "POSTGRESQL", "name": f"pg-{tag}", "host": "127.0.0.1", "port": 5432, "database": "porpoise",
            "userName": "porpoise", "password": "stored-secret", "other": {}}
    ds_id = envelope_ok(await api.post(DS + "/datasources", json=body, headers=alice), 201)["id"]

    # not bob's: not listed, not readable, not testable, not changeable
    assert ds_id not in {d["id"] for d in envelope_ok(await ds(api, bob, "GET", "/datasources", params=PAGE))[
        "totalList"]}
    assert ds_id not in {d["id"] for d in envelope_ok(await ds(api, bob, "GET", "/datasources/list",
                                                               params={"type": "POSTGRESQL"}))}
    envelope_err(await ds(api, bob, "GET", f"/datasources/{ds_id}"), NO_PERM)
    envelope_err(await ds(api, bob, "GET", f"/datasources/{ds_id}/connect-test"), NO_PERM)
    envelope_err(await api.put(DS + f"/datasources/{ds_id}", json={**body, "note": "x"}, headers=bob), NO_PERM)
    envelope_err(await ds(api, bob, "DELETE", f"/datasources/{ds_id}"), NO_PERM)
    # ...nor usable by a task of his (a DS export imported into his project names it)
    project = await project_of(api, bob, f"dsb-{tag}")
    export = dsbuild.export(f"borrow-{tag}", [sql_task("q", "select 1", ds_id)], [(None, "q")])
    upload = {"file": ("export.json", json.dumps(export).encode(), "application/json")}
    envelope_err(await ds(api, bob, "POST", f"/projects/{project}/process-definition/import", files=upload), NO_PERM)

    # granted (Porpoise's grant route, by the owner): bob reads and uses it, still cannot change it
    r = await api.put(f"/datasources/{ds_id}/grants/{bob_name}", headers={"authorization": f"Bearer {alice['token']}"})
    assert r.status_code == 204, r.text
    assert envelope_ok(await ds(api, bob, "GET", f"/datasources/{ds_id}"))["id"] == ds_id
    assert ds_id in {d["id"] for d in envelope_ok(await ds(api, bob, "GET", "/datasources", params=PAGE))[
        "totalList"]}
    envelope_ok(await ds(api, bob, "POST", f"/projects/{project}/process-definition/import", files=upload))
    envelope_err(await api.put(DS + f"/datasources/{ds_id}", json={**body, "note": "x"}, headers=bob), NO_PERM)

    # the owner changes it; where it connects only with the password again
    no_password = {k: v for k, v in body.items() if k != "password"}
    msg = envelope_err(await api.put(DS + f"/datasources/{ds_id}", json={**no_password, "host": "10.0.0.1"},
                                     headers=alice), 10001)
    assert "password" in msg and "host" in msg
    upd = envelope_ok(await api.put(DS + f"/datasources/{ds_id}", json={**no_password, "note": "only a note"},
                                     headers=alice))
    assert upd["note"] == "only a note"
    envelope_ok(await ds(api, alice, "DELETE", f"/datasources/{ds_id}"))


async def test_admin_only_routes_refuse_a_general_user(api: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    user = await user_token(api, f"ao-{tag}")
    admin = test_ds_rest.TOKEN
    group = envelope_ok(await ds(api, admin, "POST", "/alert-groups", {"groupName": f"ag-{tag}",
                                                                       "alertInstanceIds": ""}), 201)
    other = await project_of(api, admin, f"ao-{tag}")
    for method, path, data in (
            ("POST", "/task-group/create", {"name": f"tg-{tag}", "groupSize": 1, "description": ""}),
            ("POST", "/task-group/update", {"id": 1, "name": "x", "groupSize": 1, "description": ""}),
            ("POST", "/alert-groups", {"groupName": f"ag2-{tag}", "alertInstanceIds": ""}),
            ("PUT", f"/alert-groups/{group['id']}", {"groupName": "renamed", "alertInstanceIds": ""}),
            ("DELETE", f"/alert-groups/{group['id']}", None)):
        envelope_err(await ds(api, user, method, path, data), NO_PERM)
    # reading is for everyone with a token, a project's task groups for who may use it
    envelope_ok(await ds(api, user, "GET", "/task-group/list-paging", params=PAGE))
    assert envelope_ok(await ds(api, user, "GET", "/alert-groups", params=PAGE | {"searchVal": f"ag-{tag}"}))[
        "total"] == 1
    envelope_err(await ds(api, user, "GET", "/task-group/query-list-by-projectCode",
                          params=PAGE | {"projectCode": other}), NO_PROJECT_PERM)
    # another project's alert group (made through Porpoise's API): neither listed nor readable by id
    r = await api.post("/alert-groups", json={"name": f"ag-{tag}-other", "projectCode": other})
    assert r.status_code == 201, r.text
    foreign = r.json()["id"]
    listed = envelope_ok(await ds(api, user, "GET", "/alert-groups", params=PAGE | {"searchVal": f"ag-{tag}"}))
    assert [g["groupName"] for g in listed["totalList"]] == [f"ag-{tag}"], listed
    assert foreign not in {g["id"] for g in envelope_ok(await ds(api, user, "GET", "/alert-groups/list"))}
    envelope_err(await ds(api, user, "POST", "/alert-groups/query", {"id": foreign}), 10011)
    assert envelope_ok(await ds(api, admin, "POST", "/alert-groups/query", {"id": foreign}))["id"] == foreign
    envelope_ok(await ds(api, admin, "DELETE", f"/alert-groups/{foreign}"))
    envelope_ok(await ds(api, admin, "DELETE", f"/alert-groups/{group['id']}"))


def test_every_ds_route_documents_its_2xx_answer(settings: Settings) -> None:
    """/openapi.json: every /dolphinscheduler operation has a 2xx response with a schema (DS's envelope,
    typed paging where the route pages)."""
    schema = create_app(settings).openapi()
    checked, missing = 0, []
    for path, ops in schema["paths"].items():
        if not path.startswith(DS + "/"):
            continue
        for method, op in ops.items():
            schemas = [media.get("schema") for code, resp in op.get("responses", {}).items() if code.startswith("2")
                       for media in resp.get("content", {}).values()]
            if not any(schemas):
                missing.append(f"{method.upper()} {path}")
            checked += 1
    assert checked > 60 and not missing, missing
    paged = schema["paths"][DS + "/projects"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    ref = paged["$ref"].rsplit("/", 1)[-1]
    data = schema["components"]["schemas"][ref]["properties"]["data"]
    page_ref = next(s["$ref"] for s in data.get("anyOf", [data]) if "$ref" in s).rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][page_ref]["properties"]) >= {
        "totalList", "total", "totalPage", "pageSize", "currentPage"}
