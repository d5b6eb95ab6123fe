"""SWITCH condition evaluation in a sandboxed JavaScript engine (reference §4.8).

DS evaluates each condition with Nashorn in a sandbox. Here QuickJS (PyPI ``quickjs``) runs each
expression in a fresh context with no I/O bindings, a time limit and a memory limit, so a user's
``while(true){}`` or a huge allocation ends as "not matched" instead of hanging a worker. It runs as a
local activity: the result is recorded in history and replays never evaluate again.
"""

from __future__ import annotations

import quickjs
from temporalio import activity

from core.contracts import Activities

TIME_LIMIT_SECONDS = 1
MEMORY_LIMIT_BYTES = 32 * 1024 * 1024

# DS 3.3 adds Array.prototype.includes (#16534); QuickJS has it natively. Nashorn scripts sometimes
# call Java-ish helpers; none are offered, so they fail and count as false, as unknown names do in DS.


def evaluate(expression: str) -> bool:
    """True only when the expression evaluates to the boolean true; any error is "not matched"."""
    ctx = quickjs.Context()
    ctx.set_time_limit(TIME_LIMIT_SECONDS)
    ctx.set_memory_limit(MEMORY_LIMIT_BYTES)
    try:
        return ctx.eval(expression) is True
    except Exception as e:  # quickjs.JSException and friends: a failing condition is false in DS
        activity.logger.info("switch condition %r did not evaluate: %s", expression, e)
        return False


@activity.defn(name=Activities.EVALUATE_SWITCH)
def evaluate_switch(expressions: list[str | None]) -> int | None:
    """The index of the first condition that is true, or None for the default branch."""
    for i, expression in enumerate(expressions):
        if expression is not None and evaluate(expression):
            return i
    return None
