"""Search attributes that make runs findable in the Temporal UI and through visibility queries.

They are registered on the dev server at start (``--search-attribute``); see :mod:`core.devserver`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from model.states import WorkflowState

DS_PROJECT = SearchAttributeKey.for_int("DsProjectCode")
DS_DEFINITION_CODE = SearchAttributeKey.for_int("DsDefinitionCode")
DS_DEFINITION_NAME = SearchAttributeKey.for_keyword("DsDefinitionName")
DS_DEFINITION_VERSION = SearchAttributeKey.for_int("DsDefinitionVersion")
DS_STATE = SearchAttributeKey.for_keyword("DsState")
DS_SCHEDULE_TIME = SearchAttributeKey.for_datetime("DsScheduleTime")

ALL = (DS_PROJECT, DS_DEFINITION_CODE, DS_DEFINITION_NAME, DS_DEFINITION_VERSION, DS_STATE, DS_SCHEDULE_TIME)


def of_instance(project_code: int, definition_code: int, definition_name: str, definition_version: int, *,
                state: str | None = WorkflowState.RUNNING_EXECUTION.value,
                schedule_time: datetime | None = None) -> TypedSearchAttributes:
    """What every workflow instance (a run, a sub-process, a complement date, a complement itself, a
    scheduled run) starts with: its project and definition, and its DS state unless None."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(DS_PROJECT, project_code),
        SearchAttributePair(DS_DEFINITION_CODE, definition_code),
        SearchAttributePair(DS_DEFINITION_NAME, definition_name),
        SearchAttributePair(DS_DEFINITION_VERSION, definition_version),
    ]
    if state is not None:
        pairs.append(SearchAttributePair(DS_STATE, state))
    if schedule_time is not None:
        pairs.append(SearchAttributePair(DS_SCHEDULE_TIME, schedule_time))
    return TypedSearchAttributes(pairs)
