"""storage/ds_ids.py: DS integer ids survive a reopen and are given once under concurrency, on SQLite and
(when PORPOISE_TEST_POSTGRES_URL is set) PostgreSQL, in a schema of its own: opening the database
migrates it to this branch's head, which the shared database's other users may not know."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from storage.db import open_engine
from storage.ds_ids import DsIds, NameTaken

PG_URL = os.environ.get("PORPOISE_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ids.db'}"
        return
    if not PG_URL:
        pytest.skip("PORPOISE_TEST_POSTGRES_URL not set")
    schema = f"dsids_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as c:
        c.execute(text(f"create schema {schema}"))
    try:
        yield make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as c:
            c.execute(text(f"drop schema {schema} cascade"))
        admin.dispose()


def test_ids_are_durable_and_given_once(url: str) -> None:
    wid = f"ds-1-{uuid.uuid4().hex}"
    ids = DsIds(url)
    try:
        with ThreadPoolExecutor(8) as pool:  # racing first sights of one instance get one id
            got = set(pool.map(lambda _: ids.instance_id(wid, 7, 9, 11), range(16)))
        assert len(got) == 1
        instance = got.pop()
        task = ids.task_instance_id(wid, 1, 42, 1)
        retry = ids.task_instance_id(wid, 1, 42, 2)
        rerun = ids.task_instance_id(wid, 2, 42, 1)
        assert len({task, retry, rerun}) == 3
        name = f"proj-{uuid.uuid4().hex[:8]}"
        project = ids.create_project(name, "d", 0)
        with pytest.raises(NameTaken):
            ids.create_project(name)
        ids.set_definition_meta(123456789012, release_state="ONLINE", locations="[]")
    finally:
        ids.engine.dispose()
    again = DsIds(open_engine(url))  # a new engine on the same database, as another process has
    try:
        assert again.instance_id(wid) == instance and again.workflow_id(instance) == wid
        assert again.by_trigger(11) and again.by_trigger(11)[-1] == (instance, wid)
        key = again.task_instance(retry)
        assert key is not None and (key.workflow_id, key.run_times, key.task_code, key.attempt) == (wid, 1, 42, 2)
        assert again.task_instance_id(wid, 2, 42, 1) == rerun
        assert again.project(project.code) == project
        assert again.definition_meta(123456789012).release_state == "ONLINE"
        again.mark_deleted(instance)
        assert again.workflow_id(instance) is None and again.is_deleted(wid)
        assert again.delete_project(project.code) and again.project(project.code) is None
    finally:
        again.engine.dispose()


def test_projects_of_a_database_from_before_revision_0002_are_kept(url: str) -> None:
    """The DS REST build before migrations made ``ds_project`` with ``create_all``; 0002 moves its rows
    to ``ds_project_registry``, 0004 into Porpoise's one project registry (``porpoise_projects``), and
    new projects get new ids after them."""
    old = create_engine(url)
    try:
        with old.begin() as c:
            c.execute(text("CREATE TABLE ds_project (id INTEGER PRIMARY KEY, code BIGINT NOT NULL UNIQUE, "
                           "name VARCHAR(255) NOT NULL UNIQUE, description TEXT NOT NULL, "
                           "user_name VARCHAR(255) NOT NULL, created_at TIMESTAMP NOT NULL, "
                           "updated_at TIMESTAMP NOT NULL)"))
            c.execute(text("INSERT INTO ds_project VALUES (5, 1234567890123, 'old', 'kept', 'u', "
                           "'2024-01-01 00:00:00', '2024-01-02 00:00:00')"))
    finally:
        old.dispose()
    ids = DsIds(open_engine(url))
    try:
        kept = ids.project(1234567890123)
        assert kept is not None and (kept.id, kept.name, kept.description) == (5, "old", "kept")
        new = ids.create_project(f"new-{uuid.uuid4().hex[:6]}")
        assert new.id > 5
        with ids.engine.connect() as c:
            tables = set(inspect(c).get_table_names())
            assert "ds_project" not in tables and "ds_project_registry" not in tables
            assert c.execute(text("SELECT name FROM porpoise_projects WHERE code = 1234567890123")).scalar() == "old"
    finally:
        ids.engine.dispose()


def test_revision_0005_merges_ds_projects_into_porpoise_projects_and_back(url: str) -> None:
    """A DS project whose code Porpoise knew keeps Porpoise's owner and gains DS's id and description;
    downgrading gives ``ds_project_registry`` back from the projects that have a DS id."""
    from alembic import command

    from storage.migrate import config, upgrade

    engine = open_engine(url)
    try:
        upgrade(engine, "0003_security")
        with engine.begin() as c:
            c.execute(text("INSERT INTO porpoise_users (id, name, is_admin, created_at) "
                           "VALUES (7, 'owner7', false, '2024-01-01 00:00:00')"))
            c.execute(text("INSERT INTO porpoise_projects (code, name, owner_id, created_at) "
                           "VALUES (4444444444444, '', 7, '2024-01-01 00:00:00')"))
            c.execute(text("INSERT INTO ds_project_registry (id, code, name, description, user_name, created_at, "
                           "updated_at) VALUES (3, 4444444444444, 'both', 'from ds', 'someone-else', "
                           "'2024-01-01 00:00:00', '2024-01-03 00:00:00')"))
        upgrade(engine)
        ids = DsIds(engine)
        merged = ids.project(4444444444444)
        assert merged is not None
        assert (merged.id, merged.name, merged.description, merged.owner_id, merged.user_name) == (
            3, "both", "from ds", 7, "owner7")
        made_later = ids.create_project(f"later-{uuid.uuid4().hex[:6]}", "", 7)  # given DS id 4: downgraded too
        cfg = config()
        with engine.begin() as c:
            cfg.attributes["connection"] = c
            command.downgrade(cfg, "0003_security")
        with engine.connect() as c:
            rows = c.execute(text("SELECT id, code, name, description, user_name FROM ds_project_registry "
                                  "ORDER BY id")).all()
            assert [tuple(r) for r in rows] == [(3, 4444444444444, "both", "from ds", "owner7"),
                                                (made_later.id, made_later.code, made_later.name, "", "owner7")]
            assert "ds_id" not in {col["name"] for col in inspect(c).get_columns("porpoise_projects")}
    finally:
        engine.dispose()
