"""Rendering and analysing templates, parent side: jobs in, typed answers out, via the render pool."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .render_pool import pool
from .sandbox import MAX_OUTPUT_CHARS, RENDER_TIMEOUT


@dataclass(frozen=True)
class Job:
    key: str
    source: str
    autoescape: bool = False


@dataclass
class Rendered:
    key: str
    ok: bool
    text: str = ""
    error: str | None = None
    line: int | None = None
    timed_out: bool = False
    undefined: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"line {self.line}: {self.error}" if self.line else str(self.error)


def render_many(jobs: Sequence[Job], context: Mapping[str, Any], *, strict: bool = False,
                permissive_biz: bool = False, timeout: float = RENDER_TIMEOUT,
                max_output: int = MAX_OUTPUT_CHARS) -> dict[str, Rendered]:
    """Render templates against one context (plain JSON data) in a render process. Never raises."""
    if not jobs:
        return {}
    request = {"op": "render", "jobs": [{"key": j.key, "source": j.source, "autoescape": j.autoescape} for j in jobs],
               "context": _jsonable(context), "strict": strict, "permissive_biz": permissive_biz,
               "timeout": timeout, "max_output": max_output}
    out: dict[str, Rendered] = {}
    for a in pool().run(request):
        out[a["key"]] = Rendered(key=a["key"], ok=bool(a.get("ok")), text=a.get("text") or "", error=a.get("error"),
                                 line=a.get("line"), timed_out=bool(a.get("timeout")),
                                 undefined=list(a.get("undefined") or []))
    return out


@dataclass
class Analysis:
    key: str
    ok: bool
    error: str | None = None
    line: int | None = None
    variables: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str, int]] = field(default_factory=list)
    loops: dict[str, str] = field(default_factory=dict)  # loop variable -> the collection it iterates
    biz: list[str] = field(default_factory=list)
    biz_dynamic: bool = False


def analyze(sources: Mapping[str, str], timeout: float = RENDER_TIMEOUT) -> dict[str, Analysis]:
    """Parse templates (in a render process) and list what they refer to."""
    if not sources:
        return {}
    request = {"op": "analyze", "jobs": [{"key": k, "source": s} for k, s in sources.items()], "timeout": timeout}
    out: dict[str, Analysis] = {}
    for a in pool().run(request):
        out[a["key"]] = Analysis(key=a["key"], ok=bool(a.get("ok")), error=a.get("error"), line=a.get("line"),
                                 variables=list(a.get("variables") or []),
                                 attributes=[(str(o), str(n), int(ln)) for o, n, ln in a.get("attributes") or []],
                                 loops=dict(a.get("loops") or {}), biz=list(a.get("biz") or []),
                                 biz_dynamic=bool(a.get("biz_dynamic")))
    return out


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
