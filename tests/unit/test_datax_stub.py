"""The DataX contract stand-in keeps its contract (infrastructure notes §4.3, §6), so the runner tests
that rely on it test what real DataX would do: usage 255, ``-p`` substitution, Framework-03 for a
missing speed, the statistics block only on success, 143 when killed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

STUB = Path(__file__).resolve().parents[1] / "datax_stub" / "datax.py"


def job(tmp_path: Path, setting: dict[str, object], **reader: object) -> Path:
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"job": {"content": [{
        "reader": {"name": "streamreader", "parameter": {"column": [{"value": "x"}], "sliceRecordCount": 4,
                                                         **reader}},
        "writer": {"name": "streamwriter", "parameter": {"print": False}}}], "setting": setting}}))
    return path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(STUB), *args], capture_output=True, text=True, timeout=30,
                          env={"DATAX_STUB_INTERVAL": "0.01", **(env or {})})


def test_usage_error_exits_255() -> None:
    assert run().returncode == 255


def test_success_prints_progress_and_the_block(tmp_path: Path) -> None:
    done = run("--jvm=-Xms1G -Xmx1G", "-p", "-Dn='4'", str(job(tmp_path, {"speed": {"channel": 1}},
                                                                  sliceRecordCount="${n}")))
    assert done.returncode == 0, done.stdout
    assert "StandAloneJobContainerCommunicator - Total 4 records" in done.stdout and "读出记录总数" in done.stdout


def test_missing_speed_is_framework_03(tmp_path: Path) -> None:
    done = run(str(job(tmp_path, {})))
    assert done.returncode == 1 and "Code:[Framework-03]" in done.stdout and "读出记录总数" not in done.stdout


def test_dirty_limit_exceeded_exits_1_without_block(tmp_path: Path) -> None:
    done = run(str(job(tmp_path, {"speed": {"channel": 1}, "errorLimit": {"record": 0}})),
               env={"DATAX_STUB_MODE": "dirty-limit-exceeded"})
    assert done.returncode == 1 and "Framework-14" in done.stdout and "读出记录总数" not in done.stdout


def test_sigterm_exits_143(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, str(STUB), str(job(tmp_path, {"speed": {"channel": 1}}))],
                            stdout=subprocess.PIPE, env={"DATAX_STUB_MODE": "hang", "DATAX_STUB_INTERVAL": "0.05"})
    assert proc.stdout is not None
    proc.stdout.readline()
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 143
    proc.stdout.close()
