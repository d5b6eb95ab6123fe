"""Alerts end to end: a real SMTP server (aiosmtpd, STARTTLS + AUTH), a local WeCom server (gettoken,
message/send, group robot webhook), a webhook, the ``send_alerts`` activity in an ActivityEnvironment
with a realistic failed run, and the API (CRUD, validation on save, previews of a sample and of a real
finished run)."""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import json
import socket
import sqlite3
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.alerts import AlertKind, AlertRequest, AlertResult, ChannelType
from activities.alerts.activity import RETRY_ERROR_TYPE, AlertActivities, AlertSender
from activities.alerts.channels import forget_wecom_tokens
from api.app import create_app
from core.contracts import InstanceStatus, NodeStatus
from core.settings import Settings
from model.definition import FailureStrategy, Property, WarningType
from model.states import TaskState, WorkflowState
from storage.alerts import AlertStore, ChannelSpec, GroupSpec
from tests import dsbuild
from tests.integration.helpers import run

SMTP_USER, SMTP_PASSWORD = "alerts", f"smtp-pw-{uuid.uuid4().hex[:8]}"
CORP_ID, CORP_SECRET, AGENT_ID = "ww-corp-1", f"corp-secret-{uuid.uuid4().hex[:8]}", 1000002
ROBOT_KEY = f"robot-key-{uuid.uuid4().hex[:8]}"
HOOK_TOKEN = f"hook-token-{uuid.uuid4().hex[:8]}"
SECRETS = (SMTP_PASSWORD, CORP_SECRET, ROBOT_KEY, HOOK_TOKEN)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------------
# A real SMTP server: STARTTLS (self-signed) and AUTH
# --------------------------------------------------------------------------------------------------


