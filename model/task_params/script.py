"""SHELL and PYTHON parameters (reference §3): a script, run by bash or a Python interpreter."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from .base import TaskParams, Text


class ScriptParams(TaskParams):
    """``ShellParameters`` / ``PythonParameters``: ``rawScript``, ``${name}``-substituted at run time."""

    task_types: ClassVar[tuple[str, ...]] = ("SHELL", "PYTHON")

    raw_script: Text = Field(default=None, alias="rawScript")

    @property
    def script(self) -> str:
        return self.raw_script or ""

    def problems(self) -> list[tuple[str, str]]:
        return [] if self.script.strip() else [("rawScript", "rawScript is required")]
