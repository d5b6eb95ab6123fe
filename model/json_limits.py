"""JSON read with limits: nesting depth and integer range, so hostile input is a problem, not a crash.

``json.loads`` recurses once per nesting level: 10^5 nested arrays raise ``RecursionError``, which no
caller expects, and a 4,300-digit number raises a plain ``ValueError``. Every submitted document is read
through :func:`loads`, which answers all of these with :class:`JsonLimitError` (a ``ValueError``) and a
message a user can act on. :func:`too_deep` is iterative, so checking never recurses either.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 64  # DS documents nest about 10 levels (export > task > taskParams > dependence > items)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # DS codes and ids are Java longs

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a JSON string, escapes included (unrolled: fast)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")
_PASSES = 8
_DELTA = [0] * 256
_DELTA[ord("[")], _DELTA[ord("]")] = 1, -1


class JsonLimitError(ValueError):
    """The text is not JSON we accept; ``message`` says why (and where, for syntax errors)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def too_deep(text: str | bytes, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels in ``text`` (brackets inside strings
    do not count). Never recurses. A few passes strip the innermost pairs (one C-level replace each:
    most documents are done there); what is left is measured in one linear pass. Unbalanced text is
    left to the parser, which reports it."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", data)).translate(_ONE_KIND)
    stripped = 0
    while brackets and stripped < min(limit, _PASSES):
        inner_removed = brackets.replace(b"[]", b"")
        if len(inner_removed) == len(brackets):
            return False  # unbalanced
        brackets, stripped = inner_removed, stripped + 1
    if not brackets:
        return False
    return stripped + _max_depth(brackets) > limit


def _max_depth(brackets: bytes) -> int:
    return max(accumulate(map(_DELTA.__getitem__, brackets)), default=0)


def in_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises only :class:`JsonLimitError` on input it cannot take."""
    if too_deep(text, max_depth):
        raise JsonLimitError(f"JSON nested more than {max_depth} levels deep, over the limit")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise JsonLimitError(f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except UnicodeDecodeError as e:
        raise JsonLimitError(f"not UTF-8 text: {e}") from None
    except RecursionError:  # only if max_depth is set above what the parser can take
        raise JsonLimitError("JSON nested too deeply to read") from None
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        raise JsonLimitError(f"JSON not accepted: {e}") from None
