"""Shared pieces of the DataX integration tests: a worker + API of their own, task builders, scans.

The DataX tests run their own worker (own task queue, own SQLite registry, own log root) whose
settings point the DataX launcher at the contract stand-in ``tests/datax_stub/datax.py`` (a test
double, not DataX), so they can register the shared sample's fixed datasource id 1 without meeting
the session's datasources.
"""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from activities.logs import configure_task_logs
from api.app import create_app
from api.worker import build_worker
from core.settings import Settings
from tests import dsbuild

STUB = Path(__file__).resolve().parents[1] / "datax_stub" / "datax.py"


@asynccontextmanager
async def datax_stack(client: Client, base: Settings, root: Path, **overrides: Any
                      ) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    """A worker and an API app of their own, DataX pointing at the stand-in."""
    root.mkdir(parents=True, exist_ok=True)
    own = base.model_copy(update={
        "task_queue": f"{base.task_queue}-datax-{uuid.uuid4().hex[:6]}", "data_dir": root, "log_dir": None,
        "database_url": f"sqlite:///{root / 'porpoise.db'}", "datax_python": sys.executable,
        "datax_launcher": str(STUB), **overrides,
    })
    configure_task_logs(own)
    async with build_worker(client, own):
        app = create_app(own)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://porpoise") as api:
            yield own, api


def private_job_dirs() -> set[str]:
    """The local runner's private job directories that exist now (each must be gone after its run)."""
    return {p.name for p in Path(tempfile.gettempdir()).glob("porpoise-datax-*")}


def stream_job(mode: str, *, records: int = 3, error_limit: int = 0) -> str:
    """A custom-mode stream->stream job whose ``setting.stubMode`` picks the stand-in's behaviour."""
    return json.dumps({"job": {
        "content": [{"reader": {"name": "streamreader", "parameter": {
            "column": [{"value": "x", "type": "string"}], "sliceRecordCount": records}},
            "writer": {"name": "streamwriter", "parameter": {"print": False}}}],
        "setting": {"speed": {"channel": 1}, "errorLimit": {"record": error_limit}, "stubMode": mode}}})


def datax_task(name: str, *, local_params: list[dict[str, Any]] | None = None, fields: dict[str, Any] | None = None,
               **params: Any) -> dict[str, Any]:
    """A DS 3.2 DATAX task as the UI saves it; ``params`` override the UI-mode defaults, ``fields`` are the
    task definition's own (timeout, retries...)."""
    body: dict[str, Any] = {"customConfig": 0, "dsType": "MYSQL", "dataSource": 0, "dtType": "MYSQL",
                            "dataTarget": 0, "sql": "", "targetTable": "", "jobSpeedByte": 0, "jobSpeedRecord": 1000,
                            "preStatements": [], "postStatements": [], "xms": 1, "xmx": 1,
                            "localParams": local_params or [], "resourceList": []}
    return dsbuild.task(name, task_type="DATAX", params=body | params, **(fields or {}))


def recorded_jobs(directory: Path) -> list[str]:
    """The job texts the stand-in was given (it writes them when DATAX_STUB_RECORD_DIR is set)."""
    return [p.read_text() for p in sorted(directory.glob("job-*.json"), key=lambda p: p.stat().st_mtime)]


async def assert_run_keeps_secrets(client: Client, settings: Settings, instance: str, secrets: list[str]) -> None:
    """None of ``secrets`` in the run's Temporal history, its task logs or its lifecycle events."""
    from tests.integration.test_secrets import assert_absent, lifecycle_events, temporal_record

    assert_absent(secrets, await temporal_record(client, instance), "Temporal history")
    for path in (settings.resolved_log_dir / instance).rglob("*"):
        if path.is_file():
            assert_absent(secrets, path.read_bytes(), str(path))
    assert_absent(secrets, (lifecycle_events(settings, instance) or "").encode(), "lifecycle events")
