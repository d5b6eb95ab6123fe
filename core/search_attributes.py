"""Search attributes that make runs findable in the Temporal UI and through visibility queries.

They are registered on the dev server at start (``--search-attribute``); see :mod:`core.devserver`.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

DS_PROJECT = SearchAttributeKey.for_int("DsProjectCode")
DS_DEFINITION_CODE = SearchAttributeKey.for_int("DsDefinitionCode")
DS_DEFINITION_NAME = SearchAttributeKey.for_keyword("DsDefinitionName")
DS_DEFINITION_VERSION = SearchAttributeKey.for_int("DsDefinitionVersion")
DS_STATE = SearchAttributeKey.for_keyword("DsState")
DS_SCHEDULE_TIME = SearchAttributeKey.for_datetime("DsScheduleTime")

ALL = (DS_PROJECT, DS_DEFINITION_CODE, DS_DEFINITION_NAME, DS_DEFINITION_VERSION, DS_STATE, DS_SCHEDULE_TIME)
