"""The request and response bodies of the native API, one module per resource, on one base model
(:class:`ApiModel`: camelCase JSON, snake_case accepted in requests). The HTTP routes declare them as
response models and the CLI prints its ``--json`` output through them, so both show the same shapes."""

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
