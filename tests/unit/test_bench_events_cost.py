"""bench_runs' paired events cost (bench/bench_runs.py, ``events_cost``): each events mode against
"off" of the same round, as throughput lost and as CPU per run added; and where its raw diamond runs."""

from __future__ import annotations

import pytest

from bench.bench_runs import events_cost


def side(events: str, wf_per_s: float, server: float, worker: float, target: str = "dev") -> dict[str, object]:
    return {"target": target, "events": events, "workflows_per_s": wf_per_s,
            "cpu_ms_per_run": {"server": server, "worker": worker, "api": 4.0}}


def test_each_mode_is_paired_with_off_of_the_same_round() -> None:
    cost = events_cost([side("default", 18.0, 50.0, 40.0), side("off", 20.0, 50.0, 30.0),
                        side("outbox", 21.0, 50.0, 32.0), side("default", 1.0, 1.0, 1.0, target="server")])
    assert cost == {"default": {"throughput": pytest.approx(0.1), "cpu": pytest.approx(10 / 84, abs=0.001)},
                    "outbox": {"throughput": pytest.approx(-0.05), "cpu": pytest.approx(2 / 84, abs=0.001)}}


def test_without_off_there_is_nothing_to_pair() -> None:
    assert events_cost([side("default", 18.0, 50.0, 40.0)]) == {}


@pytest.mark.parametrize("argv", [["--baseline-on", "server"], ["--baseline-on", "server", "--baseline"]])
def test_the_raw_diamond_on_the_server_needs_that_server(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.bench_runs import main

    monkeypatch.setattr("sys.argv", ["bench_runs", *argv])
    with pytest.raises(SystemExit, match="--baseline-on server needs --baseline and --temporal ADDRESS"):
        main()
