"""Definition lookups the workflow needs at run time, e.g. a SUB_PROCESS target's current version."""

from __future__ import annotations

from temporalio import activity

from model.definition import WorkflowDefinition
from storage.definitions import DefinitionStore


class DefinitionActivities:
    def __init__(self, store: DefinitionStore) -> None:
        self.store = store

    @activity.defn(name="load_definition")
    def load_definition(self, code: int, version: int | None = None) -> WorkflowDefinition | None:
        """Definition `code` at `version`, or its latest version when None (a child runs its target's
        current version, §4.9; a continued or by-reference run loads its pinned version)."""
        return self.store.get(code, version)
