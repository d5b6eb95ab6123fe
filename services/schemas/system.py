"""Small answers of the infrastructure routes: health, the Temporal codec server, task groups."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from .base import ApiModel, Long


class Health(ApiModel):
    status: str
    temporal_ui: str


class CodecPayload(ApiModel):
    """One Temporal payload in protobuf JSON form (metadata values and data base64)."""

    model_config = ConfigDict(extra="allow")

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""


class CodecPayloads(ApiModel):
    """The Temporal remote codec protocol's body, both ways."""

    model_config = ConfigDict(extra="allow")

    payloads: list[CodecPayload] = Field(default_factory=list)


class PayloadKeyAdded(ApiModel):
    key_id: str
    key_file: str


class TaskGroup(ApiModel):
    """A task group's settings (the body of ``PUT /task-groups/{id}``)."""

    name: str = Field(min_length=1, max_length=255)
    group_size: int = Field(ge=1, le=100_000)
    project_code: int = 0
    description: str = ""


class TaskGroupView(TaskGroup):
    id: Long
