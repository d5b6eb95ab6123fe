"""Failure messages are encrypted in Temporal history (issue 12): a task whose failure message quotes a
secret leaves no trace of it in `temporal workflow show` or the raw history events, while Porpoise's
status still reports the real message and the codec server (the Temporal CLI's codec endpoint, the
API's `/codec/decode`) gives it back to an operator."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid

import httpx
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.devserver import temporal_binary
from tests import dsbuild
from tests.integration.helpers import nodes, run
from tests.integration.test_security_codec import _forms, _payload_data


def _failures(history_json: dict[str, object]) -> list[dict[str, object]]:
    """Every Failure message of a history in JSON form (those with a message, at any depth)."""
    out: list[dict[str, object]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "message" in node and ("applicationFailureInfo" in node or "encodedAttributes" in node
                                      or "activityFailureInfo" in node):
                out.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(history_json)
    return out


async def test_a_secret_in_a_failure_message_is_encrypted_in_history(
        api: httpx.AsyncClient, client: Client, temporal_address: str, api_server: str) -> None:
    secret = f"f41l-s3cr3t-{uuid.uuid4().hex[:10]}"
    # An HTTP task whose check fails: its failure message quotes the expected body, the secret.
    check = dsbuild.task("check", task_type="HTTP", params={
        "localParams": [], "url": f"{api_server}/health", "httpMethod": "GET", "httpParams": [],
        "httpCheckCondition": "BODY_CONTAINS", "condition": secret,
        "connectTimeout": 5000, "socketTimeout": 5000})
    status = await run(api, dsbuild.export(f"fail-{uuid.uuid4().hex[:6]}", [check], [(None, "check")]))
    assert status["state"] == "FAILURE", status
    error = nodes(status)["check"]["error"] or ""
    assert secret in error and "does not contain" in error, error  # Porpoise reads its own message
    instance_id = str(status["instanceId"])

    # What the Temporal CLI shows without the codec, and what a codec-less client fetches: no secret.
    show = [temporal_binary(), "workflow", "show", "-w", instance_id, "-o", "json", "--address", temporal_address,
            "--namespace", "default"]
    shown = subprocess.run(show, capture_output=True, timeout=60, check=True).stdout
    assert b"Encoded failure" in shown, "no failure with encoded attributes in the history"
    for form in _forms(secret):
        assert form not in shown, "the secret is in `temporal workflow show`"
    plain = await Client.connect(temporal_address, data_converter=pydantic_data_converter)
    history = await plain.get_workflow_handle(instance_id).fetch_history()
    blob = b"\n".join(e.SerializeToString() for e in history.events) + history.to_json().encode()
    for form in _forms(secret):
        assert form not in blob, "the secret is in the raw history"
    failures = _failures(json.loads(history.to_json()))
    assert failures and all(f["message"] == "Encoded failure" and "encodedAttributes" in f
                            for f in failures if "applicationFailureInfo" in f), failures

    # Decoded: the Temporal CLI through the API's codec endpoint, the API's /codec/decode, the SDK.
    token = os.environ["PORPOISE_TOKEN"]  # the suite's administrator token (tests/conftest.py)
    decoded_show = subprocess.run([*show, "--codec-endpoint", f"{api_server}/codec", "--codec-auth",
                                   f"Bearer {token}"], capture_output=True, timeout=60, check=True).stdout
    assert secret.encode() in _payload_data(decoded_show) + decoded_show
    app_failure = next(f for f in failures if "applicationFailureInfo" in f)
    r = await api.post("/codec/decode", json={"payloads": [app_failure["encodedAttributes"]]})
    assert r.status_code == 200, r.text
    attributes = json.loads(base64.b64decode(r.json()["payloads"][0]["data"]))
    assert secret in attributes["message"]
    raw = Failure()
    for event in history.events:
        if event.HasField("activity_task_failed_event_attributes"):
            raw.CopyFrom(event.activity_task_failed_event_attributes.failure)
    assert raw.message == "Encoded failure"
    err = await client.data_converter.decode_failure(raw)
    assert secret in str(err)
