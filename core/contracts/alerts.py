"""The ``send_alerts`` activity's contract: what the workflow hands over (ids and states, never a
secret) and the per-channel outcome it gets back. DS's rules for when an alert is due are
:mod:`core.alerts`; channels, secrets and templates live on the worker (:mod:`activities.alerts`)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field

from model.definition import WarningType

from .run import InstanceStatus


class AlertKind(StrEnum):
    """What an alert is about. Each kind has its own subject and body template per channel."""

    WORKFLOW_END = "WORKFLOW_END"  # the instance ended; filtered by the run's warningType
    TASK_TIMEOUT = "TASK_TIMEOUT"  # a task passed its timeout with WARN / WARNFAILED; always sent
    TASK_FAILURE = "TASK_FAILURE"  # a task failed (retries exhausted); always sent


class ChannelType(StrEnum):
    EMAIL = "EMAIL"
    WECOM_APP = "WECOM_APP"  # 企业微信 application message: gettoken + message/send
    WECOM_ROBOT = "WECOM_ROBOT"  # 企业微信 group robot: webhook/send?key=
    WEBHOOK = "WEBHOOK"  # a generic HTTP webhook (JSON body)


class AlertRequest(BaseModel):
    """What the workflow hands to ``send_alerts``: ids and states only, never a secret.

    The group's channels, their addresses and credentials are looked up by the activity, on the
    worker, when it runs; a channel changed after the run started applies to this alert too.
    """

    kind: AlertKind
    warning_group_id: int
    warning_type: WarningType = WarningType.NONE
    status: InstanceStatus  # the instance with every node (for WORKFLOW_END: its final state)
    task_code: int | None = None  # TASK_TIMEOUT / TASK_FAILURE: the task the alert is about
    start_params: dict[str, str] = Field(default_factory=dict)  # the run's startParams (business placeholders)
    project_name: str = ""
    command_type: str = "START_PROCESS"
    timezone: str = "UTC"  # times in messages are shown in the run's timezone
    temporal_ui_url: str = ""  # a link to the run in the Temporal UI; default built from settings
    # Deduplication across activity retries: channels that already took this alert are not sent to
    # again. Default: instance id, run_times, kind and task code.
    alert_id: str = ""
    # The activity's retry policy's maximum_attempts, so that the last attempt reports failures as
    # a result instead of raising (the workflow always gets the per-channel outcome).
    max_attempts: int = Field(default=3, ge=1, le=20)
    # Set by compact_status for a big DAG: nodes per state over the whole canvas, and how many nodes
    # were left out of ``status.nodes`` (the failed ones are always kept).
    node_counts: dict[str, int] = Field(default_factory=dict)
    nodes_omitted: int = 0

    @property
    def key(self) -> str:
        if self.alert_id:
            return self.alert_id
        task = "-" if self.task_code is None else str(self.task_code)
        return f"{self.status.instance_id}/{self.status.run_times}/{self.kind.value}/{task}"


class ChannelOutcome(BaseModel):
    channel_id: int
    channel_name: str
    channel_type: ChannelType
    ok: bool
    already_sent: bool = False  # delivered by an earlier attempt of this alert: not sent again
    transient: bool = False  # the failure may go away (network, 5xx, SMTP 4xx): worth a retry
    error: str | None = None  # never contains a secret
    template_error: str | None = None  # the channel's template failed: the default template was used
    unknown_placeholders: list[str] = Field(default_factory=list)
    attempt: int = 1


class AlertResult(BaseModel):
    """What ``send_alerts`` returns: whether anything was due, and one outcome per channel."""

    kind: AlertKind
    group_id: int
    due: bool  # the rules say this alert is to be sent
    reason: str = ""  # why it was not due, or why nothing was sent (no channel takes this kind)
    error: str | None = None  # a problem with the group as a whole (it does not exist)
    outcomes: list[ChannelOutcome] = Field(default_factory=list)

    @property
    def failed(self) -> list[ChannelOutcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failed

    def summary(self) -> str:
        if self.error:
            return f"{self.kind.value} alert: {self.error}"
        if not self.due or not self.outcomes:
            return f"{self.kind.value} alert not sent: {self.reason}"
        bad = "; ".join(f"{o.channel_name}: {o.error}" for o in self.failed)
        sent = sum(1 for o in self.outcomes if o.ok)
        return (f"{self.kind.value} alert: {sent}/{len(self.outcomes)} channel(s) ok"
                + (f"; failed: {bad}" if bad else ""))
