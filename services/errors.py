"""The refusals services raise (defined in :mod:`core.errors`, so stores can raise them too), and the
one translation of pydantic's validation errors into an :class:`Invalid` with a pointer per problem."""

from __future__ import annotations

from pydantic import ValidationError

from core.errors import Conflict, DomainError, Forbidden, Invalid, NotFound, Unavailable
from model.problems import Problem, pointer

__all__ = ["Conflict", "DomainError", "Forbidden", "Invalid", "NotFound", "Unavailable", "invalid"]


def invalid(e: ValidationError | ValueError, title: str, prefix: tuple[str, ...] = ()) -> Invalid:
    """Pydantic's errors (or one ValueError) as an :class:`Invalid` titled ``title``."""
    if isinstance(e, ValidationError):
        problems = [Problem(pointer(*prefix, *err.get("loc", ())), str(err.get("msg", "invalid")), None,
                            str(err.get("type"))) for err in e.errors()]
    else:
        problems = [Problem(pointer(*prefix), str(e), None, "invalid")]
    return Invalid.of(title, problems)
