"""DS login, sessions and access tokens (api/ds_rest/routers/login.py, access_tokens.py) on the in-process
app and a real SQLite database: a DS client logs in with a user name and password, uses the
``sessionId`` it gets as DS's interceptor accepts it, signs out; DS's ``/access-tokens`` manage the
same tokens ``porpoise token`` does. These routes need no Temporal, so the app here has none."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from sqlalchemy import create_engine, inspect, text

from api.app import create_app
from core.settings import Settings
from storage.db import Base
from storage.login import LoginStore
from storage.migrate import config, current, upgrade
from storage.security import SecurityStore
from tests.integration.test_ds_rest import DS, envelope_err, envelope_ok
from tests.integration.test_migrations import pg_schema_url  # noqa: F401  (a fresh PostgreSQL schema)

pytestmark = pytest.mark.timeout(120)

NO_TOKEN = {"authorization": ""}  # keeps the suite's administrator token off (tests/conftest.py)
ADMIN_PW, ALICE_PW = "admin-secret-1", "alice-secret-1"
PAGE = {"pageNo": 1, "pageSize": 50}

@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """An in-process API on a fresh database, with user ``admin`` (administrator) and ``alice``
    (general user), both with passwords."""
    apps: list[FastAPI] = []
    clients: list[httpx.AsyncClient] = []

    async def make(**overrides: Any) -> tuple[httpx.AsyncClient, dict[str, int]]:
        settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'porpoise.db'}",
                            temporal_address="127.0.0.1:9", allowed_hosts=["porpoise"],
                            default_timezone="Asia/Shanghai", **overrides)
        app = create_app(settings)
        apps.append(app)
        store: SecurityStore = app.state.security
        logins = LoginStore(store.engine)
        for name, admin, pw in (("admin", True, ADMIN_PW), ("alice", False, ALICE_PW)):
            if not any(u["name"] == name for u in store.users()):
                store.create_user(name, is_admin=admin)
                logins.set_password(name, pw)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://porpoise")
        clients.append(client)
        return client, {u["name"]: u["id"] for u in store.users()}

    try:
        yield make
    finally:
        for c in clients:
            await c.aclose()
        for a in apps:
            a.state.porpoise.dispose()
            a.state.security.dispose()


async def login(api: httpx.AsyncClient, user: str, password: str) -> str:
    r = await api.post(DS + "/login", data={"userName": user, "userPassword": password}, headers=NO_TOKEN)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == 0 and body["success"] is True and body["msg"] == "login success", body
    session = str(body["data"]["sessionId"])
    assert body["data"]["securityConfigType"] == "PASSWORD"
    assert r.cookies.get("sessionId") == session and len(session) >= 40
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith("sessionId="))
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    api.cookies.clear()  # each test says how it sends the session
    return session


def sid(session: str) -> dict[str, str]:
    return NO_TOKEN | {"sessionId": session}


def cookie(session: str) -> dict[str, str]:
    return NO_TOKEN | {"cookie": f"sessionId={session}"}


async def projects_with(api: httpx.AsyncClient, headers: dict[str, str], **kw: Any) -> httpx.Response:
    return await api.get(DS + "/projects", params=PAGE, headers=headers, **kw)


async def test_login_session_works_and_sign_out_ends_it(make_client: Callable[..., Any], tmp_path: Path) -> None:
    api, _ = await make_client()
    session = await login(api, "admin", ADMIN_PW)
    envelope_ok(await projects_with(api, sid(session)))  # the header, as DS's interceptor reads it
    envelope_ok(await projects_with(api, cookie(session)))  # and the cookie
    envelope_err(await projects_with(api, sid(session[:-2] + "xx")), 10010, 401)
    envelope_err(await projects_with(api, NO_TOKEN), 10010, 401)
    # the database holds no usable session id
    with sqlite3.connect(tmp_path / "porpoise.db") as db:
        stored = [r[0] for r in db.execute("select id_hash from porpoise_sessions")]
    assert stored and session not in stored

    second = await login(api, "admin", ADMIN_PW)
    # a form body signed in by the cookie alone is taken from scripts, refused from another origin's page
    foreign = await api.post(DS + "/signOut", data={"x": "1"},
                             headers=cookie(second) | {"origin": "http://evil.example"})
    assert foreign.status_code == 415, foreign.text
    envelope_ok(await projects_with(api, sid(second)))
    r = await api.post(DS + "/signOut", data={"x": "1"}, headers=cookie(second))
    envelope_ok(r)
    assert any(h.startswith("sessionId=") and "max-age=0" in h.lower() for h in r.headers.get_list("set-cookie"))
    # DS ends every session of the user
    for s in (session, second):
        envelope_err(await projects_with(api, sid(s)), 10010, 401)
        envelope_err(await projects_with(api, cookie(s)), 10010, 401)
    envelope_err(await api.post(DS + "/signOut", headers=sid(second)), 10010, 401)


async def test_wrong_user_or_password_answers_the_same(make_client: Callable[..., Any]) -> None:
    api, _ = await make_client()
    answers = []
    for user, pw in (("alice", "wrong-password"), ("nobody", ALICE_PW), ("alice", "")):
        r = await api.post(DS + "/login", data={"userName": user, "userPassword": pw}, headers=NO_TOKEN)
        assert "sessionId" not in r.cookies
        answers.append((r.status_code, r.json()))
    assert answers[0] == answers[1] == answers[2]
    assert envelope_err(httpx.Response(answers[0][0], json=answers[0][1]), 10013) == "user name or password error"
    envelope_err(await api.post(DS + "/login", data={"userName": " ", "userPassword": "x"}, headers=NO_TOKEN), 10004)
    envelope_err(await api.post(DS + "/login", data={"userName": "alice"}, headers=NO_TOKEN), 10001)
    # a login form posted by another origin's page is refused (login CSRF); scripts send no Origin
    r = await api.post(DS + "/login", data={"userName": "alice", "userPassword": ALICE_PW},
                       headers=NO_TOKEN | {"origin": "http://127.0.0.1:3000"})
    assert r.status_code == 415 and "sessionId" not in r.cookies
    r = await api.post(DS + "/projects", data={"projectName": "x"}, headers=NO_TOKEN)  # no credential at all
    assert r.status_code == 415
    # a general user's session is the general user
    session = await login(api, "alice", ALICE_PW)
    listed = envelope_ok(await projects_with(api, sid(session)))  # general users see only their projects
    assert listed["totalList"] == [] and listed["total"] == 0, listed


async def test_repeated_failures_pause_logins_for_that_user(make_client: Callable[..., Any]) -> None:
    api, _ = await make_client(ds_login_failures=3)
    for _ in range(3):
        envelope_err(await api.post(DS + "/login", data={"userName": "alice", "userPassword": "guess"},
                                    headers=NO_TOKEN), 10013)
    paused = await api.post(DS + "/login", data={"userName": "alice", "userPassword": ALICE_PW}, headers=NO_TOKEN)
    assert "too many failed logins" in envelope_err(paused, 10043, 429)
    await login(api, "admin", ADMIN_PW)  # another user is not paused


async def test_an_expired_session_is_refused(make_client: Callable[..., Any]) -> None:
    api, _ = await make_client(ds_session_seconds=1.0)
    session = await login(api, "admin", ADMIN_PW)
    envelope_ok(await projects_with(api, sid(session)))
    await asyncio.sleep(1.3)
    envelope_err(await projects_with(api, sid(session)), 10010, 401)


async def test_access_tokens_are_porpoise_tokens(make_client: Callable[..., Any]) -> None:
    api, users = await make_client()
    admin = sid(await login(api, "admin", ADMIN_PW))
    alice_id = users["alice"]
    made = envelope_ok(await api.post(DS + "/access-tokens", headers=admin,
                                      data={"userId": alice_id, "expireTime": "2099-01-01 00:00:00"}), 201)
    token = made["token"]
    assert token.startswith("pp_") and made["userId"] == alice_id and made["userName"] == "alice"
    assert made["expireTime"] == "2099-01-01 00:00:00"
    # the token works on Porpoise's own API and on DS's, as alice
    native = await api.get("/datasources", headers={"authorization": f"Bearer {token}"})
    assert native.status_code == 200, native.text
    mine = envelope_ok(await api.get(DS + "/access-tokens", params=PAGE, headers={"token": token}))
    assert [t["id"] for t in mine["totalList"]] == [made["id"]] and mine["totalList"][0]["token"] is None
    # the administrator lists it too (never its value); porpoise token list sees the same token
    listed = envelope_ok(await api.get(DS + "/access-tokens", params=PAGE | {"searchVal": "ali"}, headers=admin))
    assert [(t["id"], t["token"]) for t in listed["totalList"]] == [(made["id"], None)]
    by_user = envelope_ok(await api.get(DS + f"/access-tokens/user/{alice_id}", headers=admin))
    assert [t["id"] for t in by_user] == [made["id"]]
    native_list = await api.get("/tokens", headers=admin)
    assert native_list.status_code == 401  # Porpoise's own API takes tokens, not DS sessions
    # generate, then create with the generated value
    generated = envelope_ok(await api.post(DS + "/access-tokens/generate", headers=admin,
                                           data={"userId": alice_id, "expireTime": "2099-01-01 00:00:00"}), 201)
    assert generated.startswith("pp_") and generated != token
    second = envelope_ok(await api.post(DS + "/access-tokens", headers=admin, data={
        "userId": alice_id, "expireTime": "2099-01-01 00:00:00", "token": generated}), 201)
    assert second["token"] == generated
    envelope_ok(await api.get(DS + "/access-tokens", params=PAGE, headers={"token": generated}))
    # DS's own 32-hex tokens, or a value in use, are refused
    for weak in ("0123456789abcdef0123456789abcdef", generated):
        envelope_err(await api.post(DS + "/access-tokens", headers=admin, data={
            "userId": alice_id, "expireTime": "2099-01-01 00:00:00", "token": weak}), 10001, 200)
    envelope_err(await api.post(DS + "/access-tokens", headers=admin,
                                data={"userId": alice_id, "expireTime": "next year"}), 10001)
    envelope_err(await api.post(DS + "/access-tokens", headers=admin,
                                data={"userId": 9999, "expireTime": "2099-01-01 00:00:00"}), 10010)
    # update gives a new value on the same id; the old value stops working
    upd = envelope_ok(await api.put(DS + f"/access-tokens/{made['id']}", headers=admin,
                                    data={"userId": alice_id, "expireTime": "2098-01-01 00:00:00"}))
    assert upd["id"] == made["id"] and upd["token"] not in (None, token)
    assert (await api.get("/datasources", headers={"authorization": f"Bearer {token}"})).status_code == 401
    # delete revokes at once, everywhere
    assert envelope_ok(await api.delete(DS + f"/access-tokens/{made['id']}", headers=admin)) is False
    assert (await api.get("/datasources", headers={"authorization": f"Bearer {upd['token']}"})).status_code == 401
    envelope_err(await api.get(DS + "/access-tokens", params=PAGE, headers={"token": upd["token"]}), 10010, 401)
    envelope_err(await api.delete(DS + f"/access-tokens/{made['id']}", headers=admin), 70015)
    envelope_err(await api.delete(DS + "/access-tokens/abc", headers=admin), 10001)
    # an expired token is refused
    old = envelope_ok(await api.post(DS + "/access-tokens", headers=admin,
                                     data={"userId": alice_id, "expireTime": "2020-01-01 00:00:00"}), 201)
    envelope_err(await api.get(DS + "/access-tokens", params=PAGE, headers={"token": old["token"]}), 10010, 401)


async def test_a_general_user_manages_only_their_own_tokens(make_client: Callable[..., Any]) -> None:
    api, users = await make_client()
    admin, alice = sid(await login(api, "admin", ADMIN_PW)), sid(await login(api, "alice", ALICE_PW))
    theirs = envelope_ok(await api.post(DS + "/access-tokens", headers=admin,
                                        data={"userId": users["admin"], "expireTime": "2099-01-01 00:00:00"}), 201)
    own = envelope_ok(await api.post(DS + "/access-tokens", headers=alice,
                                      data={"userId": users["alice"], "expireTime": "2099-01-01 00:00:00"}), 201)
    listed = envelope_ok(await api.get(DS + "/access-tokens", params=PAGE, headers=alice))
    assert [t["id"] for t in listed["totalList"]] == [own["id"]]
    envelope_err(await api.get(DS + f"/access-tokens/user/{users['admin']}", headers=alice), 30001)
    assert [t["id"] for t in envelope_ok(await api.get(DS + f"/access-tokens/user/{users['alice']}",
                                                       headers=alice))] == [own["id"]]
    envelope_err(await api.delete(DS + f"/access-tokens/{theirs['id']}", headers=alice), 30001)
    envelope_err(await api.put(DS + f"/access-tokens/{theirs['id']}", headers=alice,
                               data={"userId": users["alice"], "expireTime": "2099-01-01 00:00:00"}), 30001)
    envelope_err(await api.post(DS + "/access-tokens", headers=alice,
                                data={"userId": users["admin"], "expireTime": "2099-01-01 00:00:00"}), 30001)
    # nor hand their own token to the administrator (DS would let them)
    envelope_err(await api.put(DS + f"/access-tokens/{own['id']}", headers=alice,
                               data={"userId": users["admin"], "expireTime": "2099-01-01 00:00:00"}), 30001)
    # the administrator's token still works; alice's own delete works
    envelope_ok(await api.get(DS + "/access-tokens", params=PAGE, headers={"token": theirs["token"]}))
    envelope_ok(await api.delete(DS + f"/access-tokens/{own['id']}", headers=alice))
    assert envelope_ok(await api.get(DS + "/access-tokens", params=PAGE, headers=alice))["total"] == 0


async def test_cli_sets_a_password_from_stdin(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = dict(os.environ, DATABASE_URL=url, PORPOISE_DATA_DIR=str(tmp_path))

    async def run(*args: str, stdin: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "api", "user", "password", *args, env=env,
                                                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
        return proc.returncode or 0, out.decode(), err.decode()

    code, _, err = await run("carol", stdin="carol-secret-1\n")
    assert code == 2 and "--create" in err
    code, out, err = await run("carol", "--create", stdin="carol-secret-1\n")
    assert code == 0, err
    assert "password set for user carol" in out and "carol-secret-1" not in out + err
    code, _, err = await run("carol", stdin="short\n")
    assert code == 2 and "8 to" in err
    store = SecurityStore(url)
    try:
        logins = LoginStore(store.engine)
        assert logins.authenticate("carol", "carol-secret-1") is not None
        assert logins.authenticate("carol", "carol-secret-2") is None
        with store.engine.connect() as c:
            stored = c.execute(text("select password_hash from porpoise_user_passwords")).scalar_one()
        assert stored.startswith("scrypt$") and "carol-secret-1" not in stored
    finally:
        store.dispose()


def upgrade_from_0003(url: str) -> None:
    engine = create_engine(url)
    try:
        upgrade(engine, "0003_security")
        assert current(engine) == "0003_security"
        with engine.begin() as c:
            c.execute(text("insert into porpoise_users (name, is_admin, created_at) values ('old', :a, :t)"),
                      {"a": True, "t": datetime(2026, 1, 1, tzinfo=UTC)})
        assert not {"porpoise_sessions", "porpoise_user_passwords"} & set(inspect(engine).get_table_names())
        upgrade(engine)
        assert current(engine) == ScriptDirectory.from_config(config()).get_current_head()
        with engine.connect() as c:
            assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
        logins = LoginStore(engine)
        user_id = logins.set_password("old", "old-user-secret")
        assert logins.authenticate("old", "old-user-secret") == user_id
        session = logins.open_session(user_id, 60)
        assert logins.session_user(session) == user_id
        assert logins.end_sessions(user_id) == 1 and logins.session_user(session) is None
    finally:
        engine.dispose()


def test_migration_0004_upgrades_a_sqlite_database_at_0003(tmp_path: Path) -> None:
    upgrade_from_0003(f"sqlite:///{tmp_path / 'at0003.db'}")


@pytest.mark.postgres
def test_migration_0004_upgrades_a_postgres_database_at_0003(pg_schema_url: str) -> None:  # noqa: F811
    upgrade_from_0003(pg_schema_url)
