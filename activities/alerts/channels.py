"""The senders: email over SMTP, WeCom application messages, WeCom group robots, HTTP webhooks.

Each one takes a resolved channel (secrets decrypted, on the worker) and a rendered message, and
either returns a short note or raises :class:`ChannelError` saying whether the failure is
**transient** (network, timeouts, HTTP 5xx/429, SMTP 4xx, WeCom "system busy" or rate limits: worth
a retry) or **permanent** (bad credentials, refused recipients, a 4xx, a TLS certificate that does
not verify: a retry would fail the same way). Every network call has a timeout (the channel's
``timeout``, default 10 s, 30 s for SMTP). Error messages never contain a secret: the channel's
secret values are masked in whatever the libraries say.

WeCom (企业微信) endpoints, relative to the channel's ``baseUrl`` (default https://qyapi.weixin.qq.com,
configurable for a private deployment or a test server):

* ``GET  /cgi-bin/gettoken?corpid=&corpsecret=`` -> ``{"errcode": 0, "access_token", "expires_in"}``;
  the token is cached per (base URL, corp id, secret) until shortly before it expires, and fetched
  again once when a send answers "token invalid/expired" (40014, 42001);
* ``POST /cgi-bin/message/send?access_token=`` with ``touser`` (``a|b`` or ``@all``), ``toparty``,
  ``totag``, ``agentid``, ``msgtype`` markdown or text; the content is cut to 2,048 bytes;
* ``POST /cgi-bin/webhook/send?key=`` (group robot) with markdown (4,096 bytes) or text (2,048 bytes).
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
import threading
import time
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import httpx

from storage.alerts import EmailParams, ResolvedChannel, WebhookParams, WeComAppParams, WeComRobotParams

from . import ChannelType
from .templates import Message, html_to_text

USER_AGENT = "Porpoise-alerts/1"
WECOM_APP_LIMIT = 2048  # bytes of markdown/text content of an application message
WECOM_ROBOT_MARKDOWN_LIMIT = 4096
WECOM_ROBOT_TEXT_LIMIT = 2048
WECOM_TRANSIENT = frozenset({-1, 45009, 45033, 45011})  # system busy, API rate and concurrency limits
WECOM_TOKEN_INVALID = frozenset({40014, 42001})


class ChannelError(Exception):
    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


def mask(text: str, secrets: list[str]) -> str:
    for s in sorted(secrets, key=len, reverse=True):
        if s:
            text = text.replace(s, "***")
    return text


def truncate_bytes(text: str, limit: int, marker: str = "\n…(truncated)") -> str:
    """At most ``limit`` UTF-8 bytes, cut on a character boundary, with a marker when cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    room = max(0, limit - len(marker.encode()))
    return data[:room].decode(errors="ignore") + marker


# --------------------------------------------------------------------------------------------------
# Email
# --------------------------------------------------------------------------------------------------


def _tls_context(verify: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def build_email(p: EmailParams, message: Message) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = message.subject
    msg["From"] = p.sender
    msg["To"] = ", ".join(p.to)
    if p.cc:
        msg["Cc"] = ", ".join(p.cc)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=p.sender.rsplit("@", 1)[-1] or None)
    msg["X-Mailer"] = USER_AGENT
    if message.format == "html":
        msg.set_content(html_to_text(message.body))
        msg.add_alternative(message.body, subtype="html")
    else:
        msg.set_content(message.body)
    return msg


