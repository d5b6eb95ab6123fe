"""DS ``@RequestParam`` binding: a parameter may come in the query string or the form body
(``application/x-www-form-urlencoded`` or ``multipart/form-data``), as Spring binds it. A missing
required parameter or one that does not convert answers ``REQUEST_PARAMS_NOT_VALID_ERROR`` naming it.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.datastructures import UploadFile

from .envelope import DsError
from .status import Status

E = TypeVar("E", bound=StrEnum)
MAX_FORM_BYTES = 8 * 1024 * 1024


class Params:
    """The request's parameters; the first value of each name wins (Spring binds the first)."""

    def __init__(self, values: dict[str, str], files: dict[str, UploadFile] | None = None) -> None:
        self.values = values
        self.files = files or {}

    @classmethod
    async def of(cls, request: Request) -> Params:
        values: dict[str, str] = {}
        for k, v in request.query_params.multi_items():
            values.setdefault(k, v)
        files: dict[str, UploadFile] = {}
        ctype = request.headers.get("content-type", "")
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            if "multipart/form-data" in ctype:
                form = await request.form()
                for k, item in form.multi_items():
                    if isinstance(item, UploadFile):
                        files.setdefault(k, item)
                    else:
                        values.setdefault(k, str(item))
            elif "application/json" in ctype:  # v2 routes and lenient clients
                body = await request.body()
                try:
                    doc = json.loads(body) if body.strip() else {}
                except ValueError:
                    raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "body (not JSON)") from None
                if isinstance(doc, dict):
                    for k, v in doc.items():
                        values.setdefault(k, v if isinstance(v, str) else json.dumps(v))
            else:  # form-encoded, also when a client forgets the content type
                body = await request.body()
                if len(body) > MAX_FORM_BYTES:
                    raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, f"body (over {MAX_FORM_BYTES} bytes)")
                try:
                    pairs = parse_qsl(body.decode(), keep_blank_values=True)
                except UnicodeDecodeError:
                    raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "body (not UTF-8)") from None
                for k, v in pairs:
                    values.setdefault(k, v)
        return cls(values, files)

    def _bad(self, name: str) -> DsError:
        return DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, name)

    def has(self, name: str) -> bool:
        return name in self.values

    def text(self, name: str, default: str | None = None, *, required: bool = False,
            alias: tuple[str, ...] = ()) -> str | None:
        for n in (name, *alias):
            if n in self.values:
                return self.values[n]
        if required:
            raise self._bad(name)
        return default

    def req(self, name: str, *, alias: tuple[str, ...] = ()) -> str:
        v = self.text(name, required=True, alias=alias)
        assert v is not None
        return v

    def integer(self, name: str, default: int | None = None, *, required: bool = False,
            alias: tuple[str, ...] = ()) -> int | None:
        raw = self.text(name, None, required=required, alias=alias)
        if raw is None or (raw.strip() == "" and not required):
            return default
        try:
            return int(raw.strip())
        except ValueError:
            raise self._bad(name) from None

    def req_int(self, name: str, *, alias: tuple[str, ...] = ()) -> int:
        v = self.integer(name, required=True, alias=alias)
        assert v is not None
        return v

    def enum(self, name: str, kind: type[E], default: E | None = None, *, required: bool = False,
             alias: tuple[str, ...] = ()) -> E | None:
        """An enum by name, or by ordinal as Spring's converter also accepts."""
        raw = self.text(name, None, required=required, alias=alias)
        if raw is None or (raw.strip() == "" and not required):
            return default
        raw = raw.strip()
        try:
            return kind(raw)
        except ValueError:
            if raw.isdigit() and int(raw) < len(kind):
                return list(kind)[int(raw)]
            raise self._bad(name) from None

    def codes(self, name: str, *, alias: tuple[str, ...] = ()) -> list[int]:
        raw = self.text(name, "", alias=alias) or ""
        try:
            return [int(x) for x in raw.split(",") if x.strip()]
        except ValueError:
            raise self._bad(name) from None


def path_int(value: str, name: str) -> int:
    """A DS path variable (``long``/``Integer``); a non-number answers the DS parameter error."""
    try:
        return int(value)
    except ValueError:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, name) from None


def paging(p: Params) -> tuple[int, int]:
    """DS ``checkPageParams``: pageNo ≥ 1 and pageSize ≥ 1 (both required)."""
    page_no = p.req_int("pageNo")
    page_size = p.req_int("pageSize")
    if page_no <= 0:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "pageNo")
    if page_size <= 0:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "pageSize")
    return page_no, page_size


def as_bool_flag(v: Any) -> bool:
    return str(v).strip().lower() in ("1", "true", "yes")
