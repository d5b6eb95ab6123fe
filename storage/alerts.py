"""Alert groups and channels, stored in the definitions database; channel secrets encrypted at rest.

An **alert group** (DS ``warningGroupId``) holds **channels**. A channel is one destination: an
email sender (SMTP), a WeCom application (corp id, agent id, secret), a WeCom group robot (webhook
key) or a generic HTTP webhook. Each channel may carry its own subject/body templates per alert kind
and may listen to some alert kinds only.

Secrets (the SMTP password, the WeCom app secret, the robot key, the webhook URL and its secret
headers) are encrypted with the datasource cipher (:class:`storage.crypto.Cipher`, the keys
of ``PORPOISE_SECRET_KEY``) and only come out through :meth:`AlertStore.resolve_channels`, on the
worker, when an alert is sent. Views never contain them, only which ones are set.

Tables: ``alert_group``, ``alert_channel``, and ``alert_delivery``, one row per attempt to deliver
an alert to a channel: what the activity uses to never send twice on a retry, and what
``GET /alerts/deliveries`` shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, Text, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.alerts import AlertKind, ChannelType
from core.errors import Conflict, NotFound
from core.settings import Settings

from .crypto import Cipher, SecretKeyError, rotate_column
from .db import Base, aware, delete_by_id, engine_for, next_id

WECOM_BASE_URL = "https://qyapi.weixin.qq.com"


class AlertNotFound(NotFound):
    pass


class AlertConflict(Conflict, ValueError):
    pass


# --------------------------------------------------------------------------------------------------
# Channel parameters, per type
# --------------------------------------------------------------------------------------------------


def _split_list(value: Any) -> Any:
    """DS writes address lists as one string separated by commas (or ``|`` for WeCom users)."""
    if isinstance(value, str):
        return [p.strip() for p in value.replace("|", ",").replace(";", ",").split(",") if p.strip()]
    return value


class _Params(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", str_strip_whitespace=True)
    SECRETS: ClassVar[frozenset[str]] = frozenset()  # field names whose values are encrypted

    timeout: float = Field(10.0, gt=0, le=120, description="seconds for each network call")


class EmailParams(_Params):
    SECRETS = frozenset({"password"})

    host: str = Field(min_length=1, validation_alias=AliasChoices("host", "serverHost"))
    port: int | None = Field(None, ge=1, le=65535, validation_alias=AliasChoices("port", "serverPort"))
    security: Literal["NONE", "STARTTLS", "TLS"] = Field(
        "STARTTLS", description="NONE: plain SMTP; STARTTLS: upgrade on port 587/25; TLS: SMTPS, port 465")
    verify_tls: bool = Field(True, validation_alias=AliasChoices("verifyTls", "verify_tls"),
                             serialization_alias="verifyTls")
    user: str = Field("", validation_alias=AliasChoices("user", "User", "username"))
    password: str | None = Field(None, max_length=4096, validation_alias=AliasChoices("password", "Password"))
    sender: str = Field(min_length=3, validation_alias=AliasChoices("from", "sender"), serialization_alias="from")
    to: list[str] = Field(min_length=1, validation_alias=AliasChoices("to", "receivers"))
    cc: list[str] = Field(default_factory=list, validation_alias=AliasChoices("cc", "receiverCcs"))
    format: Literal["html", "text"] = "html"
    timeout: float = Field(30.0, gt=0, le=120)

    @field_validator("to", "cc", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _split_list(v)

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        for a in v:
            if "@" not in a or any(c in a for c in "\r\n"):
                raise ValueError(f"{a!r} is not an email address")
        return v

    @field_validator("sender")
    @classmethod
    def _sender(cls, v: str) -> str:
        if "@" not in v or any(c in v for c in "\r\n"):
            raise ValueError(f"{v!r} is not an email address")
        return v

    @property
    def effective_port(self) -> int:
        return self.port or {"TLS": 465, "STARTTLS": 587}.get(self.security, 25)


class WeComAppParams(_Params):
    SECRETS = frozenset({"secret"})

    base_url: str = Field(WECOM_BASE_URL, validation_alias=AliasChoices("baseUrl", "base_url"),
                          serialization_alias="baseUrl")
    corp_id: str = Field(min_length=1, validation_alias=AliasChoices("corpId", "corp_id"), serialization_alias="corpId")
    agent_id: int = Field(validation_alias=AliasChoices("agentId", "agent_id"), serialization_alias="agentId")
    secret: str | None = Field(None, max_length=4096)
    to_user: list[str] = Field(default_factory=list, validation_alias=AliasChoices("toUser", "users", "to_user"),
                               serialization_alias="toUser")
    to_party: list[str] = Field(default_factory=list, validation_alias=AliasChoices("toParty", "to_party"),
                                serialization_alias="toParty")
    to_tag: list[str] = Field(default_factory=list, validation_alias=AliasChoices("toTag", "to_tag"),
                              serialization_alias="toTag")
    msg_type: Literal["markdown", "text"] = Field("markdown", validation_alias=AliasChoices("msgType", "showType",
                                                                                             "msg_type"),
                                                  serialization_alias="msgType")

    @field_validator("to_user", "to_party", "to_tag", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _split_list(v)

    @model_validator(mode="after")
    def _someone(self) -> WeComAppParams:
        if not (self.to_user or self.to_party or self.to_tag):
            raise ValueError("a WeCom app channel needs toUser (user ids, or @all), toParty or toTag")
        return self


class WeComRobotParams(_Params):
    SECRETS = frozenset({"key"})

    base_url: str = Field(WECOM_BASE_URL, validation_alias=AliasChoices("baseUrl", "base_url"),
                          serialization_alias="baseUrl")
    key: str | None = Field(None, max_length=4096, description="the key= of the robot's webhook URL")
    msg_type: Literal["markdown", "text"] = Field("markdown", validation_alias=AliasChoices("msgType", "msg_type"),
                                                  serialization_alias="msgType")
    mentioned_list: list[str] = Field(default_factory=list,
                                      validation_alias=AliasChoices("mentionedList", "mentioned_list"),
                                      serialization_alias="mentionedList")

    @field_validator("mentioned_list", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return _split_list(v)


class WebhookParams(_Params):
    SECRETS = frozenset({"url", "secret_headers"})

    url: str | None = Field(None, max_length=4096, description="stored encrypted: webhook URLs often embed a token")
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    secret_headers: dict[str, str] | None = Field(None, validation_alias=AliasChoices("secretHeaders",
                                                                                      "secret_headers"),
                                                  serialization_alias="secretHeaders")
    body_params: dict[str, Any] = Field(default_factory=dict, validation_alias=AliasChoices("bodyParams",
                                                                                            "body_params"),
                                        serialization_alias="bodyParams",
                                        description="extra static fields of the JSON body")
    format: Literal["text", "markdown", "html"] = "text"
    verify_tls: bool = Field(True, validation_alias=AliasChoices("verifyTls", "verify_tls"),
                             serialization_alias="verifyTls")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v and urlsplit(v).scheme not in ("http", "https"):
            raise ValueError("the webhook url must be http:// or https://")
        return v


PARAMS: dict[ChannelType, type[_Params]] = {
    ChannelType.EMAIL: EmailParams, ChannelType.WECOM_APP: WeComAppParams,
    ChannelType.WECOM_ROBOT: WeComRobotParams, ChannelType.WEBHOOK: WebhookParams,
}
REQUIRED_SECRETS: dict[ChannelType, tuple[str, ...]] = {
    ChannelType.WECOM_APP: ("secret",), ChannelType.WECOM_ROBOT: ("key",), ChannelType.WEBHOOK: ("url",),
}


def _alias(model: type[_Params], name: str) -> str:
    f = model.model_fields[name]
    return f.serialization_alias or name


def channel_format(type_: ChannelType, params: dict[str, Any]) -> str:
    """The message format of a channel's templates: html, markdown or text."""
    if type_ is ChannelType.EMAIL:
        return "text" if params.get("format") == "text" else "html"
    if type_ in (ChannelType.WECOM_APP, ChannelType.WECOM_ROBOT):
        return "text" if (params.get("msgType") or params.get("msg_type")) == "text" else "markdown"
    fmt = params.get("format")
    return fmt if fmt in ("text", "markdown", "html") else "text"


