"""The Porpoise worker process: the generic workflow plus the task-type activities.

A Python worker saturates about one core (temporal-notes B13), so `porpoise worker --processes N`
runs N of these; they share the task queue and Temporal balances between them.

Worker groups (core/worker_groups.py): every process runs the workflows on the shared task queue, and
the activities of each group it serves (`--group NAME`, repeatable; `default` unless `--no-default`)
on that group's queue, each beside its host queue for lost attempts (core.temporal.host_task_queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import signal
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.events.relay import EventActivities, OutboxRelay
from activities.events.sinks import EventSink, OutboxOnlySink, PulsarSink, TopicFn
from activities.log_budget import run_log_sweeper
from activities.logs import configure_task_logs
from core.events import EventType
from core.heap import freeze_startup_heap
from core.settings import Settings, get_settings
from core.temporal import connect, host_task_queue
from core.worker_groups import DEFAULT_GROUP, check_name, group_task_queue
from storage.outbox import Outbox
from workflows.complement import ComplementWorkflow
from workflows.ds_workflow import DsWorkflow
from workflows.task_group import SemaphoreWorkflow

from .delegating_runner import context_free
from .interceptors import EventsInterceptor
from .starvation import tolerate_starvation

log = logging.getLogger("porpoise.worker")


def activities(settings: Settings, client: Client | None = None) -> list[Callable[..., Any]]:
    from activities.datax.activity import datax_activities
    from activities.definitions import DefinitionActivities
    from activities.http_task import run_http
    from activities.python_task import run_python
    from activities.shell import run_shell
    from activities.sql_task import sql_activities
    from storage.definitions import DefinitionStore

    store = DefinitionStore(settings.resolved_database_url)
    definitions = DefinitionActivities(store)
    acts: list[Callable[..., Any]] = [run_shell, run_python, run_http, *local_activities(),
                                      definitions.load_definition, *sql_activities(settings),
                                      *datax_activities(settings)]
    from activities.task_group import semaphore_dead_holders, semaphore_signal_with_start

    acts += [semaphore_signal_with_start, semaphore_dead_holders]
    from activities.alerts.activity import alert_activities

    acts += alert_activities(settings)  # like SQL: refuses to start without a secret key outside dev mode
    if client is not None:  # DEPENDENT reads other runs through Temporal visibility
        from activities.dependent import DependentActivities

        acts.append(DependentActivities(client, forced_success=store.forced_success).check_dependent)
        from activities.instances import InstanceActivities

        acts.append(InstanceActivities(client).load_instance_status)  # recovering sub-processes
    return acts


def event_sink(settings: Settings) -> EventSink:
    if not settings.pulsar_url:
        return OutboxOnlySink()
    return PulsarSink(settings.pulsar_url, topic_for(settings), producer_name=f"porpoise-{socket.gethostname()}")


def topic_for(settings: Settings) -> dict[str, str] | str | TopicFn:
    base = settings.events_topic
    if settings.events_topic_mode == "per_kind":
        return {kind.value: f"{base}-{kind.value.lower().replace('_', '-')}" for kind in EventType} | {
            "default": base}
    if settings.events_topic_mode == "per_project":
        return lambda body: f"{base}-{json.loads(body)['project_code']}"
    return base


def served_groups(groups: list[str] | tuple[str, ...] = (), *, default: bool = True) -> list[str]:
    """The worker groups a process serves: ``default`` (unless ``default`` is False) and ``groups``,
    each once, in order. ValueError for a name that cannot be a group, or for serving none."""
    out = [DEFAULT_GROUP] if default else []
    for g in groups:
        g = check_name(g.strip())
        if g == DEFAULT_GROUP and not default:
            continue  # --no-default wins over --group default
        if g not in out:
            out.append(g)
    if not out:
        raise ValueError("this worker would serve no worker group: give --group NAME or drop --no-default")
    return out


# The workflow side of the worker: build_worker runs it, build_replayer replays recorded histories
# against it (tests/unit/test_replay.py), so the two cannot drift apart.
WORKFLOWS: list[type] = [DsWorkflow, SemaphoreWorkflow, ComplementWorkflow]


def workflow_runner(*, strict: bool = False) -> SandboxedWorkflowRunner:
    """The sandbox the workflows run in. ``model``, ``core`` and pydantic are imported once per process
    (pure code, no module state), and so are our own ``workflows`` modules unless ``strict``.

    Why ``workflows`` too: the sandbox re-imports every non-passthrough module for every new run, and
    re-executing ``workflows.ds_workflow`` (its ``workflow.defn`` inspects every method's signature) was
    the largest single item of the worker's CPU per run (about 20 % of its samples, docs/performance.md)
    and a private copy of the module per cached run. Those modules keep no mutable state at module
    level, so sharing them between runs changes nothing a run can see. What it gives up is the
    sandbox's check that *our* workflow code calls nothing non-deterministic (``datetime.now``, file
    I/O): ``strict`` keeps it, and the replay tests (tests/unit/test_replay.py) replay every recorded
    history with both runners, so such a call still fails a test before it ships."""
    modules = ("model", "core", "pydantic") if strict else ("model", "core", "pydantic", "workflows")
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*modules)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def build_replayer(settings: Settings, *, strict: bool = False, deadlock_detection: bool = True) -> Replayer:
    """A Replayer with the worker's workflows, sandbox, data converter and (when events are on) the
    lifecycle interceptor, whose event activities are workflow commands too. Its outbox is never
    written during a replay, so an in-memory one stands in. ``strict``: the full sandbox (see
    :func:`workflow_runner`)."""
    events = (EventsInterceptor(Outbox("sqlite://"), settings.events_emit_bound_seconds)
              if settings.events_enabled else None)
    runner = context_free(workflow_runner(strict=strict), pydantic_data_converter)
    # ``deadlock_detection=False``: the SDK's 2 s wall-clock limit per activation is off (its debug
    # mode, which keeps the sandbox): a replay on a loaded machine checks determinism, not speed.
    return Replayer(workflows=WORKFLOWS, workflow_runner=events.runner(runner) if events else runner,
                    interceptors=[events] if events else [],
                    data_converter=pydantic_data_converter, debug_mode=not deadlock_detection)


def build_worker(client: Client, settings: Settings, outbox: Outbox | None = None,
                 *, default_group: bool = True) -> Worker:
    """The workflow worker on the shared task queue, with the default group's activities unless
    ``default_group`` is False. Then it runs workflows only and polls no activity on the shared queue:
    Temporal hands a queue's activity tasks to any poller of it, and a poller that lacks SHELL fails
    the default group's SHELL task ("not registered"). The workflow-side activities (definitions,
    task groups, alerts, DEPENDENT checks, events) are then served by the default group's workers."""
    configure_task_logs(settings)  # this worker's log cap and per-type mask rules
    acts = shared_queue_activities(settings, client, default_group=default_group)
    interceptors = []
    runner: WorkflowRunner = context_free(workflow_runner(), client.data_converter)
    if settings.events_enabled:
        events = EventsInterceptor(outbox or Outbox(settings.resolved_database_url),
                                   settings.events_emit_bound_seconds)
        if default_group:
            acts.append(EventActivities(events.writer).append_events)
        interceptors.append(events)
        runner = events.runner(runner)  # commits the instance events each activation hands over
    return tolerate_starvation(Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        # Serving no default group, it polls no activity on the shared queue, but a workflow's local
        # activities still run in the worker that runs the workflow.
        activities=acts if default_group else local_activities(),
        no_remote_activities=not default_group,
        interceptors=interceptors,
        activity_executor=ThreadPoolExecutor(max_workers=settings.max_concurrent_activities),
        workflow_runner=runner,
        max_cached_workflows=settings.max_cached_workflows,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_concurrent_activities=settings.max_concurrent_activities,
        graceful_shutdown_timeout=timedelta(seconds=10),
        # Heartbeats go out at least every 5 s when tasks beat (the default, 80 % of the heartbeat
        # timeout, left 2 s of slack under load: tasks timed out on a busy machine).
        max_heartbeat_throttle_interval=timedelta(seconds=5),
    ), settings.workflow_deadlock_seconds)


