"""Passwords and DS login sessions, and DS's view of the access tokens (docs/security.md, docs/ds-rest.md).

* A password is stored only as a salted scrypt hash (``scrypt$n$r$p$salt$hash``); it is checked in
  constant time, and a login for an unknown user costs the same scrypt as a known one, so the answer's
  timing does not say which of the two was wrong.
* A login session (DS's ``sessionId``) is 256 random bits; only its SHA-256 is stored, with an expiry
  (``PORPOISE_DS_SESSION_SECONDS``). Sign-out deletes the user's sessions, as DS does.
* DS's ``/access-tokens`` routes work on the same token table as ``porpoise token`` (storage/security.py).
  Tokens are stored hashed, so a token is shown when made and never again. A deleted DS token is a
  revoked one (``porpoise token list`` keeps showing it as revoked).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, Integer, String, delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from .db import Base, aware
from .security import TOKEN_PREFIX, SecurityError, TokenRow, UserRow, hash_token, new_token

SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32  # ~16 MiB and tens of ms per check
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
DS_TOKEN_NAME = "ds-access-token"
# a token a DS client may choose itself (DS: any string): only one as strong as ours, ``pp_`` + ≥ 256 bits
_TOKEN_SHAPE = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{43,190}")


class PasswordRow(Base):
    __tablename__ = "porpoise_user_passwords"
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    password_hash: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SessionRow(Base):
    __tablename__ = "porpoise_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UnknownUser(SecurityError):
    pass


class UnknownToken(SecurityError):
    pass


class TokenInUse(SecurityError):
    pass


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _utf8(password: str) -> bytes:
    return password.encode("utf-8", "surrogatepass")  # a JSON body may carry a lone surrogate


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(_utf8(password), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_LEN)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(_utf8(password), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return kind == "scrypt" and hmac.compare_digest(got, expected)


_DUMMY_HASH: list[str] = []  # checked against for unknown users: same cost, always False


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY_HASH[0]


def strong_token(token: str) -> bool:
    return _TOKEN_SHAPE.fullmatch(token) is not None


@dataclass(frozen=True)
class DsToken:
    """A token as DS's ``AccessToken`` shows it; ``token`` only right after it was made."""

    id: int
    user_id: int
    user_name: str
    expires_at: datetime | None
    created_at: datetime
    token: str | None = None