def send_email(p: EmailParams, message: Message) -> str:
    msg = build_email(p, message)
    recipients = [*p.to, *p.cc]
    try:
        if p.security == "TLS":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(p.host, p.effective_port, timeout=p.timeout,
                                                  context=_tls_context(p.verify_tls))
        else:
            smtp = smtplib.SMTP(p.host, p.effective_port, timeout=p.timeout)
        with smtp:
            smtp.ehlo()
            if p.security == "STARTTLS":
                smtp.starttls(context=_tls_context(p.verify_tls))
                smtp.ehlo()
            if p.user:
                smtp.login(p.user, p.password or "")
            refused = smtp.send_message(msg, from_addr=p.sender, to_addrs=recipients)
    except smtplib.SMTPAuthenticationError as e:
        raise ChannelError(f"SMTP authentication failed ({e.smtp_code})", transient=False) from None
    except smtplib.SMTPNotSupportedError as e:
        raise ChannelError(f"the SMTP server does not support it: {e}", transient=False) from None
    except smtplib.SMTPRecipientsRefused as e:
        codes = [c for c, _ in e.recipients.values()]
        raise ChannelError(f"every recipient was refused: {', '.join(e.recipients)}",
                           transient=all(400 <= c < 500 for c in codes)) from None
    except smtplib.SMTPSenderRefused as e:
        raise ChannelError(f"the sender {p.sender} was refused ({e.smtp_code})",
                           transient=400 <= e.smtp_code < 500) from None
    except smtplib.SMTPResponseException as e:
        text = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        raise ChannelError(f"SMTP error {e.smtp_code}: {text}", transient=400 <= e.smtp_code < 500) from None
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError) as e:
        raise ChannelError(f"SMTP connection to {p.host}:{p.effective_port} failed: {e}", transient=True) from None
    except ssl.SSLCertVerificationError as e:
        raise ChannelError(f"the TLS certificate of {p.host} does not verify ({e.verify_message}); set verifyTls "
                           "false only for a server you trust", transient=False) from None
    except ssl.SSLError as e:
        raise ChannelError(f"TLS with {p.host}:{p.effective_port} failed ({e.reason}); is security "
                           f"{p.security} right for port {p.effective_port}?", transient=False) from None
    except smtplib.SMTPException as e:
        raise ChannelError(f"SMTP error: {e}", transient=False) from None
    except TimeoutError:
        raise ChannelError(f"SMTP {p.host}:{p.effective_port} timed out after {p.timeout:g}s", transient=True) from None
    except OSError as e:
        raise ChannelError(f"cannot reach SMTP {p.host}:{p.effective_port}: {e.strerror or e}",
                           transient=True) from None
    if refused:
        return f"sent; refused by the server: {', '.join(refused)}"
    return f"sent to {len(recipients)} recipient(s)"


# --------------------------------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------------------------------


def _http_error(what: str, e: httpx.HTTPError, timeout: float) -> ChannelError:
    if isinstance(e, httpx.TimeoutException):
        return ChannelError(f"{what} timed out after {timeout:g}s", transient=True)
    if isinstance(e, httpx.TransportError):
        return ChannelError(f"{what} failed: {type(e).__name__}: {e}", transient=True)
    return ChannelError(f"{what} failed: {type(e).__name__}: {e}", transient=False)


def _status_error(what: str, resp: httpx.Response) -> ChannelError:
    transient = resp.status_code >= 500 or resp.status_code in (408, 425, 429)
    return ChannelError(f"{what} answered HTTP {resp.status_code}: {resp.text[:300]}", transient=transient)


def _json(what: str, resp: httpx.Response) -> dict[str, Any]:
    if resp.status_code >= 400:
        raise _status_error(what, resp)
    try:
        data = resp.json()
    except ValueError:
        raise ChannelError(f"{what} answered something that is not JSON: {resp.text[:200]}", transient=True) from None
    if not isinstance(data, dict):
        raise ChannelError(f"{what} answered unexpected JSON", transient=False)
    return data


# --------------------------------------------------------------------------------------------------
# WeCom
# --------------------------------------------------------------------------------------------------

_TOKENS: dict[tuple[str, str, str], tuple[str, float]] = {}
_TOKENS_LOCK = threading.Lock()


def _wecom_failure(what: str, data: Mapping[str, Any]) -> ChannelError:
    code = int(data.get("errcode", -1))
    return ChannelError(f"WeCom {what}: errcode {code} {data.get('errmsg', '')}".strip(),
                        transient=code in WECOM_TRANSIENT)


def wecom_token(client: httpx.Client, base_url: str, corp_id: str, secret: str, *, refresh: bool = False) -> str:
    key = (base_url, corp_id, hashlib.sha256(secret.encode()).hexdigest())
    now = time.monotonic()
    with _TOKENS_LOCK:
        cached = _TOKENS.get(key)
        if cached and not refresh and cached[1] > now:
            return cached[0]
    try:
        resp = client.get(f"{base_url.rstrip('/')}/cgi-bin/gettoken", params={"corpid": corp_id, "corpsecret": secret})
    except httpx.HTTPError as e:
        raise _http_error("WeCom gettoken", e, client.timeout.connect or 0) from None
    data = _json("WeCom gettoken", resp)
    if data.get("errcode", 0) != 0 or not data.get("access_token"):
        raise _wecom_failure("gettoken", data)
    token = str(data["access_token"])
    expires = float(data.get("expires_in") or 7200)
    with _TOKENS_LOCK:
        _TOKENS[key] = (token, now + max(60.0, expires - 300.0))
    return token


def forget_wecom_tokens() -> None:
    with _TOKENS_LOCK:
        _TOKENS.clear()


def _wecom_content(message: Message, limit: int) -> str:
    body = message.body
    if message.format == "html":  # a WeCom channel is markdown or text; be safe anyway
        body = html_to_text(body)
    return truncate_bytes(body, limit)


