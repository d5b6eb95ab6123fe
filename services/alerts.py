"""Alert groups and channels: CRUD, template validation on save, previews, test sends, deliveries.

Channel secrets go in and never come out (views say which are set). Templates are validated when a
channel is saved: syntax, unknown placeholders (with "did you mean"), escapes, loops, output size;
a refused template is an :class:`Invalid` listing every problem with a pointer such as
``/templates/WORKFLOW_END/body`` and the line.

Every operation takes the process's :class:`AlertSender` (the alert store, the settings, the
business resolver), built once where the process starts (it needs the secret key, as datasources do).

Who may do what (docs/security.md), when the caller passes ``principal`` (None: an internal or
administrator caller, no check): a group belongs to a project or is global (no project).
Administrators see and change every group. A general user sees the groups of the projects they are
authorized for and the global ones, and changes (channels, test sends, deliveries) only the former;
a global group reads without its channels' URL hints.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from activities.alerts import AlertKind, AlertRequest, ChannelType
from activities.alerts.activity import AlertSender
from activities.alerts.templates import (
    FORMATS,
    KINDS,
    MessageSpec,
    TemplateProblem,
    defaults,
    sample_status,
    schema,
    validate_templates,
)
from core.contracts import InstanceStatus, RunInput
from core.temporal import ui_run_url
from model.definition import WarningType
from model.problems import Problem
from storage.alerts import (
    BrokenChannel,
    ChannelPatch,
    ChannelSpec,
    ChannelView,
    GroupPatch,
    GroupSpec,
    channel_format,
    parse_params,
    split_secrets,
)
from storage.crypto import SecretKeyError
from storage.security import Principal

from .context import Services
from .errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from .errors import invalid as _invalid
from .runs import instance_status
from .schemas import ApiModel


def _template_error(problems: list[TemplateProblem]) -> Invalid:
    return Invalid.of("Invalid alert template",
                      [Problem(p.pointer, (f"line {p.line}: " if p.line else "") + p.message, None, "template")
                       for p in problems])


def _templates_dict(templates: dict[Any, Any]) -> dict[str, dict[str, str | None]]:
    out: dict[str, dict[str, str | None]] = {}
    for kind, pair in templates.items():
        if pair is None:
            continue
        data = pair if isinstance(pair, dict) else pair.model_dump()
        out[AlertKind(kind).value] = {k: v for k, v in data.items() if v}
    return out


async def _validate(sender: AlertSender, templates: dict[str, dict[str, str | None]], fmt: str) -> None:
    if not any(v for parts in templates.values() for v in parts.values()):
        return
    problems = await run_in_threadpool(validate_templates, templates, fmt, sender.resolver)
    if problems:
        raise _template_error(problems)


# --------------------------------------------------------------------------------------------------
# Who may see and change a group
# --------------------------------------------------------------------------------------------------


def may_read(principal: Principal | None, project_code: int | None) -> bool:
    """A global group, or one of the caller's projects (administrators: every group)."""
    return (principal is None or principal.is_admin or project_code is None
            or principal.may_use_project(int(project_code)))


def may_manage(principal: Principal | None, project_code: int | None) -> bool:
    """A group of one of the caller's projects; global groups are the administrators'."""
    return principal is None or principal.is_admin or (project_code is not None
                                                       and principal.may_use_project(int(project_code)))


def _redacted(principal: Principal | None, group: dict[str, Any]) -> dict[str, Any]:
    """A group as ``principal`` may read it: a global group, to a general user, without the channels'
    URL hints (where a webhook points); secrets never leave the store in any case."""
    if may_manage(principal, group.get("projectCode")):
        return group
    return group | {"channels": [_redacted_channel(c) for c in group.get("channels", [])]}


def _redacted_channel(channel: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in channel.items() if k != "urlHint"}