class LoginStore:
    """Passwords, sessions and DS's token operations on the process's engine (tables: 0003, 0004)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- passwords ---------------------------------------------------------------------------------

    def set_password(self, user: str, password: str) -> int:
        """Set ``user``'s password (the user must exist); returns their id. Ends their sessions."""
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise SecurityError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        hashed = hash_password(password)
        with Session(self.engine) as s, s.begin():
            row = s.scalars(select(UserRow).where(UserRow.name == user)).first()
            if row is None:
                raise UnknownUser(f"no user named {user!r}")
            existing = s.get(PasswordRow, row.id)
            if existing is None:
                s.add(PasswordRow(user_id=row.id, password_hash=hashed, updated_at=datetime.now(UTC)))
            else:
                existing.password_hash, existing.updated_at = hashed, datetime.now(UTC)
            s.execute(delete(SessionRow).where(SessionRow.user_id == row.id))
            return row.id

    def authenticate(self, user: str, password: str) -> int | None:
        """The user's id when the password is theirs; None otherwise (unknown user, no password set,
        wrong password), at the same cost either way."""
        with Session(self.engine) as s:
            row = s.scalars(select(UserRow).where(UserRow.name == user)).first()
            stored = s.get(PasswordRow, row.id) if row is not None else None
        good = verify_password(password, stored.password_hash if stored else _dummy_hash())
        return row.id if good and row is not None and stored is not None else None

    # -- sessions ----------------------------------------------------------------------------------

    def open_session(self, user_id: int, seconds: float) -> str:
        session_id = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with Session(self.engine) as s, s.begin():
            s.execute(delete(SessionRow).where(SessionRow.expires_at <= now))  # sweep the stale ones
            s.add(SessionRow(id_hash=hash_token(session_id), user_id=user_id, created_at=now,
                             expires_at=now + timedelta(seconds=seconds)))
        return session_id

    def session_user(self, session_id: str) -> int | None:
        """The user of a live session; None for an unknown, ended or expired one."""
        if not session_id or len(session_id) > 200:
            return None
        with Session(self.engine) as s:
            row = s.get(SessionRow, hash_token(session_id))
            if row is None or aware(row.expires_at) <= datetime.now(UTC):
                return None
            return row.user_id

    def end_sessions(self, user_id: int) -> int:
        with Session(self.engine) as s, s.begin():
            return int(s.execute(delete(SessionRow).where(SessionRow.user_id == user_id)).rowcount or 0)  # type: ignore[attr-defined]

    # -- DS access tokens --------------------------------------------------------------------------

    def user_exists(self, user_id: int) -> bool:
        with Session(self.engine) as s:
            return s.get(UserRow, user_id) is not None

    def ds_tokens(self, user_id: int | None = None, search: str = "") -> list[DsToken]:
        """Live (not revoked) tokens, of one user or all; ``search`` matches the user name as DS."""
        with Session(self.engine) as s:
            users = {u.id: u.name for u in s.scalars(select(UserRow))}
            q = select(TokenRow).where(TokenRow.revoked.is_(False)).order_by(TokenRow.id.desc())
            if user_id is not None:
                q = q.where(TokenRow.user_id == user_id)
            return [_ds_token(t, users[t.user_id]) for t in s.scalars(q)
                    if t.user_id in users and search.lower() in users[t.user_id].lower()]

    def ds_token(self, token_id: int) -> DsToken | None:
        with Session(self.engine) as s:
            row = s.get(TokenRow, token_id)
            user = s.get(UserRow, row.user_id) if row is not None and not row.revoked else None
            return _ds_token(row, user.name) if row is not None and user is not None else None

    def create_ds_token(self, user_id: int, expires_at: datetime, token: str | None = None) -> DsToken:
        token = token or new_token()
        with Session(self.engine) as s, s.begin():
            user = s.get(UserRow, user_id)
            if user is None:
                raise UnknownUser(f"no user with id {user_id}")
            row = TokenRow(user_id=user_id, name=DS_TOKEN_NAME, token_hash=hash_token(token),
                           created_at=datetime.now(UTC), expires_at=expires_at)
            s.add(row)
            try:
                s.flush()
            except IntegrityError:
                raise TokenInUse("token already in use") from None
            return _ds_token(row, user.name, token)

    def update_ds_token(self, token_id: int, user_id: int, expires_at: datetime, token: str | None = None) -> DsToken:
        """DS's update: a new owner, expiry and token value on the same id (the old value stops working)."""
        token = token or new_token()
        with Session(self.engine) as s, s.begin():
            row = s.get(TokenRow, token_id)
            user = s.get(UserRow, user_id)
            if row is None or row.revoked:
                raise UnknownToken(f"no token {token_id}")
            if user is None:
                raise UnknownUser(f"no user with id {user_id}")
            row.user_id, row.expires_at, row.token_hash = user_id, expires_at, hash_token(token)
            try:
                s.flush()
            except IntegrityError:
                raise TokenInUse("token already in use") from None
            return _ds_token(row, user.name, token)

    def delete_ds_token(self, token_id: int) -> bool:
        with Session(self.engine) as s, s.begin():
            row = s.get(TokenRow, token_id)
            if row is None or row.revoked:
                return False
            row.revoked = True
            return True


def _ds_token(t: TokenRow, user_name: str, token: str | None = None) -> DsToken:
    return DsToken(id=t.id, user_id=t.user_id, user_name=user_name,
                   expires_at=aware(t.expires_at) if t.expires_at is not None else None,
                   created_at=aware(t.created_at), token=token)
