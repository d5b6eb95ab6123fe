"""Cross-site safety and private files, against the API over real HTTP (uvicorn) and in process.

The recipe of issue 12: a page in the operator's browser POSTs a ``text/plain`` body to
``/definitions`` (a simple request, no preflight), or reaches the API under a rebound host name."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import httpx

from api.app import create_app
from api.devserver import devserver_command
from core.codec import key_file
from core.settings import Settings
from tests import dsbuild


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _doc() -> list[dict[str, object]]:
    return dsbuild.export(f"xsite-{uuid.uuid4().hex[:6]}", [dsbuild.task("t", "echo pwned")], [(None, "t")])


async def test_text_plain_and_unlabelled_bodies_are_refused(api_server: str, api: httpx.AsyncClient) -> None:
    doc = _doc()
    code = doc[0]["processDefinition"]["code"]  # type: ignore[index]
    async with httpx.AsyncClient(base_url=api_server, timeout=30) as c:
        for content_type in ("text/plain", "text/plain;charset=UTF-8", None):
            headers = {"content-type": content_type} if content_type else {}
            r = await c.post("/definitions", content=json.dumps(doc).encode(), headers=headers)
            assert r.status_code == 415, (content_type, r.status_code, r.text)
            assert "application/json" in r.json()["detail"]
        # form encodings: only with a token header (a page cannot add one without a preflight)
        r = await c.post("/definitions", data={"name": "x", "taskDefinitionJson": "[]"})
        assert r.status_code == 415 and "token header" in r.json()["detail"]
        form = {"content-type": "application/x-www-form-urlencoded", "token": "x"}
        r = await c.post("/runs/ds-1-x/stop", content=b"a=b", headers=form)  # no form on this route
        assert r.status_code == 415
        # a body-less POST is not refused by this rule (the token check answers it)
        r = await c.post("/schedules/1/trigger")
        assert r.status_code != 415
    r = await api.get(f"/definitions/{code}")
    assert r.status_code == 404, "the cross-site body created a definition"


async def test_foreign_host_header_is_refused(api_server: str, settings: Settings) -> None:
    port = api_server.rsplit(":", 1)[1]
    async with httpx.AsyncClient(base_url=api_server, timeout=30) as c:
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "localhostx"):
            r = await c.get("/definitions", headers={"host": host})
            assert r.status_code == 400, (host, r.status_code)
            assert r.json()["title"] == "Host not allowed"
        r = await c.get("/health", headers={"host": "rebind.example"})
        assert r.status_code == 400
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
            r = await c.get("/health", headers={"host": host})
            assert r.status_code == 200, (host, r.status_code)
    extra = settings.model_copy(update={"allowed_hosts": ["porpoise.internal:8443"]})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(extra)),
                                 base_url="http://porpoise.internal:8443") as c:
        assert (await c.get("/health")).status_code == 200
        assert (await c.get("/health", headers={"host": "porpoise.internal:9999"})).status_code == 400


async def test_cors_is_off_unless_configured(api_server: str, settings: Settings) -> None:
    preflight = {"origin": "http://evil.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "content-type"}
    async with httpx.AsyncClient(base_url=api_server, timeout=30) as c:
        r = await c.options("/definitions", headers=preflight)
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
        r = await c.get("/health", headers={"origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        # the codec endpoints answer the Temporal UI's origin, and only it
        ui = settings.temporal_ui_url.rstrip("/")
        r = await c.options("/codec/decode", headers=preflight | {"origin": ui})
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == ui
        r = await c.options("/codec/decode", headers=preflight)
        assert r.status_code == 403
        r = await c.options("/definitions", headers=preflight | {"origin": ui})
        assert r.status_code == 403
    shop = settings.model_copy(update={"cors_origins": ["https://console.example"]})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(shop)), base_url="http://porpoise") as c:
        r = await c.options("/definitions", headers=preflight | {"origin": "https://console.example"})
        assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "https://console.example"
        r = await c.get("/health", headers={"origin": "https://console.example"})
        assert r.headers["access-control-allow-origin"] == "https://console.example"


async def test_data_dir_files_are_private(api: httpx.AsyncClient, settings: Settings, tmp_path: Path) -> None:
    from tests.integration.helpers import run

    status = await run(api, _doc())
    assert status["state"] == "SUCCESS"
    db = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
    assert _mode(db) == 0o600
    assert _mode(key_file(settings)) == 0o600
    logs = [p for p in settings.resolved_log_dir.rglob("*.log") if status["instanceId"] in str(p)]
    assert logs and all(_mode(p) == 0o600 for p in logs)
    assert all(_mode(p.parent) == 0o700 for p in logs)
    # an existing dev-server database (the server makes it 0644) is made 0600 before the server starts
    temporal_db = tmp_path / "old" / "temporal.db"
    temporal_db.parent.mkdir()
    temporal_db.write_bytes(b"")
    temporal_db.chmod(0o644)
    devserver_command(db_file=temporal_db)
    assert _mode(temporal_db) == 0o600
    # a data dir made by a Porpoise process is 0700
    fresh = Settings(data_dir=tmp_path / "new-data", dev_mode=True)  # type: ignore[call-arg]
    key_file(fresh)  # naming the file creates nothing
    from core.codec import codec_for

    codec_for(fresh)
    assert _mode(tmp_path / "new-data") == 0o700 and _mode(key_file(fresh)) == 0o600