async def check_group(sender: AlertSender, group_id: int, principal: Principal | None, *,
                      manage: bool = False) -> int | None:
    """The group's project code; 404 for an unknown group, 403 when ``principal`` may not read it (or,
    with ``manage``, change it)."""
    exists, project = await run_in_threadpool(sender.store.group_project, group_id)
    if not exists:
        raise NotFound(f"alert group {group_id} does not exist")
    if manage and not may_manage(principal, project):
        raise Forbidden(f"alert group {group_id} is " + (f"project {project}'s" if project is not None else
                                                         "global") + ": you may not change it")
    if not may_read(principal, project):
        raise Forbidden(f"alert group {group_id} belongs to project {project}, which you are not authorized for")
    return project


async def _check_channel(sender: AlertSender, channel_id: int, principal: Principal | None, *,
                         manage: bool = False) -> int | None:
    group_id = await run_in_threadpool(sender.store.channel_group, channel_id)
    if group_id is None:
        raise NotFound(f"alert channel {channel_id} does not exist")
    return await check_group(sender, group_id, principal, manage=manage)


def _check_project(principal: Principal | None, project_code: int | None) -> None:
    """A general user may put a group only into a project they are authorized for (never global)."""
    if not may_manage(principal, project_code):
        raise Forbidden("an alert group of a general user needs the projectCode of a project you are authorized for"
                        if project_code is None else f"you are not authorized for project {project_code}")


async def _channel_or_404(sender: AlertSender, channel_id: int) -> ChannelView:
    view = await run_in_threadpool(sender.store.get_channel, channel_id)
    if view is None:
        raise NotFound(f"alert channel {channel_id} does not exist")
    return view


# --------------------------------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------------------------------


async def create_group(sender: AlertSender, body: dict[str, Any], *,
                       principal: Principal | None = None) -> dict[str, Any]:
    """Body: ``name``, ``description``, optional ``id`` to keep the warningGroupId DS definitions use,
    ``projectCode`` (none: a global group, administrators only)."""
    try:
        spec = GroupSpec.model_validate(body)
    except ValidationError as e:
        raise _invalid(e, "Invalid alert group") from None
    _check_project(principal, spec.project_code)
    return (await run_in_threadpool(sender.store.create_group, spec)).as_dict()


async def list_groups(sender: AlertSender, *, principal: Principal | None = None) -> list[dict[str, Any]]:
    """Every group; for a general user their projects' groups and the global ones."""
    projects = principal.listed_projects if principal is not None else None
    return [_redacted(principal, g.as_dict()) for g in await run_in_threadpool(sender.store.list_groups, projects)]


async def get_group(sender: AlertSender, group_id: int, *, principal: Principal | None = None) -> dict[str, Any]:
    await check_group(sender, group_id, principal)
    view = await run_in_threadpool(sender.store.get_group, group_id)
    if view is None:
        raise NotFound(f"alert group {group_id} does not exist")
    return _redacted(principal, view.as_dict())


async def update_group(sender: AlertSender, group_id: int, body: dict[str, Any], *,
                       principal: Principal | None = None) -> dict[str, Any]:
    """``name``, ``description``, ``projectCode`` (moving a group needs the new project too; to none:
    administrators)."""
    try:
        patch = GroupPatch.model_validate(body)
    except ValidationError as e:
        raise _invalid(e, "Invalid alert group") from None
    await check_group(sender, group_id, principal, manage=True)
    if patch.moves:
        _check_project(principal, patch.project_code)
    view = await run_in_threadpool(sender.store.update_group, group_id, patch)
    if view is None:
        raise NotFound(f"alert group {group_id} does not exist")
    return view.as_dict()


async def delete_group(sender: AlertSender, group_id: int, *, principal: Principal | None = None) -> None:
    await check_group(sender, group_id, principal, manage=True)
    if not await run_in_threadpool(sender.store.delete_group, group_id):
        raise NotFound(f"alert group {group_id} does not exist")


# --------------------------------------------------------------------------------------------------
# Channels
# --------------------------------------------------------------------------------------------------