def parse_params(type_: ChannelType, data: dict[str, Any]) -> _Params:
    """Validate a channel's parameters (secrets included); raises pydantic's ValidationError."""
    return PARAMS[type_].model_validate(data)


def split_secrets(params: _Params) -> tuple[dict[str, Any], dict[str, Any]]:
    """(clear parameters, secrets) in their API spelling; empty secrets are left out."""
    model = type(params)
    clear = params.model_dump(mode="json", by_alias=True, exclude=set(model.SECRETS))
    secrets = {_alias(model, n): getattr(params, n) for n in model.SECRETS if getattr(params, n)}
    return clear, secrets


# --------------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------------


class AlertGroupRow(Base):
    __tablename__ = "alert_group"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The project whose users see and manage the group; None: a global group (administrators manage
    # it, everyone may read it and pick it for runs). Migration 0006_alert_group_project.
    project_code: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True, default=None)


class AlertChannelRow(Base):
    __tablename__ = "alert_channel"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    group_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32))
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON, no secrets
    secrets_enc: Mapped[str] = mapped_column(Text, default="")  # Fernet token of a JSON object
    templates: Mapped[str] = mapped_column(Text, default="{}")  # JSON {kind: {subject, body}}
    events: Mapped[str] = mapped_column(Text, default="")  # JSON list of kinds; "" = every kind
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertDeliveryRow(Base):
    __tablename__ = "alert_delivery"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_key: Mapped[str] = mapped_column(String(512), index=True)
    instance_id: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    group_id: Mapped[int] = mapped_column(Integer)
    channel_id: Mapped[int] = mapped_column(Integer)
    channel_name: Mapped[str] = mapped_column(String(255), default="")
    ok: Mapped[bool] = mapped_column(Boolean)
    transient: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str] = mapped_column(Text, default="")
    template_error: Mapped[str] = mapped_column(Text, default="")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --------------------------------------------------------------------------------------------------
