"""The rules of workflows/patches.py that code review alone would have to catch: every patch goes
through ``patches.patched``, and the single marker ``porpoise-patches-1`` covers exactly the ids that
existed when it was introduced. A run recorded with that marker took none of a later change's paths,
so adding a new id to ``COVERED`` would replay such a run down the new path (nondeterminism)."""

from __future__ import annotations

import re
from pathlib import Path

from workflows import patches

WORKFLOWS = Path(patches.__file__).resolve().parent
# The ids that existed when ALL was introduced: frozen. A new change gets an id of its own, outside.
COVERED_BY_PATCHES_1 = {"sub-process-cycle-and-depth-limit", "instance-events-by-worker", "lost-worker-resume-v1",
                        "bounded-activations", "stop-deadline", "worker-groups"}


def test_the_single_marker_covers_exactly_the_ids_it_was_introduced_with() -> None:
    assert patches.ALL == "porpoise-patches-1"
    assert patches.COVERED == COVERED_BY_PATCHES_1, (
        "porpoise-patches-1 must cover exactly the ids it was introduced with: give a new change its own "
        "id outside patches.COVERED (docs/reliability.md, 'Upgrading')")


def test_workflow_code_patches_only_through_patches_patched() -> None:
    direct = [f"{path.name}:{n}" for path in sorted(WORKFLOWS.glob("*.py")) if path.name != "patches.py"
              for n, line in enumerate(path.read_text().splitlines(), 1)
              if re.search(r"workflow\.(patched|deprecate_patch)\(", line)]
    assert direct == [], f"call patches.patched (workflows/patches.py) instead: {direct}"
