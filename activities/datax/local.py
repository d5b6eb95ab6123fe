"""Run a DataX job on this worker: ``<python> datax.py --jvm="-Xms{xms}G -Xmx{xmx}G" job.json``.

The job JSON holds the resolved credentials, so it lives in a private temporary directory (0700,
from :func:`tempfile.mkdtemp`) as a 0600 file, and both are deleted when the run ends, however it
ends (success, failure, cancel). Nothing secret is on the command line (``ps`` would show it).
The process itself is :func:`activities.process.run_process`: own process group, streamed output,
heartbeats, SIGTERM/SIGKILL of the whole group on cancel (datax.py then exits 143, notes §4.3).
"""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Sequence
from pathlib import Path

from activities.logs import TaskLog, attempt_path, ensure_dir
from activities.process import ProcessOutcome, run_process, write_private_file
from core.contracts import TaskRequest

from .stats import StatsParser


class DataxLog(TaskLog):
    """The task log, which also hands every byte of DataX output to the statistics parser, so the
    local pipe and the pod log stream are parsed by the same code on the same path."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.parser = StatsParser()

    def write(self, data: bytes, *, internal: bool = False) -> None:
        if not internal:
            self.parser.feed(data)
        super().write(data, internal=internal)


def jvm_option(xms: int, xmx: int) -> str:
    """DS's ``--jvm="-Xms{xms}G -Xmx{xmx}G"`` (appended to datax.py's defaults; the last flag wins)."""
    return f"--jvm=-Xms{xms}G -Xmx{xmx}G"


async def run_local(job_json: str, *, request: TaskRequest, attempt: int, log: DataxLog, launcher: Sequence[str],
                    xms: int, xmx: int, label: str) -> ProcessOutcome:
    """Write the job privately, run datax.py on it, delete it. Raises like :func:`run_process`."""
    workdir = ensure_dir(attempt_path(request.log_dir, request.task_code, attempt, ".work"))
    with tempfile.TemporaryDirectory(prefix="porpoise-datax-") as private:
        path = Path(private) / f"{request.task_code}.{attempt}.job.json"
        write_private_file(path, job_json, 0o600)
        argv = [*launcher, jvm_option(xms, xmx), str(path)]
        log.note(f"running locally: {shlex.join(argv)} (job file 0600, deleted after the run)")
        try:
            return await run_process(argv, cwd=workdir, log=log, kill_grace_seconds=request.kill_grace_seconds,
                                     label=label)
        finally:
            log.parser.close()
