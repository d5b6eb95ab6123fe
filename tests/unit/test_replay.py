"""Upgrades never break running instances: replay every recorded history (tests/histories/) against
the current workflow code, with the worker's own workflows, sandbox, data converter and interceptors
(api.worker.build_replayer). No server needed.

A failure here means a workflow change alters the commands of a run that is already in flight: put
the change behind `workflow.patched("...")` instead of re-recording (docs/reliability.md, "Upgrading").
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from api.worker import build_replayer
from core.settings import Settings

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
# The histories were recorded with lifecycle events on (the default), so replay with them on too.
# Both sandboxes: the worker's (our workflows modules passed through) and the strict one, which also
# fails a replay whose workflow code calls something non-deterministic (api.worker.workflow_runner).
SETTINGS = Settings(database_url="sqlite://", events_enabled=True)
# No 2 s deadlock limit: a loaded CI machine once took longer than that for one activation of the
# continue-as-new history; determinism, not speed, is under test here (the sandbox stays on).
REPLAYERS = {"worker": build_replayer(SETTINGS, deadlock_detection=False),
             "strict": build_replayer(SETTINGS, strict=True, deadlock_detection=False)}
FILES = sorted([*HISTORIES.glob("*.json"), *HISTORIES.glob("*.json.gz")])


def load(path: Path) -> WorkflowHistory:
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    doc = json.loads(raw)
    return WorkflowHistory.from_json(doc.pop("workflowId"), doc)


def test_every_scenario_is_recorded() -> None:
    """The recorder's scenarios all have files (a scenario dropped by accident would replay nothing)."""
    names = {p.name for p in FILES}
    for prefix in ["sample-", "conditions", "switch", "sub-process.json", "sub-process.child", "dependent",
                   "retries", "task-timeout", "pause-recover", "stop", "task-group-holder", "task-group-waiter",
                   "task-group-semaphore", "complement", "continue-as-new.run1", "continue-as-new.run2", "lost-worker"]:
        assert any(n.startswith(prefix) for n in names), f"no recorded history for {prefix!r} in {HISTORIES}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sandbox", list(REPLAYERS))
@pytest.mark.parametrize("path", FILES, ids=[p.name.split(".json")[0] for p in FILES])
async def test_history_replays_without_nondeterminism(path: Path, sandbox: str) -> None:
    history = load(path)
    result = await REPLAYERS[sandbox].replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure!r}"
