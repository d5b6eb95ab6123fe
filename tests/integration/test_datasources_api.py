"""The datasource registry: API, CLI, encryption at rest, keys and their rotation, refusing to start."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import create_engine, text

from api.app import create_app
from core.settings import Settings
from storage.crypto import Cipher, SecretKeyError, key_file, load_keys
from storage.datasources import ConnectionInfo, DatasourceSpec, DatasourceStore
from tests.integration.conftest_sql import (
    SERVERS,
    checks_passwords,
    create_datasource,
    datasource_fields,
    unique,
)


def secret() -> str:
    return f"pw-{uuid.uuid4().hex}"


# -- API ----------------------------------------------------------------------------------------------


async def test_crud_never_returns_a_password(api: httpx.AsyncClient) -> None:
    password = secret()
    name = unique("hive")
    r = await api.post("/datasources", json={"name": name, "type": "hive", "host": "hive.example", "database": "dw",
                                             "userName": "etl", "password": password,
                                             "other": {"hive.server2.proxy.user": "etl", "ssl": True}})
    assert r.status_code == 201, r.text
    created = r.json()
    assert password not in r.text and "password" not in created
    assert created["type"] == "HIVE" and created["port"] == 10000 and created["hasPassword"] is True
    assert created["executable"] is False and created["other"] == {"hive.server2.proxy.user": "etl", "ssl": "true"}
    ds_id = created["id"]

    listed = await api.get("/datasources")
    assert listed.status_code == 200 and password not in listed.text
    assert any(d["id"] == ds_id for d in listed.json())
    assert [d["name"] for d in (await api.get("/datasources", params={"type": "HIVE"})).json()].count(name) == 1
    got = await api.get(f"/datasources/{ds_id}")
    assert got.status_code == 200 and got.json() == created | {"updateTime": got.json()["updateTime"]}

    updated = await api.put(f"/datasources/{ds_id}", json={"note": "warehouse"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["note"] == "warehouse" and updated.json()["hasPassword"] is True
    assert updated.json()["version"] == 2

    tested = await api.post(f"/datasources/{ds_id}/test")
    assert tested.status_code == 200 and tested.json()["ok"] is False
    assert "no Python driver" in tested.json()["message"]

    assert (await api.delete(f"/datasources/{ds_id}")).status_code == 204
    assert (await api.get(f"/datasources/{ds_id}")).status_code == 404
    assert (await api.delete(f"/datasources/{ds_id}")).status_code == 404
    assert (await api.put(f"/datasources/{ds_id}", json={"note": "x"})).status_code == 404
    assert (await api.post(f"/datasources/{ds_id}/test")).status_code == 404


@pytest.mark.parametrize("db", SERVERS)
async def test_update_without_password_keeps_it_and_test_connect_masks(api: httpx.AsyncClient, db: str) -> None:
    fields = datasource_fields(db)
    ds = await create_datasource(api, fields)
    ok = await api.post(f"/datasources/{ds['id']}/test")
    assert ok.json()["ok"] is True and ok.json()["serverVersion"], ok.text
    assert (await api.put(f"/datasources/{ds['id']}", json={"note": "kept"})).status_code == 200
    assert (await api.post(f"/datasources/{ds['id']}/test")).json()["ok"] is True
    if not checks_passwords(db):
        pytest.skip(f"the test {db} server does not check passwords (trust authentication)")

    wrong = secret()
    assert (await api.put(f"/datasources/{ds['id']}", json={"password": wrong})).status_code == 200
    failed = await api.post(f"/datasources/{ds['id']}/test")
    assert failed.json()["ok"] is False and failed.json()["message"], failed.text
    assert wrong not in failed.text
    assert (await api.put(f"/datasources/{ds['id']}", json={"password": ""})).status_code == 200  # kept: wrong
    assert (await api.post(f"/datasources/{ds['id']}/test")).json()["ok"] is False
    assert (await api.put(f"/datasources/{ds['id']}", json={"password": fields["password"]})).status_code == 200
    assert (await api.post(f"/datasources/{ds['id']}/test")).json()["ok"] is True


async def test_sqlite_datasource_connects(api: httpx.AsyncClient, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    ds = await create_datasource(api, datasource_fields("sqlite", db))
    assert (await api.post(f"/datasources/{ds['id']}/test")).json()["ok"] is False  # no file yet
    sqlite3.connect(db).close()
    result = (await api.post(f"/datasources/{ds['id']}/test")).json()
    assert result["ok"] is True and result["serverVersion"].startswith("3."), result


async def test_bad_input_is_a_problem_document(api: httpx.AsyncClient) -> None:
    async def problem(body: Any, status: int = 422, method: str = "POST", path: str = "/datasources") -> dict:
        r = await api.request(method, path, json=body)
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        return dict(r.json())

    bad_type = await problem({"name": unique("x"), "type": "NOSUCHDB", "host": "h"})
    assert any(p["pointer"] == "/type" and "unknown datasource type" in p["message"] for p in bad_type["problems"])
    assert "relative" not in (await problem({"name": unique("x"), "type": "SQLITE", "database": "rel.db"}))["title"]
    assert "absolute" in json.dumps(await problem({"name": unique("x"), "type": "SQLITE", "database": "rel.db"}))
    assert "needs a host" in json.dumps(await problem({"name": unique("x"), "type": "MYSQL"}))
    assert "looks like a secret" in json.dumps(
        await problem({"name": unique("x"), "type": "MYSQL", "host": "h", "other": {"sslPassword": "x"}}))
    missing = await problem({"type": "MYSQL", "host": "h"})
    assert any(p["pointer"] == "/name" for p in missing["problems"])
    await problem([1, 2])
    await problem({"name": unique("x"), "type": "MYSQL", "host": "h", "port": 70000})
    await problem({"name": unique("x"), "type": "MYSQL", "host": "h", "surprise": 1})

    name, ds_id = unique("dup"), 900_000 + int(uuid.uuid4().int % 90_000)
    first = await api.post("/datasources", json={"id": ds_id, "name": name, "type": "MYSQL", "host": "h"})
    assert first.status_code == 201 and first.json()["id"] == ds_id  # a DS export's id can be kept
    await problem({"name": name, "type": "MYSQL", "host": "h"}, 409)
    await problem({"id": ds_id, "name": unique("x"), "type": "MYSQL", "host": "h"}, 409)
    other = await api.post("/datasources", json={"name": unique("other"), "type": "MYSQL", "host": "h"})
    await problem({"name": name}, 409, "PUT", f"/datasources/{other.json()['id']}")


async def test_password_is_encrypted_at_rest(api: httpx.AsyncClient, settings: Settings) -> None:
    password = secret()
    ds = await create_datasource(api, {"name": unique("enc"), "type": "POSTGRESQL", "host": "db.example",
                                       "userName": "u", "password": password})
    engine = create_engine(settings.resolved_database_url)
    try:
        with engine.connect() as c:
            row = c.execute(text("select * from datasource where id = :i"), {"i": ds["id"]}).mappings().one()
    finally:
        engine.dispose()
    assert all(password not in str(v) for v in row.values())
    keys = load_keys(settings)
    assert Fernet(keys[0]).decrypt(row["password_enc"].encode()).decode() == password


# -- keys -------------------------------------------------------------------------------------------


def test_no_key_outside_dev_mode_refuses_to_start(tmp_path: Path) -> None:
    production = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://u@db.example/porpoise")
    with pytest.raises(SecretKeyError, match=r"Fernet\.generate_key\(\)") as e:
        load_keys(production)
    assert "PORPOISE_SECRET_KEY" in str(e.value)
    no_dev = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'p.db'}", dev_mode=False)
    with pytest.raises(SecretKeyError):
        create_app(no_dev)
    from api.worker import activities

    with pytest.raises(SecretKeyError):
        activities(no_dev)
    assert not (tmp_path / "secret.key").exists()


def test_dev_mode_generates_a_private_key_file_once(tmp_path: Path) -> None:
    dev = Settings(data_dir=tmp_path / "data", database_url="")  # the embedded default: SQLite
    first = load_keys(dev)
    path = key_file(dev)
    assert path == (tmp_path / "data" / "secret.key").resolve()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keys(dev) == first and len(first) == 1
    Fernet(first[0])


def test_bad_key_is_refused_with_the_recipe(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError, match="not a Fernet key"):
        load_keys(Settings(data_dir=tmp_path, database_url="", secret_key=SecretStr("not-a-key")))
    key_path = tmp_path / "keys"
    key_path.write_text(Fernet.generate_key().decode() + "\n")
    with_file = Settings(data_dir=tmp_path, database_url="", secret_key_file=key_path, dev_mode=False)
    assert len(load_keys(with_file)) == 1


def test_key_rotation(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    password = secret()
    store = DatasourceStore(url, Cipher([old]))
    ds = store.create(DatasourceSpec.model_validate({"name": "pg", "type": "POSTGRESQL", "host": "h",
                                                     "userName": "u", "password": password}))
    store.dispose()

    both = DatasourceStore(url, Cipher([new, old]))  # step 1: the new key first, the old one after
    assert both.resolve(ds.id).password == password
    assert both.rotate() == {"rotated": 1, "current": 0, "unreadable": 0}  # step 2: re-encrypt
    assert both.rotate() == {"rotated": 0, "current": 1, "unreadable": 0}
    both.dispose()

    only_new = DatasourceStore(url, Cipher([new]))  # step 3: drop the old key
    assert only_new.resolve(ds.id).password == password
    only_new.dispose()
    only_old = DatasourceStore(url, Cipher([old]))
    with pytest.raises(SecretKeyError, match="not in PORPOISE_SECRET_KEY"):
        only_old.resolve(ds.id)
    only_old.dispose()


async def test_rotate_keys_endpoint(api: httpx.AsyncClient) -> None:
    r = await api.post("/datasources/rotate-keys")
    assert r.status_code == 200 and r.json()["unreadable"] == 0 and r.json()["rotated"] == 0


# -- connection info (resolved on the worker only) ------------------------------------------------


def info(type_: str, **kw: Any) -> ConnectionInfo:
    base: dict[str, Any] = {"id": 1, "name": "n", "type": type_, "host": "h", "port": None, "database": "d",
                            "user": "u", "params": {}, "version": 1, "password": "p@ss:word/1"}
    return ConnectionInfo(**(base | kw))


def test_connection_info_never_shows_the_password() -> None:
    i = info("POSTGRESQL", params={"ssl": "true", "currentSchema": "s", "loggerLevel": "OFF"})
    assert "p@ss" not in repr(i)
    url, args, ignored = i.driver_config()
    assert "p@ss" not in str(url) and url.password == "p@ss:word/1"
    assert url.query == {"sslmode": "require", "options": "-csearch_path=s"} and ignored == ["loggerLevel"]
    assert args == {"connect_timeout": 10}
    assert i.mask("FATAL p@ss:word/1 and p%40ss%3Aword%2F1") == "FATAL ****** and ******"
    assert i.jdbc_url() == "jdbc:postgresql://h:5432/d?ssl=true&currentSchema=s&loggerLevel=OFF"

    m = info("MARIADB", params={"characterEncoding": "UTF-8", "connectTimeout": "2500", "useSSL": "false"})
    url, args, ignored = m.driver_config()
    assert url.drivername == "mysql+pymysql" and url.port == 3306
    assert url.query == {"charset": "utf8mb4", "connect_timeout": "3"} and ignored == ["useSSL"] and args == {}
    assert info("ORACLE", port=1521).jdbc_url() == "jdbc:oracle:thin:@//h:1521/d"
    assert info("SQLSERVER", params={"encrypt": "true"}).jdbc_url() == \
        "jdbc:sqlserver://h:1433;databaseName=d;encrypt=true"
    assert info("CLICKHOUSE").jdbc_url() == "jdbc:clickhouse://h:8123/d"
    assert info("SQLITE", database="/x.db").jdbc_url() == "jdbc:sqlite:/x.db"


# -- CLI --------------------------------------------------------------------------------------------


async def cli(api_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PORPOISE_API_URL=api_url, COLUMNS="200")
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "api", "datasource", *args, env=env,
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    return subprocess.CompletedProcess(list(args), proc.returncode or 0, out.decode(), err.decode())


async def test_cli_datasource_commands(api_server: str, tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    sqlite3.connect(db).close()
    password = secret()
    name = unique("cli")
    created = await cli(api_server, "create", name, "--type", "sqlite", "--database", str(db), "--password-stdin",
                        "--json", stdin=password + "\n")
    assert created.returncode == 0, created.stderr
    assert password not in created.stdout
    ds = json.loads(created.stdout)[0]
    assert ds["name"] == name and ds["hasPassword"] is True
    tested = await cli(api_server, "test", str(ds["id"]))
    assert tested.returncode == 0 and "ok" in tested.stdout, tested.stderr
    updated = await cli(api_server, "update", str(ds["id"]), "--note", "from the cli", "--json")
    assert json.loads(updated.stdout)[0]["note"] == "from the cli"
    assert json.loads(updated.stdout)[0]["hasPassword"] is True  # kept
    listed = await cli(api_server, "list")
    assert listed.returncode == 0 and name in listed.stdout and password not in listed.stdout
    assert (await cli(api_server, "delete", str(ds["id"]))).returncode == 0
    missing = await cli(api_server, "get", str(ds["id"]))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
