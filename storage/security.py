"""Users, projects, access tokens and datasource grants, in DolphinScheduler's model (docs/security.md).

* A user is an administrator or a general user. Administrators see and change everything; a general
  user only the projects they own or are authorized for.
* A project (DS project code) has an owner and authorized users. Definitions, runs, schedules and
  complements belong to the project their definition names.
* An access token belongs to a user and may expire. It is random (256 bits) and only its SHA-256 is
  stored, so the database never holds a usable token.
* A datasource belongs to the user who made it; others use it by an explicit grant, as in DS.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, Text, bindparam, delete, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import Base, aware, engine_for, ensure_schema

TOKEN_PREFIX = "pp_"


class UserRow(Base):
    __tablename__ = "porpoise_users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProjectRow(Base):
    """The one project registry: Porpoise's tokens and routes and DS's ``/projects`` (``t_ds_project``:
    its integer ``id`` is ``ds_id``, given on first sight; ``description`` and ``updated_at`` are DS's
    fields). Columns after ``created_at`` came with migration 0005_ds_projects_unified."""

    __tablename__ = "porpoise_projects"
    code: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255), default="")
    owner_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ds_id: Mapped[int | None] = mapped_column(Integer, nullable=True, unique=True, index=True)


class ProjectUserRow(Base):
    __tablename__ = "porpoise_project_users"
    project_code: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class TokenRow(Base):
    __tablename__ = "porpoise_access_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class DatasourceAccessRow(Base):
    __tablename__ = "porpoise_datasource_access"
    datasource_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    is_owner: Mapped[bool] = mapped_column(Boolean, default=False)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the token's user, whether an administrator, and the project codes
    they own or are authorized for (empty for an administrator, who may use every project: read
    ``projects`` only through the two methods below)."""

    user_id: int
    name: str
    is_admin: bool
    projects: frozenset[int] = field(default_factory=frozenset)

    def may_use_project(self, code: int) -> bool:
        return self.is_admin or code in self.projects

    @property
    def listed_projects(self) -> frozenset[int] | None:
        """The project codes a listing is limited to; None for an administrator (every project)."""
        return None if self.is_admin else self.projects


