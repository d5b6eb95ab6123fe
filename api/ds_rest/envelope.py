"""DS's answer shapes: the ``Result`` envelope, ``PageInfo`` paging, dates, and the route class that
turns every failure inside a DS route into a DS envelope (never FastAPI's 422 or a 500).

DS (``ApiExceptionHandler``) answers a failed call with HTTP 200 and ``{"code": <Status>, "msg": ...}``;
only a missing or bad token is HTTP 401 (``LoginHandlerInterceptor``). Successes use the HTTP status of
the controller method's ``@ResponseStatus`` (201 for the create routes).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from core.errors import DomainError, Unavailable
from model.problems import DefinitionError

from ..problems import ProblemError
from .status import Status

log = logging.getLogger(__name__)

DS_TIME = "%Y-%m-%d %H:%M:%S"

T = TypeVar("T")


class DsResult(BaseModel, Generic[T]):
    """DS's ``Result`` envelope, what every DS route answers (the OpenAPI schema of its 2xx answer;
    the routes build it with :func:`result`)."""

    model_config = ConfigDict(title="DsResult")
    code: int = Field(description="DS Status code: 0 on success")
    msg: str = Field(description="DS Status message (English)")
    data: T | None = None
    success: bool
    failed: bool


class DsPage(BaseModel, Generic[T]):
    """DS ``PageInfo`` (:func:`page`)."""

    totalList: list[T]  # noqa: N815 - DS's field names
    total: int
    totalPage: int  # noqa: N815
    pageSize: int  # noqa: N815
    currentPage: int  # noqa: N815
    pageNo: int = Field(description="the row offset of the page, as DS's PageInfo")  # noqa: N815


Row = dict[str, Any]
PAGED = DsResult[DsPage[Row]]
"""The answer of the paging list routes."""

F = TypeVar("F", bound=Callable[..., Any])


def answers(model: Any) -> Callable[[F], F]:
    """Name a DS route's 2xx model (its OpenAPI schema), when not the plain envelope: put it under the
    route decorator (``@router.get(...)`` then ``@answers(PAGED)``)."""

    def mark(fn: F) -> F:
        fn.ds_response_model = model  # type: ignore[attr-defined]
        return fn

    return mark


paged = answers(PAGED)


class DsError(Exception):
    """Raise from a DS route: answered as DS's envelope with this status (HTTP 200 unless told)."""

    def __init__(self, status: Status, *args: object, http_status: int = 200, msg: str | None = None) -> None:
        self.status, self.http_status = status, http_status
        self.msg = msg if msg is not None else status.msg(*args)
        super().__init__(self.msg)


def result(status: Status = Status.SUCCESS, data: Any = None, msg: str | None = None) -> dict[str, Any]:
    code = status.code
    return {"code": code, "msg": msg if msg is not None else status.msg(), "data": data,
            "success": code == 0, "failed": code != 0}


def ok(data: Any = None, http_status: int = 200) -> JSONResponse:
    return JSONResponse(result(data=data), status_code=http_status)


def error_response(e: DsError) -> JSONResponse:
    return JSONResponse(result(e.status, None, e.msg), status_code=e.http_status)


def page(items: Sequence[Any], total: int, page_no: int, page_size: int) -> dict[str, Any]:
    """DS ``PageInfo``: ``pageNo`` there is the row offset, ``currentPage`` the page asked for."""
    size = page_size or 10
    total_page = max(1, math.ceil(total / size)) if total else 1
    return {"totalList": list(items), "total": total, "totalPage": total_page, "pageSize": page_size,
            "currentPage": page_no, "pageNo": (page_no - 1) * page_size}


def ds_time(t: datetime | None, zone: str | None = None) -> str | None:
    """A DS date, ``yyyy-MM-dd HH:mm:ss``, in the server's time zone (Porpoise's default timezone)."""
    if t is None:
        return None
    if t.tzinfo is not None and zone:
        t = t.astimezone(ZoneInfo(zone))
    return t.strftime(DS_TIME)


def _problem_status(e: DomainError | ProblemError, fallback: Status) -> DsError:
    """A Porpoise refusal (core.errors, or an app-wide check's ProblemError, e.g. api/limits.py) reached
    a DS route: keep its words, DS's shape."""
    if isinstance(e, Unavailable) or (isinstance(e, ProblemError) and e.status == 503):
        return DsError(Status.INTERNAL_SERVER_ERROR_ARGS, f"{e.title}: {e.detail}")
    detail = e.detail or e.title
    if e.problems:
        detail = "; ".join(f"{p.pointer or '/'}: {p.message}" for p in e.problems)
    return DsError(fallback, msg=f"{fallback.msg()}: {detail}" if "{" not in fallback.template else detail)


class DsRoute(APIRoute):
    """Every exception of a DS route (its dependencies included) becomes a DS envelope, and every DS
    route documents its 2xx answer: DS's envelope (:class:`DsResult`) unless it names its own model.
    The routes return their responses themselves, so the model documents; it does not re-validate."""

    def __init__(self, path: str, endpoint: Callable[..., Any], *, response_model: Any = None,
                 **kwargs: Any) -> None:
        if response_model is None or isinstance(response_model, DefaultPlaceholder):
            response_model = getattr(endpoint, "ds_response_model", DsResult[Any])
        super().__init__(path, endpoint, response_model=response_model, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        fallback = Status[(self.openapi_extra or {}).get("x-ds-error", "INTERNAL_SERVER_ERROR_ARGS")]

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except DsError as e:
                return error_response(e)
            except ProblemError as e:
                if e.status in (401, 403):  # a native access check (api/auth.py) refused the caller
                    return error_response(DsError(Status.USER_NO_OPERATION_PERM))
                return error_response(_problem_status(e, fallback))
            except DomainError as e:
                return error_response(_problem_status(e, fallback))
            except DefinitionError as e:
                what = "; ".join(f"{p.pointer or '/'}: {p.message}" for p in e.problems[:20])
                return error_response(DsError(Status.DATA_IS_NOT_VALID, what))
            except RequestValidationError as e:
                names = [str(err.get("loc", ("?",))[-1]) for err in e.errors()]
                return error_response(DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, ",".join(names)))
            except HTTPException as e:
                return error_response(DsError(Status.INTERNAL_SERVER_ERROR_ARGS, str(e.detail),
                                              http_status=e.status_code if e.status_code < 500 else 200))
            except Exception as e:  # DS: Status.INTERNAL_SERVER_ERROR_ARGS, HTTP 200; never a bare 500
                log.exception("DS route %s failed", request.url.path)
                return error_response(DsError(Status.INTERNAL_SERVER_ERROR_ARGS, f"{type(e).__name__}: {e}"))

        return route


def ds_error(status: Status) -> dict[str, Any]:
    """``openapi_extra`` naming the route's ``@ApiException`` status (its answer to unexpected failures)."""
    return {"x-ds-error": status.name}
