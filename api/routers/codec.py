"""Temporal's remote codec server protocol, so the Temporal UI and CLI show decrypted payloads.

``POST /codec/encode`` and ``POST /codec/decode`` take and return ``{"payloads": [...]}`` in the
protobuf JSON form (metadata values and data base64), as the Temporal UI's "codec endpoint" and
``temporal ... --codec-endpoint`` send them. They need a token like every route.

The Temporal UI in the browser cannot send a Porpoise token, so ``porpoise up`` points it at
``/codec/ui/<secret>``: the same two endpoints behind a random path secret kept 0600 in the data dir
(``codec-ui.secret``), which grants nothing but encode and decode (docs/security.md). CORS for these
paths allows the Temporal UI's origin only (api/security.py).
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from google.protobuf import json_format
from google.protobuf.message import Error as ProtobufError
from temporalio.api.common.v1 import Payloads

from core.codec import PayloadKeyError, codec_for, key_file, rotate
from core.private_files import private_dir
from core.settings import Settings
from services.schemas import CodecPayloads, PayloadKeyAdded

from ..auth import ADMIN_ONLY
from ..deps import SettingsDep
from ..problems import ProblemError

router = APIRouter(prefix="/codec", tags=["codec"])
ui_router = APIRouter(prefix="/codec/ui", tags=["codec"], include_in_schema=False)

UI_SECRET_FILE = "codec-ui.secret"
# The body is parsed as protobuf JSON (not by FastAPI); OpenAPI shows its shape all the same.
CODEC_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/CodecPayloads"}}}}}


def ui_secret_file(settings: Settings) -> Path:
    return (settings.data_dir / UI_SECRET_FILE).resolve()


def ensure_ui_secret(settings: Settings) -> str:
    """The UI codec path secret, made (0600) on first use."""
    path = ui_secret_file(settings)
    if not path.exists():
        private_dir(path.parent)
        try:
            fd = path.open("x")
        except FileExistsError:
            pass
        else:
            path.chmod(0o600)
            with fd:
                fd.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


async def _payloads(request: Request) -> Payloads:
    body = await request.body()
    try:
        return json_format.Parse(body or b"{}", Payloads())
    except (ProtobufError, ValueError, UnicodeDecodeError) as e:
        shape = '{"payloads": [{"metadata": {...}, "data": "<base64>"}]}'
        raise ProblemError(400, "Invalid codec request", f"the body must be {shape}: {e}") from e


def _answer(payloads: list[Any]) -> dict[str, Any]:
    return json_format.MessageToDict(Payloads(payloads=payloads))


async def _encode(request: Request, settings: Settings) -> dict[str, Any]:
    return _answer(await codec_for(settings).encode((await _payloads(request)).payloads))


async def _decode(request: Request, settings: Settings) -> dict[str, Any]:
    try:
        return _answer(await codec_for(settings).decode((await _payloads(request)).payloads))
    except PayloadKeyError as e:
        raise ProblemError(400, "Cannot decode", str(e)) from e
    except Exception as e:  # a corrupt or re-labelled ciphertext (cryptography's InvalidTag)
        raise ProblemError(400, "Cannot decode", f"a payload did not decrypt: {type(e).__name__}") from e


@router.post("/encode", response_model=CodecPayloads, openapi_extra=CODEC_BODY,
             summary="Encrypt payloads (Temporal codec server protocol)")
async def encode(request: Request, settings: SettingsDep) -> dict[str, Any]:
    return await _encode(request, settings)


@router.post("/decode", response_model=CodecPayloads, openapi_extra=CODEC_BODY,
             summary="Decrypt payloads (Temporal codec server protocol)")
async def decode(request: Request, settings: SettingsDep) -> dict[str, Any]:
    return await _decode(request, settings)


@router.post("/rotate-keys", response_model=PayloadKeyAdded,
             summary="Add a new payload key; old payloads still decrypt (administrators)",
             dependencies=[ADMIN_ONLY])
async def rotate_keys(settings: SettingsDep) -> dict[str, str]:
    """Appends a key to the ring file the API reads; processes sharing that file (the embedded stack)
    pick it up by themselves. A deployment copies the new file to every worker (docs/security.md)."""
    path = key_file(settings)
    return {"keyId": rotate(path), "keyFile": str(path)}


def _check_ui_secret(settings: Settings, secret: str) -> None:
    path = ui_secret_file(settings)
    expected = path.read_text().strip() if path.exists() else ""
    if not expected or not hmac.compare_digest(expected.encode(), secret.encode()):
        raise ProblemError(404, "Not found")


@ui_router.post("/{secret}/encode")
async def ui_encode(secret: str, request: Request, settings: SettingsDep) -> dict[str, Any]:
    _check_ui_secret(settings, secret)
    return await _encode(request, settings)


@ui_router.post("/{secret}/decode")
async def ui_decode(secret: str, request: Request, settings: SettingsDep) -> dict[str, Any]:
    _check_ui_secret(settings, secret)
    return await _decode(request, settings)
