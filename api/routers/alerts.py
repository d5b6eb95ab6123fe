"""Alert groups and channels: CRUD, template validation on save, previews, test sends, deliveries.

Channel secrets go in and never come out (views say which are set). The work, and who may see and
change which group (a project's or a global one, docs/security.md), is :mod:`services.alerts`; the
alert store and sender are built by :func:`install` when the app is created (they need the secret
key, as datasources do).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from activities.alerts.activity import AlertSender
from core.settings import Settings
from services import alerts as service
from services.alerts import Preview, TestSend, ValidateTemplates
from services.schemas import (
    AlertChannelView,
    AlertGroupView,
    AlertPreview,
    Delivery,
    KeysRotated,
    TemplateCheck,
    TemplateDefaults,
    TestSendResult,
    request_body,
)
from storage.alerts import AlertStore, ChannelPatch, ChannelSpec, GroupPatch, GroupSpec

from ..auth import ADMIN_ONLY, PrincipalDep, require_run
from ..deps import ServicesDep
from ..problems import ProblemError

router = APIRouter(tags=["alerts"])


def install(app: FastAPI, settings: Settings) -> None:
    """Open the alert store (raises SecretKeyError without a key outside dev mode) and add the routes."""
    store = AlertStore.from_settings(settings)
    app.state.alerts = store
    app.state.alert_sender = AlertSender(store, settings)
    app.include_router(router)


def get_sender(request: Request) -> AlertSender:
    sender: AlertSender = request.app.state.alert_sender  # set by install(), at app creation
    return sender


SenderDep = Annotated[AlertSender, Depends(get_sender)]


async def _body(request: Request, title: str) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ProblemError(422, title, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ProblemError(422, title, "the body must be a JSON object")
    return body


@router.post("/alert-groups", status_code=201, response_model=AlertGroupView, openapi_extra=request_body(GroupSpec),
             summary="Create an alert group (DS warningGroupId)")
async def create_group(request: Request, sender: SenderDep, principal: PrincipalDep) -> dict[str, Any]:
    """Body: ``name``, ``description``, optional ``id`` to keep the warningGroupId DS definitions use,
    ``projectCode`` (required from a general user; none: a global group, administrators only)."""
    return await service.create_group(sender, await _body(request, "Invalid alert group"), principal=principal)


@router.get("/alert-groups", response_model=list[AlertGroupView],
            summary="List alert groups with their channels (never a secret)")
async def list_groups(sender: SenderDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    """A general user sees their projects' groups and the global ones."""
    return await service.list_groups(sender, principal=principal)


@router.get("/alert-groups/{group_id}", response_model=AlertGroupView,
            summary="One alert group with its channels")
async def get_group(group_id: int, sender: SenderDep, principal: PrincipalDep) -> dict[str, Any]:
    return await service.get_group(sender, group_id, principal=principal)


@router.put("/alert-groups/{group_id}", response_model=AlertGroupView, openapi_extra=request_body(GroupPatch),
            summary="Rename, describe or move an alert group")
async def update_group(group_id: int, request: Request, sender: SenderDep, principal: PrincipalDep) -> dict[str, Any]:
    return await service.update_group(sender, group_id, await _body(request, "Invalid alert group"),
                                      principal=principal)


@router.delete("/alert-groups/{group_id}", status_code=204, summary="Delete an alert group and its channels")
async def delete_group(group_id: int, sender: SenderDep, principal: PrincipalDep) -> None:
    await service.delete_group(sender, group_id, principal=principal)


@router.post("/alert-groups/{group_id}/channels", status_code=201, response_model=AlertChannelView,
             openapi_extra=request_body(ChannelSpec),
             summary="Add a channel (templates validated)")
