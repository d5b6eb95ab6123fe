"""Time every workflow activation of a worker, the unit Temporal's deadlock detector watches.

The SDK fails a workflow task whose activation does not yield within 2 s ("[TMPRL1101] Potential
deadlock detected"). :class:`TimedRunner` wraps the worker's real runner (sandboxed) and records, for
each activation, its wall time, whether it was a replay and which jobs it carried, so a benchmark can
report p50/p99/max. With ``stall`` it can also hold chosen activations for a while on the workflow
thread, which is what a starved CPU does; the tests use that to trip the detector on purpose.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.worker import WorkflowRunner
from temporalio.worker._workflow_instance import WorkflowInstance, WorkflowInstanceDetails

from api.delegating_runner import DelegatingInstance, DelegatingRunner


@dataclass
class Activation:
    workflow_type: str
    workflow_id: str
    seconds: float
    replaying: bool
    jobs: tuple[str, ...]
    failed: bool


@dataclass
class ActivationLog:
    """Activations seen by a worker, thread-safe (activations run on the SDK's thread pool)."""

    items: list[Activation] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, a: Activation) -> None:
        with self._lock:
            self.items.append(a)

    def select(self, workflow_type: str | None = None, queries: bool | None = None) -> list[Activation]:
        with self._lock:
            out = list(self.items)
        if workflow_type is not None:
            out = [a for a in out if a.workflow_type == workflow_type]
        if queries is not None:
            out = [a for a in out if ("query_workflow" in a.jobs) == queries]
        return out

    @staticmethod
    def summary(items: Sequence[Activation]) -> dict[str, Any]:
        times = sorted(a.seconds for a in items)
        if not times:
            return {"count": 0}

        def pct(p: float) -> float:
            return round(times[min(len(times) - 1, int(p * len(times)))] * 1000, 1)

        return {"count": len(times), "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": round(times[-1] * 1000, 1),
                "over_1s": sum(t > 1 for t in times), "over_2s": sum(t > 2 for t in times),
                "failed": sum(a.failed for a in items),
                "slowest": [{"ms": round(a.seconds * 1000, 1), "replaying": a.replaying, "jobs": _count(a.jobs)}
                            for a in sorted(items, key=lambda a: -a.seconds)[:3]]}


def _count(jobs: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for j in jobs:
        out[j] = out.get(j, 0) + 1
    return out


Stall = Callable[[WorkflowActivation, "_TimedInstance"], float]


class TimedRunner(DelegatingRunner):
    """A runner that delegates to ``inner`` and times each activation into ``log``.

    ``stall(activation, instance)`` returns seconds to sleep on the workflow thread before the
    activation runs (0 for none): a starved CPU, reproducible."""

    def __init__(self, inner: WorkflowRunner, log: ActivationLog, stall: Stall | None = None) -> None:
        super().__init__(inner)
        self.log, self.stall = log, stall
        self.profile = bool(os.environ.get("PORPOISE_PROFILE_ACTIVATIONS"))  # cProfile; keeps the slowest
        self.slowest_profiled, self.slowest_profile = 0.0, ""

    def wrap(self, instance: WorkflowInstance, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _TimedInstance(instance, det, self)


class _TimedInstance(DelegatingInstance):
    def __init__(self, inner: WorkflowInstance, det: WorkflowInstanceDetails, runner: TimedRunner) -> None:
        super().__init__(inner)
        self.runner = runner
        self.workflow_type, self.workflow_id = det.info.workflow_type, det.info.workflow_id
        self.run_id = det.info.run_id
        self.activations = 0  # in this instance (a new instance after each eviction)

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        jobs = tuple(j.WhichOneof("variant") or "" for j in act.jobs)
        self.activations += 1
        start = time.perf_counter()
        if self.runner.stall is not None:
            delay = self.runner.stall(act, self)
            if delay > 0:
                time.sleep(delay)
        prof = cProfile.Profile() if self.runner.profile else None
        try:
            if prof is not None:
                prof.enable()
            completion = self.inner.activate(act)
        finally:
            if prof is not None:
                prof.disable()
            seconds = time.perf_counter() - start
        if prof is not None and seconds > self.runner.slowest_profiled:
            self.runner.slowest_profiled = seconds
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(40)
            self.runner.slowest_profile = f"{seconds:.3f}s {jobs[:5]}\n{out.getvalue()}"
        self.runner.log.add(Activation(self.workflow_type, self.workflow_id, seconds, act.is_replaying, jobs,
                                       completion.HasField("failed")))
        return completion
