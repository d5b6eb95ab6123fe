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
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from api.interceptors import EventsInterceptor, InstanceEventHandoff
from api.worker import WORKFLOWS, build_replayer, workflow_runner
from core.events import LifecycleEvent
from core.settings import Settings
from storage.outbox import GroupCommit, Outbox
from workflows import patches as patch_ids

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


class _CountingHandoff(InstanceEventHandoff):
    def __init__(self) -> None:
        super().__init__(GroupCommit(Outbox("sqlite://")), 1.0)
        self.given: list[str] = []

    def __call__(self, run_id: str, event: LifecycleEvent) -> None:
        self.given.append(event.event_id)
        super().__call__(run_id, event)


def patches(path: Path) -> set[str]:
    """The ids of the `workflow.patched` markers in a recorded history."""
    out = set()
    for event in load(path).events:
        if event.marker_recorded_event_attributes.marker_name == "core_patch":
            for payload in event.marker_recorded_event_attributes.details["patch-data"].payloads:
                out.add(json.loads(payload.data)["id"])
    return out


# Recorded on the by-worker path: its own marker, or the one marker that covers every patch since.
BY_WORKER = [p for p in FILES if {patch_ids.INSTANCE_EVENTS_BY_WORKER, patch_ids.ALL} & patches(p)]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", BY_WORKER, ids=[p.name.split(".json")[0] for p in BY_WORKER])
async def test_a_replay_hands_over_no_instance_event(path: Path) -> None:
    """Instance events recorded after the `instance-events-by-worker` patch are handed to the worker
    only when their activation first runs (workflows/lifecycle.py): a replay (a worker rebuilding a run
    evicted from its cache) must not emit them again."""
    events = EventsInterceptor(Outbox("sqlite://"))
    events.handoff = spy = _CountingHandoff()
    replayer = Replayer(workflows=WORKFLOWS, workflow_runner=events.runner(workflow_runner()), interceptors=[events],
                        data_converter=pydantic_data_converter, debug_mode=True)
    result = await replayer.replay_workflow(load(path), raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
    assert spy.given == []


def test_histories_of_the_by_worker_path_are_recorded() -> None:
    assert {p.name.split(".json")[0] for p in BY_WORKER} >= {"stop", "retries", "conditions-failed-branch",
                                                              "pause-recover.run1", "pause-recover.run2"}


def test_the_lost_worker_history_found_its_host_in_the_history() -> None:
    """The recorded lost worker was killed before its task's first heartbeat: the workflow read where
    the attempt ran from its started event (a local activity) and sent the next one to that host."""
    path = HISTORIES / "lost-worker.json"
    assert patch_ids.LOST_ATTEMPT_FROM_HISTORY in patches(path)
    events = load(path).events
    timed_out = [e for e in events if e.HasField("activity_task_timed_out_event_attributes")]
    assert len(timed_out) == 1
    assert not timed_out[0].activity_task_timed_out_event_attributes.failure.timeout_failure_info \
        .last_heartbeat_details.payloads
    assert sum(e.marker_recorded_event_attributes.marker_name == "core_local_activity" for e in events) == 1
    queues = [e.activity_task_scheduled_event_attributes.task_queue.name for e in events
              if e.HasField("activity_task_scheduled_event_attributes")]
    assert "@" not in queues[0] and queues[1] == f"{queues[0]}@{queues[1].rpartition('@')[2]}"