def _self_signed(tmp: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return ctx


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.logins: list[str] = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        with self.cond:
            self.messages.append({"from": envelope.mail_from, "rcpt": list(envelope.rcpt_tos),
                                  "tls": session.ssl is not None,
                                  "message": email.message_from_bytes(envelope.content, policy=email.policy.default)})
            self.cond.notify_all()
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login.decode() == SMTP_USER and \
            data.password.decode() == SMTP_PASSWORD
        if ok:
            self.logins.append(data.login.decode())
        return AuthResult(success=ok)

    def wait(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"expected {count} mail(s), got {len(self.messages)}"
                self.cond.wait(remaining)
            return list(self.messages)


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = _free_port()
    tls = _self_signed(tmp_path_factory.mktemp("tls"))
    controller = Controller(box, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True,
                            authenticator=box.authenticate, auth_require_tls=True)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


# --------------------------------------------------------------------------------------------------
# A local WeCom: gettoken, message/send, the group robot webhook; and a plain webhook
# --------------------------------------------------------------------------------------------------


class WeCom:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.tokens: set[str] = set()
        self.busy = False  # message/send answers errcode -1 "system busy"
        self.expire_next = False  # the next message/send says the token expired (42001)
        self.lock = threading.Lock()

    def of(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"] == path]


def _wecom_server(state: WeCom) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, body: dict[str, Any], status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self, body: Any) -> tuple[str, dict[str, str]]:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            with state.lock:
                state.requests.append({"path": url.path, "query": query, "body": body, "headers": dict(self.headers)})
            return url.path, query

        def do_GET(self) -> None:  # noqa: N802
            path, q = self._record(None)
            if path != "/cgi-bin/gettoken":
                return self._answer({"errcode": 404}, 404)
            if q.get("corpid") != CORP_ID or q.get("corpsecret") != CORP_SECRET:
                return self._answer({"errcode": 40001, "errmsg": "invalid credential"})
            token = f"tok-{uuid.uuid4().hex[:6]}"
            with state.lock:
                state.tokens.add(token)
            return self._answer({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
            path, q = self._record(body)
            if path == "/cgi-bin/message/send":
                if state.expire_next:
                    state.expire_next = False
                    with state.lock:
                        state.tokens.clear()
                    return self._answer({"errcode": 42001, "errmsg": "access_token expired"})
                if q.get("access_token") not in state.tokens:
                    return self._answer({"errcode": 40014, "errmsg": "invalid access_token"})
                if state.busy:
                    return self._answer({"errcode": -1, "errmsg": "system busy"})
                return self._answer({"errcode": 0, "errmsg": "ok", "invaliduser": ""})
            if path == "/cgi-bin/webhook/send":
                if q.get("key") != ROBOT_KEY:
                    return self._answer({"errcode": 93000, "errmsg": "invalid webhook url"})
                return self._answer({"errcode": 0, "errmsg": "ok"})
            if path == "/hook":
                ok = self.headers.get("Authorization") == f"Bearer {HOOK_TOKEN}"
                return self._answer({"ok": ok}, 200 if ok else 401)
            return self._answer({"errcode": 404}, 404)

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture(scope="module")
def wecom() -> Iterator[tuple[WeCom, str]]:
    state = WeCom()
    server = _wecom_server(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _fresh_tokens() -> None:
    forget_wecom_tokens()


# --------------------------------------------------------------------------------------------------
# The store, the sender, a realistic failed run
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("alerts")
    return Settings(data_dir=data, database_url=f"sqlite:///{data / 'porpoise.db'}",
                    temporal_ui_url="http://temporal-ui.test", api_url="http://porpoise.test")


@pytest.fixture(scope="module")
def store(local_settings: Settings) -> Iterator[AlertStore]:
    s = AlertStore.from_settings(local_settings)
    yield s
    s.dispose()


@pytest.fixture(scope="module")
def sender(store: AlertStore, local_settings: Settings) -> Iterator[AlertSender]:
    s = AlertSender(store, local_settings)
    yield s
    s.close()


EMAIL_SUBJECT = "[{{ biz.region }}] {{ definition.name }} {{ state }} (owner {{ biz.owner }})"
EMAIL_BODY = """<h1>{{ title }}</h1>
<p>Owner: <b>{{ biz.owner }}</b> · project {{ project.name }} · instance {{ instance.id }}</p>
<p>{{ times.start }} → {{ times.end }} ({{ duration }}, {{ times.timezone }})</p>
<ul>{% for t in failed_tasks %}<li>{{ t.name }}: {{ t.state }} after {{ t.attempts }} attempt(s) — {{ t.error }}
<a href="{{ t.log_url }}">log</a></li>{% endfor %}</ul>
<p>{{ nodes|length }} nodes: {% for n in nodes %}{{ n.name }}={{ n.state }} {% endfor %}</p>
<a href="{{ links.temporal }}">Temporal UI</a>"""
WECOM_BODY = """### {{ definition.name }} <font color="warning">{{ state }}</font>
> owner: {{ biz.owner }} ({{ biz.region }})
> instance: {{ instance.id }}, {{ duration }}
{% for t in failed_tasks %}> **{{ t.name }}** {{ t.state }}: {{ t.error }} [log]({{ t.log_url }})
{% endfor %}
[Temporal]({{ links.temporal }})"""


def failed_status(instance_id: str | None = None) -> InstanceStatus:
    t0 = datetime(2024, 6, 1, 1, 0, tzinfo=UTC)
    instance_id = instance_id or f"ds-5001-20240601090000-{uuid.uuid4().hex[:8]}"
    return InstanceStatus(
        instance_id=instance_id, definition_code=5001, definition_name="orders_daily", definition_version=2,
        project_code=42, state=WorkflowState.FAILURE, failure_strategy=FailureStrategy.CONTINUE,
        start_time=t0, end_time=t0 + timedelta(minutes=4, seconds=10), run_times=1,
        var_pool=[Property(prop="rows", direct="OUT", type="VARCHAR", value="1200")],
        nodes=[
            NodeStatus(code=11, name="extract", task_type="SHELL", state=TaskState.SUCCESS, attempts=1,
                       start_time=t0, end_time=t0 + timedelta(seconds=50), host="w1", log_path="/l/11.1.log"),
            NodeStatus(code=12, name="transform", task_type="PYTHON", state=TaskState.FAILURE, attempts=2,
                       max_attempts=2, start_time=t0 + timedelta(seconds=51), end_time=t0 + timedelta(minutes=4),
                       host="w2", log_path="/l/12.2.log", error="exit code 3: KeyError 'sku'"),
            NodeStatus(code=13, name="load", task_type="SQL", state=TaskState.DEPEND_FAILED),
            NodeStatus(code=14, name="notify", task_type="HTTP", state=TaskState.FORBIDDEN),
        ],
    )


def request(group_id: int, status: InstanceStatus, **kw: Any) -> AlertRequest:
    fields: dict[str, Any] = {
        "kind": AlertKind.WORKFLOW_END, "warning_group_id": group_id, "warning_type": WarningType.FAILURE,
        "status": status, "start_params": {"owner": "alice@example.com", "region": "cn-east"},
        "project_name": "sales", "timezone": "Asia/Shanghai", "max_attempts": 3,
    }
    return AlertRequest(**(fields | kw))


def email_params(port: int, **kw: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "security": "STARTTLS", "verifyTls": False, "user": SMTP_USER,
            "password": SMTP_PASSWORD, "from": "porpoise@example.com", "to": "ops@example.com, dev@example.com",
            "cc": ["lead@example.com"], "timeout": 10} | kw


def wecom_app_params(base: str, **kw: Any) -> dict[str, Any]:
    return {"baseUrl": base, "corpId": CORP_ID, "agentId": AGENT_ID, "secret": CORP_SECRET, "toUser": "alice|bob"} | kw


def make_group(store: AlertStore, channels: list[ChannelSpec]) -> int:
    group = store.create_group(GroupSpec(name=f"g-{uuid.uuid4().hex[:8]}"))
    for c in channels:
        store.create_channel(group.id, c)
    return group.id


def activity_env(attempt: int = 1, workflow_id: str = "wf") -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt, workflow_id=workflow_id, workflow_run_id="run-1")
    return env


async def send(sender: AlertSender, req: AlertRequest, attempt: int = 1) -> AlertResult:
    env = activity_env(attempt, req.status.instance_id)
    return await asyncio.to_thread(env.run, AlertActivities(sender).send_alerts, req)


# --------------------------------------------------------------------------------------------------
# The activity
# --------------------------------------------------------------------------------------------------


async def test_failed_run_sends_templated_email_and_wecom_messages(
        smtp: tuple[Mailbox, int], wecom: tuple[WeCom, str], store: AlertStore, sender: AlertSender,
        local_settings: Settings) -> None:
    box, port = smtp
    state, base = wecom
    group_id = make_group(store, [
        ChannelSpec(name="mail", type=ChannelType.EMAIL, params=email_params(port),
                    templates={AlertKind.WORKFLOW_END: {"subject": EMAIL_SUBJECT, "body": EMAIL_BODY}}),  # type: ignore[dict-item]
        ChannelSpec(name="wecom-app", type=ChannelType.WECOM_APP, params=wecom_app_params(base),
                    templates={AlertKind.WORKFLOW_END: {"body": WECOM_BODY}}),  # type: ignore[dict-item]
        ChannelSpec(name="robot", type=ChannelType.WECOM_ROBOT, params={"baseUrl": base, "key": ROBOT_KEY}),
        ChannelSpec(name="hook", type=ChannelType.WEBHOOK,
                    params={"url": f"{base}/hook", "secretHeaders": {"Authorization": f"Bearer {HOOK_TOKEN}"},
                            "bodyParams": {"source": "porpoise"}}),
    ])
    status = failed_status()
    mails_before, sends_before = len(box.messages), len(state.of("/cgi-bin/message/send"))

    result = await send(sender, request(group_id, status))

    assert result.due and result.ok, result
    assert [o.channel_name for o in result.outcomes] == ["mail", "wecom-app", "robot", "hook"]
    assert all(o.ok and not o.template_error and not o.unknown_placeholders for o in result.outcomes), result

    # The email, as the SMTP server received it: STARTTLS, AUTH, every recipient, both placeholder kinds.
    mail = box.wait(mails_before + 1)[-1]
    msg: EmailMessage = mail["message"]
    assert mail["tls"] is True and SMTP_USER in box.logins
    assert sorted(mail["rcpt"]) == ["dev@example.com", "lead@example.com", "ops@example.com"]
    assert msg["From"] == "porpoise@example.com" and msg["Cc"] == "lead@example.com"
    assert msg["Subject"] == "[cn-east] orders_daily FAILURE (owner alice@example.com)"
    html_part = msg.get_body(("html",))
    text_part = msg.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html = html_part.get_content()
    assert "<h1>Workflow instance failed</h1>" in html
    assert "Owner: <b>alice@example.com</b> · project sales · instance " + status.instance_id in html
    assert "2024-06-01 09:00:00 → 2024-06-01 09:04:10 (4m 10s, Asia/Shanghai)" in html
    assert "transform: FAILURE after 2 attempt(s) — exit code 3: KeyError &#39;sku&#39;" in html
    assert f'href="http://porpoise.test/runs/{status.instance_id}/tasks/12/log"' in html
    assert "4 nodes: extract=SUCCESS transform=FAILURE load=DEPEND_FAILED notify=FORBIDDEN" in html
    assert f'href="http://temporal-ui.test/namespaces/default/workflows/{status.instance_id}/run-1/history"' in html
    assert "alice@example.com" in text_part.get_content() and "<b>" not in text_part.get_content()

    # WeCom: a token for the corp's secret, then an app message with the rendered markdown.
    assert any(r["query"] == {"corpid": CORP_ID, "corpsecret": CORP_SECRET} for r in state.of("/cgi-bin/gettoken"))
    sent = state.of("/cgi-bin/message/send")[sends_before:]
    assert len(sent) == 1
    body = sent[0]["body"]
    assert sent[0]["query"]["access_token"] in state.tokens
    assert body["touser"] == "alice|bob" and body["agentid"] == AGENT_ID and body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert content.startswith('### orders_daily <font color="warning">FAILURE</font>')
    assert "> owner: alice@example.com (cn-east)" in content
    assert f"> instance: {status.instance_id}, 4m 10s" in content
    assert "> **transform** FAILURE: exit code 3: KeyError 'sku' [log](http://porpoise.test/runs/" in content

    # The group robot got the default markdown; the webhook the facts, subject and body.
    robot = [r for r in state.of("/cgi-bin/webhook/send") if status.instance_id in json.dumps(r["body"])]
    assert len(robot) == 1 and robot[0]["query"] == {"key": ROBOT_KEY}
    robot_md = robot[0]["body"]["markdown"]["content"]
    assert "### Workflow instance failed" in robot_md and "transform (PYTHON, 2/2)" in robot_md
    hook = [r for r in state.of("/hook") if r["body"]["instanceId"] == status.instance_id]
    assert len(hook) == 1
    hb = hook[0]["body"]
    assert hb["source"] == "porpoise" and hb["state"] == "FAILURE" and hb["projectName"] == "sales"
    assert hb["failedTasks"] == [{"code": 12, "name": "transform", "type": "PYTHON", "state": "FAILURE",
                                  "error": "exit code 3: KeyError 'sku'"}]
    assert hb["subject"].startswith("[Porpoise] orders_daily FAILURE") and hb["format"] == "text"

    # Every delivery is recorded; secrets are encrypted at rest.
    rows = store.deliveries(instance_id=status.instance_id)
    assert sorted(r["channelName"] for r in rows) == ["hook", "mail", "robot", "wecom-app"]
    assert all(r["ok"] for r in rows)
    raw = "".join(str(row) for row in sqlite3.connect(local_settings.resolved_database_url.removeprefix("sqlite:///"))
                  .execute("select params, secrets_enc from alert_channel").fetchall())
    assert not any(s in raw for s in SECRETS)


async def test_warning_type_and_sub_processes_decide(smtp: tuple[Mailbox, int], store: AlertStore,
                                                     sender: AlertSender) -> None:
    box, port = smtp
    group_id = make_group(store, [ChannelSpec(name="mail", type=ChannelType.EMAIL, params=email_params(port))])
    before = len(box.messages)
    status = failed_status()
    not_due = await send(sender, request(group_id, status, warning_type=WarningType.SUCCESS))
    assert not not_due.due and "warningType SUCCESS" in not_due.reason
    assert not (await send(sender, request(group_id, status, warning_type=WarningType.NONE))).due
    child = status.model_copy(update={"is_sub_process": True})
    assert (await send(sender, request(group_id, child, warning_type=WarningType.ALL))).reason == \
        "sub-process instances never alert"
    await asyncio.sleep(0.2)
    assert len(box.messages) == before

    # A task timeout warning goes out whatever the warningType, with the default subject.
    timeout = await send(sender, request(group_id, status, kind=AlertKind.TASK_TIMEOUT, task_code=12,
                                         warning_type=WarningType.NONE))
    assert timeout.ok and timeout.outcomes[0].ok
    mail = box.wait(before + 1)[-1]["message"]
    assert mail["Subject"] == "[Porpoise] Task timeout warning: transform in orders_daily"
    assert "exit code 3" in mail.get_body(("html",)).get_content()


async def test_transient_failures_retry_without_resending_what_went_out(
        smtp: tuple[Mailbox, int], wecom: tuple[WeCom, str], store: AlertStore, sender: AlertSender) -> None:
    box, port = smtp
    state, base = wecom
    group_id = make_group(store, [
        ChannelSpec(name="mail", type=ChannelType.EMAIL, params=email_params(port)),
        ChannelSpec(name="wecom", type=ChannelType.WECOM_APP, params=wecom_app_params(base)),
    ])
    req = request(group_id, failed_status(), max_attempts=3)
    mails = len(box.messages)
    state.busy = True
    try:
        with pytest.raises(ApplicationError) as raised:
            await send(sender, req, attempt=1)
    finally:
        state.busy = False
    assert raised.value.type == RETRY_ERROR_TYPE and not raised.value.non_retryable
    first = AlertResult.model_validate(raised.value.details[0])
    assert [o.ok for o in first.outcomes] == [True, False] and first.outcomes[1].transient
    assert "errcode -1 system busy" in str(first.outcomes[1].error)
    box.wait(mails + 1)

    second = await send(sender, req, attempt=2)  # Temporal's retry: only WeCom is sent again
    assert second.ok
    assert second.outcomes[0].already_sent and second.outcomes[0].attempt == 1
    assert second.outcomes[1].ok and second.outcomes[1].attempt == 2
    await asyncio.sleep(0.2)
    assert len(box.messages) == mails + 1  # no duplicate email


async def test_last_attempt_and_permanent_failures_return_a_result(
        smtp: tuple[Mailbox, int], wecom: tuple[WeCom, str], store: AlertStore, sender: AlertSender) -> None:
    _, port = smtp
    state, base = wecom
    dead = _free_port()
    group_id = make_group(store, [
        ChannelSpec(name="dead-smtp", type=ChannelType.EMAIL, params=email_params(dead, timeout=2)),
        ChannelSpec(name="bad-secret", type=ChannelType.WECOM_APP,
                    params=wecom_app_params(base, secret="wrong-s3cret")),
        ChannelSpec(name="strict-tls", type=ChannelType.EMAIL, params=email_params(port, verifyTls=True)),
        ChannelSpec(name="robot", type=ChannelType.WECOM_ROBOT, params={"baseUrl": base, "key": ROBOT_KEY}),
    ])
    result = await send(sender, request(group_id, failed_status(), max_attempts=2), attempt=2)  # the last attempt
    by_name = {o.channel_name: o for o in result.outcomes}
    assert by_name["robot"].ok  # a failing channel never stops the others
    assert not by_name["dead-smtp"].ok and by_name["dead-smtp"].transient
    assert "cannot reach SMTP 127.0.0.1" in str(by_name["dead-smtp"].error)
    assert not by_name["bad-secret"].ok and not by_name["bad-secret"].transient
    bad_error = str(by_name["bad-secret"].error)
    assert "errcode 40001" in bad_error and "wrong-s3cret" not in bad_error
    assert not by_name["strict-tls"].ok and not by_name["strict-tls"].transient
    assert "does not verify" in str(by_name["strict-tls"].error)
    # permanent failures only: no retry even when attempts remain
    only_permanent = make_group(store, [ChannelSpec(name="bad", type=ChannelType.WECOM_APP,
                                                    params=wecom_app_params(base, secret="nope-nope"))])
    result = await send(sender, request(only_permanent, failed_status(), max_attempts=5), attempt=1)
    assert not result.ok and not result.failed[0].transient
    missing = await send(sender, request(999_999, failed_status()))
    assert missing.error == "alert group 999999 does not exist"


async def test_an_expired_wecom_token_is_fetched_again(wecom: tuple[WeCom, str], store: AlertStore,
                                                      sender: AlertSender) -> None:
    state, base = wecom
    group_id = make_group(store, [ChannelSpec(name="wecom", type=ChannelType.WECOM_APP, params=wecom_app_params(base))])
    assert (await send(sender, request(group_id, failed_status()))).ok
    tokens = len(state.of("/cgi-bin/gettoken"))
    assert (await send(sender, request(group_id, failed_status()))).ok
    assert len(state.of("/cgi-bin/gettoken")) == tokens  # cached
    state.expire_next = True
    assert (await send(sender, request(group_id, failed_status()))).ok
    assert len(state.of("/cgi-bin/gettoken")) == tokens + 1


async def test_a_broken_template_falls_back_and_is_reported(wecom: tuple[WeCom, str], store: AlertStore,
                                                           sender: AlertSender) -> None:
    state, base = wecom
    group = store.create_group(GroupSpec(name=f"g-{uuid.uuid4().hex[:8]}"))
    # Saved through the store directly (the API would refuse it): it fails at send time.
    store.create_channel(group.id, ChannelSpec(
        name="robot", type=ChannelType.WECOM_ROBOT, params={"baseUrl": base, "key": ROBOT_KEY},
        templates={AlertKind.WORKFLOW_END: {"body": "{% for i in range(9999) %}{% for j in range(9999) %}"  # type: ignore[dict-item]
                                                    "{% endfor %}{% endfor %}"}}))
    status = failed_status()
    started = time.monotonic()
    result = await send(sender, request(group.id, status))
    assert time.monotonic() - started < 15
    assert result.ok and result.outcomes[0].template_error and "too long" in result.outcomes[0].template_error
    content = [r for r in state.of("/cgi-bin/webhook/send")
               if status.instance_id in json.dumps(r["body"])][0]["body"]["markdown"]["content"]
    assert "template failed" in content and "transform" in content


# --------------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def alerts_api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://porpoise") as c:
        yield c


async def test_api_crud_validation_and_sample_preview(alerts_api: httpx.AsyncClient, smtp: tuple[Mailbox, int],
                                                      wecom: tuple[WeCom, str]) -> None:
    api = alerts_api
    _, port = smtp
    _, base = wecom
    name = f"ops-{uuid.uuid4().hex[:6]}"
    r = await api.post("/alert-groups", json={"name": name, "description": "on call"})
    assert r.status_code == 201, r.text
    gid = r.json()["id"]
    assert (await api.post("/alert-groups", json={"name": name})).status_code == 409

    # Templates are checked on save: unknown placeholders, with the line and a suggestion; escapes.
    bad = {"name": "mail", "type": "email", "params": email_params(port),
           "templates": {"WORKFLOW_END": {"subject": "{{ definition.nme }}",
                                          "body": "ok\n{{ ''.__class__.__mro__ }}\n{{ instnce.id }}"}}}
    r = await api.post(f"/alert-groups/{gid}/channels", json=bad)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json", r.text
    problems = r.json()["problems"]
    by_pointer = {(p["pointer"], p["message"]) for p in problems}
    assert any(pt == "/templates/WORKFLOW_END/subject" and "did you mean 'name'" in m for pt, m in by_pointer)
    assert any(pt == "/templates/WORKFLOW_END/body" and m.startswith("line 2:") and "internal attribute" in m
               for pt, m in by_pointer), problems
    assert any("unknown placeholder 'instnce'; did you mean 'instance'?" in m for _, m in by_pointer)
    r = await api.post(f"/alert-groups/{gid}/channels", json={"name": "x", "type": "EMAIL",
                                                              "params": {"host": "h", "from": "a@b"}})
    assert r.status_code == 422 and r.json()["problems"][0]["pointer"] == "/params/to"
    r = await api.post(f"/alert-groups/{gid}/channels", json={"name": "x", "type": "SMS", "params": {}})
    assert r.status_code == 422

    good = {"name": "mail", "type": "email", "params": email_params(port),
            "templates": {"WORKFLOW_END": {"subject": EMAIL_SUBJECT, "body": EMAIL_BODY}}}
    r = await api.post(f"/alert-groups/{gid}/channels", json=good)
    assert r.status_code == 201, r.text
    mail = r.json()
    assert mail["secrets"] == {"password": True} and mail["format"] == "html" and SMTP_PASSWORD not in r.text
    r = await api.post(f"/alert-groups/{gid}/channels", json={
        "name": "wecom", "type": "WECOM_APP", "params": wecom_app_params(base), "events": ["WORKFLOW_END"],
        "templates": {"WORKFLOW_END": {"body": WECOM_BODY}}})
    assert r.status_code == 201, r.text
    wid = r.json()["id"]
    r = await api.post(f"/alert-groups/{gid}/channels", json={
        "name": "hook", "type": "WEBHOOK", "params": {"url": f"{base}/hook?token={HOOK_TOKEN}"}})
    assert r.status_code == 201 and r.json()["urlHint"] == "http://127.0.0.1:" + base.rsplit(":", 1)[1] + "/…"

    listed = await api.get(f"/alert-groups/{gid}")
    assert listed.status_code == 200 and [c["name"] for c in listed.json()["channels"]] == ["mail", "wecom", "hook"]
    everything = (await api.get("/alert-groups")).text + listed.text
    assert not any(s in everything for s in SECRETS)

    # Update: an empty secret keeps the stored one; templates are validated again.
    r = await api.put(f"/alert-channels/{wid}", json={"params": {"secret": "", "toUser": "carol"}})
    assert r.status_code == 200 and r.json()["params"]["toUser"] == ["carol"] and r.json()["secrets"]["secret"]
    r = await api.put(f"/alert-channels/{wid}", json={"templates": {"WORKFLOW_END": {"body": "{{ nodes.__len__ }}"}}})
    assert r.status_code == 422
    r = await api.put(f"/alert-channels/{wid}", json={"templates": {"TASK_FAILURE": {"subject": "{{ task.name }}!"}}})
    assert r.status_code == 200 and r.json()["templates"]["TASK_FAILURE"] == {"subject": "{{ task.name }}!"}

    # Preview against the sample run with business values.
    r = await api.post(f"/alert-groups/{gid}/preview", json={"startParams": {"owner": "bob", "region": "eu"}})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["source"] == "sample"
    msgs = {m["channelName"]: m for m in preview["messages"]}
    assert msgs["mail"]["subject"] == "[eu] daily_orders_etl FAILURE (owner bob)"
    assert "Owner: <b>bob</b>" in msgs["mail"]["body"] and "load_warehouse: FAILURE" in msgs["mail"]["body"]
    assert "> owner: bob (eu)" in msgs["wecom"]["body"]
    assert msgs["hook"]["format"] == "text" and "load_warehouse" in msgs["hook"]["body"]
    r = await api.post(f"/alert-groups/{gid}/preview", json={"kind": "TASK_FAILURE", "channelId": wid})
    assert r.json()["messages"][0]["subject"] == "load_warehouse!"
    r = await api.post(f"/alert-groups/{gid}/preview",
                       json={"channelId": wid, "templates": {"WORKFLOW_END": {"body": "{{ biz.owner }} {{ nope }}"}},
                             "startParams": {"owner": "eve"}})
    assert r.json()["messages"][0]["body"] == "eve [unknown: nope]"
    assert r.json()["messages"][0]["unknownPlaceholders"] == ["nope"]

    r = await api.post("/alert-templates/validate", json={"format": "markdown",
                                                          "templates": {"TASK_TIMEOUT": {"body": "{{ tsk.name }}"}}})
    assert r.status_code == 200 and not r.json()["ok"] and "did you mean 'task'" in r.json()["problems"][0]["message"]
    defaults = (await api.get("/alert-templates/defaults")).json()
    assert "state" in defaults["placeholders"]["WORKFLOW_END"]["instance"]
    assert "<html>" in defaults["templates"]["html"]["WORKFLOW_END"]["body"]

    assert (await api.delete(f"/alert-channels/{wid}")).status_code == 204
    assert (await api.get(f"/alert-channels/{wid}")).status_code == 404
    assert (await api.delete(f"/alert-groups/{gid}")).status_code == 204
    assert (await api.get(f"/alert-groups/{gid}")).status_code == 404
    assert (await api.post(f"/alert-groups/{gid}/preview", json={})).status_code == 404


async def test_api_test_send_and_deliveries(alerts_api: httpx.AsyncClient, smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    gid = (await alerts_api.post("/alert-groups", json={"name": f"t-{uuid.uuid4().hex[:6]}"})).json()["id"]
    r = await alerts_api.post(f"/alert-groups/{gid}/channels", json={"name": "mail", "type": "EMAIL",
                                                                       "params": email_params(port)})
    assert r.status_code == 201
    before = len(box.messages)
    r = await alerts_api.post(f"/alert-groups/{gid}/test", json={})
    assert r.status_code == 200 and r.json()["ok"], r.text
    assert "daily_orders_etl" in box.wait(before + 1)[-1]["message"]["Subject"]
    rows = (await alerts_api.get("/alerts/deliveries", params={"groupId": gid})).json()
    assert len(rows) == 1 and rows[0]["ok"] and rows[0]["channelName"] == "mail"


async def test_preview_of_a_real_failed_run(api: httpx.AsyncClient, alerts_api: httpx.AsyncClient) -> None:
    gid = (await alerts_api.post("/alert-groups", json={"name": f"r-{uuid.uuid4().hex[:6]}"})).json()["id"]
    r = await alerts_api.post(f"/alert-groups/{gid}/channels", json={
        "name": "mail", "type": "EMAIL", "params": email_params(25),
        "templates": {"WORKFLOW_END": {"subject": EMAIL_SUBJECT, "body": EMAIL_BODY}}})
    assert r.status_code == 201, r.text
    doc = dsbuild.export("alert_preview", [dsbuild.task("ok_step", "echo fine"), dsbuild.task("boom", "exit 7")],
                         [(None, "ok_step"), ("ok_step", "boom")])
    status = await run(api, doc, warningType="FAILURE", warningGroupId=gid,
                       startParams={"owner": "dana@example.com", "region": "ap-south"})
    assert status["state"] == "FAILURE"
    r = await alerts_api.post(f"/alert-groups/{gid}/preview", json={"runId": status["instanceId"]})
    assert r.status_code == 200, r.text
    preview = r.json()
    assert preview["source"] == "run" and preview["startParams"]["owner"] == "dana@example.com"
    m = preview["messages"][0]
    assert m["subject"] == "[ap-south] alert_preview FAILURE (owner dana@example.com)"
    assert "boom: FAILURE after 1 attempt(s)" in m["body"] and "ok_step=SUCCESS" in m["body"]
    assert f"/runs/{status['instanceId']}/tasks/" in m["body"] and status["instanceId"] in m["body"]
    assert (await alerts_api.post(f"/alert-groups/{gid}/preview", json={"runId": "no-such-run"})).status_code == 404


async def test_a_failing_run_alerts_through_the_workflow(api: httpx.AsyncClient, alerts_api: httpx.AsyncClient,
                                                         smtp: tuple[Mailbox, int], wecom: tuple[WeCom, str]) -> None:
    box, port = smtp
    state, base = wecom
    gid = (await alerts_api.post("/alert-groups", json={"name": f"e2e-{uuid.uuid4().hex[:6]}"})).json()["id"]
    for channel in ({"name": "mail", "type": "EMAIL", "params": email_params(port),
                     "templates": {"WORKFLOW_END": {"subject": EMAIL_SUBJECT, "body": EMAIL_BODY}}},
                    {"name": "wecom", "type": "WECOM_APP", "params": wecom_app_params(base),
                     "templates": {"WORKFLOW_END": {"body": WECOM_BODY}}},
                    # a robot with a revoked key: a permanent failure that must not hold or fail the run
                    {"name": "old-robot", "type": "WECOM_ROBOT", "params": {"baseUrl": base, "key": "revoked"},
                     "events": ["WORKFLOW_END"]}):
        assert (await alerts_api.post(f"/alert-groups/{gid}/channels", json=channel)).status_code == 201
    before = len(box.messages)
    doc = dsbuild.export("alert_e2e", [dsbuild.task("boom", "exit 7")], [(None, "boom")])
    status = await run(api, doc, warningType="FAILURE", warningGroupId=gid,
                       startParams={"owner": "erin@example.com", "region": "us"})
    assert status["state"] == "FAILURE"
    # How each alert went is part of the run's state; the broken robot shows, and held nothing up.
    notes = {a["kind"]: a for a in status["alerts"]}
    assert set(notes) == {"TASK_FAILURE", "WORKFLOW_END"}, status["alerts"]
    assert notes["TASK_FAILURE"]["ok"] and notes["TASK_FAILURE"]["taskCode"] == status["nodes"][0]["code"]
    assert not notes["WORKFLOW_END"]["ok"] and "old-robot" in notes["WORKFLOW_END"]["summary"]
    assert "2/3 channel(s) ok" in notes["WORKFLOW_END"]["summary"]
    # Two alerts: the task failure (default template) and the end of the run (the channel's template).
    mails = {str(m["message"]["Subject"]): m["message"] for m in box.wait(before + 2)[before:]}
    assert set(mails) == {"[us] alert_e2e FAILURE (owner erin@example.com)",
                          "[Porpoise] Task failed: boom in alert_e2e"}, mails
    assert "boom: FAILURE" in mails["[us] alert_e2e FAILURE (owner erin@example.com)"].get_body(
        ("html",)).get_content()
    deadline = time.monotonic() + 30

    def contents() -> list[str]:
        return [r["body"]["markdown"]["content"] for r in state.of("/cgi-bin/message/send")
                if status["instanceId"] in json.dumps(r["body"])]

    while len(contents()) < 2:  # the task failure (default markdown) and the end (the channel's template)
        assert time.monotonic() < deadline, f"WeCom got {contents()}"
        await asyncio.sleep(0.2)
    end = [c for c in contents() if "> owner:" in c]
    assert len(end) == 1 and "> owner: erin@example.com (us)" in end[0] and "**boom** FAILURE" in end[0]
    assert any(c.startswith("### Task failed") for c in contents())


async def test_cli_manages_groups_and_sends_a_test_alert(api_server: str, wecom: tuple[WeCom, str],
                                                         tmp_path: Path) -> None:
    from tests.integration.test_cli import porpoise

    state, base = wecom
    created = await porpoise(api_server, "alert", "group-create", f"cli-{uuid.uuid4().hex[:6]}", check=True)
    gid = json.loads(created.stdout)["id"]
    channel = tmp_path / "hook.json"
    channel.write_text(json.dumps({
        "name": "cli-hook", "type": "WEBHOOK",
        "params": {"url": f"{base}/hook", "secretHeaders": {"Authorization": f"Bearer {HOOK_TOKEN}"}},
        "templates": {"WORKFLOW_END": {"body": "{{ definition.name }} ended {{ state }}"}}}))
    added = await porpoise(api_server, "alert", "channel-add", str(gid), f"@{channel}", check=True)
    assert HOOK_TOKEN not in added.stdout and json.loads(added.stdout)["name"] == "cli-hook"
    bad = await porpoise(api_server, "alert", "channel-add", str(gid), '{"name": "x", "type": "EMAIL", "params": {}}')
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "host" in bad.stderr
    before = len(state.of("/hook"))
    sent = await porpoise(api_server, "alert", "test", str(gid), check=True)
    assert "1/1 channel(s) ok" in sent.stdout
    assert len(state.of("/hook")) == before + 1
    preview = await porpoise(api_server, "alert", "preview", str(gid), check=True)
    assert "ended FAILURE" in preview.stdout
    listed = await porpoise(api_server, "alert", "deliveries", "--group", str(gid), check=True)
    assert "cli-hook" in listed.stdout
    assert (await porpoise(api_server, "alert", "group-delete", str(gid))).returncode == 0