# Inputs and views
# --------------------------------------------------------------------------------------------------


class TemplatePair(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str | None = Field(None, max_length=32_000)
    body: str | None = Field(None, max_length=32_000)


Templates = dict[AlertKind, TemplatePair]


class GroupSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)
    id: int | None = Field(None, ge=1, description="keep the warningGroupId a DS definition refers to")
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    project_code: int | None = Field(None, ge=0, alias="projectCode",
                                     description="the project whose users manage the group; none: a global group")


class GroupPatch(BaseModel):
    """Only what is given changes; ``projectCode: null`` makes the group global (administrators)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = None
    project_code: int | None = Field(None, ge=0, alias="projectCode")

    @property
    def moves(self) -> bool:
        """Whether the patch sets the project (to a code, or to none)."""
        return "project_code" in self.model_fields_set


class ChannelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)
    name: str = Field(min_length=1, max_length=255)
    type: ChannelType
    params: dict[str, Any] = Field(default_factory=dict)
    templates: Templates = Field(default_factory=dict)
    events: list[AlertKind] | None = Field(None, description="the alert kinds this channel takes; default all")
    enabled: bool = True

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v


class ChannelPatch(BaseModel):
    """Only what is given changes. ``params`` are merged into the stored ones; a secret left out or
    empty keeps the stored value (``clearSecrets`` removes some); ``templates`` replace the given
    kinds (``null`` for a kind, or a null part, goes back to the default)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)
    name: str | None = Field(None, min_length=1, max_length=255)
    params: dict[str, Any] | None = None
    templates: dict[AlertKind, TemplatePair | None] | None = None
    events: list[AlertKind] | None = None
    all_events: bool = Field(False, validation_alias=AliasChoices("allEvents", "all_events"))
    enabled: bool | None = None
    clear_secrets: list[str] = Field(default_factory=list, validation_alias=AliasChoices("clearSecrets",
                                                                                         "clear_secrets"))


def _templates_json(templates: dict[AlertKind, TemplatePair]) -> str:
    out: dict[str, dict[str, str]] = {}
    for kind, pair in templates.items():
        parts = {k: v for k, v in (("subject", pair.subject), ("body", pair.body)) if v and v.strip()}
        if parts:
            out[AlertKind(kind).value] = parts
    return json.dumps(out, sort_keys=True)


@dataclass(frozen=True)
class GroupView:
    id: int
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    channels: tuple[ChannelView, ...] = ()
    project_code: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "description": self.description, "projectCode": self.project_code,
                "channels": [c.as_dict() for c in self.channels],
                "createTime": self.created_at.isoformat(), "updateTime": self.updated_at.isoformat()}


