"""Alert groups and projects (issue 12): a group belongs to a project or is global. A general user
sees their projects' groups and the global ones, changes only the former, and reads a global group
without where its channels point; administrators see and change all. In-process API, real storage."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.integration.test_security_access import _project, bearer, make_token


def _hook(token: str) -> dict[str, Any]:
    return {"name": "hook", "type": "WEBHOOK",
            "params": {"url": f"http://hooks.example:9/notify?token={token}"}}


async def _group(api: httpx.AsyncClient, project: int | None, **headers: str) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"g-{uuid.uuid4().hex[:8]}"}
    if project is not None:
        body["projectCode"] = project
    r = await api.post("/alert-groups", json=body, headers=headers or None)
    assert r.status_code == 201, r.text
    assert r.json()["projectCode"] == project
    return dict(r.json())


async def test_alert_groups_belong_to_projects(api: httpx.AsyncClient) -> None:
    pa, pb = _project(), _project()
    alice = bearer(await make_token(api, f"ala-{uuid.uuid4().hex[:6]}", [pa]))
    secret = f"hook-{uuid.uuid4().hex}"
    glob, ga, gb = await _group(api, None), await _group(api, pa), await _group(api, pb)
    channels = {}
    for g in (glob, ga, gb):
        r = await api.post(f"/alert-groups/{g['id']}/channels", json=_hook(secret))
        assert r.status_code == 201, r.text
        channels[g["id"]] = r.json()["id"]
        assert r.json()["urlHint"] == "http://hooks.example:9/…"  # an administrator sees where it points

    # reading: A's and the global groups, never B's; the global one without where it points
    listed = {g["id"]: g for g in (await api.get("/alert-groups", headers=alice)).json()}
    assert glob["id"] in listed and ga["id"] in listed and gb["id"] not in listed
    assert listed[glob["id"]]["channels"][0].get("urlHint") is None  # absent or null: no hint
    assert listed[ga["id"]]["channels"][0]["urlHint"]
    r = await api.get("/alert-groups", headers=alice)
    assert secret not in r.text and "hooks.example" in r.text  # A's own hint only, no secret at all
    for path in (f"/alert-groups/{glob['id']}", f"/alert-groups/{glob['id']}/channels",
                 f"/alert-channels/{channels[glob['id']]}"):
        r = await api.get(path, headers=alice)
        assert r.status_code == 200 and "hooks.example" not in r.text and secret not in r.text, (path, r.text)
    for path in (f"/alert-groups/{gb['id']}", f"/alert-groups/{gb['id']}/channels",
                 f"/alert-channels/{channels[gb['id']]}"):
        assert (await api.get(path, headers=alice)).status_code == 403, path
    r = await api.post(f"/alert-groups/{gb['id']}/preview", json={}, headers=alice)
    assert r.status_code == 403, r.text
    assert (await api.post(f"/alert-groups/{glob['id']}/preview", json={}, headers=alice)).status_code == 200
    admin_ids = {g["id"] for g in (await api.get("/alert-groups")).json()}
    assert {glob["id"], ga["id"], gb["id"]} <= admin_ids

    # changing: not the global group nor B's
    for g in (glob, gb):
        gid, cid = g["id"], channels[g["id"]]
        for method, path, body in (("PUT", f"/alert-groups/{gid}", {"description": "mine"}),
                                   ("POST", f"/alert-groups/{gid}/channels", _hook("x")),
                                   ("POST", f"/alert-groups/{gid}/test", {}),
                                   ("PUT", f"/alert-channels/{cid}", {"enabled": False}),
                                   ("DELETE", f"/alert-channels/{cid}", None),
                                   ("GET", f"/alerts/deliveries?groupId={gid}", None),
                                   ("DELETE", f"/alert-groups/{gid}", None)):
            r = await api.request(method, path, json=body, headers=alice)
            assert r.status_code == 403, (method, path, r.status_code, r.text)
    assert (await api.get(f"/alert-groups/{glob['id']}")).json()["channels"][0]["enabled"] is True
    assert (await api.get("/alerts/deliveries", headers=alice)).status_code == 403  # no groupId: which of yours?

    # creating: only into one of the caller's projects
    for body in ({"name": f"n-{uuid.uuid4().hex[:6]}"}, {"name": f"n-{uuid.uuid4().hex[:6]}", "projectCode": pb}):
        r = await api.post("/alert-groups", json=body, headers=alice)
        assert r.status_code == 403, r.text
    mine = await _group(api, pa, **alice)

    # managing A's groups: channels, test sends, deliveries, moving (not out of A's reach), deleting
    for g in (ga, mine):
        r = await api.post(f"/alert-groups/{g['id']}/channels", json=_hook(secret) | {"name": "second"},
                           headers=alice)
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        r = await api.put(f"/alert-channels/{cid}", json={"enabled": False}, headers=alice)
        assert r.status_code == 200 and r.json()["enabled"] is False, r.text
        assert (await api.delete(f"/alert-channels/{cid}", headers=alice)).status_code == 204
        r = await api.get("/alerts/deliveries", params={"groupId": g["id"]}, headers=alice)
        assert r.status_code == 200, r.text
        for move in ({"projectCode": pb}, {"projectCode": None}):
            r = await api.put(f"/alert-groups/{g['id']}", json=move, headers=alice)
            assert r.status_code == 403, (move, r.text)
        r = await api.put(f"/alert-groups/{g['id']}", json={"description": "ours"}, headers=alice)
        assert r.status_code == 200 and r.json()["projectCode"] == pa, r.text
    assert (await api.delete(f"/alert-groups/{mine['id']}", headers=alice)).status_code == 204
    assert (await api.get(f"/alert-groups/{mine['id']}")).status_code == 404

    # an administrator moves groups freely: B's group into A reaches alice, A's made global leaves her hands
    r = await api.put(f"/alert-groups/{gb['id']}", json={"projectCode": pa})
    assert r.status_code == 200 and r.json()["projectCode"] == pa
    assert (await api.put(f"/alert-groups/{gb['id']}", json={"description": "now A's"}, headers=alice)
            ).status_code == 200
    r = await api.put(f"/alert-groups/{ga['id']}", json={"projectCode": None})
    assert r.status_code == 200 and r.json()["projectCode"] is None
    assert (await api.put(f"/alert-groups/{ga['id']}", json={"description": "x"}, headers=alice)
            ).status_code == 403
    for g in (glob, ga, gb):
        assert (await api.delete(f"/alert-groups/{g['id']}")).status_code == 204
