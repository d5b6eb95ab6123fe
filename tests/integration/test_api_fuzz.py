"""No 500s: schemathesis generates requests for every operation of the live API's OpenAPI document
(valid ones and deliberately invalid ones) and no answer may be a server error (issue 16).

The API runs under uvicorn on 127.0.0.1 over the real stack (Temporal dev server, worker, SQLite
store). Fuzzing runs in a thread so the worker's event loop keeps serving workflows meanwhile. Every
operation gets a bounded number of examples per generation mode, without shrinking, with a fixed seed:
the run is reproducible and bounded in time (past BUDGET_SECONDS every remaining operation still gets
a few examples; PORPOISE_FUZZ_EXAMPLES raises the count for a deeper run). Nothing is skipped: an
operation that would start real work (a run, a complement, a channel test) can only for ids that
exist, and generated ids do not.
Bodies the routes read themselves (definitions, datasources, alerts) are in the OpenAPI document by
their schema (``openapi_extra``), so they are fuzzed too; tests/integration/test_hostile_input.py sends
them the hostile cases a schema cannot describe.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

EXAMPLES = int(os.environ.get("PORPOISE_FUZZ_EXAMPLES", "20"))  # per operation and generation mode
FEW_EXAMPLES = 3  # once the budget is spent: every operation is still tried
BUDGET_SECONDS = 150


def fuzz_one(operation: Any, mode: GenerationMode, examples: int, base_url: str, session: requests.Session,
             failures: list[str]) -> int:
    """Up to ``examples`` requests for one operation; every 5xx is appended to ``failures``."""
    label = f"{operation.label} ({mode.value})"
    calls = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        nonlocal calls
        calls += 1
        response = case.call(base_url=base_url, session=session, timeout=30)
        if response.status_code >= 500:
            failures.append(f"{label} -> {response.status_code} {response.text[:300]!r}\n"
                            f"  {case.as_curl_command()[:600]}")

    try:
        check()
    except Unsatisfiable:  # an operation without inputs has no invalid request
        if mode is GenerationMode.POSITIVE:
            raise
    return calls


def fuzz(base_url: str) -> tuple[list[str], int]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    calls = 0
    deadline = time.monotonic() + BUDGET_SECONDS
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                examples = EXAMPLES if time.monotonic() < deadline else FEW_EXAMPLES
                calls += fuzz_one(operation, mode, examples, base_url, session, failures)
    return failures, calls


async def test_no_operation_answers_a_server_error(api_server: str) -> None:
    started = time.monotonic()
    failures, calls = await asyncio.wait_for(asyncio.to_thread(fuzz, api_server), 600)
    print(f"{calls} requests in {time.monotonic() - started:.0f} s")
    assert calls > 100, f"only {calls} requests were generated"
    assert not failures, f"{len(failures)} server errors in {calls} requests:\n" + "\n".join(failures[:40])
