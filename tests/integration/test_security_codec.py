"""Payload encryption on the real stack: a secret start param and the varPool it flows into are
ciphertext in Temporal's history (as the `temporal` CLI and a codec-less client see it), while the run
succeeds and the API, and the codec server endpoints, give the decoded values back."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.devserver import temporal_binary
from api.routers.codec import ensure_ui_secret
from core.codec import ENCODING, ENCODING_ZLIB, EncryptionCodec, key_file, rotate
from core.settings import Settings
from tests import dsbuild
from tests.integration.helpers import run


def _forms(secret: str) -> list[bytes]:
    return [secret.encode(), base64.b64encode(secret.encode()), secret.encode("utf-16-le")]


def _payload_data(shown: bytes) -> bytes:
    """Every payload's data in `temporal workflow show -o json` output, base64-decoded."""
    out: list[bytes] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str):
                with contextlib.suppress(ValueError):
                    out.append(base64.b64decode(node["data"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    try:
        walk(json.loads(shown))
    except ValueError:
        return b""
    return b"\n".join(out)


async def _secret_run(api: httpx.AsyncClient, secret: str) -> dict[str, object]:
    doc = dsbuild.export(
        f"codec-{uuid.uuid4().hex[:6]}",
        [dsbuild.task("emit", params={
            "localParams": [{"prop": "leak", "direct": "OUT", "type": "VARCHAR", "value": ""}],
            "rawScript": 'k=${api_key}; echo "#{setValue(leak=$k-out)}"', "resourceList": []})],
        [(None, "emit")],
        global_params='[{"prop": "api_key", "direct": "IN", "type": "VARCHAR", "value": "none"}]')
    return await run(api, doc, startParams={"api_key": secret})


async def test_secret_start_param_is_not_plaintext_in_history(api: httpx.AsyncClient, client: Client,
                                                              temporal_address: str, api_server: str) -> None:
    secret = f"s3cr3t-XYZ-{uuid.uuid4().hex[:8]}"
    status = await _secret_run(api, secret)
    assert status["state"] == "SUCCESS", status
    var_pool = {p["prop"]: p["value"] for p in status["varPool"]}  # type: ignore[attr-defined]
    assert var_pool["leak"] == f"{secret}-out"  # the API decodes
    instance_id = str(status["instanceId"])

    # What the Temporal CLI shows (no codec): no trace of the secret, and the payloads say encrypted.
    shown = subprocess.run(
        [temporal_binary(), "workflow", "show", "-w", instance_id, "-o", "json", "--address", temporal_address,
         "--namespace", "default"], capture_output=True, timeout=60, check=True).stdout
    assert len(shown) > 1000
    for form in _forms(secret):
        assert form not in shown, "the secret is in `temporal workflow show`"
    assert base64.b64encode(ENCODING) in shown

    # The Temporal CLI with the API as its codec server (token required) shows the decrypted values.
    command = [temporal_binary(), "workflow", "show", "-w", instance_id, "-o", "json", "--address",
               temporal_address, "--namespace", "default", "--codec-endpoint", f"{api_server}/codec"]
    token = os.environ["PORPOISE_TOKEN"]  # the suite's administrator token (tests/conftest.py)
    decoded_show = subprocess.run([*command, "--codec-auth", f"Bearer {token}"], capture_output=True, timeout=60,
                                  check=True).stdout
    assert secret.encode() in _payload_data(decoded_show)
    refused = subprocess.run(command, capture_output=True, timeout=60)
    assert secret.encode() not in _payload_data(refused.stdout) + refused.stdout  # no token: no decoding

    # What a client without the codec fetches: every event's bytes.
    plain = await Client.connect(temporal_address, data_converter=pydantic_data_converter)
    history = await plain.get_workflow_handle(instance_id).fetch_history()
    blob = b"\n".join(e.SerializeToString() for e in history.events) + history.to_json().encode()
    for form in _forms(secret):
        assert form not in blob, "the secret is in the history"

    # The codec server decodes what the history holds.
    started = history.events[0].workflow_execution_started_event_attributes.input
    body = json.loads(history.to_json())["events"][0]["workflowExecutionStartedEventAttributes"]["input"]
    assert len(started.payloads) == 1
    r = await api.post("/codec/decode", json=body)
    assert r.status_code == 200, r.text
    decoded = base64.b64decode(r.json()["payloads"][0]["data"])
    assert secret.encode() in decoded
    r = await api.post("/codec/encode", json=r.json())
    assert r.status_code == 200 and secret.encode() not in base64.b64decode(r.json()["payloads"][0]["data"])
    r = await api.post("/codec/decode", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text


async def test_ui_codec_path_needs_the_secret(api: httpx.AsyncClient, settings: Settings) -> None:
    payload = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                             "data": base64.b64encode(b'"hello"').decode()}]}
    secret = ensure_ui_secret(settings)
    assert (Path(settings.data_dir) / "codec-ui.secret").stat().st_mode & 0o777 == 0o600
    r = await api.post(f"/codec/ui/{secret}/encode", json=payload, headers={"authorization": ""})
    assert r.status_code == 200, r.text
    enc = r.json()
    assert base64.b64decode(enc["payloads"][0]["metadata"]["encoding"]) == ENCODING
    r = await api.post(f"/codec/ui/{secret}/decode", json=enc, headers={"authorization": ""})
    assert r.status_code == 200 and r.json() == payload
    r = await api.post(f"/codec/ui/{secret[:-1]}x/decode", json=enc, headers={"authorization": ""})
    assert r.status_code == 404


async def test_key_rotation_is_for_administrators(api: httpx.AsyncClient, settings: Settings,
                                                  client: Client) -> None:
    r = await api.post("/tokens", json={"name": f"norot-{uuid.uuid4().hex[:6]}"})
    plain = r.json()["token"]
    assert (await api.post("/codec/rotate-keys", headers={"authorization": f"Bearer {plain}"})).status_code == 403
    before = key_file(settings).read_text().count("\n")
    r = await api.post("/codec/rotate-keys")
    assert r.status_code == 200 and key_file(settings).read_text().count("\n") == before + 1
    new_id = r.json()["keyId"].encode()
    status = await _secret_run(api, "after-rotation")  # the worker encrypts with the new key, and reads it
    assert status["state"] == "SUCCESS"
    history = await client.get_workflow_handle(str(status["instanceId"])).fetch_history()
    ids = {p.metadata["encryption-key-id"] for e in history.events
           for p in e.workflow_execution_started_event_attributes.input.payloads}
    assert ids == {new_id}


async def test_key_rotation_keeps_old_payloads_readable(tmp_path: Path) -> None:
    from temporalio.api.common.v1 import Payload

    ring = tmp_path / "payload.keys"
    codec = EncryptionCodec(ring, create=True)
    assert ring.stat().st_mode & 0o777 == 0o600
    p = Payload(metadata={"encoding": b"json/plain"}, data=b'"value-1"')
    (old,) = await codec.encode([p])
    first_id = old.metadata["encryption-key-id"]
    new_id = rotate(ring)
    assert ring.stat().st_mode & 0o777 == 0o600
    (new,) = await codec.encode([p])  # the running codec picks up the rotated ring by itself
    assert new.metadata["encryption-key-id"] == new_id.encode() != first_id
    assert await codec.decode([old, new]) == [p, p]
    fresh = EncryptionCodec(ring)  # another process, started after the rotation
    assert await fresh.decode([old]) == [p]
    # a payload re-labelled to the other key does not decrypt
    forged = Payload(metadata={"encoding": ENCODING, "encryption-key-id": new_id.encode()}, data=old.data)
    with pytest.raises(Exception):  # noqa: B017 (cryptography's InvalidTag)
        await codec.decode([forged])


async def test_large_payloads_are_compressed_then_encrypted(tmp_path: Path) -> None:
    """A definition-sized payload travels compressed (its own encoding, bound to the ciphertext), small
    ones as before; both decode to what was encoded, and a relabelled one does not decrypt."""
    from temporalio.api.common.v1 import Payload

    codec = EncryptionCodec(tmp_path / "payload.keys", create=True)
    rows = json.dumps([{"name": f"t{i}", "taskType": "SHELL", "rawScript": "true"} for i in range(2000)])
    large = Payload(metadata={"encoding": b"json/plain"}, data=rows.encode())
    small = Payload(metadata={"encoding": b"json/plain"}, data=b'"value"')
    packed, plain = await codec.encode([large, small])
    assert packed.metadata["encoding"] == ENCODING_ZLIB and len(packed.data) * 10 < len(large.data)
    assert plain.metadata["encoding"] == ENCODING
    assert b"rawScript" not in packed.data
    assert await codec.decode([packed, plain]) == [large, small]
    relabelled = Payload(metadata={"encoding": ENCODING, "encryption-key-id": packed.metadata["encryption-key-id"]},
                         data=packed.data)
    with pytest.raises(Exception):  # noqa: B017 (cryptography's InvalidTag)
        await codec.decode([relabelled])
