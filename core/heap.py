"""Keep the cyclic garbage collector off what a process built while starting.

A worker or API process imports most of its objects at start-up (modules, pydantic schemas, the
sandbox's passthrough modules, SQLAlchemy's mappers) and keeps them to the end. Every full
collection walked all of them again: in the worker under a dry-run burst, full collections were
~120 ms each and ~0.8 ms of CPU per run (docs/performance.md). Freezing moves them out of the
collector's generations once start-up is done; objects made later are collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Collect start-up's garbage, then freeze what is left.

    Call once, when the process is about to serve (its imports and long-lived objects made). Garbage
    made before the call is collected first, so none of it is kept for good."""
    gc.collect()
    gc.freeze()
