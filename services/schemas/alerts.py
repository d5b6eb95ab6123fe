"""Alert groups, channels, templates, previews, test sends and deliveries as the API shows them.
Channel secrets never appear: ``secrets`` says which are set."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .base import ApiModel


class AlertChannelView(ApiModel):
    id: int
    group_id: int
    name: str
    type: str
    params: dict[str, Any] = Field(description="the channel's parameters without its secrets")
    secrets: dict[str, bool] = Field(description="which secret parameters are set")
    templates: dict[str, dict[str, str]]
    events: list[str] | None = Field(None, description="the alert kinds it takes; none: all")
    enabled: bool
    format: str
    version: int
    create_time: str
    update_time: str
    url_hint: str | None = None


class AlertGroupView(ApiModel):
    id: int
    name: str
    description: str
    project_code: int | None = None  # none: a global group (docs/security.md)
    channels: list[AlertChannelView] = Field(default_factory=list)
    create_time: str
    update_time: str


class TemplateProblemView(ApiModel):
    pointer: str
    line: int | None = None
    message: str


class TemplateCheck(ApiModel):
    ok: bool
    problems: list[TemplateProblemView]


class TemplateDefaults(ApiModel):
    kinds: list[str]
    formats: list[str]
    templates: dict[str, dict[str, dict[str, str]]] = Field(description="{format: {kind: {subject, body}}}")
    placeholders: dict[str, dict[str, list[str] | None]] = Field(description="{kind: {name: fields or null}}")


class RenderedMessage(ApiModel):
    channel_id: int | None = None
    channel_name: str | None = None
    type: str | None = None
    format: str
    subject: str | None = None
    body: str | None = None
    template_error: str | None = None
    unknown_placeholders: list[str] = Field(default_factory=list)


class BrokenChannelView(ApiModel):
    channel_id: int
    channel_name: str
    error: str


class AlertPreview(ApiModel):
    kind: str
    source: str = Field(description="sample or run")
    instance_id: str
    state: str
    task_code: int | None = None
    start_params: dict[str, str]
    messages: list[RenderedMessage]
    broken_channels: list[BrokenChannelView]


class ChannelOutcomeView(ApiModel):
    """core.contracts.alerts.ChannelOutcome, camelCase."""

    channel_id: int
    channel_name: str
    channel_type: str
    ok: bool
    already_sent: bool = False
    transient: bool = False
    error: str | None = None
    template_error: str | None = None
    unknown_placeholders: list[str] = Field(default_factory=list)
    attempt: int = 1


class TestSendResult(ApiModel):
    """core.contracts.alerts.AlertResult, camelCase, with ``ok`` and a one-line summary."""

    ok: bool
    summary: str
    kind: str
    group_id: int
    due: bool
    reason: str = ""
    error: str | None = None
    outcomes: list[ChannelOutcomeView] = Field(default_factory=list)


class Delivery(ApiModel):
    id: int
    alert_key: str
    instance_id: str | None = None
    kind: str
    group_id: int | None = None
    channel_id: int | None = None
    channel_name: str | None = None
    ok: bool
    transient: bool
    error: str | None = None
    template_error: str | None = None
    attempt: int
    time: str


class KeysRotated(ApiModel):
    """A key rotation's counts: values re-encrypted, already under the primary key, unreadable."""

    rotated: int
    current: int
    unreadable: int
