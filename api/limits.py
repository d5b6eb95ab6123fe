"""Limits on what a request may carry, enforced once for every route (issue 16: no 500s).

* :class:`BodyLimits` (ASGI middleware): a body over its size limit is answered 413 before any route
  reads it (definition documents: ``max_definition_bytes``; every other body: ``max_body_bytes``), and
  a JSON body nesting deeper than ``max_json_depth`` is answered 422, so no parser recurses on it.
* :func:`int64_params` (an app-wide dependency): an integer path or query parameter outside the 64-bit
  range DS ids live in is answered 422 with the parameter named, before a database or Temporal sees it.
"""

from __future__ import annotations

import re
import typing
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import Settings
from model import json_limits
from model.problems import Problem, pointer

from .problems import ProblemError, problem_response

# Routes whose body is a definition document, limited by max_definition_bytes instead; the DS REST
# API's definition create/update forms and import files too (api/ds_rest/routers/definitions.py).
DEFINITION_DOCUMENTS = frozenset({"/definitions", "/definitions/validate"})
DS_DEFINITION_DOCUMENTS = re.compile(r"^/dolphinscheduler/projects/[^/]+/(process|workflow)-definition(/[^/]+)?$")
_NOT_JSON = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")


class BodyLimits:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def limit(self, path: str) -> tuple[int, str]:
        if path.rstrip("/") in DEFINITION_DOCUMENTS or DS_DEFINITION_DOCUMENTS.match(path.rstrip("/")):
            return self.settings.max_definition_bytes, "max_definition_bytes"
        return self.settings.max_body_bytes, "max_body_bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit, setting = self.limit(path)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._too_large(scope, send, f"the body is {declared} bytes, over the limit of {limit} "
                                  f"bytes ({setting})", path)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            more = bool(message.get("more_body", False))
            if len(body) > limit:
                await self._too_large(scope, send, f"the body is over the limit of {limit} bytes ({setting})",
                                      path)
                return
        content_type = headers.get("content-type", "").lower()
        if body and not content_type.startswith(_NOT_JSON):
            limit = self.settings.max_json_depth
            if json_limits.too_deep(bytes(body), limit):
                detail = f"the body nests more than {limit} levels deep, over the limit (max_json_depth)"
                response = problem_response(422, "JSON nested too deeply", detail,
                                            [Problem("", detail, None, "too-deep")], path)
                await response(scope, _drained(), send)
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _too_large(self, scope: Scope, send: Send, detail: str, path: str) -> None:
        response = problem_response(413, "Payload too large", detail, [Problem("", detail, None, "too-large")], path)
        await response(scope, _drained(), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, then whatever the server says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _drained() -> Receive:
    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    return receive


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    return any(a is int for a in typing.get_args(annotation))


def _params(dependant: Dependant) -> tuple[list[Any], list[Any]]:
    """The route's path and query parameters, its dependencies' included."""
    path, query = list(dependant.path_params), list(dependant.query_params)
    for sub in dependant.dependencies:
        p, q = _params(sub)
        path += p
        query += q
    return path, query


# Per route object (held, so its id is never reused): its integer-typed path and query parameters.
_flat: dict[int, tuple[APIRoute, list[Any], list[Any]]] = {}


async def int64_params(request: Request) -> None:
    """Refuse integer path and query parameters beyond 64 bits (ids, codes, versions)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    flat = _flat.get(id(route))
    if flat is None:
        path, query = _params(route.dependant)
        flat = _flat[id(route)] = (route, [f for f in path if _is_int(f.field_info.annotation)],
                                   [f for f in query if _is_int(f.field_info.annotation)])
    problems = []
    for source, fields in ((request.path_params, flat[1]), (request.query_params, flat[2])):
        for field in fields:
            raw = source.get(field.alias)
            if raw is None:
                continue
            try:
                value = int(str(raw).strip())
            except ValueError:
                continue  # not a number: FastAPI's own validation answers it
            if not json_limits.in_int64(value):
                problems.append(Problem(pointer(field.alias), f"{field.alias} is out of range: at most a 64-bit "
                                        "integer", None, "range"))
    if problems:
        raise ProblemError(422, "Invalid request", f"{len(problems)} problem(s) found", problems)
