"""Start a throwaway Porpoise stack (dev server, worker processes, API) for a benchmark, and sample
the CPU and memory of each process while it runs."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from api.devserver import devserver_command, wait_for_port


def exit_on_sigterm() -> None:
    """Let a bench stopped with ``kill`` (SIGTERM) tear its stacks down as it does on an error.
    Python's default for SIGTERM ends the process at once, and the stack's processes, each in a
    session of its own, stayed behind: a raw worker then polled a dead server for half an hour."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    workers: int = 1
    # "porpoise" (worker + API) or "baseline" (bench/baseline.py's raw-Temporal worker, no API)
    kind: str = "porpoise"
    extra_env: dict[str, str] = field(default_factory=dict)
    # An already running Temporal (e.g. deploy/temporal/server.sh) instead of a fresh dev server;
    # server_pid lets its CPU and memory be sampled like the dev server's.
    temporal_address: str | None = None
    server_pid: int | None = None
    data: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="porpoise-bench-")))
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # the API token, once the stack is up
    metrics_url: str | None = None  # the dev server's Prometheus metrics (bench/server_metrics.py)
    data_dir_info: dict[str, object] = field(default_factory=dict)  # probe_data_dir's, at start
    # Also bench/bare_api.py, the floor of a Python HTTP API in front of Temporal (bench_starts)
    bare_api: bool = False

    def __enter__(self) -> Stack:
        exit_on_sigterm()
        try:
            self._start()
        except BaseException:  # a stack that did not come up is stopped and removed too
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        self.data_dir_info = probe_data_dir(self.data)  # before anything of the stack runs
        tport, uiport, self.api_port, self.bare_api_port = free_port(), free_port(), free_port(), free_port()
        address = self.temporal_address or f"127.0.0.1:{tport}"
        env = dict(os.environ, PORPOISE_DATA_DIR=str(self.data), PORPOISE_TEMPORAL_ADDRESS=address,
                   PORPOISE_API_PORT=str(self.api_port), PORPOISE_TEMPORAL_UI_PORT=str(uiport), **self.extra_env)
        self.env = env

        def spawn(name: str, cmd: list[str]) -> None:
            log = (self.data / f"{name}.log").open("ab")
            self.procs[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True)

        if self.temporal_address is None:
            mport = free_port()
            self.metrics_url = f"http://127.0.0.1:{mport}/metrics"
            spawn("server", devserver_command(db_file=self.data / "temporal.db", port=tport, ui_port=uiport,
                                              metrics_port=mport))
            wait_for_port("127.0.0.1", tport, 60)
        if self.kind == "baseline":
            spawn("worker", [sys.executable, "-m", "bench.baseline"])
            time.sleep(3.0)  # its imports and first polls; the bench's starts queue meanwhile anyway
            return
        if self.workers:  # none: runs are started and wait (bench/bench_starts.py measures starts alone)
            spawn("worker", [sys.executable, "-m", "api", "worker", "--processes", str(self.workers)])
        spawn("api", [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port",
                      str(self.api_port), "--log-level", "warning"])
        if self.bare_api:  # served as the API is: uvicorn's defaults pick httptools and uvloop for both
            spawn("bare_api", [sys.executable, "-m", "uvicorn", "bench.bare_api:app", "--host", "127.0.0.1",
                               "--port", str(self.bare_api_port), "--log-level", "warning"])
            wait_for_port("127.0.0.1", self.bare_api_port, 60)
        wait_for_port("127.0.0.1", self.api_port, 60)
        time.sleep(1.0)
        self.headers = admin_headers(f"sqlite:///{self.data / 'porpoise.db'}")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def bare_api_url(self) -> str:
        return f"http://127.0.0.1:{self.bare_api_port}"

    def tree(self, name: str) -> list[psutil.Process]:
        if name == "server" and name not in self.procs:
            return [psutil.Process(self.server_pid)] if self.server_pid else []
        if name not in self.procs:  # the baseline has no API; a starts-only stack no worker
            return []
        root = psutil.Process(self.procs[name].pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self, name: str, *, reaped_children: bool = False) -> float:
        """CPU of the live process tree; with ``reaped_children``, instead the CPU of children that
        have exited and been waited for (e.g. the worker's SHELL task processes)."""
        total = 0.0
        for p in self.tree(name):
            with contextlib.suppress(psutil.NoSuchProcess):
                t = p.cpu_times()
                total += t.children_user + t.children_system if reaped_children else t.user + t.system
        return total

    def memory_mb(self, name: str) -> tuple[float, float]:
        """RSS and PSS (proportional set size) of the tree, read in one pass. PSS counts a page shared
        by k processes 1/k in each: the worker's SHELL tasks run under supervisors forked from one
        zygote, which share most of their pages with it, and a sum of RSS counts those pages once per
        process."""
        rss = pss = 0
        for p in self.tree(name):
            with contextlib.suppress(psutil.NoSuchProcess):
                try:
                    m = p.memory_full_info()
                    rss, pss = rss + m.rss, pss + m.pss
                except psutil.AccessDenied:  # another user's process (a server we did not start)
                    whole = p.memory_info().rss
                    rss, pss = rss + whole, pss + whole
        return rss / 2**20, pss / 2**20

    def __exit__(self, *exc: object) -> None:
        for p in reversed(list(self.procs.values())):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        # The server's SQLite file, task logs and outbox: 70-140 MB per N=1000 run. Kept on request.
        if not os.environ.get("PORPOISE_BENCH_KEEP"):
            shutil.rmtree(self.data, ignore_errors=True)


PROBE_FILES = 200


def probe_data_dir(data: Path) -> dict[str, object]:
    """Where the stack keeps its files, and what creating one costs there (CPU, µs per file).

    Porpoise creates files as it runs (task logs, the outbox, the server's growing SQLite file); the
    raw diamond almost none. On a file system whose allocator is slow, that alone moves the ratio
    (docs/performance.md, "Where the bench keeps its files"), so every figure carries it."""
    probe = data / "probe"
    probe.mkdir()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    for i in range(PROBE_FILES):
        os.close(os.open(probe / str(i), os.O_CREAT | os.O_WRONLY, 0o600))
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    shutil.rmtree(probe)
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    return {"path": str(data.parent), "fs": filesystem_of(data),
            "file_create_us": round(1e6 * cpu / PROBE_FILES, 1)}


def filesystem_of(path: Path) -> str:
    """The type of the file system ``path`` is on (the longest mount point above it)."""
    resolved = str(path.resolve())
    mounts = [p for p in psutil.disk_partitions(all=True)
              if resolved == p.mountpoint or resolved.startswith(p.mountpoint.rstrip("/") + "/")]
    return max(mounts, key=lambda p: len(p.mountpoint)).fstype if mounts else "unknown"


def admin_headers(database_url: str) -> dict[str, str]:
    """The Authorization header of a new administrator token in ``database_url``, as `porpoise up`
    makes one: the benches' clients go through the API's token check like any other."""
    from storage.security import SecurityStore

    store = SecurityStore(database_url)
    try:
        return {"authorization": f"Bearer {store.issue_token('bench', admin=True)[1]}"}
    finally:
        store.dispose()
