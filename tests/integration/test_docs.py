"""/docs and /redoc work offline: every asset they load is served by Porpoise itself."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from api.app import create_app
from core.settings import Settings


async def test_docs_and_redoc_load_only_local_assets(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, temporal_address="127.0.0.1:9"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1",
                                 timeout=30) as c:
        root = await c.get("/")
        assert root.status_code in (302, 307) and root.headers["location"] == "/docs"
        for page in ("/docs", "/redoc"):
            html = (await c.get(page)).text
            urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html) + re.findall(r"url: ?'([^']+)'", html)
            assert urls, html
            assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], (page, urls)
            for url in urls:
                asset = await c.get(url)
                assert asset.status_code == 200 and len(asset.content) > 100, (page, url)
        assert (await c.get("/openapi.json")).json()["info"]["title"] == "Porpoise"
