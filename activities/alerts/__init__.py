"""Alerts: alert groups and their channels (email, WeCom app, WeCom group robot, HTTP webhook).

The typed contract that crosses the Temporal boundary and the pure "should this alert be sent" rule
live in :mod:`core.alerts` (workflow code uses them) and are re-exported here. The I/O lives in
submodules:

* :mod:`activities.alerts.templates`: user templates in a sandboxed Jinja environment, rendered in a
  separate, killable process; the default templates;
* :mod:`activities.alerts.resolvers`: the pluggable business-placeholder resolver and an example;
* :mod:`activities.alerts.channels`: the senders (smtplib, the WeCom APIs, webhooks);
* :mod:`activities.alerts.activity`: the ``send_alerts`` activity.

The alert group / channel / delivery tables are :mod:`storage.alerts` (secrets encrypted with
:mod:`storage.crypto`).

See docs/alerts.md.
"""

from core.alerts import (
    MAX_ALERT_NODES,
    AlertKind,
    AlertRequest,
    AlertResult,
    ChannelOutcome,
    ChannelType,
    compact_status,
    should_send,
)

__all__ = ["MAX_ALERT_NODES", "AlertKind", "AlertRequest", "AlertResult", "ChannelOutcome", "ChannelType",
           "compact_status", "should_send"]