async def create_channel(group_id: int, request: Request, sender: SenderDep, principal: PrincipalDep
                         ) -> dict[str, Any]:
    """Body: ``name``, ``type`` (EMAIL, WECOM_APP, WECOM_ROBOT, WEBHOOK), ``params`` (secrets included:
    they are stored encrypted), ``templates`` ``{kind: {subject, body}}``, ``events`` (kinds; default
    all), ``enabled``. See docs/alerts.md for each type's params."""
    return await service.create_channel(sender, group_id, await _body(request, "Invalid alert channel"),
                                        principal=principal)


@router.get("/alert-groups/{group_id}/channels", response_model=list[AlertChannelView],
            summary="The channels of an alert group")
async def list_channels(group_id: int, sender: SenderDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    return await service.list_channels(sender, group_id, principal=principal)


@router.post("/alert-channels/rotate-keys", response_model=KeysRotated,
             summary="Re-encrypt every channel secret with the primary key",
             dependencies=[ADMIN_ONLY])
async def rotate_keys(sender: SenderDep) -> dict[str, int]:
    return await service.rotate_keys(sender)


@router.get("/alert-channels/{channel_id}", response_model=AlertChannelView,
            summary="One channel (never its secrets)")
async def get_channel(channel_id: int, sender: SenderDep, principal: PrincipalDep) -> dict[str, Any]:
    return await service.get_channel(sender, channel_id, principal=principal)


@router.put("/alert-channels/{channel_id}", response_model=AlertChannelView, openapi_extra=request_body(ChannelPatch),
            summary="Change a channel; an empty or absent secret keeps the old one")
async def update_channel(channel_id: int, request: Request, sender: SenderDep, principal: PrincipalDep
                         ) -> dict[str, Any]:
    """``params`` are merged into the stored ones; ``clearSecrets`` removes secrets; ``templates``
    replace the kinds given (``null`` goes back to the default); ``events``/``allEvents``; ``enabled``."""
    return await service.update_channel(sender, channel_id, await _body(request, "Invalid alert channel"),
                                        principal=principal)


@router.delete("/alert-channels/{channel_id}", status_code=204, summary="Delete a channel")
async def delete_channel(channel_id: int, sender: SenderDep, principal: PrincipalDep) -> None:
    await service.delete_channel(sender, channel_id, principal=principal)


@router.post("/alert-templates/validate", response_model=TemplateCheck,
             summary="Check templates without saving them")
async def validate(body: ValidateTemplates, sender: SenderDep) -> dict[str, Any]:
    return await service.validate(sender, body)


@router.get("/alert-templates/defaults", response_model=TemplateDefaults,
            summary="The default templates and every placeholder per alert kind")
async def template_defaults() -> dict[str, Any]:
    return await service.template_defaults()


@router.post("/alert-groups/{group_id}/preview", response_model=AlertPreview,
             summary="Render the group's templates against a sample or a real finished run (nothing is sent)")
async def preview(group_id: int, body: Preview, sender: SenderDep, ctx: ServicesDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    if body.run_id:  # a real run's start params are its project's
        await require_run(principal, await ctx.client(), body.run_id)
    return await service.preview(ctx, sender, group_id, body, principal=principal)


@router.post("/alert-groups/{group_id}/test", response_model=TestSendResult,
             summary="Send a test alert (a sample failed run) to the channels now")
async def test_send(group_id: int, body: TestSend, sender: SenderDep, principal: PrincipalDep) -> dict[str, Any]:
    """Really sends, and answers with each channel's outcome (200 either way; ``ok`` says)."""
    return await service.test_send(sender, group_id, body, principal=principal)


@router.get("/alerts/deliveries", response_model=list[Delivery],
            summary="Alert delivery attempts, newest first (a general user: groupId of one of their projects' groups)")
async def deliveries(sender: SenderDep, principal: PrincipalDep,
                     instance_id: str | None = Query(None, alias="instanceId"),
                     group_id: int | None = Query(None, alias="groupId"),
                     limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
    return await service.deliveries(sender, instance_id, group_id, limit, principal=principal)
