"""Porpoise's default alert templates: a subject per alert kind, a body per message format.

The templates are ``.j2`` files in ``default_templates/`` beside this module, shipped as package data
(pyproject ``[tool.setuptools.package-data]``), so an installed wheel has them too. They are read
once per process. A body has one template for the end of a workflow instance and one for the task
alerts (timeout, failure); HTML has a single body for all kinds.
"""

from __future__ import annotations

import functools
from importlib import resources

KINDS = ("WORKFLOW_END", "TASK_TIMEOUT", "TASK_FAILURE")
FORMATS = ("html", "markdown", "text")


@functools.cache
def _read(name: str) -> str:
    """A template file's exact text (no newline translation, so a template renders as written)."""
    return (resources.files(__package__) / "default_templates" / name).read_bytes().decode("utf-8")


def default_template(kind: str, fmt: str, part: str) -> str:
    """The built-in ``subject`` or ``body`` template for an alert kind and a message format (a format
    other than html and markdown gets the text body)."""
    if part == "subject":
        if kind not in KINDS:
            raise KeyError(kind)
        return _read(f"{kind.lower()}.subject.j2")
    if fmt == "html":
        return _read("html.body.j2")
    table = "markdown" if fmt == "markdown" else "text"
    return _read(f"{table}.{'workflow_end' if kind == 'WORKFLOW_END' else 'task'}.body.j2")


def defaults() -> dict[str, dict[str, dict[str, str]]]:
    """Every default template: ``{format: {kind: {subject, body}}}``."""
    return {fmt: {kind: {"subject": default_template(kind, fmt, "subject"), "body": default_template(kind, fmt, "body")}
                  for kind in KINDS} for fmt in FORMATS}
