"""HTTP parameters (reference §3, §1.3), in both DS key sets, because stored definitions of both exist.

* 3.2: ``url``, ``httpMethod``, ``httpParams`` (``PARAMETER`` = query, ``BODY`` = a field of a JSON
  body, ``HEADERS``), ``httpBody``, ``connectTimeout``, ``socketTimeout`` (milliseconds);
* 3.3: ``httpRequestMethod``, ``httpRequestParams`` (PARAMETER/HEADERS), ``httpRequestBody``.

The 3.3 key wins when both are present; :attr:`HttpParams.method`, :attr:`~HttpParams.parameters` and
:attr:`~HttpParams.body` are the effective values.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field

from .base import Lax, Millis, TaskParams, Text, Upper, decoded, is_null, whole_error

METHODS = ("GET", "POST", "HEAD", "PUT", "DELETE")
CHECK_CONDITIONS = ("STATUS_CODE_DEFAULT", "STATUS_CODE_CUSTOM", "BODY_CONTAINS", "BODY_NOT_CONTAINS")
PARAMETER_TYPES = ("PARAMETER", "BODY", "HEADERS")


class HttpProperty(Lax):
    """One ``httpParams`` entry: ``{prop, httpParametersType, value}``."""

    prop: Text = None
    value: Text = None
    http_parameters_type: Upper = Field(default=None, alias="httpParametersType")

    @property
    def kind(self) -> str:
        return self.http_parameters_type or "PARAMETER"


def _properties(value: Any) -> list[Any] | None:
    value = decoded(value)
    if value is None:
        return None
    if not isinstance(value, list):
        raise whole_error(f"HTTP parameters must be a list, got {type(value).__name__}")
    for item in value:
        if not isinstance(item, dict):
            raise whole_error(f"HTTP parameter must be an object, got {type(item).__name__}")
    return value


def _body(value: Any) -> str | dict[str, Any] | list[Any] | None:
    """A body is text; a hand-written definition may inline it as JSON (kept as such)."""
    if value is None or isinstance(value, str | dict | list):
        return value
    return str(value)


Properties = Annotated[list[HttpProperty] | None, BeforeValidator(_properties)]
Body = Annotated[str | dict[str, Any] | list[Any] | None, BeforeValidator(_body)]


class HttpParams(TaskParams):
    task_types: ClassVar[tuple[str, ...]] = ("HTTP",)

    url: Text = None
    http_method: Upper = Field(default=None, alias="httpMethod")
    http_request_method: Upper = Field(default=None, alias="httpRequestMethod")
    http_params: Properties = Field(default=None, alias="httpParams")
    http_request_params: Properties = Field(default=None, alias="httpRequestParams")
    http_body: Body = Field(default=None, alias="httpBody")
    http_request_body: Body = Field(default=None, alias="httpRequestBody")
    http_check_condition: Upper = Field(default=None, alias="httpCheckCondition")
    condition: Text = None  # the expected status code or body substring
    connect_timeout: Millis = Field(default=None, alias="connectTimeout")
    socket_timeout: Millis = Field(default=None, alias="socketTimeout")

    @property
    def method(self) -> str:
        return self.http_request_method or self.http_method or "GET"

    @property
    def parameters(self) -> list[HttpProperty]:
        chosen = self.http_request_params if self.http_request_params is not None else self.http_params
        return list(chosen or [])

    @property
    def body(self) -> str | dict[str, Any] | list[Any] | None:
        return self.http_request_body if self.http_request_body is not None else self.http_body

    @property
    def check_condition(self) -> str:
        return self.http_check_condition or "STATUS_CODE_DEFAULT"

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if not (self.url or "").strip():
            out.append(("url", "url is required"))
        if self.method not in METHODS:
            out.append(("httpMethod", f"httpMethod {self.method!r} is not one of {', '.join(METHODS)}"))
        return out


__all__ = ["CHECK_CONDITIONS", "METHODS", "PARAMETER_TYPES", "HttpParams", "HttpProperty", "is_null"]
