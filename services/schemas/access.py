"""Users, access tokens and projects (docs/security.md): request bodies and views."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from .base import ApiModel


class NewUser(ApiModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w.@-]+$")
    admin: bool = False


class NewToken(ApiModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[\w.@-]+$", description="the token's user")
    admin: bool = False
    projects: list[int] = Field(default_factory=list, description="project codes the user is authorized for")
    expires_days: float | None = Field(None, gt=0, le=36500)


class NewProject(ApiModel):
    code: int = Field(ge=0)
    name: str = Field("", max_length=255)
    owner: str | None = Field(None, description="default: the caller")


class UserView(ApiModel):
    id: int
    name: str
    admin: bool
    created_at: datetime | None = None


class TokenView(ApiModel):
    id: int
    name: str
    user: str
    admin: bool
    created_at: datetime | None = None
    expires_at: datetime | None = None
    state: str = Field(description="active, expired or revoked")


class IssuedToken(TokenView):
    token: str = Field(description="the token itself: shown this once, never stored")


class ProjectView(ApiModel):
    code: int
    name: str
    owner: str
    users: list[str] = Field(description="users authorized for the project")
