"""Domain refusals, defined once: not found, conflict, forbidden, invalid, unavailable.

Stores and services raise them; the HTTP API maps each kind to its status once
(:func:`api.problems.install`), the CLI prints them. ``title`` is the short, fixed summary of the
refusal ("Schedule exists", "Invalid datasource"); ``detail`` says which object and why;
``problems`` lists every problem with a JSON pointer when the input had several.
"""

from __future__ import annotations

from typing import Any

from model.problems import Problem


class DomainError(Exception):
    title = "Refused"

    def __init__(self, detail: str = "", *, title: str | None = None, problems: list[Problem] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or title or self.title)
        self.detail = detail
        self.title = title or type(self).title
        self.problems = problems or []
        self.extra = extra


class NotFound(DomainError, LookupError):
    title = "Not found"


class Conflict(DomainError):
    """The request is valid but the object's state forbids it (exists, online, still running...)."""

    title = "Conflict"


class Forbidden(DomainError):
    """The caller is not authorized for what the request reaches (another project's definition)."""

    title = "Forbidden"


class Invalid(DomainError, ValueError):
    title = "Invalid request"

    @classmethod
    def of(cls, title: str, problems: list[Problem]) -> Invalid:
        """The usual shape: a title and every problem found."""
        return cls(f"{len(problems)} problem(s) found", title=title, problems=problems)


class Unavailable(DomainError):
    """A server Porpoise needs (Temporal) did not answer: not the caller's fault."""

    title = "Unavailable"