async def create_channel(sender: AlertSender, group_id: int, body: dict[str, Any], *,
                         principal: Principal | None = None) -> dict[str, Any]:
    """Body: ``name``, ``type`` (EMAIL, WECOM_APP, WECOM_ROBOT, WEBHOOK), ``params`` (secrets included:
    they are stored encrypted), ``templates`` ``{kind: {subject, body}}``, ``events`` (kinds; default
    all), ``enabled``. See docs/alerts.md for each type's params."""
    title = "Invalid alert channel"
    try:
        spec = ChannelSpec.model_validate(body)
    except ValidationError as e:
        raise _invalid(e, title) from None
    try:
        params = parse_params(spec.type, spec.params)
    except ValidationError as e:
        raise _invalid(e, title, ("params",)) from None
    await check_group(sender, group_id, principal, manage=True)
    await _validate(sender, _templates_dict(dict(spec.templates)), channel_format(spec.type, split_secrets(params)[0]))
    try:
        view = await run_in_threadpool(sender.store.create_channel, group_id, spec)
    except DomainError:
        raise
    except ValidationError as e:
        raise _invalid(e, title, ("params",)) from None
    except ValueError as e:
        raise _invalid(e, title) from None
    return view.as_dict()


async def list_channels(sender: AlertSender, group_id: int, *,
                        principal: Principal | None = None) -> list[dict[str, Any]]:
    project = await check_group(sender, group_id, principal)
    channels = [c.as_dict() for c in await run_in_threadpool(sender.store.list_channels, group_id)]
    return channels if may_manage(principal, project) else [_redacted_channel(c) for c in channels]


async def rotate_keys(sender: AlertSender) -> dict[str, int]:
    return await run_in_threadpool(sender.store.rotate)


async def get_channel(sender: AlertSender, channel_id: int, *, principal: Principal | None = None) -> dict[str, Any]:
    project = await _check_channel(sender, channel_id, principal)
    channel = (await _channel_or_404(sender, channel_id)).as_dict()
    return channel if may_manage(principal, project) else _redacted_channel(channel)


async def update_channel(sender: AlertSender, channel_id: int, body: dict[str, Any], *,
                         principal: Principal | None = None) -> dict[str, Any]:
    """``params`` are merged into the stored ones; ``clearSecrets`` removes secrets; ``templates``
    replace the kinds given (``null`` goes back to the default); ``events``/``allEvents``; ``enabled``."""
    title = "Invalid alert channel"
    try:
        patch = ChannelPatch.model_validate(body)
    except ValidationError as e:
        raise _invalid(e, title) from None
    await _check_channel(sender, channel_id, principal, manage=True)
    current = await _channel_or_404(sender, channel_id)
    if patch.templates is not None or patch.params is not None:
        templates = dict(current.templates)
        for kind, pair in (patch.templates or {}).items():
            if pair is None:
                templates.pop(kind.value, None)
            else:
                templates[kind.value] = {k: v for k, v in pair.model_dump().items() if v}
        fmt = channel_format(current.type, {**current.params, **(patch.params or {})})
        await _validate(sender, _templates_dict(templates), fmt)
    try:
        view = await run_in_threadpool(sender.store.update_channel, channel_id, patch)
    except DomainError:
        raise
    except SecretKeyError as e:
        raise Conflict(str(e), title="Secrets unreadable") from None
    except ValidationError as e:
        raise _invalid(e, title, ("params",)) from None
    except ValueError as e:
        raise _invalid(e, title) from None
    if view is None:
        raise NotFound(f"alert channel {channel_id} does not exist")
    return view.as_dict()


async def delete_channel(sender: AlertSender, channel_id: int, *, principal: Principal | None = None) -> None:
    await _check_channel(sender, channel_id, principal, manage=True)
    if not await run_in_threadpool(sender.store.delete_channel, channel_id):
        raise NotFound(f"alert channel {channel_id} does not exist")