def shared_queue_activities(settings: Settings, client: Client, *, default_group: bool) -> list[Callable[..., Any]]:
    """What a process polls on the shared task queue: every activity when it serves the default group,
    none otherwise (see build_worker)."""
    return activities(settings, client) if default_group else []


def local_activities() -> list[Callable[..., Any]]:
    """The local activities a workflow runs in the worker that runs it, whatever groups it serves."""
    from activities.lost_attempts import find_lost_attempt
    from activities.switch import evaluate_switch

    return [evaluate_switch, find_lost_attempt]


def build_group_worker(client: Client, settings: Settings, main: Worker, group: str) -> Worker:
    """The activity worker of worker group ``group`` (not default) on its own task queue."""
    return _activity_worker(client, settings, main, group_task_queue(settings.task_queue, group))


def build_host_worker(client: Client, settings: Settings, main: Worker, group: str = DEFAULT_GROUP) -> Worker:
    """The worker of this host's own task queue for ``group`` (core.temporal.host_task_queue): it runs
    the attempt that follows a lost one, so it can re-attach to the task process the lost worker left
    running, with the settings of the group the task ran in."""
    return _activity_worker(client, settings, main, host_task_queue(group_task_queue(settings.task_queue, group)))


def _activity_worker(client: Client, settings: Settings, main: Worker, queue: str) -> Worker:
    configure_task_logs(settings, queue)
    return Worker(
        client,
        task_queue=queue,
        activities=activities(settings, client),
        interceptors=list(main.config().get("interceptors") or []),  # the same task-instance events
        activity_executor=ThreadPoolExecutor(max_workers=settings.max_concurrent_activities),
        max_concurrent_activities=settings.max_concurrent_activities,
        graceful_shutdown_timeout=timedelta(seconds=10),
        max_heartbeat_throttle_interval=timedelta(seconds=5),
    )


