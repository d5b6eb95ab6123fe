"""Datasources as the API shows them: DS's field names, never a password (``hasPassword`` says)."""

from __future__ import annotations

from pydantic import Field

from .base import ApiModel


class DatasourceView(ApiModel):
    id: int
    name: str
    type: str
    host: str
    port: int | None = None
    database: str
    user_name: str
    other: dict[str, str] = Field(description="extra connection parameters")
    note: str
    has_password: bool
    executable: bool = Field(description="tasks can run against it from this Porpoise")
    version: int
    create_time: str
    update_time: str


class ConnectionTest(ApiModel):
    id: int
    name: str
    type: str
    ok: bool
    message: str
    elapsed_ms: int
    server_version: str | None = None