@dataclass(frozen=True)
class ChannelView:
    """A channel as it may leave the store: parameters without secrets, and which secrets are set."""

    id: int
    group_id: int
    name: str
    type: ChannelType
    params: dict[str, Any]
    secrets_set: dict[str, bool]
    templates: dict[str, dict[str, str]]
    events: list[str] | None
    enabled: bool
    version: int
    created_at: datetime
    updated_at: datetime
    url_hint: str = ""

    @property
    def format(self) -> str:
        return channel_format(self.type, self.params)

    def as_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "groupId": self.group_id, "name": self.name, "type": self.type.value,
               "params": self.params, "secrets": self.secrets_set, "templates": self.templates,
               "events": self.events, "enabled": self.enabled, "format": self.format, "version": self.version,
               "createTime": self.created_at.isoformat(), "updateTime": self.updated_at.isoformat()}
        if self.url_hint:
            out["urlHint"] = self.url_hint
        return out


@dataclass(frozen=True)
class ResolvedChannel:
    """A channel with its secrets decrypted: for the sending activity only."""

    id: int
    group_id: int
    name: str
    type: ChannelType
    params: _Params = field(repr=False)  # holds the secrets: never in a log line
    templates: dict[str, dict[str, str]] = field(default_factory=dict)
    events: list[str] | None = None
    enabled: bool = True

    @property
    def format(self) -> str:
        clear, _ = split_secrets(self.params)
        return channel_format(self.type, clear)

    def secret_values(self) -> list[str]:
        """Every secret string, to mask in error messages."""
        _, secrets = split_secrets(self.params)
        values: list[str] = []
        for v in secrets.values():
            values.extend(v.values() if isinstance(v, dict) else [v])
        return [str(v) for v in values if v and len(str(v)) >= 4]


@dataclass(frozen=True)
class BrokenChannel:
    """A channel whose secrets cannot be decrypted (its key left PORPOISE_SECRET_KEY)."""

    id: int
    group_id: int
    name: str
    type: ChannelType
    error: str
    events: list[str] | None
    enabled: bool