async def run_worker(settings: Settings, groups: list[str] | None = None) -> None:
    groups = groups or [DEFAULT_GROUP]
    client = await connect(settings)
    if settings.temporal_register:  # a real server has only what was created on it (core/registration.py)
        from core.registration import ensure_registered

        await ensure_registered(client)
    worker = build_worker(client, settings, default_group=DEFAULT_GROUP in groups)
    others = [build_group_worker(client, settings, worker, g) for g in groups if g != DEFAULT_GROUP]
    hosts = [build_host_worker(client, settings, worker, g) for g in groups]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    relay = asyncio.create_task(run_relay(settings, stop)) if settings.events_enabled else None
    sweeper = asyncio.create_task(run_log_sweeper(settings, stop))  # log retention and disk budget
    health = (asyncio.create_task(_touch_while_running(settings.worker_health_file, stop))  # liveness probe
              if settings.worker_health_file else None)
    async with contextlib.AsyncExitStack() as running:
        for w in (worker, *others, *hosts):
            await running.enter_async_context(w)
        log.info("worker of groups %s polling task queues %s at %s", ", ".join(groups),
                 ", ".join(w.task_queue for w in (worker, *others, *hosts)), settings.temporal_address)
        freeze_startup_heap()  # start-up is done: full collections no longer walk its objects
        await stop.wait()
    for interceptor in worker.config().get("interceptors") or []:
        if isinstance(interceptor, EventsInterceptor):
            await asyncio.to_thread(interceptor.close)
    if relay:
        await relay
    await sweeper
    if health:
        await health


async def _touch_while_running(path: Path, stop: asyncio.Event, every: float = 5.0) -> None:
    while not stop.is_set():
        path.touch()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def run_relay(settings: Settings, stop: asyncio.Event) -> None:
    """Publish the outbox to the configured sink until `stop` (one relay at a time holds the lease)."""
    outbox = Outbox(settings.resolved_database_url)
    sink = event_sink(settings)
    try:
        await OutboxRelay(outbox, sink, retention=timedelta(days=settings.events_retention_days)).run(stop)
    finally:
        sink.close()
        outbox.dispose()


def _child(groups: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run_worker(get_settings(), groups))


def _pool_child(groups: list[str] | None) -> None:
    from .devserver import die_with_parent

    die_with_parent()  # a killed `porpoise worker --processes N` takes its N processes along
    _child(groups)


def main(processes: int = 1, groups: list[str] | None = None) -> None:
    if processes <= 1:
        _child(groups)
        return
    procs = [multiprocessing.Process(target=_pool_child, args=(groups,), name=f"porpoise-worker-{i}")
             for i in range(processes)]
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
