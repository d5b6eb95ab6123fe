"""The ``send_alerts`` activity: decide, resolve, render, deliver to every channel of the group.

The workflow passes ids and states (:class:`~activities.alerts.AlertRequest`); everything else is
looked up here, on the worker: the group's channels and their secrets, the business placeholders.

Failures and retries:

* A channel that fails never fails the others: every channel is tried (in parallel, each with its own
  network timeouts) and gets an outcome: ok, or an error marked transient or permanent.
* Every attempt is recorded in ``alert_delivery``; a channel that took an alert is not sent it again
  by a retry of the activity (the key is the instance, run, kind and task), so a retry re-sends only
  what did not go out.
* The activity raises (a retryable ``AlertDeliveryRetry``) only when some channel failed
  *transiently* and the request's ``max_attempts`` is not reached, so Temporal's bounded retry
  policy tries again later. Permanent failures (bad password, unknown user, 4xx) are not retried.
  The last attempt returns the outcome instead of raising: the workflow always gets the per-channel
  result to log and show, and the activity never fails the DAG.
* A template that fails falls back to the default template (noted in the message and the outcome);
  a business resolver that fails or hangs (10 s) leaves its placeholders ``[unknown: ...]``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.contracts import InstanceStatus
from core.settings import Settings
from core.temporal import ui_run_url
from model.definition import WarningType
from storage.alerts import AlertStore, BrokenChannel, ResolvedChannel

from . import AlertKind, AlertRequest, AlertResult, ChannelOutcome, should_send
from .channels import ChannelError, deliver
from .resolvers import BusinessContext, BusinessResolver, configured_resolver
from .templates import (
    RENDER_TIMEOUT,
    Message,
    MessageSpec,
    build_context,
    business_names,
    render_messages,
    sample_status,
)

log = logging.getLogger("porpoise.alerts")

RESOLVER_TIMEOUT = 10.0
RETRY_ERROR_TYPE = "AlertDeliveryRetry"


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    return activity.logger if activity.in_activity() else log


class AlertSender:
    """Everything but Temporal: used by the activity, and by the API for previews and test sends."""

    def __init__(self, store: AlertStore, settings: Settings, resolver: BusinessResolver | None = None, *,
                 render_timeout: float = RENDER_TIMEOUT, resolver_timeout: float = RESOLVER_TIMEOUT,
                 max_parallel: int = 8) -> None:
        self.store = store
        self.settings = settings
        self.resolver = resolver if resolver is not None else configured_resolver(settings)
        self.render_timeout = render_timeout
        self.resolver_timeout = resolver_timeout
        self._resolver_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="alert-resolver")
        self._send_pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="alert-send")

    # -- rendering ---------------------------------------------------------------------------------

    def business_values(self, names: set[str] | None, ctx: BusinessContext) -> dict[str, Any]:
        """Phase 1: the resolver's values, bounded in time; {} (placeholders stay unknown) on trouble."""
        if names is not None and not names:
            return {}
        future = self._resolver_pool.submit(self.resolver.resolve, names, ctx)
        try:
            values = dict(future.result(timeout=self.resolver_timeout))
        except FutureTimeout:
            _logger().warning("alert business resolver did not answer within %ss", self.resolver_timeout)
            return {}
        except Exception:
            _logger().warning("alert business resolver failed", exc_info=True)
            return {}
        return {str(k): v for k, v in values.items()}

    def render(self, request: AlertRequest, specs: Sequence[MessageSpec], *, temporal_url: str) -> dict[str, Message]:
        """Phase 1 (business placeholders), then phase 2 (Porpoise's own), then the templates."""
        kind = request.kind.value
        names, dynamic = business_names(specs)
        bctx = BusinessContext(kind=kind, status=request.status, start_params=dict(request.start_params),
                               project_name=request.project_name, task_code=request.task_code)
        biz = self.business_values(None if dynamic else names, bctx)
        context = build_context(request.status, kind=kind, task_code=request.task_code,
                                project_name=request.project_name, command_type=request.command_type,
                                warning_type=request.warning_type.value, timezone=request.timezone,
                                temporal_url=temporal_url, api_url=self.settings.resolved_api_url, biz=biz,
                                node_counts=request.node_counts, nodes_omitted=request.nodes_omitted)
        return render_messages(specs, kind, context, timeout=self.render_timeout)

    @staticmethod
    def spec_for(channel: ResolvedChannel, kind: AlertKind,
                 override: Mapping[str, Mapping[str, str | None]] | None = None) -> MessageSpec:
        templates = dict((override or channel.templates).get(kind.value) or {})
        return MessageSpec(key=str(channel.id), fmt=channel.format, subject=templates.get("subject") or None,
                           body=templates.get("body") or None)

    def temporal_url(self, request: AlertRequest, run_id: str | None = None) -> str:
        return request.temporal_ui_url or ui_run_url(self.settings, request.status.instance_id, run_id)

    # -- sending -----------------------------------------------------------------------------------

    def send(self, request: AlertRequest, *, attempt: int = 1, run_id: str | None = None,
             channel_ids: set[int] | None = None) -> AlertResult:
        """Send one alert to every channel of the group that takes its kind. Never raises."""
        status = request.status
        due, reason = should_send(request.kind, request.warning_type, status.state,
                                  is_sub_process=status.is_sub_process, warning_group_id=request.warning_group_id)
        result = AlertResult(kind=request.kind, group_id=request.warning_group_id, due=due, reason=reason)
        if not due:
            return result
        channels = self.store.resolve_channels(request.warning_group_id)
        if channels is None:
            result.error = f"alert group {request.warning_group_id} does not exist"
            _logger().warning("alert %s for %s: %s", request.kind.value, status.instance_id, result.error)
            return result
        targets = [c for c in channels if c.enabled and (c.events is None or request.kind.value in c.events)
                   and (channel_ids is None or c.id in channel_ids)]
        if not targets:
            result.reason = f"no enabled channel of alert group {request.warning_group_id} takes {request.kind.value}"
            return result
        key = request.key
        done = self.store.delivered(key)
        outcomes: dict[int, ChannelOutcome] = {}
        to_send: list[ResolvedChannel] = []
        for c in targets:
            if c.id in done:
                outcomes[c.id] = ChannelOutcome(channel_id=c.id, channel_name=c.name, channel_type=c.type, ok=True,
                                                already_sent=True, attempt=done[c.id])
            elif isinstance(c, BrokenChannel):
                outcomes[c.id] = ChannelOutcome(channel_id=c.id, channel_name=c.name, channel_type=c.type, ok=False,
                                                error=c.error, attempt=attempt)
            else:
                to_send.append(c)
        messages = self.render(request, [self.spec_for(c, request.kind) for c in to_send],
                               temporal_url=self.temporal_url(request, run_id)) if to_send else {}
        facts = self.facts(request, self.temporal_url(request, run_id))
        futures = {c.id: self._send_pool.submit(self._deliver_one, c, messages[str(c.id)], facts, attempt)
                   for c in to_send}
        for c in to_send:
            outcomes[c.id] = futures[c.id].result()
        for c in to_send:
            o = outcomes[c.id]
            try:
                self.store.record_delivery(alert_key=key, instance_id=status.instance_id, kind=request.kind.value,
                                           group_id=request.warning_group_id, channel_id=c.id, channel_name=c.name,
                                           ok=o.ok, transient=o.transient, error=o.error,
                                           template_error=o.template_error, attempt=attempt)
            except Exception:  # the database is down: the alert went out (or not) all the same
                _logger().warning("cannot record the delivery of alert %s to channel %s", key, c.name, exc_info=True)
        for c in targets:
            if isinstance(c, BrokenChannel) and c.id not in done:
                _logger().warning("alert channel %s (%s) cannot be used: %s", c.name, c.id, c.error)
        result.outcomes = [outcomes[c.id] for c in targets]
        return result

    def _deliver_one(self, channel: ResolvedChannel, message: Message, facts: Mapping[str, Any],
                     attempt: int) -> ChannelOutcome:
        outcome = ChannelOutcome(channel_id=channel.id, channel_name=channel.name, channel_type=channel.type,
                                 ok=False, template_error=message.template_error,
                                 unknown_placeholders=list(message.unknown), attempt=attempt)
        try:
            deliver(channel, message, facts)
            outcome.ok = True
        except ChannelError as e:
            outcome.error, outcome.transient = e.message, e.transient
        return outcome

    @staticmethod
    def facts(request: AlertRequest, temporal_url: str) -> dict[str, Any]:
        """The structured part of a webhook body (no secret, nothing rendered)."""
        s = request.status
        return {
            "kind": request.kind.value, "state": s.state.value, "instanceId": s.instance_id,
            "projectCode": s.project_code, "projectName": request.project_name,
            "definitionCode": s.definition_code, "definitionName": s.definition_name,
            "definitionVersion": s.definition_version, "runTimes": s.run_times, "taskCode": request.task_code,
            "startTime": s.start_time.isoformat() if s.start_time else None,
            "endTime": s.end_time.isoformat() if s.end_time else None,
            "failedTasks": [{"code": n.code, "name": n.name, "type": n.task_type, "state": n.state.value,
                             "error": n.error} for n in s.nodes if n.state.is_failure],
            "temporalUrl": temporal_url,
        }

    def test_request(self, group_id: int, kind: AlertKind = AlertKind.WORKFLOW_END,
                     start_params: Mapping[str, str] | None = None) -> AlertRequest:
        """A sample failed run, for ``POST /alert-groups/{id}/test``: sent whatever the warningType rules say."""
        status: InstanceStatus = sample_status()
        return AlertRequest(kind=kind, warning_group_id=group_id, warning_type=WarningType.ALL,
                            status=status, task_code=2 if kind is not AlertKind.WORKFLOW_END else None,
                            start_params=dict(start_params or {}), project_name="sales (test alert)",
                            timezone=self.settings.default_timezone,
                            alert_id=f"test/{group_id}/{datetime.now(UTC):%Y%m%dT%H%M%S}/{uuid.uuid4().hex[:8]}")

    def close(self) -> None:
        self._resolver_pool.shutdown(wait=False, cancel_futures=True)
        self._send_pool.shutdown(wait=False, cancel_futures=True)