def send_wecom_app(p: WeComAppParams, message: Message) -> str:
    msgtype = "markdown" if p.msg_type == "markdown" else "text"
    payload: dict[str, Any] = {"msgtype": msgtype, "agentid": p.agent_id,
                               msgtype: {"content": _wecom_content(message, WECOM_APP_LIMIT)}}
    if p.to_user:
        payload["touser"] = "|".join(p.to_user)
    if p.to_party:
        payload["toparty"] = "|".join(p.to_party)
    if p.to_tag:
        payload["totag"] = "|".join(p.to_tag)
    base = p.base_url.rstrip("/")
    with httpx.Client(timeout=p.timeout, headers={"User-Agent": USER_AGENT}) as client:
        token = wecom_token(client, base, p.corp_id, p.secret or "")
        for again in (True, False):
            try:
                resp = client.post(f"{base}/cgi-bin/message/send", params={"access_token": token}, json=payload)
            except httpx.HTTPError as e:
                raise _http_error("WeCom message/send", e, p.timeout) from None
            data = _json("WeCom message/send", resp)
            code = int(data.get("errcode", 0))
            if code == 0:
                invalid = [f"{k}={data[k]}" for k in ("invaliduser", "invalidparty", "invalidtag") if data.get(k)]
                return "sent" + (f"; WeCom did not know {', '.join(invalid)}" if invalid else "")
            if code in WECOM_TOKEN_INVALID and again:
                token = wecom_token(client, base, p.corp_id, p.secret or "", refresh=True)
                continue
            raise _wecom_failure("message/send", data)
    raise AssertionError("unreachable")


def send_wecom_robot(p: WeComRobotParams, message: Message) -> str:
    if p.msg_type == "markdown":
        payload: dict[str, Any] = {"msgtype": "markdown",
                                   "markdown": {"content": _wecom_content(message, WECOM_ROBOT_MARKDOWN_LIMIT)}}
    else:
        payload = {"msgtype": "text", "text": {"content": _wecom_content(message, WECOM_ROBOT_TEXT_LIMIT)}}
        if p.mentioned_list:
            payload["text"]["mentioned_list"] = p.mentioned_list
    url = f"{p.base_url.rstrip('/')}/cgi-bin/webhook/send"
    try:
        with httpx.Client(timeout=p.timeout, headers={"User-Agent": USER_AGENT}) as client:
            resp = client.post(url, params={"key": p.key or ""}, json=payload)
    except httpx.HTTPError as e:
        raise _http_error("WeCom robot webhook", e, p.timeout) from None
    data = _json("WeCom robot webhook", resp)
    if int(data.get("errcode", 0)) != 0:
        raise _wecom_failure("robot webhook", data)
    return "sent"


# --------------------------------------------------------------------------------------------------
# Generic webhook
# --------------------------------------------------------------------------------------------------


def send_webhook(p: WebhookParams, message: Message, facts: Mapping[str, Any]) -> str:
    """POST (or PUT) a JSON body: ``bodyParams``, then the alert's facts, subject, body and format."""
    body = {**p.body_params, **facts, "subject": message.subject, "body": message.body, "format": message.format}
    headers = {"User-Agent": USER_AGENT, **p.headers, **(p.secret_headers or {})}
    try:
        with httpx.Client(timeout=p.timeout, verify=p.verify_tls) as client:
            resp = client.request(p.method, p.url or "", json=body, headers=headers)
    except httpx.HTTPError as e:
        raise _http_error("the webhook", e, p.timeout) from None
    if resp.status_code >= 400:
        raise _status_error("the webhook", resp)
    return f"HTTP {resp.status_code}"


# --------------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------------


def deliver(channel: ResolvedChannel, message: Message, facts: Mapping[str, Any]) -> str:
    """Send one message to one channel. Raises :class:`ChannelError` (masked) when it does not go out."""
    secrets = channel.secret_values()
    try:
        p = channel.params
        if channel.type is ChannelType.EMAIL:
            assert isinstance(p, EmailParams)
            return send_email(p, message)
        if channel.type is ChannelType.WECOM_APP:
            assert isinstance(p, WeComAppParams)
            return send_wecom_app(p, message)
        if channel.type is ChannelType.WECOM_ROBOT:
            assert isinstance(p, WeComRobotParams)
            return send_wecom_robot(p, message)
        assert isinstance(p, WebhookParams)
        return send_webhook(p, message, facts)
    except ChannelError as e:
        raise ChannelError(mask(e.message, secrets), transient=e.transient) from None
    except Exception as e:  # a bug or an unexpected library error: not worth retrying blindly
        raise ChannelError(mask(f"{type(e).__name__}: {e}", secrets), transient=False) from None