class SecurityError(ValueError):
    """A request the store refuses (unknown user, duplicate name): a 4xx for the caller."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _aware(value: datetime | None) -> datetime | None:
    return aware(value) if value is not None else None  # SQLite drops the zone


_USER = (UserRow.id, UserRow.name, UserRow.is_admin)  # the columns a Principal is made of


# Built once, since every request runs them: making a statement cost as much as running it.
_TOKEN_USER = (select(TokenRow.revoked, TokenRow.expires_at, *_USER).join(UserRow, UserRow.id == TokenRow.user_id)
               .where(TokenRow.token_hash == bindparam("token_hash")))
_PROJECTS_OF_USER = select(ProjectRow.code).where(ProjectRow.owner_id == bindparam("user_id")).union(
    select(ProjectUserRow.project_code).where(ProjectUserRow.user_id == bindparam("user_id")))


def _principal(c: Connection, user: Any) -> Principal:
    """The principal of ``user`` (a row of :data:`_USER`), with the projects it owns or was granted
    read in one statement; for an administrator none are read, since it may use every project and
    its lists are not limited (:meth:`Principal.may_use_project`, :attr:`Principal.listed_projects`)."""
    if user.is_admin:
        return Principal(user.id, user.name, True)
    projects = frozenset(int(code) for code in c.scalars(_PROJECTS_OF_USER, {"user_id": user.id}))
    return Principal(user.id, user.name, user.is_admin, projects)


class SecurityStore:
    """Users, projects, tokens and datasource grants on the process's engine for the database URL
    (tables made by migration 0003_security)."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        if isinstance(url_or_engine, str):
            self.engine = engine_for(url_or_engine)
        else:
            self.engine = url_or_engine
            ensure_schema(self.engine)

    def dispose(self) -> None:
        """Close the pooled connections (the shared engine stays usable; it opens new ones)."""
        self.engine.dispose()

    # -- users -------------------------------------------------------------------------------------

    def _user(self, s: Session, name: str, *, create_admin: bool | None = None) -> UserRow:
        row = s.scalars(select(UserRow).where(UserRow.name == name)).first()
        if row is None:
            if create_admin is None:
                raise SecurityError(f"no user named {name!r}")
            row = UserRow(name=name, is_admin=create_admin, created_at=datetime.now(UTC))
            s.add(row)
            s.flush()
        return row

    def create_user(self, name: str, *, is_admin: bool = False) -> dict[str, Any]:
        with Session(self.engine) as s, s.begin():
            if s.scalars(select(UserRow).where(UserRow.name == name)).first() is not None:
                raise SecurityError(f"a user named {name!r} exists")
            return _user_dict(self._user(s, name, create_admin=is_admin))

    def users(self) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            return [_user_dict(u) for u in s.scalars(select(UserRow).order_by(UserRow.id))]

    def user_id(self, name: str) -> int:
        with Session(self.engine) as s:
            return self._user(s, name).id

    # -- projects ----------------------------------------------------------------------------------

    def create_project(self, code: int, name: str, owner: str) -> dict[str, Any]:
        with Session(self.engine) as s, s.begin():
            if s.get(ProjectRow, code) is not None:
                raise SecurityError(f"project {code} exists")
            owner_row = self._user(s, owner)
            row = ProjectRow(code=code, name=name, owner_id=owner_row.id, created_at=datetime.now(UTC))
            s.add(row)
            return {"code": code, "name": name, "owner": owner_row.name, "users": []}

    def projects(self, only: frozenset[int] | None = None) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            names = {u.id: u.name for u in s.scalars(select(UserRow))}
            grants: dict[int, list[str]] = {}
            for g in s.scalars(select(ProjectUserRow)):
                grants.setdefault(g.project_code, []).append(names.get(g.user_id, "?"))
            rows = s.scalars(select(ProjectRow).order_by(ProjectRow.code))
            return [{"code": p.code, "name": p.name, "owner": names.get(p.owner_id, "?"),
                     "users": sorted(grants.get(p.code, []))} for p in rows if only is None or p.code in only]

    def project_owner(self, code: int) -> int | None:
        with Session(self.engine) as s:
            row = s.get(ProjectRow, code)
            return row.owner_id if row else None

    def _authorize(self, s: Session, code: int, user: UserRow) -> None:
        if s.get(ProjectRow, code) is None:  # a DS project code not registered yet: its first user owns it
            s.add(ProjectRow(code=code, name="", owner_id=user.id, created_at=datetime.now(UTC)))
        if s.get(ProjectUserRow, (code, user.id)) is None:
            s.add(ProjectUserRow(project_code=code, user_id=user.id))

    def authorize(self, code: int, user: str) -> None:
        with Session(self.engine) as s, s.begin():
            self._authorize(s, code, self._user(s, user))

    def unauthorize(self, code: int, user: str) -> None:
        with Session(self.engine) as s, s.begin():
            u = self._user(s, user)
            s.execute(delete(ProjectUserRow).where(ProjectUserRow.project_code == code,
                                                   ProjectUserRow.user_id == u.id))

    # -- tokens ------------------------------------------------------------------------------------

    def issue_token(self, user: str, *, name: str = "", admin: bool = False, projects: list[int] | None = None,
                    expires_days: float | None = None, token: str | None = None) -> tuple[dict[str, Any], str]:
        """A new token for ``user`` (made if absent, an administrator if ``admin``), authorized for
        ``projects``. Returns the token's record and the token itself, which is never stored.
        ``token``: a value made by :func:`new_token` elsewhere (the test suite's admin token)."""
        token = token or new_token()
        now = datetime.now(UTC)
        with Session(self.engine) as s, s.begin():
            u = self._user(s, user, create_admin=admin)
            if admin and not u.is_admin:
                raise SecurityError(f"user {user!r} is not an administrator")
            for code in projects or []:
                self._authorize(s, code, u)
            row = TokenRow(user_id=u.id, name=name or user, token_hash=hash_token(token), created_at=now,
                           expires_at=now + timedelta(days=expires_days) if expires_days else None)
            s.add(row)
            s.flush()
            return _token_dict(row, u), token

    def tokens(self) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            users = {u.id: u for u in s.scalars(select(UserRow))}
            return [_token_dict(t, users[t.user_id]) for t in s.scalars(select(TokenRow).order_by(TokenRow.id))
                    if t.user_id in users]

    def revoke_token(self, token_id: int) -> bool:
        with Session(self.engine) as s, s.begin():
            row = s.get(TokenRow, token_id)
            if row is None:
                return False
            row.revoked = True
            return True

    def has_admin_token(self) -> bool:
        now = datetime.now(UTC)
        with Session(self.engine) as s:
            admins = {u.id for u in s.scalars(select(UserRow).where(UserRow.is_admin.is_(True)))}
            return any(not t.revoked and t.user_id in admins and ((e := _aware(t.expires_at)) is None or e > now)
                       for t in s.scalars(select(TokenRow)))

    def principal(self, token: str) -> Principal | None:
        """The principal a token acts as; None for an unknown, revoked or expired token. Every request
        asks this, so it is two statements: the token with its user, then the user's projects (one
        for an administrator)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        with self.engine.connect() as c:
            found = c.execute(_TOKEN_USER, {"token_hash": hash_token(token)}).first()
            if found is None or found.revoked:
                return None
            expires = _aware(found.expires_at)
            if expires is not None and expires <= datetime.now(UTC):
                return None
            return _principal(c, found)

    def principal_of_user(self, user_id: int) -> Principal | None:
        """The principal a user acts as (their DS login session, storage/login.py); None if gone."""
        with self.engine.connect() as c:
            user = c.execute(select(*_USER).where(UserRow.id == user_id)).first()
            return _principal(c, user) if user else None

    # -- datasources -------------------------------------------------------------------------------

    def set_datasource_owner(self, datasource_id: int, user_id: int) -> None:
        with Session(self.engine) as s, s.begin():
            row = s.get(DatasourceAccessRow, (datasource_id, user_id))
            if row is None:
                s.add(DatasourceAccessRow(datasource_id=datasource_id, user_id=user_id, is_owner=True))
            else:
                row.is_owner = True

    def grant_datasource(self, datasource_id: int, user: str) -> None:
        with Session(self.engine) as s, s.begin():
            u = self._user(s, user)
            if s.get(DatasourceAccessRow, (datasource_id, u.id)) is None:
                try:
                    s.add(DatasourceAccessRow(datasource_id=datasource_id, user_id=u.id, is_owner=False))
                    s.flush()
                except IntegrityError:
                    pass

    def revoke_datasource(self, datasource_id: int, user: str) -> None:
        with Session(self.engine) as s, s.begin():
            u = self._user(s, user)
            s.execute(delete(DatasourceAccessRow).where(DatasourceAccessRow.datasource_id == datasource_id,
                                                        DatasourceAccessRow.user_id == u.id,
                                                        DatasourceAccessRow.is_owner.is_(False)))

    def forget_datasource(self, datasource_id: int) -> None:
        with Session(self.engine) as s, s.begin():
            s.execute(delete(DatasourceAccessRow).where(DatasourceAccessRow.datasource_id == datasource_id))

    def datasource_access(self, user_id: int) -> dict[int, bool]:
        """The datasources a user may use: id -> whether they own it."""
        with Session(self.engine) as s:
            rows = s.scalars(select(DatasourceAccessRow).where(DatasourceAccessRow.user_id == user_id))
            return {r.datasource_id: r.is_owner for r in rows}


def _user_dict(u: UserRow) -> dict[str, Any]:
    return {"id": u.id, "name": u.name, "admin": u.is_admin, "createdAt": _aware(u.created_at)}


def _token_dict(t: TokenRow, u: UserRow) -> dict[str, Any]:
    expires = _aware(t.expires_at)
    state = "revoked" if t.revoked else "expired" if expires is not None and expires <= datetime.now(UTC) else "active"
    return {"id": t.id, "name": t.name, "user": u.name, "admin": u.is_admin, "createdAt": _aware(t.created_at),
            "expiresAt": expires, "state": state}
