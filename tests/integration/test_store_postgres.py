"""Definitions on a real PostgreSQL (started by .ci/run), the production store."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import text

from model.formats import parse_document
from storage.definitions import DefinitionStore
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
