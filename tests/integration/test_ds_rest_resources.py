"""DS REST datasources, task groups and alert groups: DS's bodies in, DS's envelopes and codes out."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx

from tests.integration.test_ds_rest import DS, TOKEN, envelope_err, envelope_ok, form


async def test_datasources_crud_and_connection_test(api: httpx.AsyncClient, tmp_path: Path) -> None:
    db = tmp_path / "ds.sqlite"
    sqlite3.connect(db).close()
    name = f"sqlite-{time.time_ns()}"
    body = {"type": "SQLITE", "name": name, "note": "n", "host": "", "port": "", "database": str(db),
            "userName": "", "password": "", "other": {}, "mode": "", "principal": ""}  # UI leftovers dropped
    created = envelope_ok(await api.post(DS + "/datasources", content=json.dumps(body),
                                         headers=TOKEN | {"content-type": "application/json"}), 201)
    ds_id = created["id"]
    assert created["name"] == name and created["type"] == "SQLITE" and "connectionParams" in created
    envelope_err(await api.post(DS + "/datasources", json=body, headers=TOKEN), 10015)
    envelope_err(await api.post(DS + "/datasources", content=b"not json",
                                 headers=TOKEN | {"content-type": "application/json"}), 10001)
    envelope_err(await api.post(DS + "/datasources", json={**body, "name": "x2", "type": "NOSUCHDB"},
                                headers=TOKEN), 10001)
    got = envelope_ok(await form(api, "GET", f"/datasources/{ds_id}"))
    assert got["database"] == str(db) and got["password"] == "" and got["userName"] == ""
    page = envelope_ok(await form(api, "GET", "/datasources", params={"pageNo": 1, "pageSize": 10,
                                                                       "searchVal": name}))
    assert page["total"] == 1 and page["totalList"][0]["id"] == ds_id
    assert envelope_ok(await form(api, "GET", f"/datasources/{ds_id}/connect-test")) is True
    missing = str(tmp_path / "nope" / "missing.sqlite")
    envelope_err(await api.post(DS + "/datasources/connect", json={**body, "database": missing}, headers=TOKEN),
                 10037)
    upd = envelope_ok(await api.put(DS + f"/datasources/{ds_id}", json={**body, "note": "changed"}, headers=TOKEN))
    assert upd["note"] == "changed"
    by_type = envelope_ok(await form(api, "GET", "/datasources/list", params={"type": "SQLITE"}))
    assert any(d["id"] == ds_id for d in by_type)
    envelope_ok(await form(api, "DELETE", f"/datasources/{ds_id}"))
    envelope_err(await form(api, "GET", f"/datasources/{ds_id}"), 20004)
    envelope_err(await form(api, "GET", "/datasources/abc"), 10001)


async def test_task_groups(api: httpx.AsyncClient) -> None:
    name = f"tg-{time.time_ns()}"
    g = envelope_ok(await form(api, "POST", "/task-group/create", {"name": name, "projectCode": 0,
                                                                     "description": "d", "groupSize": 2}), 201)
    assert g["groupSize"] == 2 and g["name"] == name and isinstance(g["id"], int)
    envelope_err(await form(api, "POST", "/task-group/create", {"name": name, "description": "d", "groupSize": 2}),
                 130001)
    envelope_err(await form(api, "POST", "/task-group/create", {"name": "z", "description": "d", "groupSize": 0}),
                 130002)
    envelope_err(await form(api, "POST", "/task-group/create", {"name": "z", "description": "d"}), 10001)
    upd = envelope_ok(await form(api, "POST", "/task-group/update", {"id": g["id"], "name": name,
                                                                       "description": "d2", "groupSize": 5}), 201)
    assert upd["groupSize"] == 5
    page = envelope_ok(await form(api, "GET", "/task-group/list-paging", params={"pageNo": 1, "pageSize": 50,
                                                                                  "name": name}))
    assert page["total"] == 1 and page["totalList"][0]["groupSize"] == 5


async def test_alert_groups(api: httpx.AsyncClient) -> None:
    name = f"ag-{time.time_ns()}"
    g = envelope_ok(await form(api, "POST", "/alert-groups", {"groupName": name, "description": "d",
                                                               "alertInstanceIds": ""}), 201)
    assert g["groupName"] == name
    envelope_err(await form(api, "POST", "/alert-groups", {"groupName": name, "alertInstanceIds": ""}), 10012)
    envelope_err(await form(api, "POST", "/alert-groups", {"groupName": name}), 10001)
    page = envelope_ok(await form(api, "GET", "/alert-groups", params={"pageNo": 1, "pageSize": 10,
                                                                        "searchVal": name}))
    assert page["total"] == 1
    envelope_ok(await form(api, "PUT", f"/alert-groups/{g['id']}", {"groupName": name + "-x",
                                                                     "alertInstanceIds": ""}))
    assert envelope_ok(await form(api, "POST", "/alert-groups/query", {"id": g["id"]}))["groupName"] == name + "-x"
    envelope_ok(await form(api, "DELETE", f"/alert-groups/{g['id']}"))
    envelope_err(await form(api, "DELETE", f"/alert-groups/{g['id']}"), 10011)


async def test_remaining_lookups(api: httpx.AsyncClient, tmp_path: Path) -> None:
    """The list and verify routes the other tests do not cross."""
    stamp = time.time_ns()
    info = (await api.get(DS + "/actuator/info")).json()
    assert info["app"]["dolphinscheduler"].startswith("3.2")
    db = tmp_path / "v.sqlite"
    sqlite3.connect(db).close()
    name = f"verify-{stamp}"
    envelope_ok(await form(api, "GET", "/datasources/verify-name", params={"name": name}))
    envelope_ok(await api.post(DS + "/datasources", json={"type": "SQLITE", "name": name, "database": str(db)},
                               headers=TOKEN), 201)
    envelope_err(await form(api, "GET", "/datasources/verify-name", params={"name": name}), 10015)
    envelope_err(await form(api, "GET", "/datasources/list"), 10001)
    group = f"ag-{stamp}"
    envelope_ok(await form(api, "GET", "/alert-groups/verify-name", params={"groupName": group}))
    g = envelope_ok(await form(api, "POST", "/alert-groups", {"groupName": group, "alertInstanceIds": ""}), 201)
    envelope_err(await form(api, "GET", "/alert-groups/verify-name", params={"groupName": group}), 10012)
    for path in ("/alert-groups/list", "/alert-groups/normal-list"):
        assert any(x["id"] == g["id"] for x in envelope_ok(await form(api, "GET", path)))
    tg = envelope_ok(await form(api, "POST", "/task-group/create", {"name": f"tg-{stamp}", "projectCode": 77,
                                                                      "description": "", "groupSize": 1}), 201)
    by_project = envelope_ok(await form(api, "GET", "/task-group/query-list-by-projectCode",
                                        params={"projectCode": 77, "pageNo": 1, "pageSize": 100}))
    assert tg["id"] in [x["id"] for x in by_project["totalList"]]
    assert all(x["projectCode"] == 77 for x in by_project["totalList"])
    by_status = envelope_ok(await form(api, "GET", "/task-group/query-list-by-status",
                                       params={"status": 1, "pageNo": 1, "pageSize": 1000}))
    assert tg["id"] in [x["id"] for x in by_status["totalList"]]
    envelope_err(await form(api, "POST", "/task-group/update", {"id": 987654, "name": "x", "description": "",
                                                                 "groupSize": 1}), 10001)
