"""Datasource credentials never leave the worker, and a new password applies to the next run.

The secrets test runs a DAG whose SQL tasks succeed, fail on bad SQL, and fail to connect with a
wrong password, then scans everything Temporal kept of the run (every history event, byte for
byte, and every payload decoded; the execution's description with its search attributes), every
task log file, the run's lifecycle events (what is published to Pulsar), and what the API answers,
for the passwords. None may appear.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from sqlalchemy import text
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from core.settings import Settings
from tests import dsbuild
from tests.integration.conftest_sql import (
    SERVERS,
    admin,
    checks_passwords,
    create_datasource,
    datasource_fields,
    out_param,
    shell_task,
    sql_task,
    unique,
)
from tests.integration.helpers import nodes, run, start, submit, wait


def _literal(password: str) -> str:
    """A SQL string literal (test passwords may hold quotes)."""
    return "'" + password.replace("'", "''") + "'"


@contextmanager
def db_user(db: str, password: str) -> Iterator[str]:
    """A throwaway login on the test server, so its password can be changed freely."""
    user = unique("sec")
    with admin(db) as engine, engine.connect() as c:
        if db == "postgres":
            c.execute(text(f"create role {user} login password {_literal(password)}"))
        else:
            c.execute(text(f"create user '{user}'@'%' identified by {_literal(password)}"))
            c.execute(text(f"grant select on porpoise.* to '{user}'@'%'"))
    try:
        yield user
    finally:
        kick(db, user)
        with admin(db) as engine, engine.connect() as c:
            c.execute(text(f"drop role if exists {user}" if db == "postgres" else f"drop user if exists '{user}'@'%'"))


def set_password(db: str, user: str, password: str) -> None:
    with admin(db) as engine, engine.connect() as c:
        if db == "postgres":
            c.execute(text(f"alter role {user} password {_literal(password)}"))
        else:
            c.execute(text(f"alter user '{user}'@'%' identified by {_literal(password)}"))


def kick(db: str, user: str) -> None:
    """End the user's open sessions, so a pooled connection cannot hide a password change."""
    with admin(db) as engine, engine.connect() as c:
        if db == "postgres":
            c.execute(text("select pg_terminate_backend(pid) from pg_stat_activity where usename = :u"), {"u": user})
        else:
            ids = c.execute(text("select id from information_schema.processlist where user = :u"), {"u": user})
            for (pid,) in ids.all():
                c.execute(text(f"kill {int(pid)}"))


def _payload_texts(node: Any) -> Iterator[str]:
    """Every payload of a history in JSON form, decoded (payload data is base64 there)."""
    if isinstance(node, dict):
        if isinstance(node.get("data"), str) and "metadata" in node:
            try:
                decoded = base64.b64decode(node["data"])
            except ValueError:
                decoded = b""
            yield decoded.decode("utf-8", "replace")
        for v in node.values():
            yield from _payload_texts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _payload_texts(v)


