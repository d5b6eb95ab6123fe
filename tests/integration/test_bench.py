"""The benches print JSON and clean up: `bench_runs --baseline` measures Porpoise and the raw-Temporal
diamond in one invocation and prints both with their ratio (issue 15), and leaves no data directory
behind; `bench_supervisor` measures both ways of starting a task's supervisor."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest


@pytest.mark.timeout(400)
def test_bench_runs_baseline_prints_both_and_the_ratio(tmp_path: Path) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path))  # where the stacks make their data directories
    out = subprocess.run([sys.executable, "-m", "bench.bench_runs", "--n", "5", "--baseline", "--baseline-process",
                          "--dry-run", "--rounds", "2"], env=env, capture_output=True, text=True, timeout=360)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    base, runs = result["baseline"], result["runs"]
    assert base["kind"] == "baseline" and base["succeeded"] == base["closed"] == 5
    assert len(runs) == 1 and runs[0]["dry_run"] is True and runs[0]["succeeded"] == 5
    for r in (base, *runs):
        assert r["workflows_per_s"] > 0 and len(r["load_average"]) == 2
        # Where the stack kept its files, and what a file creation cost there.
        assert r["data_dir"]["path"] == str(tmp_path) and r["data_dir"]["file_create_us"] > 0
        assert r["data_dir"]["fs"] not in ("", "unknown")
        assert {"server", "worker"} <= set(r["cpu_ms_per_run"])
    ratio = runs[0]["vs_baseline"]["workflows_per_s_ratio"]
    assert ratio == pytest.approx(runs[0]["workflows_per_s"] / base["workflows_per_s"], rel=0.01)
    assert result["ratios"] == {"default": ratio}
    # The raw diamond that runs `bash -c true` per activity: its worker's children used CPU, the no-op one's none.
    process = result["baseline_process"]
    assert process["kind"] == "baseline_process" and process["succeeded"] == process["closed"] == 5
    assert process["cpu_ms_per_run"]["worker_tasks"] > 0 == base["cpu_ms_per_run"]["worker_tasks"]
    assert result["ratios_process"] == {"default": runs[0]["vs_baseline_process"]["workflows_per_s_ratio"]}
    # The server's own counters, per run: one start each, and the activities of the 5-task diamond.
    for r in (base, process, *runs):
        frontend = r["server_requests_per_run"]["frontend"]
        assert frontend["StartWorkflowExecution"] == pytest.approx(1, abs=0.01), frontend
        assert frontend["RespondActivityTaskCompleted"] >= 5, frontend
        assert r["server_requests_per_run"]["persistence"], r["server_requests_per_run"]
        # The dev server keeps its search-attribute cache (api/devserver.py): it read its cluster
        # metadata 8 times per raw run and 16 per Porpoise run while it refreshed on every read.
        assert r["server_requests_per_run"]["persistence"].get("GetCurrentClusterMetadata", 0) < 2, r
    assert isinstance(runs[0]["vs_baseline"]["server_requests_per_run_delta"], dict)
    # Two rounds, the second in the reverse order; the medians are over both rounds' ratios.
    first, second = result["rounds"]
    assert first["order"] == ["baseline", "baseline_process", "dev/default"] == second["order"][::-1]
    assert first["ratios"] == result["ratios"]
    assert first["succeeded"] == second["succeeded"] == {side: "5/5" for side in first["order"]}
    assert result["ratios_median"]["default"] == pytest.approx(
        (first["ratios"]["default"] + second["ratios"]["default"]) / 2, abs=0.002)
    assert set(result["ratios_process_median"]) == {"default"}
    # Each round keeps every side's rate and CPU per run (the first round's are the full results).
    assert first["sides"]["dev/default"]["workflows_per_s"] == runs[0]["workflows_per_s"]
    assert all(set(r["sides"]) == set(first["order"]) for r in (first, second))
    assert "events_cost" not in result  # only with "off" and another events mode
    assert not list(tmp_path.glob("porpoise-bench-*")), "the bench left its data directory behind"


@pytest.mark.timeout(200)
def test_bench_starts_measures_api_and_raw_starts_side_by_side(tmp_path: Path) -> None:
    """Starts alone (no worker): every side started all its runs, the ratios are the medians' ratios,
    and the API's and the bare API's own CPU are counted for their sides only."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "bench.bench_starts", "--n", "20", "--rounds", "2",
                          "--concurrency", "5"], env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    median = result["median"]
    assert set(median) == {"raw", "raw_attributes", "bare_api", "api"}
    assert all(len(rounds) == 2 for rounds in result["rounds_by_side"].values())
    assert result["api_vs_raw"] == pytest.approx(median["api"]["starts_per_s"] / median["raw"]["starts_per_s"],
                                                 rel=0.01)
    assert result["api_vs_bare_api"] == pytest.approx(
        median["api"]["starts_per_s"] / median["bare_api"]["starts_per_s"], rel=0.01)
    assert median["api"]["cpu_ms_per_start"]["api"] > 0.5 > median["raw"]["cpu_ms_per_start"]["api"]
    # The bare API's process made its side's starts, and only those (CPU times come in 10 ms ticks:
    # one tick is 0.5 ms per start here, so an idle process may show one).
    bare, api = median["bare_api"]["cpu_ms_per_start"], median["api"]["cpu_ms_per_start"]
    assert bare["bare_api"] > 0.3 and api["bare_api"] < bare["bare_api"] / 2
    assert bare["api"] < api["api"] / 2
    assert not list(tmp_path.glob("porpoise-bench-*")), "the bench left its data directory behind"


