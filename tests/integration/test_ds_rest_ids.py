"""storage/ds_ids.py: DS integer ids survive a reopen and are given once under concurrency, on SQLite and
(when PORPOISE_TEST_POSTGRES_URL is set) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from storage.ds_ids import DsIds, NameTaken


def _urls(tmp_path: Path) -> list[str]:
    urls = [f"sqlite:///{tmp_path / 'ids.db'}"]
    if os.environ.get("PORPOISE_TEST_POSTGRES_URL"):
        urls.append(os.environ["PORPOISE_TEST_POSTGRES_URL"])
    return urls


@pytest.mark.parametrize("which", [0, 1])
def test_ids_are_durable_and_given_once(tmp_path: Path, which: int) -> None:
    urls = _urls(tmp_path)
    if which >= len(urls):
        pytest.skip("PORPOISE_TEST_POSTGRES_URL not set")
    url = urls[which]
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
        project = ids.create_project(name, "d", "u")
        with pytest.raises(NameTaken):
            ids.create_project(name)
        ids.set_definition_meta(123456789012 + which, release_state="ONLINE", locations="[]")
    finally:
        ids.engine.dispose()
    again = DsIds(url)  # a new process on the same database
    try:
        assert again.instance_id(wid) == instance and again.workflow_id(instance) == wid
        assert again.by_trigger(11) and again.by_trigger(11)[-1] == (instance, wid)
        key = again.task_instance(retry)
        assert key is not None and (key.workflow_id, key.run_times, key.task_code, key.attempt) == (wid, 1, 42, 2)
        assert again.task_instance_id(wid, 2, 42, 1) == rerun
        assert again.project(project.code) == project
        assert again.definition_meta(123456789012 + which).release_state == "ONLINE"
        again.mark_deleted(instance)
        assert again.workflow_id(instance) is None and again.is_deleted(wid)
        assert again.delete_project(project.code) and again.project(project.code) is None
    finally:
        if which == 1:  # leave the shared database as found
            with create_engine(url).begin() as c:
                c.execute(text("DELETE FROM ds_instance_id WHERE workflow_id = :w"), {"w": wid})
                c.execute(text("DELETE FROM ds_task_instance_id WHERE workflow_id = :w"), {"w": wid})
                c.execute(text("DELETE FROM ds_definition_meta WHERE code = :c"), {"c": 123456789012 + which})
        again.engine.dispose()
