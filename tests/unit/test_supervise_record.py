"""The supervisor's record (activities/supervise.py): each line is durable when append_record returns,
with one fsync for an append and a directory fsync only for the line that creates the file; and a
process's create time matches psutil's with the boot clock read once."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import psutil
import pytest

from activities import supervise
from activities.process import read_record


def test_only_the_line_that_creates_the_record_fsyncs_its_directory(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(supervise.os, "fsync", fsync)
    record = tmp_path / "a.1.proc"
    supervise.append_record(str(record), {"event": "started", "pid": 42, "pgid": 42, "time": 1.0})
    assert synced == ["file", "dir"]
    supervise.append_record(str(record), {"event": "exited", "exit_code": 0, "time": 2.0})
    supervise.append_record(str(record), {"event": "settled", "exit_code": 0, "time": 3.0})
    assert synced == ["file", "dir", "file", "file"]
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    rec = read_record(record)
    assert rec is not None and rec.started is not None and rec.started["pid"] == 42
    assert rec.exit_code == 0 and rec.settled is not None


def test_create_time_matches_psutil_with_the_boot_clock_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervise, "_boot", None)
    proc = subprocess.Popen(["sleep", "5"])
    try:
        first = supervise._create_time(proc.pid)
        assert first == pytest.approx(psutil.Process(proc.pid).create_time(), abs=0.02)
        boot = supervise._boot
        assert boot is not None
        opened: list[str] = []
        real_open = open

        def spy(path: object, *args: object, **kwargs: object) -> object:
            opened.append(str(path))
            return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr("builtins.open", spy)
        assert supervise._create_time(proc.pid) == first
        assert opened == [f"/proc/{proc.pid}/stat"]  # not /proc/stat again
    finally:
        proc.kill()
        proc.wait()
