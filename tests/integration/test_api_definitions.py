"""The definitions API: every accepted format, versioning, and every bad-input case as a 4xx
problem+json naming what is wrong and where."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
import pytest

from tests import dsbuild
from tests.samples import SAMPLES


async def test_export_is_stored_and_versioned(api: httpx.AsyncClient) -> None:
    doc = dsbuild.export("versioned", [dsbuild.task("a")], [(None, "a")])
    first = (await api.post("/definitions", json=doc)).json()[0]
    assert first["version"] == 1 and first["createdVersion"] is True
    same = (await api.post("/definitions", json=doc)).json()[0]
    assert same["version"] == 1 and same["createdVersion"] is False
    doc[0]["taskDefinitionList"][0]["taskParams"]["rawScript"] = "echo changed"
    second = (await api.post("/definitions", json=doc)).json()[0]
    assert (second["code"], second["version"]) == (first["code"], 2)
    versions = (await api.get(f"/definitions/{first['code']}/versions")).json()
    assert [v["version"] for v in versions] == [1, 2]
    v1 = (await api.get(f"/definitions/{first['code']}/versions/1")).json()
    assert v1["tasks"][0]["taskParams"]["rawScript"] == "true"
    latest = (await api.get(f"/definitions/{first['code']}")).json()
    assert latest["version"] == 2
    listed = (await api.get("/definitions", params={"projectCode": 42})).json()
    assert first["code"] in [d["code"] for d in listed]


async def test_create_api_form_urlencoded(api: httpx.AsyncClient) -> None:
    form = json.loads((SAMPLES / "ds-create-api-v32-two-shell-test-fixture.json").read_text())
    form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in form.items() if not k.startswith("_")}
    r = await api.post("/definitions?projectCode=7", content=urlencode(form),
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 201, r.text
    saved = r.json()[0]
    assert saved["projectCode"] == 7 and saved["code"] > 2**31 and saved["runnable"]
    again = await api.post("/definitions?projectCode=7", content=urlencode(form),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert again.json()[0]["code"] == saved["code"]  # same project + name: same definition


@pytest.mark.parametrize("path", sorted(p.name for p in SAMPLES.glob("ds-*.json") if "taskparams" not in p.name))
async def test_every_sample_validates(api: httpx.AsyncClient, path: str) -> None:
    r = await api.post("/definitions/validate", content=(SAMPLES / path).read_bytes(),
                       headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()[0]["tasks"]


async def problems(api: httpx.AsyncClient, body: bytes, status: int = 422) -> list[dict]:
    r = await api.post("/definitions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    return list(r.json().get("problems") or [])


async def test_bad_definitions_get_pointers_and_task_names(api: httpx.AsyncClient) -> None:
    doc = dsbuild.export("bad", [dsbuild.task("a"), dsbuild.task("b"), dsbuild.task("c", "")],
                         [(None, "a"), ("a", "b"), ("b", "a"), (None, "c")])
    doc[0]["taskDefinitionList"][1]["taskType"] = "WARP"
    doc[0]["processTaskRelationList"].append({"preTaskCode": 1, "postTaskCode": doc[0]["taskDefinitionList"][0]
                                              ["code"]})
    found = {(p["code"], p["task"], p["pointer"]) for p in await problems(api, json.dumps(doc).encode())}
    assert ("unknown-type", "b", "/0/taskDefinitionList/1/taskType") in found
    assert ("required", "c", "/0/taskDefinitionList/2/taskParams/rawScript") in found
    assert ("unknown-code", None, "/0/processTaskRelationList/4/preTaskCode") in found
    assert any(code == "cycle" for code, _, _ in found)


async def test_malformed_and_oversized_payloads(api: httpx.AsyncClient, settings: object) -> None:
    (p,) = await problems(api, b"{oops")
    assert p["code"] == "malformed-json"
    big = json.dumps(dsbuild.export("big", [dsbuild.task("a", "x" * 3_500_000)], [(None, "a")])).encode()
    (p,) = await problems(api, big, status=413)
    assert p["code"] == "too-large"
    form = {"name": "f", "taskDefinitionJson": "[{", "taskRelationJson": "[]"}
    r = await api.post("/definitions", content=urlencode(form),
                       headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422 and r.json()["problems"][0]["pointer"] == "/taskDefinitionJson"


async def test_bad_run_requests_are_4xx(api: httpx.AsyncClient) -> None:
    saved = (await api.post("/definitions", json=dsbuild.export("runbad", [dsbuild.task("a")],
                                                                [(None, "a")]))).json()[0]
    r = await api.post(f"/definitions/{saved['code']}/runs", json={"startNodeList": [1234]})
    assert r.status_code == 422 and "1234" in r.json()["detail"]
    r = await api.post(f"/definitions/{saved['code']}/runs", json={"failureStrategy": "SOMETIMES"})
    assert r.status_code == 422 and r.json()["problems"][0]["pointer"] == "/failureStrategy"
    r = await api.post("/definitions/999/runs", json={})
    assert r.status_code == 404
    r = await api.get("/runs/no-such-run")
    assert r.status_code == 404
    r = await api.get("/runs/bad id!")
    assert r.status_code == 422


async def test_not_yet_runnable_types_are_stored_but_refused_at_start(api: httpx.AsyncClient) -> None:
    # DATAX runs now (docs/datax.md): the same sample with its tasks turned into SPARK, still recognised only.
    body = (SAMPLES / "ds-pyds-task_datax_example.create-api.json").read_bytes().replace(b"DATAX", b"SPARK")
    r = await api.post("/definitions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 201
    saved = r.json()[0]
    assert saved["runnable"] is False and saved["notRunnableTasks"]
    r = await api.post(f"/definitions/{saved['code']}/runs", json={})
    assert r.status_code == 422 and "SPARK" in r.json()["detail"]
