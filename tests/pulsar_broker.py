"""A real Apache Pulsar standalone broker for tests, started by deploy/pulsar/pulsar.sh on free ports.

Skipped when deploy/pulsar/target/lib has not been built (`deploy/pulsar/pulsar.sh build`), unless
PORPOISE_REQUIRE_PULSAR=1, which turns the skip into a failure (.ci/run sets it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pulsar
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "pulsar" / "pulsar.sh"
LIB = ROOT / "deploy" / "pulsar" / "target" / "lib"

# The client's C++ core logs every connection at INFO; warnings only, written by C++ itself (a Python
# logger can abort the process at exit, apache/pulsar-client-python#256).
CLIENT_LOG = pulsar.FileLogger(pulsar.LoggerLevel.Warn, "/dev/stderr")


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Broker:
    data: Path
    env: dict[str, str]
    url: str = ""
    start_seconds: list[float] = field(default_factory=list)

    def _run(self, cmd: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(SCRIPT), cmd], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def start(self) -> None:
        t0 = time.monotonic()
        r = self._run("start", timeout=180)
        if r.returncode != 0:
            pytest.fail(f"pulsar.sh start failed ({r.returncode}):\n{r.stderr[-6000:]}")
        self.start_seconds.append(time.monotonic() - t0)
        self.url = r.stdout.strip().splitlines()[-1]
        assert self.url.startswith("pulsar://127.0.0.1:"), r.stdout

    def stop(self) -> None:
        r = self._run("stop", timeout=90)
        assert r.returncode == 0, r.stderr

    def pid(self) -> int:
        return int((self.data / "pulsar.pid").read_text())

    def client(self) -> pulsar.Client:
        return pulsar.Client(self.url, operation_timeout_seconds=20, logger=CLIENT_LOG)

    def log_tail(self) -> str:
        log = self.data / "logs" / "pulsar.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"


def start_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if not (LIB / ".complete").exists():
        reason = f"Pulsar jars not built ({LIB}): run deploy/pulsar/pulsar.sh build"
        if os.environ.get("PORPOISE_REQUIRE_PULSAR") == "1":
            pytest.fail(f"PORPOISE_REQUIRE_PULSAR=1 but {reason}")
        pytest.skip(reason)
    data = tmp_path_factory.mktemp("pulsar")
    broker_port, web_port, bookie_port = _free_ports(3)
    env = {
        **os.environ,
        "PORPOISE_PULSAR_DATA": str(data),
        "PULSAR_BROKER_PORT": str(broker_port),
        "PULSAR_WEB_PORT": str(web_port),
        "PULSAR_BOOKIE_PORT": str(bookie_port),
    }
    b = Broker(data=data, env=env)
    b.start()
    try:
        yield b
    finally:
        b.stop()


