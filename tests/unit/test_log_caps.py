"""Task-log size caps (head + rolling tail), the live-tail sidecar, reading, and the disk sweeper.

The reference's log storm (DS #13045, §8): a task printing in a tight loop must never fill the disk.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.log_budget import LOCK_NAME, QUIET_SECONDS, run_log_sweeper, sweep
from activities.logs import (
    LogPolicy,
    TaskLog,
    configure_task_logs,
    follow_log,
    has_footer,
    read_log,
    tail_path,
)
from activities.shell import run_shell
from core.contracts import TaskRequest
from core.settings import Settings


def make_settings(**fields: Any) -> Settings:
    return Settings(**fields)  # the rest from the environment, as get_settings() does

DROPPED = re.compile(rb"\[porpoise\] (\d+) bytes dropped of (\d+) bytes of output; the last (\d+) bytes follow\n")


def storm(log: TaskLog, lines: int) -> int:
    """Write ``lines`` numbered lines the way the process pump does; return the bytes written."""
    total = 0
    for i in range(lines):
        line = b"storm %08d\n" % i
        log.write(line)
        total += len(line)
        if i % 1000 == 0:
            log.flush()
    return total


def output_of(text: bytes) -> bytes:
    """The file without our own [porpoise] lines."""
    return b"".join(line for line in text.splitlines(keepends=True) if not line.startswith(b"[porpoise] "))


def test_head_and_tail_are_kept_and_the_drop_is_counted(tmp_path: Path) -> None:
    cap, tail = 32 * 1024, 8 * 1024
    log = TaskLog(tmp_path / "1.1.log", max_bytes=cap, tail_bytes=tail)
    with log.open(task_name="t", task_type="SHELL", attempt=1):
        total = storm(log, 200_000)  # 3 MB: 100 times the cap
    assert log.truncated and log.output_bytes == total
    data = (tmp_path / "1.1.log").read_bytes()
    out = output_of(data)
    assert len(out) <= cap + 1  # + the newline that ends the head's cut line
    assert len(data) <= cap + 1024  # header, the two markers and the footer
    assert out.startswith(b"storm 00000000\nstorm 00000001\n")
    assert out.endswith(b"storm 00199999\n")
    assert b"[porpoise] output passed %d bytes" % (cap - tail) in data
    m = DROPPED.search(data)
    assert m is not None
    dropped, seen, kept_tail = (int(g) for g in m.groups())
    assert seen == total
    head = output_of(data[: data.index(b"[porpoise] output passed")])
    assert len(head) == cap - tail + 1 and head.endswith(b"\n")
    assert dropped + kept_tail + cap - tail == total
    tail_text = data[m.end() : data.index(b"[porpoise] end exit=")]
    assert len(tail_text) == kept_tail <= tail
    assert re.fullmatch(rb"(storm \d{8}\n)+", tail_text)  # the tail starts on a line boundary
    assert not tail_path(tmp_path / "1.1.log").exists()


def test_without_a_tail_only_the_head_is_kept(tmp_path: Path) -> None:
    log = TaskLog(tmp_path / "1.1.log", max_bytes=4096, tail_bytes=0)
    with log.open(task_name="t", task_type="SHELL", attempt=1):
        total = storm(log, 10_000)
        log.note("a note past the cap is still written")
    data = (tmp_path / "1.1.log").read_bytes()
    assert len(output_of(data)) == 4096 + 1  # + the newline that ends the cut line
    assert b"[porpoise] output truncated at 4096 bytes\n" in data
    assert b"[porpoise] a note past the cap is still written\n" in data
    assert b"[porpoise] %d bytes dropped of %d bytes of output\n" % (total - 4096, total) in data


def test_output_under_the_cap_is_untouched(tmp_path: Path) -> None:
    log = TaskLog(tmp_path / "1.1.log", max_bytes=1 << 20, tail_bytes=1 << 16)
    with log.open(task_name="t", task_type="SHELL", attempt=1):
        total = storm(log, 1000)
    data = (tmp_path / "1.1.log").read_bytes()
    assert len(output_of(data)) == total and b"dropped" not in data


def test_just_past_the_head_drops_nothing(tmp_path: Path) -> None:
    log = TaskLog(tmp_path / "1.1.log", max_bytes=1000, tail_bytes=500)
    with log.open(task_name="t", task_type="SHELL", attempt=1):
        log.write(b"x" * 600 + b"\n")
    data = (tmp_path / "1.1.log").read_bytes()
    assert output_of(data).replace(b"\n", b"") == b"x" * 600
    assert b"[porpoise] 0 bytes dropped of 601 bytes of output; the last 101 bytes follow" in data


def test_the_live_tail_sidecar_while_past_the_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("activities.logs.SIDECAR_INTERVAL", 0.0)
    path = tmp_path / "1.1.log"
    log = TaskLog(path, max_bytes=8192, tail_bytes=2048)
    with log.open(task_name="t", task_type="SHELL", attempt=1):
        storm(log, 5000)
        log.write(b"latest line\n")
        log.flush()
        side = tail_path(path)
        assert side.is_file() and side.stat().st_size <= 2048
        assert side.read_bytes().endswith(b"latest line\n")
        live = read_log(path, lines=2)
        assert live.data == b"storm 00004999\nlatest line\n" and live.live_tail > 0
        assert not has_footer(path.read_bytes())
    assert not side.exists()
    assert read_log(path, lines=1).data.startswith(b"[porpoise] end exit=")
    assert has_footer(path.read_bytes())


def test_read_log_ranges(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_bytes(b"one\ntwo\nthree\n")
    assert read_log(path, offset=4).data == b"two\nthree\n"
    part = read_log(path, offset=4, limit=4)
    assert part.data == b"two\n" and part.next_offset == 8 and part.size == 14
    assert read_log(path, tail=6).data == b"three\n"
    assert read_log(path, lines=2).data == b"two\nthree\n"
    assert read_log(path, lines=10).data == b"one\ntwo\nthree\n"
    assert read_log(path, offset=99).data == b""


async def test_follow_streams_until_the_footer(tmp_path: Path) -> None:
    path = tmp_path / "1.1.log"
    log = TaskLog(path)
    log.open(task_name="t", task_type="SHELL", attempt=1)

    async def writer() -> None:
        for i in range(5):
            log.write(b"tick %d" % i)  # the line is finished by the next write
            log.flush()
            await asyncio.sleep(0.05)
            log.write(b"\n")
            log.flush()
        log.close("0")

    async def always() -> bool:
        return True

    task = asyncio.create_task(writer())
    chunks = [c async for c in follow_log(path, 0, always, poll=0.02)]
    await task
    text = b"".join(chunks)
    assert all(c.endswith(b"\n") for c in chunks)  # complete lines only
    assert text == path.read_bytes() and has_footer(text)


async def test_follow_stops_when_the_task_is_over(tmp_path: Path) -> None:
    path = tmp_path / "1.1.log"
    path.write_bytes(b"crashed worker, no footer\npartial")
    calls = 0

    async def over() -> bool:
        nonlocal calls
        calls += 1
        return False

    text = b"".join([c async for c in follow_log(path, 0, over, poll=0.01, status_every=0.05)])
    assert text == b"crashed worker, no footer\npartial" and calls == 1


# -- the real SHELL activity ------------------------------------------------------------------------


def _env(**settings: Any) -> ActivityEnvironment:
    queue = f"caps-{uuid.uuid4().hex[:6]}"
    configure_task_logs(make_settings(task_queue=queue, **settings))
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, task_queue=queue)
    return env


async def test_shell_task_in_a_tight_loop_stays_under_the_cap(tmp_path: Path) -> None:
    cap, tail = 64 * 1024, 16 * 1024
    env = _env(log_max_bytes_per_task=cap, log_tail_bytes=tail)
    req = TaskRequest(instance_id="wf", task_code=5, task_name="storm", task_type="SHELL",
                      task_params={"rawScript": "seq 1 1000000; echo done"}, log_dir=str(tmp_path))
    result = await env.run(run_shell, req)  # ~6.9 MB of output: more than 100 times the cap
    data = Path(result.log_path).read_bytes()
    assert len(output_of(data)) <= cap + 1
    assert len(data) <= cap + 2048
    assert output_of(data).startswith(b"1\n2\n3\n") and output_of(data).endswith(b"999999\n1000000\ndone\n")
    m = DROPPED.search(data)
    assert m is not None and int(m.group(2)) == sum(len(str(i)) + 1 for i in range(1, 1_000_001)) + 5
    assert has_footer(data) and b"end exit=0" in data


def test_policy_from_settings() -> None:
    assert LogPolicy.from_settings(make_settings(log_max_bytes_per_task=0)).max_bytes is None
    p = LogPolicy.from_settings(make_settings(log_max_bytes_per_task=1000, log_tail_bytes=10,
                                         log_mask_rules={"SQL": ["x"]}))
    assert (p.max_bytes, p.tail_bytes, dict(p.mask_rules)) == (1000, 10, {"SQL": ("x",)})


def test_default_cap_is_64_mib() -> None:
    assert Settings.model_fields["log_max_bytes_per_task"].default == 64 * 1024 * 1024


# -- the sweeper ------------------------------------------------------------------------------------


def make_instance(root: Path, name: str, size: int, age: float, *, finished: bool = True,
                  sidecar: bool = False) -> Path:
    d = root / name
    (d / "1.1.work").mkdir(parents=True)
    (d / "1.1.work" / "data.bin").write_bytes(b"w" * size)
    footer = b"[porpoise] end exit=0 duration=1.000s\n" if finished else b""
    (d / "1.1.log").write_bytes(b"[porpoise] start\nout\n" + footer)
    if sidecar:
        (d / "1.1.log.tail").write_bytes(b"tail\n")
    when = time.time() - age
    for p in [*d.rglob("*"), d]:
        os.utime(p, (when, when), follow_symlinks=False)
    return d


def test_sweep_deletes_by_age(tmp_path: Path) -> None:
    old = make_instance(tmp_path, "old", 100, age=3 * 86400, finished=False)
    new = make_instance(tmp_path, "new", 100, age=3600)
    report = sweep(tmp_path, retention_days=2, budget_bytes=0)
    assert report.expired == [old] and not old.exists() and new.exists()


def test_sweep_evicts_oldest_finished_first_to_meet_the_budget(tmp_path: Path) -> None:
    a = make_instance(tmp_path, "a", 10_000, age=5000)
    b = make_instance(tmp_path, "b", 10_000, age=4000)
    c = make_instance(tmp_path, "c", 10_000, age=3000)
    running = make_instance(tmp_path, "running", 50_000, age=6000, finished=False)  # oldest, but no footer
    storming = make_instance(tmp_path, "storming", 10_000, age=7000, sidecar=True)
    recent = make_instance(tmp_path, "recent", 10_000, age=QUIET_SECONDS / 4)
    report = sweep(tmp_path, retention_days=30, budget_bytes=90_000)
    assert report.evicted == [a, b]
    assert all(p.exists() for p in (c, running, storming, recent))
    assert report.total_bytes <= 90_000 and not report.over_budget


def test_sweep_never_deletes_running_logs_for_the_budget(tmp_path: Path) -> None:
    running = make_instance(tmp_path, "running", 50_000, age=6000, finished=False)
    report = sweep(tmp_path, retention_days=0, budget_bytes=1000)
    assert running.exists() and report.over_budget and report.evicted == []


def test_sweep_ignores_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.bin").write_bytes(b"k" * 50_000)
    root = tmp_path / "logs"
    inst = make_instance(root, "i", 10, age=5000)
    (inst / "link").symlink_to(outside, target_is_directory=True)
    for p in (inst / "link", inst):
        os.utime(p, (time.time() - 5000,) * 2, follow_symlinks=False)
    report = sweep(root, retention_days=0, budget_bytes=1)
    assert report.evicted == [inst] and (outside / "keep.bin").exists()


def test_one_sweep_at_a_time_per_root(tmp_path: Path) -> None:
    make_instance(tmp_path, "a", 10_000, age=5000)
    fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert sweep(tmp_path, retention_days=0, budget_bytes=1).skipped
    finally:
        os.close(fd)
    assert sweep(tmp_path, retention_days=0, budget_bytes=1).evicted


async def test_run_log_sweeper_sweeps_and_stops(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path, log_retention_days=1, log_disk_budget_bytes=0,
                        log_sweep_interval_seconds=0.05)
    old = make_instance(settings.resolved_log_dir, "old", 10, age=2 * 86400)
    stop = asyncio.Event()
    task = asyncio.create_task(run_log_sweeper(settings, stop))
    deadline = time.monotonic() + 5
    while old.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not old.exists()
    stop.set()
    await asyncio.wait_for(task, 2)
