"""The raw-Temporal reference for bench_runs: the same 5-task diamond (a -> b, c -> d -> e) as a
hand-written workflow of no-op activities, run by a worker with Porpoise's worker settings (cache
size, workflow-task and activity slots, the same sandbox and passthrough modules, the same
heartbeat throttle). Whatever Porpoise costs above this is the adapter's overhead (issue 15).

Started with ``True`` as its argument, each activity instead runs ``bash -c true`` as a raw Temporal
user would (``asyncio.create_subprocess_exec``, wait for the exit code): the task's own work without
anything Porpoise adds to make it durable and observable. A SHELL run's cost above *that* is what
Porpoise's task handling costs; the rest of the gap to the no-op diamond is running the process at all.

    python -m bench.baseline   # the worker; PORPOISE_TEMPORAL_ADDRESS says where (bench/stack.py starts it)

This module is imported into the workflow sandbox for every run, as Porpoise's workflow module is,
so it imports nothing heavy at the top.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

TASK_QUEUE = "bench-baseline"
WORKFLOW_TYPE = "BenchDiamond"


@activity.defn(name="bench_noop")
async def noop(name: str) -> str:
    return name


@activity.defn(name="bench_true")
async def run_true(name: str) -> str:
    """``bash -c true`` in a child process of the worker; a non-zero exit fails the activity."""
    proc = await asyncio.create_subprocess_exec("bash", "-c", "true")
    if await proc.wait():
        raise RuntimeError(f"{name}: bash exited with {proc.returncode}")
    return name


@workflow.defn(name=WORKFLOW_TYPE)
class BenchDiamond:
    @workflow.run
    async def run(self, process: bool = False) -> list[str]:
        def step(name: str) -> workflow.ActivityHandle[str]:
            return workflow.start_activity(run_true if process else noop, name,
                                           start_to_close_timeout=timedelta(minutes=5))

        done = [await step("a")]
        done += await asyncio.gather(step("b"), step("c"))
        done.append(await step("d"))
        done.append(await step("e"))
        return done


async def run_worker() -> None:
    import signal
    from concurrent.futures import ThreadPoolExecutor

    from temporalio.worker import Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from core.settings import get_settings
    from core.temporal import connect

    settings = get_settings()
    client = await connect(settings)  # Porpoise's client: the same data converter, retries and TLS
    # As api/worker.py:build_worker, minus Porpoise's own workflows, activities and interceptors.
    restrictions = SandboxRestrictions.default.with_passthrough_modules("model", "core", "pydantic")
    worker = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[BenchDiamond],
        activities=[noop, run_true],
        activity_executor=ThreadPoolExecutor(max_workers=settings.max_concurrent_activities),
        workflow_runner=SandboxedWorkflowRunner(restrictions=restrictions),
        max_cached_workflows=settings.max_cached_workflows,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.max_concurrent_activities,
        graceful_shutdown_timeout=timedelta(seconds=10),
        max_heartbeat_throttle_interval=timedelta(seconds=5),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with worker:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(run_worker())
