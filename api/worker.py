"""The Porpoise worker process: the generic workflow plus the task-type activities.

A Python worker saturates about one core (temporal-notes B13), so `porpoise worker --processes N`
runs N of these; they share the task queue and Temporal balances between them.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from core.settings import Settings, get_settings
from core.temporal import connect
from workflows.ds_workflow import DsWorkflow

log = logging.getLogger("porpoise.worker")


def activities(settings: Settings) -> list[Callable[..., Any]]:
    from activities.definitions import DefinitionActivities
    from activities.http_task import run_http
    from activities.python_task import run_python
    from activities.shell import run_shell
    from activities.store import DefinitionStore
    from activities.switch import evaluate_switch

    definitions = DefinitionActivities(DefinitionStore(settings.resolved_database_url))
    return [run_shell, run_python, run_http, evaluate_switch, definitions.load_definition]


def build_worker(client: Client, settings: Settings) -> Worker:
    restrictions = SandboxRestrictions.default.with_passthrough_modules("model", "core", "pydantic")
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[DsWorkflow],
        activities=activities(settings),
        activity_executor=ThreadPoolExecutor(max_workers=settings.max_concurrent_activities),
        workflow_runner=SandboxedWorkflowRunner(restrictions=restrictions),
        max_cached_workflows=settings.max_cached_workflows,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.max_concurrent_activities,
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def run_worker(settings: Settings) -> None:
    client = await connect(settings)
    worker = build_worker(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        log.info("worker polling task queue %s at %s", settings.task_queue, settings.temporal_address)
        await stop.wait()


def _child() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run_worker(get_settings()))


def main(processes: int = 1) -> None:
    if processes <= 1:
        _child()
        return
    procs = [multiprocessing.Process(target=_child, name=f"porpoise-worker-{i}") for i in range(processes)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()
