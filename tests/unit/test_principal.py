"""The principal a token acts as (storage/security.py), on a real SQLite store: a user's projects are
the ones it owns or was granted; an administrator's are not read (one statement per request, not
two), and it may still use and list every project."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from storage.security import SecurityStore


def _statements(store: SecurityStore) -> list[str]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    return seen


def test_a_user_acts_with_owned_and_granted_projects_an_administrator_with_all(tmp_path: Path) -> None:
    store = SecurityStore(f"sqlite:///{tmp_path / 'porpoise.db'}")
    _, admin_token = store.issue_token("root", admin=True)
    _, user_token = store.issue_token("ana", projects=[11])
    store.create_user("bo")
    store.create_project(22, "owned", "ana")
    store.create_project(33, "not hers", "bo")

    seen = _statements(store)
    user = store.principal(user_token)
    assert user is not None and not user.is_admin
    assert user.projects == {11, 22} and user.listed_projects == {11, 22}
    assert user.may_use_project(22) and not user.may_use_project(33)
    assert len(seen) == 2

    seen.clear()
    admin = store.principal(admin_token)
    assert admin is not None and admin.is_admin and admin.name == "root"
    assert admin.may_use_project(33) and admin.may_use_project(404)
    assert admin.listed_projects is None
    assert len(seen) == 1, seen  # the token with its user; no project read
    store.dispose()