@pytest.mark.timeout(300)
def test_bench_activation_prints_json_and_the_run_succeeds(tmp_path: Path) -> None:
    """The activation bench goes through the API with a token, and its worker reads what the API
    encoded (the same payload codec); its stdout is the JSON alone."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "bench.bench_activation", "--tasks", "30"],
                         env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    (size,) = json.loads(out.stdout)["sizes"]
    assert size["tasks"] == 30 and size["state"] == "SUCCESS", size
    assert size["activations"]["count"] > 0


@pytest.mark.timeout(120)
def test_bench_supervisor_measures_both_ways_and_cleans_up(tmp_path: Path) -> None:
    env = dict(os.environ, TMPDIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "bench.bench_supervisor", "--tasks", "6", "--rounds", "1",
                          "--concurrency", "3"], env=env, capture_output=True, text=True, timeout=100)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    for way in ("exec", "zygote"):
        assert result[way]["process_cpu_ms_per_task"] > 0 and result[way]["wall_ms_per_task"] > 0, result
        assert len(result[way]["rounds"]) == 1
    assert not list(tmp_path.glob("porpoise-bench-sup-*")), "the bench left its directory behind"


@pytest.mark.timeout(120)
def test_a_bench_stopped_with_sigterm_leaves_no_process_or_directory(tmp_path: Path) -> None:
    """`kill` of a bench mid-run tears its stack down: its server, worker and API processes (each in
    a session of its own) stop, and its data directory goes."""
    env = dict(os.environ, TMPDIR=str(tmp_path))
    bench = subprocess.Popen([sys.executable, "-m", "bench.bench_runs", "--n", "400"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stack: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while not any("uvicorn" in " ".join(p.cmdline()) for p in stack):  # the whole stack is up
            assert time.monotonic() < deadline and bench.poll() is None, "the bench's stack never came up"
            time.sleep(0.2)
            stack = [p for p in psutil.process_iter() if _started_by(p, str(tmp_path))]
        bench.send_signal(signal.SIGTERM)
        assert bench.wait(60) != 0
        gone, alive = psutil.wait_procs(stack, timeout=30)
        assert not alive, [p.cmdline() for p in alive]
        assert not list(tmp_path.glob("porpoise-bench-*")), "the bench left its data directory behind"
    finally:
        bench.kill()
        for p in stack:
            with contextlib.suppress(psutil.Error):
                p.kill()


def _started_by(p: psutil.Process, tmpdir: str) -> bool:
    """A process of a stack whose data directory is under ``tmpdir`` (its environment says so)."""
    try:
        return p.environ().get("PORPOISE_DATA_DIR", "").startswith(tmpdir)
    except psutil.Error:
        return False
