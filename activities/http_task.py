"""The HTTP task (reference §3, §1.3): one request, a check on the response, the body as an OUT param.

Both DolphinScheduler key sets are accepted, because stored definitions of both versions exist:

* 3.2: ``url``, ``httpMethod`` (GET/POST/HEAD/PUT/DELETE), ``httpParams`` (``PARAMETER`` = query,
  ``BODY`` = a field of a JSON body, ``HEADERS``), ``httpBody``, ``connectTimeout``, ``socketTimeout``;
* 3.3: ``httpRequestMethod``, ``httpRequestParams`` (PARAMETER/HEADERS), ``httpRequestBody``.

``httpCheckCondition`` + ``condition`` decide success as DS's ``HttpTask.validResponse`` does. The body
is exported as ``<taskName>.response`` (the 3.2 shape) whether or not it is declared, as DS does.

Header values and parameter values are never logged (they carry tokens); their names are. The error
raised on failure names the status and condition, never the body.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.logs import TaskLog
from activities.masking import http_secrets
from activities.process import (
    TASK_FAILED,
    ds_substitute,
    heartbeat_details,
    heartbeat_every,
    heartbeat_interval,
    task_attempt,
)
from core.contracts import TaskRequest, TaskResult
from model.definition import DataType, Direct, Property

INVALID_PARAMS = "InvalidTaskParams"  # non-retryable: a retry cannot fix the definition
METHODS = ("GET", "POST", "HEAD", "PUT", "DELETE")
DEFAULT_TIMEOUT_MS = 60_000
MAX_BODY_BYTES = 16 * 1024 * 1024  # read at most this much of a response: memory, not semantics
LOG_BODY_BYTES = 64 * 1024
# <taskName>.response travels in the activity result and the workflow history, where Temporal rejects
# payloads over 2 MiB; past this size it is truncated (and the log says so) rather than wedge the run.
RESPONSE_VAR_MAX_CHARS = 512 * 1024


@dataclass
class HttpSpec:
    """The request, after DS ``${param}`` substitution, independent of the 3.2/3.3 key names."""

    method: str
    url: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None
    check: str = "STATUS_CODE_DEFAULT"
    condition: str = ""
    connect_timeout: float | None = DEFAULT_TIMEOUT_MS / 1000
    read_timeout: float | None = DEFAULT_TIMEOUT_MS / 1000


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_PARAMS, non_retryable=True)


def _millis(value: Any, default: float | None) -> float | None:
    """DS timeouts are milliseconds; 0 or less means "no limit" (Apache HttpClient's convention)."""
    if value is None or value == "":
        return default
    try:
        ms = float(value)
    except (TypeError, ValueError):
        raise _invalid(f"HTTP timeout must be a number of milliseconds, got {value!r}") from None
    return ms / 1000 if ms > 0 else None


def build_spec(task_params: dict[str, Any], params: dict[str, str], timezone: str = "UTC") -> HttpSpec:
    """Read either key set; substitute ``${...}`` and ``$[...]`` in url, parameter names/values and body."""

    def sub(value: Any) -> str:
        return ds_substitute("" if value is None else str(value), params, timezone)

    url = sub(task_params.get("url")).strip()
    if not url:
        raise _invalid("HTTP task has no url")
    method = str(task_params.get("httpRequestMethod") or task_params.get("httpMethod") or "GET").upper()
    if method not in METHODS:
        raise _invalid(f"HTTP method {method!r} is not one of {', '.join(METHODS)}")

    raw_props = task_params.get("httpRequestParams")
    if raw_props is None:
        raw_props = task_params.get("httpParams")
    spec = HttpSpec(method=method, url=url)
    body_fields: dict[str, str] = {}
    for item in raw_props or []:
        if not isinstance(item, dict):
            raise _invalid(f"HTTP parameter must be an object, got {type(item).__name__}")
        name, value = sub(item.get("prop")), sub(item.get("value"))
        kind = str(item.get("httpParametersType") or "PARAMETER").upper()
        if not name:
            continue
        if kind == "PARAMETER":
            spec.query.append((name, value))
        elif kind == "HEADERS":
            spec.headers.append((name, value))
        elif kind == "BODY":
            body_fields[name] = value
        else:
            raise _invalid(f"HTTP parameter type {kind!r} is not PARAMETER, BODY or HEADERS")

    raw_body = task_params.get("httpRequestBody")
    if raw_body is None:
        raw_body = task_params.get("httpBody")
    if isinstance(raw_body, dict | list):  # a hand-written definition may inline the JSON body
        raw_body = json.dumps(raw_body, ensure_ascii=False)
    body = sub(raw_body) if raw_body not in (None, "") else ""
    if body.strip():
        spec.body = body  # an explicit body wins over BODY-type fields, as in DS 3.2
    elif body_fields:
        spec.body = json.dumps(body_fields, ensure_ascii=False)
    if spec.body is not None and not any(k.lower() == "content-type" for k, _ in spec.headers):
        spec.headers.append(("Content-Type", "application/json; charset=utf-8"))

    spec.check = str(task_params.get("httpCheckCondition") or "STATUS_CODE_DEFAULT").upper()
    spec.condition = "" if task_params.get("condition") is None else str(task_params["condition"])
    spec.connect_timeout = _millis(task_params.get("connectTimeout"), DEFAULT_TIMEOUT_MS / 1000)
    # 3.3 dropped socketTimeout: its one connectTimeout bounds the whole exchange.
    spec.read_timeout = _millis(task_params.get("socketTimeout"), spec.connect_timeout)
    return spec


def check_response(spec: HttpSpec, status: int, body: str) -> str | None:
    """``None`` when the response passes ``httpCheckCondition``, else why not (DS ``validResponse``)."""
    if spec.check == "BODY_CONTAINS":
        if not body or spec.condition not in body:
            return f"response body does not contain {spec.condition!r}"
    elif spec.check == "BODY_NOT_CONTAINS":
        if not body or spec.condition in body:
            return f"response body contains {spec.condition!r}" if body else "response body is empty"
    elif spec.check == "STATUS_CODE_CUSTOM":
        if str(status) != spec.condition.strip():
            return f"status code {status}, must be {spec.condition.strip()}"
    elif status != 200:  # STATUS_CODE_DEFAULT and anything unknown, as DS's switch default
        return f"status code {status}, must be 200"
    return None


def _decode(data: bytes, encoding: str | None) -> str:
    try:
        return data.decode(encoding or "utf-8", "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


async def _send(spec: HttpSpec, log: TaskLog) -> tuple[int, str]:
    timeout = httpx.Timeout(
        connect=spec.connect_timeout,
        read=spec.read_timeout,
        write=spec.read_timeout,
        pool=spec.connect_timeout,
    )
    # Redirects: followed for GET/HEAD only, like Apache HttpClient's default strategy in DS 3.2.
    follow = spec.method in ("GET", "HEAD")
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=follow) as client:
        try:
            url = httpx.URL(spec.url)
        except httpx.InvalidURL as exc:
            raise _invalid(f"HTTP url is not valid: {exc}") from None
        if spec.query:  # appended to the url's own query, as Apache's RequestBuilder.addParameter does
            url = url.copy_merge_params(tuple(spec.query))
        request = client.build_request(
            spec.method,
            url,
            headers=spec.headers,
            content=spec.body.encode("utf-8") if spec.body is not None else None,
        )
        started = time.monotonic()
        response = await client.send(request, stream=True)
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                take = chunk[: MAX_BODY_BYTES - size]
                chunks.append(take)
                size += len(take)
                if size >= MAX_BODY_BYTES:
                    log.note(f"response body longer than {MAX_BODY_BYTES} bytes: read only that much")
                    break
        finally:
            await response.aclose()
        data = b"".join(chunks)
        log.note(
            f"response: HTTP {response.status_code} {response.reason_phrase} "
            f"in {time.monotonic() - started:.3f}s, {len(data)} bytes"
        )
        log.write(data[:LOG_BODY_BYTES] + (b"\n" if data else b""))
        if len(data) > LOG_BODY_BYTES:
            log.note(f"body truncated in this log at {LOG_BODY_BYTES} of {len(data)} bytes")
        log.flush()
        return response.status_code, _decode(data, response.charset_encoding)


@activity.defn(name="HTTP")
async def run_http(request: TaskRequest) -> TaskResult:
    """Send the request, check it, return ``<taskName>.response`` and the declared OUT params.

    Raises ``ApplicationError(type="TaskFailed")`` (retryable) when the request fails or the check
    fails, and ``ApplicationError(type="InvalidTaskParams", non_retryable=True)`` for a definition that
    can't be sent at all (no url, unknown method or parameter type).
    """
    from model.params import export_out_params

    attempt = task_attempt(request)
    host = socket.gethostname()
    label = f"HTTP task {request.task_name!r}"
    log = TaskLog.for_task(request, attempt)  # the worker's cap, the type's masking, secret params
    with log.open(task_name=request.task_name, task_type=request.task_type, attempt=attempt, host=host):
        details = heartbeat_details(request, log.path, None)
        activity.heartbeat(details)
        if request.lost_attempt is not None:  # an HTTP request cannot be re-attached to: sent again, as DS does
            log.note(f"worker lost during attempt {request.lost_attempt.attempt}: sending the request again")
        if request.dry_run:
            log.note("dry run: skipped")
            log.result = "skipped"
            return TaskResult(attempt=attempt, host=host, log_path=str(log.path))

        spec = build_spec(request.task_params, request.params, request.timezone)
        for secret in http_secrets([*spec.headers, *spec.query]):  # a response may echo them
            log.add_secret(secret)
        log.note(f"request: {spec.method} {spec.url}")
        if spec.query:
            log.note("query parameters: " + ", ".join(name for name, _ in spec.query))
        if spec.headers:
            log.note("headers: " + ", ".join(name for name, _ in spec.headers))
        if spec.body is not None:
            log.note(f"request body: {len(spec.body.encode('utf-8'))} bytes")
        log.flush()

        # The exchange may take up to socketTimeout (60 s by default): keep heartbeating meanwhile, so a
        # heartbeat timeout shorter than that doesn't fail a healthy request and a cancel still arrives.
        beat = asyncio.create_task(heartbeat_every(heartbeat_interval(), details))
        try:
            status, body = await _send(spec, log)
        except httpx.HTTPError as exc:
            log.note(f"request failed: {type(exc).__name__}: {exc}")
            log.result = "failed"
            raise ApplicationError(
                f"{label} request failed ({type(exc).__name__}); log: {log.path} on {host}",
                {"log_path": str(log.path), "host": host},
                type=TASK_FAILED,
            ) from None
        except asyncio.CancelledError:
            log.note("cancelled: request abandoned")
            raise
        finally:
            beat.cancel()
            await asyncio.wait({beat})  # unlike `await beat`, never swallows our own cancellation

        problem = check_response(spec, status, body)
        if problem is not None:
            log.note(f"check {spec.check} failed: {problem}")
            log.result = "failed"
            raise ApplicationError(
                f"{label}: {problem}; log: {log.path} on {host}",
                {"status_code": status, "log_path": str(log.path), "host": host},
                type=TASK_FAILED,
            )
        log.note(f"check {spec.check} passed")
        log.result = "0"

        key = f"{request.task_name}.response"
        if len(body) > RESPONSE_VAR_MAX_CHARS:
            log.note(f"{key} truncated to {RESPONSE_VAR_MAX_CHARS} of {len(body)} characters")
            body = body[:RESPONSE_VAR_MAX_CHARS]
        var_pool = export_out_params(request.out_params, {key: body})
        if not any(p.prop == key for p in var_pool):
            var_pool.append(Property(prop=key, direct=Direct.OUT, type=DataType.VARCHAR, value=body))
        return TaskResult(attempt=attempt, host=host, log_path=str(log.path), exit_code=0, var_pool=var_pool)