class AlertActivities:
    def __init__(self, sender: AlertSender) -> None:
        self.sender = sender

    @activity.defn(name="send_alerts")
    def send_alerts(self, request: AlertRequest) -> AlertResult:
        """Send an alert to every channel of the run's warning group (see the module doc for retries)."""
        info = activity.info()
        run_id = info.workflow_run_id if info.workflow_id == request.status.instance_id else None
        result = self.sender.send(request, attempt=info.attempt, run_id=run_id)
        logger = activity.logger
        for o in result.failed:
            logger.warning("alert %s to channel %s (%s) failed%s: %s", request.kind.value, o.channel_name,
                           o.channel_type.value, " (transient)" if o.transient else "", o.error)
        for o in result.outcomes:
            if o.template_error:
                logger.warning("alert template of channel %s failed, default used: %s", o.channel_name,
                               o.template_error)
            if o.unknown_placeholders:
                logger.info("alert template of channel %s has unknown placeholders: %s", o.channel_name,
                            ", ".join(o.unknown_placeholders))
        transient = [o for o in result.failed if o.transient]
        if transient and info.attempt < request.max_attempts:
            raise ApplicationError(
                f"alert {request.kind.value}: {len(transient)} channel(s) failed transiently "
                f"({', '.join(o.channel_name for o in transient)}); retrying",
                result.model_dump(mode="json"), type=RETRY_ERROR_TYPE, non_retryable=False,
            )
        logger.info("%s", result.summary())
        return result


def alert_activities(settings: Settings, resolver: BusinessResolver | None = None) -> list[Any]:
    """The alert activity for a worker. Raises SecretKeyError without a usable key (as SQL does)."""
    return [AlertActivities(AlertSender(AlertStore.from_settings(settings), settings, resolver)).send_alerts]
