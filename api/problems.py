"""RFC 7807 problem+json responses. Bad input never becomes a 500 or a stack trace."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError, RPCStatusCode

from core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unavailable
from model.problems import DefinitionError, Problem, pointer

MEDIA_TYPE = "application/problem+json"
# Each domain refusal's HTTP status, in one place (services never speak HTTP).
STATUS: tuple[tuple[type[DomainError], int], ...] = ((NotFound, 404), (Conflict, 409), (Forbidden, 403),
                                                     (Invalid, 422), (Unavailable, 503))
RETRY_AFTER_SECONDS = "5"  # while Temporal is unreachable: a restart takes a few seconds


class ProblemError(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(self, status: int, title: str, detail: str = "", problems: list[Problem] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.problems = problems or []
        self.extra = extra


def problem_response(status: int, title: str, detail: str = "", problems: list[Problem] | None = None,
                     instance: str = "", **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    if problems:
        body["problems"] = [p.as_dict() for p in problems]
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE)


def install(app: FastAPI) -> None:
    @app.exception_handler(DefinitionError)
    async def _definition(request: Request, exc: DefinitionError) -> JSONResponse:
        too_large = any(p.code == "too-large" for p in exc.problems)
        return problem_response(413 if too_large else 422,
                                "Payload too large" if too_large else "Invalid workflow definition",
                                f"{len(exc.problems)} problem(s) found", exc.problems, request.url.path)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        status = next((code for kind, code in STATUS if isinstance(exc, kind)), 400)
        response = problem_response(status, exc.title, exc.detail, exc.problems, request.url.path, **exc.extra)
        if isinstance(exc, Unavailable):
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail, exc.problems, request.url.path, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            loc = [p for p in err.get("loc", ()) if p not in ("body", "query", "path")]
            problems.append(Problem(pointer(*loc), str(err.get("msg", "invalid")), None, str(err.get("type"))))
        return problem_response(422, "Invalid request", f"{len(problems)} problem(s) found", problems,
                                request.url.path)

    @app.exception_handler(RecursionError)
    async def _recursion(request: Request, exc: RecursionError) -> JSONResponse:
        # Last line of defence: api/limits.py refuses deep JSON before any parser sees it.
        return problem_response(422, "Input nested too deeply", "the request nests too deeply to be read",
                                instance=request.url.path)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # A number too large for the database or a duration: the input's fault (ids are 64-bit).
        return problem_response(422, "Number out of range", str(exc), instance=request.url.path)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the request carried (a NUL byte in PostgreSQL text, a number
        # out of a column's range): the input's fault. The driver's first line says which.
        reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "invalid value"
        return problem_response(422, "Value refused by the database", reason, instance=request.url.path)

    @app.exception_handler(RPCError)
    async def _temporal(request: Request, exc: RPCError) -> JSONResponse:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:  # e.g. a visibility query on a value out of range
            return problem_response(422, "Temporal refused the request", exc.message, instance=request.url.path)
        # Temporal down or slow (no worker to answer a query, say): not the caller's fault, not a 500.
        response = problem_response(503, "Temporal did not answer", f"{exc.status.name}: {exc.message}",
                                    instance=request.url.path)
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    @app.exception_handler(RuntimeError)
    async def _unreachable(request: Request, exc: RuntimeError) -> JSONResponse:
        # The API's lazy Temporal client raises this while nothing listens (core/temporal.py): the same
        # refusal as any other Unavailable.
        if not str(exc).startswith("Failed client connect"):
            raise exc
        return await _domain(request, Unavailable(str(exc), title="Temporal is unavailable"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), instance=request.url.path)
