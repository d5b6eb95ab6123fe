"""The request and response bodies of the native API, one module per resource, on one base model
(:class:`ApiModel`: camelCase JSON, snake_case accepted in requests). The HTTP routes declare them as
response models and the CLI prints its ``--json`` output through them, so both show the same shapes.

The submodules are imported on first use of a name (PEP 562): the CLI prints one shape, and importing
all of them costs it start-up time (issue 15)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .access import IssuedToken, NewProject, NewToken, NewUser, ProjectView, TokenView, UserView
    from .alerts import (
        AlertChannelView,
        AlertGroupView,
        AlertPreview,
        BrokenChannelView,
        ChannelOutcomeView,
        Delivery,
        KeysRotated,
        RenderedMessage,
        TemplateCheck,
        TemplateDefaults,
        TemplateProblemView,
        TestSendResult,
    )
    from .base import ApiModel, Long, request_body, shape
    from .complements import ComplementCreated, ComplementDate, ComplementStopped, ComplementSummary, ComplementView
    from .datasources import ConnectionTest, DatasourceView
    from .definitions import (
        DefinitionListItem,
        DefinitionSummary,
        DefinitionVersion,
        DefinitionView,
        RelationView,
        ScheduleBlockView,
        SubmittedDefinition,
        TaskView,
        ValidatedDefinition,
    )
    from .runs import AlertNoteView, ForcedSuccess, NodeView, RunCreated, RunOperation, RunStatus, RunSummary, StartRun
    from .schedules import (
        RecentFire,
        ScheduleDeleted,
        SchedulePreview,
        ScheduleRun,
        ScheduleTriggered,
        ScheduleView,
        TemporalScheduleInfo,
    )
    from .system import CodecPayload, CodecPayloads, Health, PayloadKeyAdded, TaskGroup, TaskGroupView

_MODULES = {  # submodule: the names it defines (test_cli_imports checks these against the imports above)
    "access": "IssuedToken NewProject NewToken NewUser ProjectView TokenView UserView",
    "alerts": ("AlertChannelView AlertGroupView AlertPreview BrokenChannelView ChannelOutcomeView Delivery "
               "KeysRotated RenderedMessage TemplateCheck TemplateDefaults TemplateProblemView TestSendResult"),
    "base": "ApiModel Long request_body shape",
    "complements": "ComplementCreated ComplementDate ComplementStopped ComplementSummary ComplementView",
    "datasources": "ConnectionTest DatasourceView",
    "definitions": ("DefinitionListItem DefinitionSummary DefinitionVersion DefinitionView RelationView "
                    "ScheduleBlockView SubmittedDefinition TaskView ValidatedDefinition"),
    "runs": "AlertNoteView ForcedSuccess NodeView RunCreated RunOperation RunStatus RunSummary StartRun",
    "schedules": ("RecentFire ScheduleDeleted SchedulePreview ScheduleRun ScheduleTriggered ScheduleView "
                  "TemporalScheduleInfo"),
    "system": "CodecPayload CodecPayloads Health PayloadKeyAdded TaskGroup TaskGroupView",
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names.split()}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AlertChannelView", "AlertGroupView", "AlertNoteView", "AlertPreview", "ApiModel", "BrokenChannelView",
    "ChannelOutcomeView", "CodecPayload", "CodecPayloads", "ComplementCreated", "ComplementDate",
    "ComplementStopped", "ComplementSummary", "ComplementView", "ConnectionTest", "DatasourceView",
    "DefinitionListItem", "DefinitionSummary", "DefinitionVersion", "DefinitionView", "Delivery", "ForcedSuccess",
    "Health", "IssuedToken", "KeysRotated", "Long", "NewProject", "NewToken", "NewUser", "NodeView",
    "PayloadKeyAdded", "ProjectView", "RecentFire", "RelationView", "RenderedMessage", "RunCreated", "RunOperation",
    "RunStatus", "RunSummary", "ScheduleBlockView", "ScheduleDeleted", "SchedulePreview", "ScheduleRun",
    "ScheduleTriggered", "ScheduleView", "StartRun", "SubmittedDefinition", "TaskGroup", "TaskGroupView",
    "TaskView", "TemplateCheck", "TemplateDefaults", "TemplateProblemView", "TemporalScheduleInfo",
    "TestSendResult", "TokenView", "UserView", "ValidatedDefinition", "request_body", "shape"
]
