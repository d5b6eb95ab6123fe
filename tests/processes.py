"""Checks on the processes a test started and killed."""

from __future__ import annotations

import psutil


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie not yet reaped counts as ended). A process that ends while
    it is being looked at is gone too: asking its status then raises NoSuchProcess."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