# --------------------------------------------------------------------------------------------------
# Templates, previews, test sends, deliveries
# --------------------------------------------------------------------------------------------------


class ValidateTemplates(ApiModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    format: str = Field("html", description="html (email), markdown (WeCom) or text")
    templates: dict[str, dict[str, str | None]]


async def validate(sender: AlertSender, body: ValidateTemplates) -> dict[str, Any]:
    """Check templates without saving them."""
    if body.format not in FORMATS:
        raise Invalid(f"format is one of {', '.join(FORMATS)}", title="Invalid format")
    problems = await run_in_threadpool(validate_templates, body.templates, body.format, sender.resolver)
    return {"ok": not problems,
            "problems": [{"pointer": p.pointer, "line": p.line, "message": p.message} for p in problems]}


async def template_defaults() -> dict[str, Any]:
    placeholders = {kind: {name: sorted(fields) if fields is not None else None
                           for name, fields in (await run_in_threadpool(schema, kind)).items()} for kind in KINDS}
    return {"kinds": list(KINDS), "formats": list(FORMATS), "templates": defaults(), "placeholders": placeholders}


class Preview(ApiModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    kind: AlertKind = AlertKind.WORKFLOW_END
    run_id: str | None = Field(None, alias="runId", description="a finished run; default: a sample failed run")
    task_code: int | None = Field(None, alias="taskCode", description="TASK_* kinds: default the first failed task")
    start_params: dict[str, str] | None = Field(None, alias="startParams",
                                                description="business values for the sample (or override the run's)")
    channel_id: int | None = Field(None, alias="channelId", description="default: every channel of the group")
    templates: dict[AlertKind, dict[str, str | None]] | None = Field(
        None, description="unsaved templates to try instead of the channel's")
    format: str | None = Field(None, description="the format of `templates` when the group has no channel")


async def _run_input(client: Client, run_id: str) -> RunInput | None:
    """The run's start input (start params, warningType, timezone), from its first history event."""
    try:
        handle = client.get_workflow_handle(run_id)
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            decoded = await client.data_converter.decode(payloads, [RunInput])
            value = decoded[0] if decoded else None
            return value if isinstance(value, RunInput) else None
    except Exception:  # best effort: the preview still renders without them
        return None
    return None


def _default_task(status: InstanceStatus, kind: AlertKind) -> int | None:
    if kind is AlertKind.WORKFLOW_END:
        return None
    pick = [n for n in status.nodes if (n.timeout_warned if kind is AlertKind.TASK_TIMEOUT else n.state.is_failure)]
    nodes = pick or status.nodes
    return nodes[0].code if nodes else None


async def preview(state: Services, sender: AlertSender, group_id: int, body: Preview, *,
                  principal: Principal | None = None) -> dict[str, Any]:
    """Render the group's templates against a sample or a real finished run (nothing is sent). The
    caller checks that ``principal`` may read the run (its start params are its project's)."""
    settings = sender.settings
    await check_group(sender, group_id, principal)
    run_input: RunInput | None = None
    if body.run_id:
        client = await state.client()
        status, _ = await instance_status(client, body.run_id)
        if not status.state.is_finished:
            raise Conflict(f"run {body.run_id} is {status.state.value}; alerts render against a finished run",
                           title="Run not finished")
        run_input = await _run_input(client, body.run_id)
        temporal_url = ui_run_url(settings, body.run_id)
        source = "run"
    else:
        status = sample_status()
        temporal_url = ui_run_url(settings, status.instance_id)
        source = "sample"
    project_name = "sales" if source == "sample" else ""
    if run_input is not None and run_input.definition is not None:
        project_name = run_input.definition.project_name
    elif source == "run":
        definition = await run_in_threadpool(state.store.get, status.definition_code, status.definition_version)
        project_name = definition.project_name if definition is not None else ""
    start_params = dict(run_input.start_params) if run_input is not None else {}
    start_params.update(body.start_params or {})
    task_code = body.task_code if body.task_code is not None else _default_task(status, body.kind)
    alert = AlertRequest(
        kind=body.kind, warning_group_id=group_id,
        warning_type=run_input.warning_type if run_input is not None else WarningType.FAILURE, status=status,
        task_code=task_code, start_params=start_params, project_name=project_name,
        command_type=run_input.command_type if run_input is not None else "START_PROCESS",
        timezone=run_input.timezone if run_input is not None else settings.default_timezone,
        temporal_ui_url=temporal_url,
    )
    override = {k.value: v for k, v in body.templates.items()} if body.templates is not None else None
    channels = await run_in_threadpool(sender.store.resolve_channels, group_id) or []
    if body.channel_id is not None:
        channels = [c for c in channels if c.id == body.channel_id]
        if not channels:
            raise NotFound(f"alert group {group_id} has no channel {body.channel_id}")
    usable = [c for c in channels if not isinstance(c, BrokenChannel)]
    specs = [sender.spec_for(c, body.kind, override) for c in usable]
    labels: dict[str, dict[str, Any]] = {str(c.id): {"channelId": c.id, "channelName": c.name, "type": c.type.value}
                                         for c in usable}
    if not channels:  # no channel yet: show the defaults (or the given templates) in the format asked
        fmts = [body.format] if body.format in FORMATS else list(FORMATS)
        for fmt in fmts:
            parts = (override or {}).get(body.kind.value) or {}
            specs.append(MessageSpec(key=f"format:{fmt}", fmt=fmt, subject=parts.get("subject") or None,
                                     body=parts.get("body") or None))
            labels[f"format:{fmt}"] = {"channelId": None, "channelName": None, "type": None}
    messages = await run_in_threadpool(sender.render, alert, specs, temporal_url=temporal_url)
    return {
        "kind": body.kind.value, "source": source, "instanceId": status.instance_id, "state": status.state.value,
        "taskCode": task_code, "startParams": start_params,
        "messages": [labels[s.key] | {"format": m.format, "subject": m.subject, "body": m.body,
                                      "templateError": m.template_error, "unknownPlaceholders": m.unknown}
                     for s in specs for m in [messages[s.key]]],
        "brokenChannels": [{"channelId": c.id, "channelName": c.name, "error": c.error}
                           for c in channels if isinstance(c, BrokenChannel)],
    }


class TestSend(ApiModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    kind: AlertKind = AlertKind.WORKFLOW_END
    channel_id: int | None = Field(None, alias="channelId")
    start_params: dict[str, str] = Field(default_factory=dict, alias="startParams")


async def test_send(sender: AlertSender, group_id: int, body: TestSend, *,
                    principal: Principal | None = None) -> dict[str, Any]:
    """Really sends, and answers with each channel's outcome (200 either way; ``ok`` says)."""
    await check_group(sender, group_id, principal, manage=True)
    alert = sender.test_request(group_id, body.kind, body.start_params)
    ids = {body.channel_id} if body.channel_id is not None else None
    result = await run_in_threadpool(lambda: sender.send(alert, channel_ids=ids))
    return {"ok": result.ok, "summary": result.summary()} | result.model_dump(mode="json", by_alias=True)


async def deliveries(sender: AlertSender, instance_id: str | None = None, group_id: int | None = None,
                     limit: int = 100, *, principal: Principal | None = None) -> list[dict[str, Any]]:
    """Delivery attempts, newest first; a general user names one of their projects' groups."""
    if principal is not None and not principal.is_admin:
        if group_id is None:
            raise Forbidden("give groupId: a general user reads the deliveries of their projects' alert groups")
        await check_group(sender, group_id, principal, manage=True)
    return await run_in_threadpool(lambda: sender.store.deliveries(instance_id=instance_id, group_id=group_id,
                                                                   limit=limit))


__all__ = ["ChannelType"]
