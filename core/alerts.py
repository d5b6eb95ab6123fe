"""DS's "is this alert due" rule, and keeping an alert request small; the contract itself (the
``send_alerts`` request and result) is :mod:`core.contracts.alerts`.

The workflow decides *when* an alert is due (pure :func:`should_send`) and starts the ``send_alerts``
activity with an :class:`AlertRequest`: ids and states only, never a secret. Everything with I/O
(channels, secrets, templates, delivery) lives in :mod:`activities.alerts`; see docs/alerts.md.
"""

from __future__ import annotations

from core.contracts import InstanceStatus
from core.contracts.alerts import (  # the contract, re-exported: the rules below are about it
    AlertKind,
    AlertRequest,
    AlertResult,
    ChannelOutcome,
    ChannelType,
)
from model.definition import WarningType
from model.states import WorkflowState

MAX_ALERT_NODES = 300


def compact_status(status: InstanceStatus, *, max_nodes: int = MAX_ALERT_NODES, keep: int | None = None,
                   ) -> tuple[InstanceStatus, dict[str, int], int]:
    """Keep an alert request small in history: no per-node varPool and at most ``max_nodes`` nodes
    (failed, depend-failed and timeout-warned ones and ``keep`` first, then canvas order). Returns the
    trimmed status, the node counts per state over the whole canvas, and how many nodes were left out.
    Pure: for workflow code."""
    counts: dict[str, int] = {}
    for n in status.nodes:
        counts[n.state.value] = counts.get(n.state.value, 0) + 1

    def important(i: int) -> bool:
        n = status.nodes[i]
        return n.state.is_failure or n.state.value == "DEPEND_FAILED" or n.timeout_warned or n.code == keep

    order = sorted(range(len(status.nodes)), key=lambda i: (not important(i), i))
    chosen = sorted(order[:max_nodes])
    nodes = [status.nodes[i].model_copy(update={"var_pool": []}) for i in chosen]
    return status.model_copy(update={"nodes": nodes}), counts, len(status.nodes) - len(nodes)


def should_send(kind: AlertKind, warning_type: WarningType, state: WorkflowState, *, is_sub_process: bool,
                warning_group_id: int) -> tuple[bool, str]:
    """DS 3.2's rules (reference §4.5, §4.9, §7). Pure: the workflow may call it before starting the
    activity, and the activity checks again.

    * Sub-process instances never alert; no warning group means nothing to send to.
    * WORKFLOW_END follows the run's warningType: NONE never, SUCCESS on SUCCESS, FAILURE on FAILURE,
      ALL on any finished state (STOP and PAUSE included).
    * TASK_TIMEOUT and TASK_FAILURE ignore warningType.
    """
    if is_sub_process:
        return False, "sub-process instances never alert"
    if warning_group_id <= 0:
        return False, "the run has no warning group"
    if kind is not AlertKind.WORKFLOW_END:
        return True, ""
    if warning_type is WarningType.NONE:
        return False, "warningType is NONE"
    if not state.is_finished:
        return False, f"the instance is {state.value}, not finished"
    if warning_type is WarningType.ALL:
        return True, ""
    if warning_type is WarningType.SUCCESS:
        return (True, "") if state is WorkflowState.SUCCESS else (False, f"warningType SUCCESS, state {state.value}")
    return (True, "") if state is WorkflowState.FAILURE else (False, f"warningType FAILURE, state {state.value}")


__all__ = ["MAX_ALERT_NODES", "AlertKind", "AlertRequest", "AlertResult", "ChannelOutcome", "ChannelType",
           "compact_status", "should_send"]
