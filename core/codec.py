"""Payload encryption with Temporal's own mechanism: an AES-GCM ``PayloadCodec``.

Every payload a Porpoise client or worker sends to Temporal (workflow and activity inputs and results,
start params, varPool, heartbeat details, memo, summaries, failure details) is encrypted before it
leaves the process, so Temporal's history, its database file and its UI hold ciphertext only. Search
attributes are not payloads: they stay plaintext and indexed, so they must never carry a secret.

Keys live in a key ring file (``<data dir>/payload.keys``, mode 0600, or ``PORPOISE_PAYLOAD_KEY_FILE``):
one ``<key id>:<base64 key>`` per line, the last line the newest. The codec encrypts with the newest
key and names its id in the payload metadata, so decryption picks the right key and old histories stay
readable after :func:`rotate`. Processes notice a rotated file by itself (a ``stat`` per encode, a
reload on an unknown key id). Only the embedded dev mode (SQLite) generates the file on first use; a
deployment must give every process the same file, or a worker could not read what the API wrote.

Payloads of :data:`COMPRESS_FROM` bytes or more are zlib-compressed before they are encrypted (their
own encoding, :data:`ENCODING_ZLIB`, which is also in the associated data): a definition, a task
request or a node status is repetitive JSON, and compressed it is 5-10x smaller in history, in the
server's database and on the wire, and far from the server's 2 MiB payload limit. Ciphertext cannot
be compressed afterwards, so it is now or never. Every process of a deployment must run a version
that reads :data:`ENCODING_ZLIB` (an older one would pass such a payload through undecoded).
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import threading
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from .private_files import private_dir
from .settings import Settings

ENCODING = b"binary/encrypted"
ENCODING_ZLIB = b"binary/encrypted-zlib"  # zlib-compressed, then encrypted
COMPRESS_FROM = 512  # bytes of serialized payload; below that zlib saves little and costs a call
_ZLIB_AAD = b"\x00zlib"  # appended to the associated data: the encoding label cannot be swapped
KEY_ID = "encryption-key-id"
_NONCE = 12


def pack(plain: bytes) -> bytes | None:
    """``plain`` as the codec compresses it before encrypting, or None when it travels as it is (under
    :data:`COMPRESS_FROM` bytes, or no smaller compressed). core/payload_budget.py sizes payloads
    with it."""
    if len(plain) < COMPRESS_FROM:
        return None
    packed = zlib.compress(plain, 1)  # level 1: most of the gain for a fraction of the CPU
    return packed if len(packed) < len(plain) else None


class PayloadKeyError(RuntimeError):
    """No usable key ring, or a payload encrypted with a key this process does not have."""


def key_file(settings: Settings) -> Path:
    return (settings.payload_key_file or settings.data_dir / "payload.keys").resolve()


def _dev_mode(settings: Settings) -> bool:
    if settings.dev_mode is not None:
        return settings.dev_mode
    return settings.resolved_database_url.startswith("sqlite")


def _new_line() -> str:
    return f"{secrets.token_hex(4)}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}\n"


def _write_private(path: Path, text: str, *, replace: bool) -> None:
    """Write ``text`` to ``path`` (mode 0600) atomically: a reader never sees half a key ring. Without
    ``replace`` only the first of racing processes wins (``link`` fails if the file exists)."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        if replace:
            os.replace(tmp, path)
            return
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        if tmp.exists():
            os.unlink(tmp)


@dataclass(frozen=True)
class KeyRing:
    keys: dict[str, bytes]  # key id -> 32-byte AES key
    current: str  # the newest key's id: the one that encrypts

    @classmethod
    def parse(cls, text: str, source: Path) -> KeyRing:
        keys: dict[str, bytes] = {}
        current = ""
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            kid, _, b64 = line.partition(":")
            try:
                key = base64.b64decode(b64, validate=True)
            except ValueError:
                key = b""
            if not kid or len(key) not in (16, 24, 32):
                raise PayloadKeyError(f"{source} line {n}: expected '<key id>:<base64 AES key>'")
            keys[kid] = key
            current = kid
        if not keys:
            raise PayloadKeyError(f"{source} holds no key")
        return cls(keys, current)


def load_ring(path: Path, *, create: bool) -> KeyRing:
    if not path.exists():
        if not create:
            raise PayloadKeyError(
                f"no payload key ring at {path}. Every client and worker needs the same file: copy it from "
                "the machine that made it, or make one with `porpoise keys rotate` and set "
                "PORPOISE_PAYLOAD_KEY_FILE (only the embedded dev mode makes one by itself)")
        _write_private(path, _new_line(), replace=False)
    try:
        return KeyRing.parse(path.read_text(), path)
    except OSError as e:
        raise PayloadKeyError(f"cannot read the payload key ring {path}: {e.strerror}") from None


def rotate(path: Path) -> str:
    """Add a new newest key to the ring at ``path`` (creating it); returns the new key id. Old keys
    stay, so every history written before still decrypts."""
    old = path.read_text() if path.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    line = _new_line()
    _write_private(path, old + line, replace=True)
    return line.split(":", 1)[0]


class EncryptionCodec(PayloadCodec):
    """AES-GCM over each whole serialized payload (its metadata included). The key id is both in the
    metadata and the associated data, so a payload cannot be re-labelled to another key."""

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._ring = load_ring(path, create=create)
        self._mtime = self._stat()

    def _stat(self) -> float:
        try:
            return self._path.stat().st_mtime_ns
        except OSError:
            return 0

    def _reload(self) -> KeyRing:
        with self._lock:
            mtime = self._stat()
            if mtime != self._mtime:
                self._ring = load_ring(self._path, create=False)
                self._mtime = mtime
            return self._ring

    def encrypt(self, payload: Payload) -> Payload:
        ring = self._reload()
        key_id = ring.current
        plain, encoding, aad = payload.SerializeToString(), ENCODING, key_id.encode()
        packed = pack(plain)
        if packed is not None:
            plain, encoding, aad = packed, ENCODING_ZLIB, aad + _ZLIB_AAD
        nonce = os.urandom(_NONCE)
        data = AESGCM(ring.keys[key_id]).encrypt(nonce, plain, aad)
        return Payload(metadata={"encoding": encoding, KEY_ID: key_id.encode()}, data=nonce + data)

    def decrypt(self, payload: Payload) -> Payload:
        encoding = payload.metadata.get("encoding")
        if encoding not in (ENCODING, ENCODING_ZLIB):
            return payload  # written before encryption was on: readable as it is
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        key = self._ring.keys.get(key_id) or self._reload().keys.get(key_id)
        if key is None:
            raise PayloadKeyError(f"payload encrypted with key {key_id!r}, which {self._path} does not hold")
        compressed = encoding == ENCODING_ZLIB
        aad = key_id.encode() + (_ZLIB_AAD if compressed else b"")
        plain = AESGCM(key).decrypt(payload.data[:_NONCE], payload.data[_NONCE:], aad)
        out = Payload()
        out.ParseFromString(zlib.decompress(plain) if compressed else plain)
        return out

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]


_codecs: dict[Path, EncryptionCodec] = {}


def codec_for(settings: Settings) -> EncryptionCodec:
    """The codec every Porpoise client and worker uses (see the module docstring for the key ring);
    one per key ring file and process."""
    path = key_file(settings)
    if path not in _codecs:
        _codecs[path] = EncryptionCodec(path, create=settings.payload_key_file is None and _dev_mode(settings))
    return _codecs[path]
