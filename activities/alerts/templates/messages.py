"""Send time: every channel's subject and body rendered at once, with fallbacks.

Unknown placeholders render as ``[unknown: name]`` and are reported; a custom template that fails
anyway is replaced by the default template, with a note saying why; if even a default fails, a
message without Jinja is sent.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .defaults import default_template
from .render import Job, analyze, render_many
from .sandbox import MAX_OUTPUT_CHARS, RENDER_TIMEOUT


@dataclass
class Message:
    subject: str
    body: str
    format: str  # html | markdown | text
    template_error: str | None = None  # the custom template failed; the default one was used
    unknown: list[str] = field(default_factory=list)  # unknown placeholders rendered as [unknown: ...]


@dataclass(frozen=True)
class MessageSpec:
    """One message to render: a key (the channel), its format, and its custom templates (None: default)."""

    key: str
    fmt: str
    subject: str | None = None
    body: str | None = None


def business_names(specs: Sequence[MessageSpec]) -> tuple[set[str], bool]:
    """The ``biz.*`` names the custom templates use, and whether one uses ``biz`` dynamically."""
    sources = {f"{s.key}/{part}": src for s in specs for part, src in (("subject", s.subject), ("body", s.body))
               if src}
    names: set[str] = set()
    dynamic = False
    for a in analyze(sources).values():
        names.update(a.biz)
        dynamic = dynamic or a.biz_dynamic
    return names, dynamic


def _note(fmt: str, message: str) -> str:
    text = f"Note: this channel's alert template failed ({message}); Porpoise's default message follows."
    if fmt == "html":
        return (f'<div style="font-family:sans-serif;background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;'
                f'margin:8px">{html.escape(text)}</div>\n')
    return f"> {text}\n\n" if fmt == "markdown" else f"{text}\n\n"


def _emergency(context: Mapping[str, Any]) -> tuple[str, str]:
    """If even a default template fails (it should not), a message without Jinja."""
    d = context.get("definition") or {}
    i = context.get("instance") or {}
    subject = f"[Porpoise] {d.get('name', '')} {context.get('state', '')} {i.get('id', '')}".strip()
    return subject, f"{context.get('title', '')}\n{subject}\n{(context.get('links') or {}).get('temporal', '')}"


def render_messages(specs: Sequence[MessageSpec], kind: str, context: Mapping[str, Any], *,
                    timeout: float = RENDER_TIMEOUT, max_output: int = MAX_OUTPUT_CHARS) -> dict[str, Message]:
    """Render every channel's subject and body at once; a failing custom template falls back to the default."""
    jobs: list[Job] = []
    for fmt in sorted({s.fmt for s in specs}):
        jobs.append(Job(f"default:{fmt}/subject", default_template(kind, fmt, "subject")))
        jobs.append(Job(f"default:{fmt}/body", default_template(kind, fmt, "body"), autoescape=fmt == "html"))
    for s in specs:
        if s.subject:
            jobs.append(Job(f"custom:{s.key}/subject", s.subject))
        if s.body:
            jobs.append(Job(f"custom:{s.key}/body", s.body, autoescape=s.fmt == "html"))
    rendered = render_many(jobs, context, timeout=timeout, max_output=max_output)
    fallback_subject, fallback_body = _emergency(context)
    out: dict[str, Message] = {}
    for s in specs:
        errors: list[str] = []
        unknown: list[str] = []
        parts: dict[str, str] = {}
        for part, custom in (("subject", s.subject), ("body", s.body)):
            r = rendered.get(f"custom:{s.key}/{part}") if custom else None
            if r is not None and r.ok:
                parts[part] = r.text
                unknown.extend(u for u in r.undefined if u not in unknown)
                continue
            if r is not None:
                errors.append(f"{part}: {r.where}")
            d = rendered.get(f"default:{s.fmt}/{part}")
            parts[part] = d.text if d is not None and d.ok else (fallback_subject if part == "subject"
                                                                   else fallback_body)
        subject = " ".join(parts["subject"].split())[:255] or fallback_subject
        body = parts["body"]
        if errors:
            body = _note(s.fmt, "; ".join(errors)) + body
        out[s.key] = Message(subject=subject, body=body, format=s.fmt,
                             template_error="; ".join(errors) or None, unknown=unknown)
    return out


def html_to_text(markup: str) -> str:
    """A readable plain-text alternative of an HTML body (for the text/plain part of an email)."""
    text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", "", markup)
    text = re.sub(r"\s+", " ", text)  # whitespace in HTML source means nothing
    text = re.sub(r'(?is)<a\b[^>]*href="([^"]*)"[^>]*>(.*?)</a>', r"\2 (\1)", text)
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|h\d|li|table)>", "\n", text)
    text = re.sub(r"(?i)</t[dh]>", "  ", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    out: list[str] = []
    for line in (" ".join(raw.split()) for raw in text.splitlines()):
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"
