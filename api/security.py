"""Cross-site safety for an API that listens on the operator's machine (docs/security.md).

A web page open in a browser on the same host can send "simple" requests to 127.0.0.1 without a CORS
preflight: ``text/plain``, form-encoded or multipart bodies and no custom header. And through DNS
rebinding (a hostile name resolving to 127.0.0.1) it can even read the answers. So, before any route:

* the ``Host`` header must name this API (``allowed_hosts``; by default the configured API host,
  127.0.0.1, localhost and [::1], any port), else 400: a rebound name is refused;
* a request body must be JSON. Form encodings are taken only where DS clients send them (the
  create-API form on ``POST /definitions``, the DS-compatible REST API) and only with a token header,
  which a page cannot add without a preflight. Anything else with a body is 415;
* CORS is off (no ``Access-Control-Allow-*`` headers, preflights refused) unless ``cors_origins`` lists
  origins; the codec endpoints also allow the Temporal UI's origin, which calls them from the browser.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import Settings

JSON_TYPES = ("application/json",)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
TOKEN_HEADERS = (b"authorization", b"token", b"sessionid")  # sessionId: DS's login session (docs/ds-rest.md)
CODEC_PREFIX = "/codec/"
PREFLIGHT_HEADERS = "authorization, token, content-type, x-namespace"


def form_allowed(method: str, path: str) -> bool:
    """Where DS clients send form bodies: the create-API form, and the DS-compatible REST API."""
    return (method == "POST" and path.rstrip("/") == "/definitions") or path.startswith("/dolphinscheduler/")


def ds_session_form(method: str, path: str, headers: dict[bytes, bytes]) -> bool:
    """A form with no token header that DS clients send: the login form itself, and forms signed in by
    DS's ``sessionId`` cookie. Taken only when no page of another origin sent it (``Origin`` absent,
    as from scripts, or this API's own): the cookie is SameSite=Strict, but other ports of the same
    host are the same site."""
    if not path.startswith("/dolphinscheduler/"):
        return False
    origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/").lower()
    if origin and origin.split("://", 1)[-1] != headers.get(b"host", b"").decode("latin-1").lower():
        return False
    return (method == "POST" and path.rstrip("/") == "/dolphinscheduler/login") or \
        b"sessionid=" in headers.get(b"cookie", b"").lower()


def _split_host(value: str) -> tuple[str, str]:
    """``host[:port]`` (IPv6 in brackets) as (lower-case host, port or "")."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value.partition("]")
        return host + "]", rest[1:] if rest.startswith(":") else ""
    host, _, port = value.partition(":")
    return host, port


def allowed_hosts(settings: Settings) -> list[tuple[str, str]]:
    defaults = ["127.0.0.1", "localhost", "[::1]"]
    if settings.api_host not in ("0.0.0.0", "::", ""):  # a wildcard bind names no host
        defaults.append(f"[{settings.api_host}]" if ":" in settings.api_host else settings.api_host)
    return [_split_host(h) for h in [*defaults, *settings.allowed_hosts]]


def host_ok(host_header: str, allowed: Iterable[tuple[str, str]]) -> bool:
    host, port = _split_host(host_header)
    return bool(host) and any(host == h and (not p or p == port) for h, p in allowed)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else url.rstrip("/").lower()


def _ui_origins(settings: Settings) -> set[str]:
    """The Temporal UI's origin, also under its other loopback names (a browser may use either)."""
    origin = _origin(settings.temporal_ui_url)
    parts = urlsplit(origin)
    names = {origin}
    if parts.hostname in ("127.0.0.1", "localhost"):
        port = f":{parts.port}" if parts.port else ""
        names |= {f"{parts.scheme}://127.0.0.1{port}", f"{parts.scheme}://localhost{port}"}
    return names


class CrossSiteGuard:
    """Pure ASGI middleware (no body buffering): checks headers only, before the app sees the request."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hosts = allowed_hosts(settings)
        self.origins = {_origin(o) for o in settings.cors_origins}
        self.codec_origins = self.origins | _ui_origins(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        if not host_ok(headers.get(b"host", b"").decode("latin-1"), self.hosts):
            await _problem(send, 400, "Host not allowed",
                           "the Host header does not name this API; add the name to PORPOISE_ALLOWED_HOSTS")
            return
        origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/").lower()
        allowed = self.codec_origins if path.startswith(CODEC_PREFIX) else self.origins
        cors = origin if origin and origin in allowed else ""
        if method == "OPTIONS" and b"access-control-request-method" in headers:
            if not cors:
                await _problem(send, 403, "Cross-origin request refused", "CORS is not enabled for this origin")
                return
            await _send(send, 204, b"", [
                (b"access-control-allow-origin", cors.encode()), (b"vary", b"Origin"),
                (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE"),
                (b"access-control-allow-headers", PREFLIGHT_HEADERS.encode()),
                (b"access-control-allow-credentials", b"true"), (b"access-control-max-age", b"600")])
            return
        if method in BODY_METHODS and _has_body(headers):
            media = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
            json_body = media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))
            form_body = media in FORM_TYPES and form_allowed(method, path)
            if form_body and not any(headers.get(h) for h in TOKEN_HEADERS) and not ds_session_form(method, path,
                                                                                                 headers):
                await _problem(send, 415, "Unsupported media type",
                               f"a {media} body is taken only with a token header (Authorization or token)")
                return
            if not (json_body or form_body):
                await _problem(send, 415, "Unsupported media type",
                               f"request bodies must be application/json, not {media or 'unlabelled'}")
                return
        if not cors:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"access-control-allow-origin", cors.encode()),
                                      (b"access-control-allow-credentials", b"true"), (b"vary", b"Origin")]
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length", b"").strip()
    return b"transfer-encoding" in headers or (bool(length) and length != b"0")


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    await _send(send, status, body, [(b"content-type", b"application/problem+json")])
