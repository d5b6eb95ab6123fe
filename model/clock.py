"""Time-zone conversion for business times.

Lives in the model package (passed through the workflow sandbox) because the sandbox proxies
``zoneinfo.ZoneInfo``; called from here, the real one is used, and the conversion is deterministic.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def in_zone(moment: datetime, timezone: str) -> datetime:
    """`moment` seen in `timezone` (an IANA name), for built-ins and $[...] (reference §6.3)."""
    return moment.astimezone(ZoneInfo(timezone))


def is_zone(timezone: str) -> bool:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
