"""The principal a token acts as (storage/security.py) on every database Porpoise stores in: SQLite,
and the real PostgreSQL and MariaDB that .ci/run starts. A user's projects are the union of the ones
it owns and the ones it was granted, read in one statement after the token's; a revoked token and an
unknown one act as nobody. tests/unit/test_principal.py counts the statements on SQLite only."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from storage.security import SecurityStore
from tests.integration.conftest_sql import DATABASES, admin_url


@pytest.mark.parametrize("db", DATABASES)
def test_a_users_projects_are_owned_and_granted_ones_on_each_database(db: str, tmp_path: Path) -> None:
    store = SecurityStore(admin_url(db, tmp_path / "porpoise.db"))
    try:
        # The server databases outlive a test run: names and codes no earlier run used.
        tag = uuid.uuid4().hex[:8]
        base = 7_000_000_000_000 + uuid.uuid4().int % 10**12 * 10
        granted, owned, foreign = base + 1, base + 2, base + 3
        ana, bo = f"ana-{tag}", f"bo-{tag}"
        _, admin_token = store.issue_token(f"root-{tag}", admin=True)
        issued, user_token = store.issue_token(ana, projects=[granted])
        store.create_user(bo)
        store.create_project(owned, f"owned-{tag}", ana)
        store.create_project(foreign, f"not hers-{tag}", bo)

        user = store.principal(user_token)
        assert user is not None and not user.is_admin and user.name == ana
        assert user.projects == {granted, owned} and user.listed_projects == {granted, owned}
        assert user.may_use_project(owned) and not user.may_use_project(foreign)

        admin = store.principal(admin_token)
        assert admin is not None and admin.is_admin and admin.listed_projects is None
        assert admin.may_use_project(foreign)

        assert store.principal(user_token[:-1] + ("x" if user_token[-1] != "x" else "y")) is None
        assert store.principal("not-a-token") is None
        assert store.revoke_token(issued["id"])
        assert store.principal(user_token) is None
    finally:
        store.dispose()