def _payload_dicts(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if isinstance(node.get("data"), str) and "metadata" in node:
            yield node
        for v in node.values():
            yield from _payload_dicts(v)
    elif isinstance(node, list):
        for v in node:
            yield from _payload_dicts(v)


async def _decrypted_payload_texts(client: Client, history_json: Any) -> list[str]:
    """The same payloads as the operator reads them through the codec (core/codec.py): encryption at
    rest must not be what keeps a password out; it must be absent from the plaintext too."""
    payloads = [json_format.ParseDict(d, Payload(), ignore_unknown_fields=True) for d in _payload_dicts(history_json)]
    codec = client.data_converter.payload_codec
    if codec is not None:
        payloads = list(await codec.decode(payloads))
    return [p.data.decode("utf-8", "replace") for p in payloads]


async def temporal_record(client: Client, instance_id: str) -> bytes:
    """All Temporal holds about a run: each history event's bytes, decoded payloads, the description."""
    handle = client.get_workflow_handle(instance_id)
    history = await handle.fetch_history()
    assert len(history.events) > 5
    parts = [e.SerializeToString() for e in history.events]
    as_json = history.to_json()
    parts.append(as_json.encode())
    parts.extend(t.encode() for t in _payload_texts(json.loads(as_json)))
    parts.extend(t.encode() for t in await _decrypted_payload_texts(client, json.loads(as_json)))
    desc = await handle.describe()
    parts.append(desc.raw_description.SerializeToString())
    parts.append(repr(desc.typed_search_attributes).encode())
    return b"\n".join(parts)


def lifecycle_events(settings: Settings, instance_id: str) -> str | None:
    """The run's lifecycle events as the relay publishes them to Pulsar (None without the outbox)."""
    try:
        from storage.outbox import Outbox
    except ImportError:
        return None
    outbox = Outbox(settings.resolved_database_url)
    try:
        return json.dumps([event for _, event in outbox.tail(0, 100_000, instance_id)])
    finally:
        outbox.dispose()


def assert_absent(secrets: list[str], blob: bytes, where: str) -> None:
    for s in secrets:
        for form in (s.encode(), base64.b64encode(s.encode()), s.encode("utf-16-le")):
            assert form not in blob, f"a password appears in {where}"


@pytest.mark.parametrize("db", SERVERS)
async def test_passwords_never_reach_history_logs_or_the_api(api: httpx.AsyncClient, client: Client,
                                                            settings: Settings, db: str) -> None:
    password, wrong = f"Sx{uuid.uuid4().hex}", f"Wx{uuid.uuid4().hex}"
    with db_user(db, password) as user:
        good = await create_datasource(api, datasource_fields(db, userName=user, password=password))
        bad = await create_datasource(api, datasource_fields(db, userName=user, password=wrong))
        tasks = [
            shell_task("gen", "echo '${setValue(x=7)}'", [out_param("x")]),
            sql_task("query", "select ${x} as one, 'ok' as tag", good["id"],
                     local_params=[out_param("one"), out_param("tag")]),
            shell_task("use", 'test "${one}" = 7 && echo "one=${one} tag=${tag}"'),
            sql_task("bad_sql", "selec broken", good["id"]),
            sql_task("wrong_password", "select 1", bad["id"]),
        ]
        doc = dsbuild.export(unique("secrets"), tasks, [(None, "gen"), ("gen", "query"), ("query", "use"),
                                                        (None, "bad_sql"), (None, "wrong_password")])
        status = await run(api, doc)
        by = nodes(status)
        assert by["use"]["state"] == "SUCCESS" and by["bad_sql"]["state"] == "FAILURE", status
        if checks_passwords(db):
            assert by["wrong_password"]["state"] == "FAILURE"
            assert "could not connect" in (by["wrong_password"]["error"] or "")

        secrets = [password, wrong]
        instance = status["instanceId"]
        record = await temporal_record(client, instance)
        assert b"selec broken" in record and b"statement 1 failed" in record  # it sees inputs and failures
        assert_absent(secrets, record, "Temporal history")
        logs = list((settings.resolved_log_dir / instance).rglob("*"))
        assert len([p for p in logs if p.suffix == ".log"]) == len(tasks)
        for path in logs:
            if path.is_file():
                assert_absent(secrets, path.read_bytes(), f"{path}")
        events = lifecycle_events(settings, instance)  # what the relay publishes to Pulsar
        if events is not None:
            assert events, "no lifecycle event recorded for the run"
            assert_absent(secrets, events.encode(), "lifecycle events (the Pulsar outbox)")
        api_text = json.dumps(status) + (await api.get("/datasources")).text
        for ds in (good, bad):
            api_text += (await api.get(f"/datasources/{ds['id']}")).text
            api_text += (await api.post(f"/datasources/{ds['id']}/test")).text
        assert_absent(secrets, api_text.encode(), "API answers")


@pytest.mark.parametrize("db", SERVERS)
async def test_a_new_password_applies_to_the_next_run_without_editing_workflows(
        api: httpx.AsyncClient, client: Client, tmp_path: Path, db: str) -> None:
    first, second = f"P1x{uuid.uuid4().hex}", f"P2x{uuid.uuid4().hex}"
    with db_user(db, first) as user:
        ds = await create_datasource(api, datasource_fields(db, userName=user, password=first))
        doc = dsbuild.export(unique("rotation"), [sql_task("q", "select 1 as one", ds["id"],
                                                           local_params=[out_param("one")])], [(None, "q")])
        saved = await submit(api, doc)

        async def once() -> dict[str, Any]:
            return await wait(api, await start(api, saved["code"]), 60)

        assert (await once())["state"] == "SUCCESS"  # the worker now holds a pooled connection

        set_password(db, user, second)  # on the real database...
        kick(db, user)
        if checks_passwords(db):
            stale = await once()
            assert stale["state"] == "FAILURE"
            assert "could not connect" in (nodes(stale)["q"]["error"] or "")

        r = await api.put(f"/datasources/{ds['id']}", json={"password": second})  # ...and in the registry
        assert r.status_code == 200 and r.json()["version"] == 2
        fresh = await once()  # the same definition, not edited
        assert fresh["state"] == "SUCCESS", fresh
        assert nodes(fresh)["q"]["varPool"][0]["value"] == "1"
        assert_absent([first, second], await temporal_record(client, fresh["instanceId"]), "Temporal history")
