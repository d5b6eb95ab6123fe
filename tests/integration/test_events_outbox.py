"""Lifecycle events recorded by the interceptors in the durable outbox: the expected set of event
ids for a failure under each strategy, in order per instance, with the whole canvas on the created
and final events (the Pulsar path reads the same outbox)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from core.events import LifecycleEvent
from core.settings import Settings
from storage.outbox import Outbox
from tests import dsbuild
from tests.integration.helpers import run


@pytest.fixture(scope="module")
def outbox(settings: Settings) -> Outbox:
    return Outbox(settings.resolved_database_url)


async def events_of(outbox: Outbox, instance: str, final_state: str) -> list[dict[str, Any]]:
    """The instance's events once its final event is recorded (the interceptor records it last)."""
    for _ in range(100):
        events = [e for _, e in outbox.tail(0, 10_000, instance)]
        if any(e["event_type"] == "WORKFLOW_INSTANCE_STATE_CHANGED" and e["new_state"] == final_state
               for e in events):
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"no final event for {instance}")


def doc() -> list[dict[str, Any]]:
    tasks = [dsbuild.task("fail", "sleep 1; exit 1", failRetryTimes=1), dsbuild.task("after"),
             dsbuild.task("slow", "sleep 30"), dsbuild.task("off", flag="NO")]
    return dsbuild.export("events", tasks, [(None, "fail"), ("fail", "after"), (None, "slow"), (None, "off")])


@pytest.mark.parametrize("strategy", ["END", "CONTINUE"])
async def test_events_for_a_failure_under_each_strategy(api: httpx.AsyncClient, outbox: Outbox,
                                                        strategy: str) -> None:
    d = doc()
    if strategy == "CONTINUE":
        d[0]["taskDefinitionList"][2]["taskParams"]["rawScript"] = "sleep 1"
    status = await run(api, d, timeout=90, failureStrategy=strategy)
    instance = status["instanceId"]
    events = await events_of(outbox, instance, "FAILURE")
    for e in events:
        LifecycleEvent.model_validate(e)  # every message matches the published schema
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids))
    wf = [e for e in events if e["event_type"].startswith("WORKFLOW")]
    assert [(e["event_type"], e["old_state"], e["new_state"]) for e in wf] == [
        ("WORKFLOW_INSTANCE_CREATED", None, "SUBMITTED_SUCCESS"),
        ("WORKFLOW_INSTANCE_STATE_CHANGED", "SUBMITTED_SUCCESS", "RUNNING_EXECUTION"),
        ("WORKFLOW_INSTANCE_STATE_CHANGED", "RUNNING_EXECUTION", "FAILURE"),
    ]
    created, final = wf[0], wf[-1]
    assert {n["name"]: n["state"] for n in created["nodes"]} == {
        "fail": "WAITING", "after": "WAITING", "slow": "WAITING", "off": "FORBIDDEN"}
    end = strategy == "END"
    expected_final = {"fail": "FAILURE", "after": "NOT_RUN" if end else "DEPEND_FAILED", "off": "FORBIDDEN",
                      "slow": "KILL" if end else "SUCCESS"}
    assert {n["name"]: n["state"] for n in final["nodes"]} == expected_final

    def task_events(name: str) -> list[tuple[str, str | None, str, int]]:
        return [(e["event_type"], e["old_state"], e["new_state"], e["task"]["attempt"])
                for e in events if e["task"] and e["task"]["name"] == name]

    assert task_events("fail") == [  # every attempt, then the final state
        ("TASK_INSTANCE_CREATED", None, "SUBMITTED_SUCCESS", 1),
        ("TASK_INSTANCE_STATE_CHANGED", "SUBMITTED_SUCCESS", "RUNNING_EXECUTION", 1),
        ("TASK_INSTANCE_STATE_CHANGED", "RUNNING_EXECUTION", "FAILURE", 1),
        ("TASK_INSTANCE_STATE_CHANGED", "FAILURE", "RUNNING_EXECUTION", 2),
        ("TASK_INSTANCE_STATE_CHANGED", "RUNNING_EXECUTION", "FAILURE", 2),
    ]
    slow_end = "KILL" if strategy == "END" else "SUCCESS"
    assert task_events("slow")[-1][2] == slow_end
    last = [e for e in events if e["task"] and e["task"]["name"] == "slow"][-1]["task"]
    assert last["host"] and last["log_path"] and (last["pid"] or strategy == "END")
    assert task_events("after") == [] and task_events("off") == []
    assert {e["instance_id"] for e in events} == {instance}
    # Order per instance: the final instance event is the last one recorded.
    assert events[-1]["event_id"] == final["event_id"]


async def test_outbox_ignores_a_re_sent_event(outbox: Outbox) -> None:
    event = LifecycleEvent.model_validate({
        "event_id": "resend-test/1", "event_type": "WORKFLOW_INSTANCE_CREATED", "timestamp": "2024-01-01T00:00:00Z",
        "project_code": 1, "definition_code": 2, "definition_version": 1, "instance_id": "resend-test",
        "workflow_id": "resend-test", "run_id": "r", "new_state": "SUBMITTED_SUCCESS"})
    outbox.append([event])
    outbox.append([event])
    assert len(outbox.tail(0, 100, "resend-test")) == 1
