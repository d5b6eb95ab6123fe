"""The encryption of stored secrets (datasource passwords, alert channel secrets), and key rotation.

Secrets are encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256). ``PORPOISE_SECRET_KEY``
holds one or more comma-separated keys: the first encrypts, every one decrypts (``MultiFernet``), so
a key is rotated by putting the new key first, re-encrypting (:func:`rotate_column`, behind each
store's ``rotate()``), then dropping the old one. Outside the embedded dev mode a missing key is a
refusal to start (:class:`SecretKeyError`); in dev mode a key file is generated under the data
directory.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.private_files import private_dir
from core.settings import Settings

KEY_HELP = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


class SecretKeyError(RuntimeError):
    """No usable encryption key: the API and the worker refuse to start."""



def dev_mode(settings: Settings) -> bool:
    """The embedded dev mode: ``PORPOISE_DEV_MODE``, or by default "the database is SQLite".

    A SQLite database means one machine running everything (``porpoise up``); a shared database
    (PostgreSQL) means a deployment, where a key must be configured explicitly.
    """
    if settings.dev_mode is not None:
        return settings.dev_mode
    return settings.resolved_database_url.startswith("sqlite")


def key_file(settings: Settings) -> Path:
    return (settings.secret_key_file or settings.data_dir / "secret.key").resolve()


def _read_or_create_key(path: Path) -> str:
    """The dev key at ``path``, created atomically (mode 0600) by whichever process comes first."""
    if not path.exists():
        private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(Fernet.generate_key().decode() + "\n")
        try:
            os.link(tmp, path)  # atomic: never a half-written key, and only one winner
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


def load_keys(settings: Settings) -> list[str]:
    """The Fernet keys, primary first: ``PORPOISE_SECRET_KEY``, else the key file, else (dev mode
    only) a generated key file. Raises :class:`SecretKeyError` saying how to make a key."""
    raw = settings.secret_key.get_secret_value()
    source = "PORPOISE_SECRET_KEY"
    path = key_file(settings)
    if not raw.strip() and (settings.secret_key_file or path.exists()):
        try:
            raw, source = path.read_text(), str(path)
        except OSError as e:
            raise SecretKeyError(f"cannot read the secret key file {path}: {e.strerror}") from None
    if not raw.strip():
        if not dev_mode(settings):
            raise SecretKeyError(
                "No secret key for datasource passwords. Set PORPOISE_SECRET_KEY to a Fernet key (or several, "
                "comma-separated: the first encrypts, all decrypt), or PORPOISE_SECRET_KEY_FILE to a file "
                f"holding them. Make a key with:\n    {KEY_HELP}\n"
                "(Only the embedded dev mode - a SQLite database, or PORPOISE_DEV_MODE=true - generates one "
                "by itself, in <data dir>/secret.key.)"
            )
        raw, source = _read_or_create_key(path), str(path)
    keys = [k.strip() for k in raw.replace("\n", ",").split(",") if k.strip()]
    for i, k in enumerate(keys, 1):
        try:
            Fernet(k)
        except (ValueError, TypeError):
            raise SecretKeyError(
                f"key #{i} in {source} is not a Fernet key (32 url-safe base64-encoded bytes); make one with:\n"
                f"    {KEY_HELP}"
            ) from None
    return keys


class Cipher:
    """Encrypt with the primary key, decrypt with any (``MultiFernet``)."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise SecretKeyError("at least one key is needed")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def from_settings(cls, settings: Settings) -> Cipher:
        return cls(load_keys(settings))

    def encrypt(self, plaintext: str) -> str:
        return self._all.encrypt(plaintext.encode()).decode() if plaintext else ""

    def decrypt(self, token: str) -> str:
        return self._all.decrypt(token.encode()).decode() if token else ""

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is encrypted with the primary key (nothing to rotate)."""
        if not token:
            return True
        try:
            self._primary.decrypt(token.encode())
            return True
        except InvalidToken:
            return False

    def rotate(self, token: str) -> str:
        return self._all.rotate(token.encode()).decode() if token else ""


def rotate_column(engine: Engine, row_type: type[Any], column: str, cipher: Cipher) -> dict[str, int]:
    """Re-encrypt ``column`` of every row still under an older key with the primary key.

    Returns counts; a token no configured key can decrypt is left as it is and counted
    ``unreadable`` (put its key back in PORPOISE_SECRET_KEY, or set the secret again).
    """
    counts = {"rotated": 0, "current": 0, "unreadable": 0}
    with Session(engine) as s, s.begin():
        for row in s.scalars(select(row_type).with_for_update()).all():
            token = getattr(row, column)
            if cipher.is_current(token):
                counts["current"] += 1
                continue
            try:
                setattr(row, column, cipher.rotate(token))
            except InvalidToken:
                counts["unreadable"] += 1
                continue
            counts["rotated"] += 1
    return counts
