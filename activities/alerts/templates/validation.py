"""Save time: a channel's templates are checked before they are stored.

Syntax, placeholders checked against what Porpoise provides for that alert kind (with "did you mean"
suggestions), business placeholders checked by the resolver, then a strict render (``StrictUndefined``)
against a realistic sample run.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .context import NODE_FIELDS, sample_context, schema
from .defaults import KINDS
from .render import Analysis, Job, analyze, render_many
from .sandbox import DICT_METHODS, GLOBALS, RENDER_TIMEOUT

if TYPE_CHECKING:
    from ..resolvers import BusinessResolver

@dataclass(frozen=True)
class TemplateProblem:
    kind: str
    part: str  # subject | body
    message: str
    line: int | None = None

    @property
    def pointer(self) -> str:
        return f"/templates/{self.kind}/{self.part}"

    def text(self) -> str:
        return f"{self.kind} {self.part}" + (f", line {self.line}" if self.line else "") + f": {self.message}"


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _static_problems(kind: str, part: str, a: Analysis) -> list[TemplateProblem]:
    known = schema(kind)
    problems: list[TemplateProblem] = []
    for name in a.variables:
        if name in known or name in GLOBALS:
            continue
        if name == "task":
            msg = "'task' is only available in TASK_TIMEOUT and TASK_FAILURE templates"
        else:
            msg = f"unknown placeholder '{name}'" + _suggest(name, sorted(set(known) | GLOBALS))
        problems.append(TemplateProblem(kind, part, msg))
    for owner, attr, line in a.attributes:
        if attr.startswith("_"):
            problems.append(TemplateProblem(kind, part, f"'{attr}' is an internal attribute: not allowed", line))
            continue
        fields: frozenset[str] | None = None
        label = owner
        if owner in a.loops and a.loops[owner] in ("nodes", "failed_tasks"):
            fields, label = NODE_FIELDS, f"{owner} (an item of {a.loops[owner]})"
        elif owner in known and owner not in a.loops:
            fields = known[owner]
        if fields is None or attr in fields or attr in DICT_METHODS:
            continue
        problems.append(TemplateProblem(kind, part, f"unknown placeholder '{owner}.{attr}' ({label} has "
                                        f"{', '.join(sorted(fields))})" + _suggest(attr, sorted(fields)), line))
    return problems


def validate_templates(templates: Mapping[str, Mapping[str, str | None]], fmt: str,
                       resolver: BusinessResolver | None = None, *,
                       timeout: float = RENDER_TIMEOUT) -> list[TemplateProblem]:
    """Check a channel's templates ``{kind: {"subject": ..., "body": ...}}`` before they are saved.

    Syntax, unknown placeholders (system ones per kind; business ones by the resolver), internal
    attributes, then a strict render against a sample failed run: runtime errors, escapes, time and
    output limits. Returns every problem found (empty: the templates are good).
    """
    problems: list[TemplateProblem] = []
    sources: dict[str, str] = {}
    for kind, parts in templates.items():
        if kind not in KINDS:
            problems.append(TemplateProblem(str(kind), "", f"unknown alert kind; one of {', '.join(KINDS)}"))
            continue
        for part, source in (parts or {}).items():
            if part not in ("subject", "body"):
                problems.append(TemplateProblem(kind, str(part), "a template is a 'subject' or a 'body'"))
            elif source is not None and source.strip():
                sources[f"{kind}/{part}"] = source
    analyses = analyze(sources, timeout)
    biz_names: set[str] = set()
    for key, a in analyses.items():
        kind, part = key.split("/")
        if not a.ok:
            problems.append(TemplateProblem(kind, part, str(a.error), a.line))
            continue
        problems.extend(_static_problems(kind, part, a))
        biz_names.update(a.biz)
        if resolver is not None and a.biz:
            problems.extend(TemplateProblem(kind, part, msg) for msg in resolver.validate(set(a.biz)).values())
    if problems:
        return problems
    # A strict trial render per kind against the sample run, with a value for every business name.
    sample_biz = resolver.sample(biz_names) if resolver is not None else {}
    for kind in {k.split("/")[0] for k in sources}:
        jobs = [Job(key, src, autoescape=(fmt == "html" and key.endswith("/body")))
                for key, src in sources.items() if key.startswith(kind + "/")]
        rendered = render_many(jobs, sample_context(kind, sample_biz), strict=True, permissive_biz=True,
                               timeout=timeout)
        for key, r in rendered.items():
            if not r.ok:
                _, part = key.split("/")
                problems.append(TemplateProblem(kind, part, str(r.error), r.line))
    return problems