def _url_hint(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else ""


def group_project(engine: Engine, group_id: int) -> tuple[bool, int | None]:
    """(whether alert group ``group_id`` exists, its project code or None for a global group), with no
    cipher: what a definition's or run's ``warningGroupId`` check needs (services.runnable)."""
    with Session(engine) as s:
        row = s.get(AlertGroupRow, group_id)
        return (row is not None, row.project_code if row is not None else None)


# --------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------


class AlertStore:
    def __init__(self, url: str, cipher: Cipher) -> None:
        self.engine: Engine = engine_for(url)
        self.cipher = cipher

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertStore:
        """Raises :class:`~storage.crypto.SecretKeyError` when no key is usable (as datasources do)."""
        return cls(settings.resolved_database_url, Cipher.from_settings(settings))

    def dispose(self) -> None:
        self.engine.dispose()

    # -- groups ------------------------------------------------------------------------------------

    def create_group(self, spec: GroupSpec) -> GroupView:
        now = datetime.now(UTC)
        for attempt in range(5):
            try:
                with Session(self.engine) as s, s.begin():
                    self._check_group_name(s, spec.name, None)
                    if spec.id is not None:
                        if s.get(AlertGroupRow, spec.id) is not None:
                            raise AlertConflict(f"alert group id {spec.id} is taken")
                        new_id = spec.id
                    else:
                        new_id = next_id(s, AlertGroupRow.id)
                    row = AlertGroupRow(id=new_id, name=spec.name, description=spec.description, created_at=now,
                                        updated_at=now, project_code=spec.project_code)
                    s.add(row)
                    s.flush()
                    return self._group_view(s, row)
            except IntegrityError:
                if attempt == 4:
                    raise AlertConflict(f"alert group {spec.name!r} conflicts with another one") from None
        raise AssertionError("unreachable")

    @staticmethod
    def _check_group_name(s: Session, name: str, own_id: int | None) -> None:
        other = s.scalars(select(AlertGroupRow).where(AlertGroupRow.name == name)).first()
        if other is not None and other.id != own_id:
            raise AlertConflict(f"an alert group named {name!r} exists (id {other.id})")

    def _group_view(self, s: Session, row: AlertGroupRow) -> GroupView:
        channels = s.scalars(select(AlertChannelRow).where(AlertChannelRow.group_id == row.id)
                             .order_by(AlertChannelRow.id)).all()
        return GroupView(id=row.id, name=row.name, description=row.description or "",
                         created_at=aware(row.created_at), updated_at=aware(row.updated_at),
                         channels=tuple(self._channel_view(c) for c in channels), project_code=row.project_code)

    def list_groups(self, projects: frozenset[int] | None = None) -> list[GroupView]:
        """Every group, or with ``projects`` only those projects' groups and the global ones."""
        with Session(self.engine) as s:
            q = select(AlertGroupRow).order_by(AlertGroupRow.id)
            if projects is not None:
                q = q.where(AlertGroupRow.project_code.is_(None) | AlertGroupRow.project_code.in_(sorted(projects)))
            return [self._group_view(s, r) for r in s.scalars(q)]

    def group_project(self, group_id: int) -> tuple[bool, int | None]:
        """(whether the group exists, its project code or None for a global group)."""
        return group_project(self.engine, group_id)

    def channel_group(self, channel_id: int) -> int | None:
        """The group id of a channel (None: no such channel)."""
        with Session(self.engine) as s:
            row = s.get(AlertChannelRow, channel_id)
            return row.group_id if row is not None else None

    def get_group(self, group_id: int) -> GroupView | None:
        with Session(self.engine) as s:
            row = s.get(AlertGroupRow, group_id)
            return self._group_view(s, row) if row else None

    def update_group(self, group_id: int, patch: GroupPatch) -> GroupView | None:
        with Session(self.engine) as s, s.begin():
            row = s.get(AlertGroupRow, group_id, with_for_update=True)
            if row is None:
                return None
            if patch.name is not None:
                self._check_group_name(s, patch.name, row.id)
                row.name = patch.name
            if patch.description is not None:
                row.description = patch.description
            if patch.moves:
                row.project_code = patch.project_code
            row.updated_at = datetime.now(UTC)
            s.flush()
            return self._group_view(s, row)

    def delete_group(self, group_id: int) -> bool:
        """Delete a group and its channels."""
        with Session(self.engine) as s, s.begin():
            row = s.get(AlertGroupRow, group_id)
            if row is None:
                return False
            for c in s.scalars(select(AlertChannelRow).where(AlertChannelRow.group_id == group_id)).all():
                s.delete(c)
            s.delete(row)
            return True

    # -- channels ----------------------------------------------------------------------------------

    def _channel_view(self, row: AlertChannelRow) -> ChannelView:
        type_ = ChannelType(row.type)
        model = PARAMS[type_]
        set_: dict[str, bool] = {_alias(model, n): False for n in sorted(model.SECRETS)}
        hint = ""
        if row.secrets_enc:
            try:
                secrets = json.loads(self.cipher.decrypt(row.secrets_enc) or "{}")
                for k, v in secrets.items():
                    set_[k] = bool(v)
                if type_ is ChannelType.WEBHOOK and secrets.get("url"):
                    hint = _url_hint(secrets["url"])
            except InvalidToken:
                set_ = {k: True for k in set_} | {"unreadable": True}
        return ChannelView(
            id=row.id, group_id=row.group_id, name=row.name, type=type_, params=json.loads(row.params or "{}"),
            secrets_set=set_, templates=json.loads(row.templates or "{}"),
            events=json.loads(row.events) if row.events else None, enabled=bool(row.enabled), version=row.version,
            created_at=aware(row.created_at), updated_at=aware(row.updated_at), url_hint=hint,
        )

    def create_channel(self, group_id: int, spec: ChannelSpec) -> ChannelView:
        """Raises AlertNotFound (no group), AlertConflict (name taken), ValidationError / ValueError (params)."""
        params = parse_params(spec.type, spec.params)
        clear, secrets = split_secrets(params)
        missing = [s for s in REQUIRED_SECRETS.get(spec.type, ()) if not secrets.get(s)]
        if missing:
            raise ValueError(f"a {spec.type.value} channel needs params.{missing[0]}")
        if spec.type is ChannelType.EMAIL and clear.get("user") and not secrets.get("password"):
            raise ValueError("an EMAIL channel with a user needs params.password (or no user: no SMTP auth)")
        now = datetime.now(UTC)
        for attempt in range(5):
            try:
                with Session(self.engine) as s, s.begin():
                    if s.get(AlertGroupRow, group_id) is None:
                        raise AlertNotFound(f"alert group {group_id} does not exist")
                    self._check_channel_name(s, group_id, spec.name, None)
                    new_id = next_id(s, AlertChannelRow.id)
                    row = AlertChannelRow(
                        id=new_id, group_id=group_id, name=spec.name, type=spec.type.value,
                        params=json.dumps(clear, sort_keys=True),
                        secrets_enc=self.cipher.encrypt(json.dumps(secrets, sort_keys=True)) if secrets else "",
                        templates=_templates_json(spec.templates),
                        events=json.dumps([e.value for e in spec.events]) if spec.events is not None else "",
                        enabled=spec.enabled, version=1, created_at=now, updated_at=now,
                    )
                    s.add(row)
                    s.flush()
                    return self._channel_view(row)
            except IntegrityError:
                if attempt == 4:
                    raise AlertConflict(f"channel {spec.name!r} conflicts with another one") from None
        raise AssertionError("unreachable")

    @staticmethod
    def _check_channel_name(s: Session, group_id: int, name: str, own_id: int | None) -> None:
        other = s.scalars(select(AlertChannelRow).where(AlertChannelRow.group_id == group_id,
                                                        AlertChannelRow.name == name)).first()
        if other is not None and other.id != own_id:
            raise AlertConflict(f"alert group {group_id} has a channel named {name!r} (id {other.id})")

    def list_channels(self, group_id: int) -> list[ChannelView]:
        with Session(self.engine) as s:
            q = select(AlertChannelRow).where(AlertChannelRow.group_id == group_id).order_by(AlertChannelRow.id)
            return [self._channel_view(r) for r in s.scalars(q)]

    def get_channel(self, channel_id: int) -> ChannelView | None:
        with Session(self.engine) as s:
            row = s.get(AlertChannelRow, channel_id)
            return self._channel_view(row) if row else None

    def update_channel(self, channel_id: int, patch: ChannelPatch) -> ChannelView | None:
        with Session(self.engine) as s, s.begin():
            row = s.get(AlertChannelRow, channel_id, with_for_update=True)
            if row is None:
                return None
            type_ = ChannelType(row.type)
            model = PARAMS[type_]
            if patch.name is not None:
                self._check_channel_name(s, row.group_id, patch.name, row.id)
                row.name = patch.name
            if patch.params is not None or patch.clear_secrets:
                try:
                    secrets = json.loads(self.cipher.decrypt(row.secrets_enc) or "{}") if row.secrets_enc else {}
                except InvalidToken:
                    raise SecretKeyError(f"the secrets of alert channel {row.name!r} were encrypted with a key that "
                                         "is not in PORPOISE_SECRET_KEY any more: set them again") from None
                secret_names = {_alias(model, n) for n in model.SECRETS} | set(model.SECRETS)
                unknown = [c for c in patch.clear_secrets if c not in secret_names]
                if unknown:
                    raise ValueError(f"clearSecrets: {unknown[0]!r} is not a secret of a {type_.value} channel")
                for c in patch.clear_secrets:
                    secrets.pop(c, None)
                    secrets.pop(_alias(model, c) if c in model.SECRETS else c, None)
                given = dict(patch.params or {})
                for k in list(given):
                    if k in secret_names and not given[k]:
                        given.pop(k)  # an empty secret keeps the stored one
                params = parse_params(type_, {**json.loads(row.params or "{}"), **secrets, **given})
                clear, new_secrets = split_secrets(params)
                missing = [x for x in REQUIRED_SECRETS.get(type_, ()) if not new_secrets.get(x)]
                if missing:
                    raise ValueError(f"a {type_.value} channel needs params.{missing[0]}")
                row.params = json.dumps(clear, sort_keys=True)
                row.secrets_enc = self.cipher.encrypt(json.dumps(new_secrets, sort_keys=True)) if new_secrets else ""
            if patch.templates is not None:
                current = {AlertKind(k): TemplatePair(**v) for k, v in json.loads(row.templates or "{}").items()}
                for kind, pair in patch.templates.items():
                    if pair is None:
                        current.pop(kind, None)
                    else:
                        current[kind] = pair
                row.templates = _templates_json(current)
            if patch.all_events:
                row.events = ""
            elif patch.events is not None:
                row.events = json.dumps([e.value for e in patch.events])
            if patch.enabled is not None:
                row.enabled = patch.enabled
            row.version += 1
            row.updated_at = datetime.now(UTC)
            s.flush()
            return self._channel_view(row)

    def delete_channel(self, channel_id: int) -> bool:
        return delete_by_id(self.engine, AlertChannelRow, channel_id)

    def resolve_channels(self, group_id: int) -> list[ResolvedChannel | BrokenChannel] | None:
        """Every channel of the group with its secrets (worker side); None when the group does not exist."""
        with Session(self.engine) as s:
            if s.get(AlertGroupRow, group_id) is None:
                return None
            rows = s.scalars(select(AlertChannelRow).where(AlertChannelRow.group_id == group_id)
                             .order_by(AlertChannelRow.id)).all()
            return [self._resolve(r) for r in rows]

    def resolve_channel(self, channel_id: int) -> ResolvedChannel | BrokenChannel | None:
        with Session(self.engine) as s:
            row = s.get(AlertChannelRow, channel_id)
            return self._resolve(row) if row else None

    def _resolve(self, row: AlertChannelRow) -> ResolvedChannel | BrokenChannel:
        type_ = ChannelType(row.type)
        events = json.loads(row.events) if row.events else None
        try:
            secrets = json.loads(self.cipher.decrypt(row.secrets_enc) or "{}") if row.secrets_enc else {}
            params = parse_params(type_, {**json.loads(row.params or "{}"), **secrets})
        except InvalidToken:
            return BrokenChannel(row.id, row.group_id, row.name, type_,
                                 "the channel's secrets were encrypted with a key that is not in PORPOISE_SECRET_KEY "
                                 "any more: add that key back (after the primary) or set the secrets again",
                                 events, bool(row.enabled))
        except (ValidationError, ValueError) as e:
            return BrokenChannel(row.id, row.group_id, row.name, type_, f"invalid stored parameters: {e}", events,
                                 bool(row.enabled))
        return ResolvedChannel(id=row.id, group_id=row.group_id, name=row.name, type=type_, params=params,
                               templates=json.loads(row.templates or "{}"), events=events, enabled=bool(row.enabled))

    def rotate(self) -> dict[str, int]:
        """Re-encrypt every channel's secrets still under an older key with the primary key."""
        return rotate_column(self.engine, AlertChannelRow, "secrets_enc", self.cipher)

    # -- deliveries --------------------------------------------------------------------------------

    def delivered(self, alert_key: str) -> dict[int, int]:
        """Channels that already took this alert: channel id -> the attempt that delivered it."""
        with Session(self.engine) as s:
            q = select(AlertDeliveryRow.channel_id, AlertDeliveryRow.attempt).where(
                AlertDeliveryRow.alert_key == alert_key, AlertDeliveryRow.ok.is_(True))
            return {int(c): int(a) for c, a in s.execute(q).all()}

    def record_delivery(self, *, alert_key: str, instance_id: str, kind: str, group_id: int, channel_id: int,
                        channel_name: str, ok: bool, transient: bool = False, error: str | None = None,
                        template_error: str | None = None, attempt: int = 1) -> None:
        with Session(self.engine) as s, s.begin():
            s.add(AlertDeliveryRow(alert_key=alert_key[:512], instance_id=instance_id[:255], kind=kind,
                                   group_id=group_id, channel_id=channel_id, channel_name=channel_name[:255], ok=ok,
                                   transient=transient, error=(error or "")[:4000],
                                   template_error=(template_error or "")[:4000], attempt=attempt,
                                   created_at=datetime.now(UTC)))

    def deliveries(self, *, instance_id: str | None = None, group_id: int | None = None,
                   limit: int = 100) -> list[dict[str, Any]]:
        with Session(self.engine) as s:
            q = select(AlertDeliveryRow).order_by(AlertDeliveryRow.id.desc()).limit(max(1, min(limit, 1000)))
            if instance_id:
                q = q.where(AlertDeliveryRow.instance_id == instance_id)
            if group_id is not None:
                q = q.where(AlertDeliveryRow.group_id == group_id)
            return [{"id": r.id, "alertKey": r.alert_key, "instanceId": r.instance_id, "kind": r.kind,
                     "groupId": r.group_id, "channelId": r.channel_id, "channelName": r.channel_name, "ok": r.ok,
                     "transient": r.transient, "error": r.error or None, "templateError": r.template_error or None,
                     "attempt": r.attempt, "time": aware(r.created_at).isoformat()} for r in s.scalars(q)]
