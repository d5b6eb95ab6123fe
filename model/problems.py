"""Problems found in user input, each with a JSON pointer and, where there is one, a task name.

The API turns a :class:`DefinitionError` into an RFC 7807 problem+json body; the CLI prints the same
list. Parsers collect every problem they can find before raising, so a user fixes a file in one pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Problem:
    pointer: str  # RFC 6901 JSON pointer into the submitted document
    message: str
    task: str | None = None  # task name, when the problem is inside a task
    code: str = "invalid"  # machine-readable kind: cycle, unknown-code, duplicate, ...

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def __str__(self) -> str:
        where = self.pointer or "/"
        who = f" (task {self.task!r})" if self.task else ""
        return f"{where}{who}: {self.message}"


class DefinitionError(ValueError):
    """A definition was refused; ``problems`` says every reason and where."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def pointer(*parts: object) -> str:
    """Join path parts into a JSON pointer, escaping ``~`` and ``/`` (RFC 6901)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
