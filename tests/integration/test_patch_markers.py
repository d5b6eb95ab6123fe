"""A run started on this code records one `workflow.patched` marker, `porpoise-patches-1`, for every
patch id it passes (workflows/patches.py), not a marker and a `TemporalChangeVersion` upsert per id:
those were 6 of the 7 history events a run had over the raw diamond (docs/performance.md). Histories
from before keep replaying with their own markers (tests/unit/test_replay.py)."""

from __future__ import annotations

import json

import httpx
from temporalio.client import Client

from tests import dsbuild
from tests.integration.helpers import start, submit, wait
from workflows import patches


async def test_a_run_records_one_patch_marker_for_every_patch(api: httpx.AsyncClient, client: Client) -> None:
    tasks = [dsbuild.task(n) for n in ("a", "b", "c")]
    saved = await submit(api, dsbuild.export("one-marker", tasks, [(None, "a"), ("a", "b"), ("a", "c")]))
    instance = await start(api, saved["code"], dryRun=True)
    assert (await wait(api, instance))["state"] == "SUCCESS"

    history = await client.get_workflow_handle(instance).fetch_history()
    marked = []
    for event in history.events:
        attrs = event.marker_recorded_event_attributes
        if event.HasField("marker_recorded_event_attributes") and attrs.marker_name == "core_patch":
            marked += [json.loads(p.data)["id"] for p in attrs.details["patch-data"].payloads]
    assert marked == [patches.ALL]
    upserts = [e for e in history.events if e.HasField("upsert_workflow_search_attributes_event_attributes")]
    assert len(upserts) == 2, upserts  # that marker's TemporalChangeVersion, and DsState at the end
