"""Definitions on a real PostgreSQL (started by .ci/run), the production store."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from core.events import EventType, LifecycleEvent
from model.formats import parse_document
from storage.definitions import DefinitionStore
from storage.outbox import GroupCommit, Outbox
from tests import dsbuild

URL = os.environ.get("PORPOISE_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not URL, reason="PORPOISE_TEST_POSTGRES_URL not set (.ci/run sets it)")


def test_versions_round_trip_on_postgres() -> None:
    assert URL
    store = DefinitionStore(URL)
    with store.engine.connect() as c:
        assert c.execute(text("select version()")).scalar_one().startswith("PostgreSQL")
    # The PostgreSQL database outlives a test run: use a definition code no earlier run used.
    code = 8_000_000_000_000 + uuid.uuid4().int % 10**12
    doc = dsbuild.export(f"pg-{uuid.uuid4().hex[:6]}", [dsbuild.task("a")], [(None, "a")], code=code)
    d = parse_document(doc)[0]
    first = store.save(d)
    assert first.created_version and first.definition.version == 1
    assert not store.save(d).created_version
    changed = d.model_copy(update={"description": "changed"})
    second = store.save(changed)
    assert second.definition.version == 2
    assert store.get(d.code, 1) == first.definition
    assert store.get(d.code) == second.definition
    assert [v["version"] for v in store.versions(d.code)] == [1, 2]
    store.dispose()


def test_the_outbox_writer_outlives_its_connection_being_killed() -> None:
    """The group-commit writer keeps one connection between batches. PostgreSQL ending it (a restart,
    an administrator's pg_terminate_backend) costs the next batch nothing: it is committed on a new one."""
    assert URL
    outbox = Outbox(URL)
    writer = GroupCommit(outbox)
    run = f"pg-writer-{uuid.uuid4().hex[:8]}"

    def event(n: int) -> LifecycleEvent:
        return LifecycleEvent(event_id=f"{run}/{n}", event_type=EventType.WORKFLOW_INSTANCE_STATE_CHANGED,
                              timestamp=datetime.now(UTC), project_code=1, definition_code=2, definition_version=1,
                              instance_id=run, workflow_id=run, run_id=run, new_state="RUNNING_EXECUTION")

    writer.append_blocking([event(1)], timeout=10)
    held = writer._connection
    assert held is not None
    pid = held.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]  # psycopg's
    with outbox.engine.connect() as c:
        assert c.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    writer.append_blocking([event(2)], timeout=10)
    assert writer._connection is not held
    writer.close()
    assert [e["event_id"] for _, e in outbox.tail(0, 10_000, run)] == [f"{run}/1", f"{run}/2"]
    outbox.dispose()
