"""The alert context: Porpoise's own placeholders for one alert (instance, nodes, times, links), built
from an instance status, and a realistic sample run for save-time checks and previews."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .sandbox import format_duration

if TYPE_CHECKING:
    from core.contracts import InstanceStatus, NodeStatus

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TITLES = {
    "WORKFLOW_END": {"SUCCESS": "Workflow instance succeeded", "FAILURE": "Workflow instance failed",
                     "STOP": "Workflow instance stopped", "PAUSE": "Workflow instance paused"},
    "TASK_TIMEOUT": "Task timeout warning",
    "TASK_FAILURE": "Task failed",
}


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


def _fmt(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).strftime(_TIME_FORMAT)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _severity(kind: str, state: str) -> str:
    if kind == "TASK_TIMEOUT":
        return "warning"
    if kind == "TASK_FAILURE" or state == "FAILURE":
        return "failure"
    if state == "SUCCESS":
        return "success"
    return "warning" if state in ("STOP", "PAUSE") else "info"


def node_context(node: NodeStatus, *, zone: ZoneInfo, log_base: str) -> dict[str, Any]:
    seconds = _seconds(node.start_time, node.end_time)
    state = node.state.value
    has_log = bool(node.log_path) or (node.state.has_instance and node.attempts > 0)
    return {
        "code": node.code, "name": node.name, "type": node.task_type, "state": state,
        "attempts": node.attempts, "max_attempts": node.max_attempts,
        "start_time": _fmt(node.start_time, zone), "end_time": _fmt(node.end_time, zone),
        "duration": format_duration(seconds) if seconds is not None else "",
        "duration_seconds": seconds, "host": node.host or "", "error": node.error or "",
        "timeout_warned": node.timeout_warned, "sub_instance_id": node.sub_instance_id or "",
        "log_url": f"{log_base}/tasks/{node.code}/log" if has_log and log_base else "",
    }


def build_context(status: InstanceStatus, *, kind: str, task_code: int | None = None, project_name: str = "",
                  command_type: str = "START_PROCESS", warning_type: str = "NONE", timezone: str = "UTC",
                  temporal_url: str = "", api_url: str = "", biz: Mapping[str, Any] | None = None,
                  now: datetime | None = None, node_counts: Mapping[str, int] | None = None,
                  nodes_omitted: int = 0) -> dict[str, Any]:
    """Every system placeholder for one alert, as plain JSON data (times formatted in the run's zone)."""
    zone = _zone(timezone)
    state = status.state.value
    run_url = f"{api_url.rstrip('/')}/runs/{status.instance_id}" if api_url else ""
    nodes_ = [node_context(n, zone=zone, log_base=run_url) for n in status.nodes]
    failed = [n for n, raw in zip(nodes_, status.nodes, strict=True) if raw.state.is_failure]
    counts: dict[str, int] = dict(node_counts or {})
    if not counts:
        for n in nodes_:
            counts[n["state"]] = counts.get(n["state"], 0) + 1
    seconds = _seconds(status.start_time, status.end_time or (now if kind != "WORKFLOW_END" else None))
    duration = format_duration(seconds) if seconds is not None else ""
    title = _TITLES[kind]
    ctx: dict[str, Any] = {
        "kind": kind,
        "title": title.get(state, f"Workflow instance {state}") if isinstance(title, dict) else title,
        "severity": _severity(kind, state),
        "state": state,
        "project": {"code": status.project_code, "name": project_name or str(status.project_code)},
        "definition": {"code": status.definition_code, "name": status.definition_name,
                       "version": status.definition_version},
        "instance": {
            "id": status.instance_id, "state": state, "run_times": status.run_times, "command_type": command_type,
            "failure_strategy": status.failure_strategy.value, "warning_type": warning_type,
            "dry_run": status.dry_run, "timeout_warned": status.timeout_warned,
            "start_time": _fmt(status.start_time, zone), "end_time": _fmt(status.end_time, zone),
            "schedule_time": _fmt(status.schedule_time, zone), "duration": duration, "duration_seconds": seconds,
            "url": run_url, "temporal_url": temporal_url,
        },
        "times": {"start": _fmt(status.start_time, zone), "end": _fmt(status.end_time, zone),
                  "schedule": _fmt(status.schedule_time, zone), "now": _fmt(now or datetime.now(UTC), zone),
                  "timezone": zone.key},
        "duration": duration,
        "failed_tasks": failed,
        "nodes": nodes_,
        "nodes_omitted": max(0, nodes_omitted),  # a big DAG's alert carries its failed nodes and a sample
        "counts": counts,
        "links": {"temporal": temporal_url, "run": run_url, "api": api_url.rstrip("/")},
        "biz": dict(biz or {}),
    }
    if kind != "WORKFLOW_END":
        task = next((n for n in nodes_ if n["code"] == task_code), None)
        ctx["task"] = task or {"code": task_code or 0, "name": f"task {task_code}", "type": "", "state": "",
                               "attempts": 0, "max_attempts": 0, "start_time": "", "end_time": "", "duration": "",
                               "duration_seconds": None, "host": "", "error": "", "timeout_warned": False,
                               "sub_instance_id": "", "log_url": ""}
    return ctx


def sample_status() -> InstanceStatus:
    """A realistic failed run (for save-time checks and the preview without a run id)."""
    from core.contracts import InstanceStatus, NodeStatus
    from model.definition import FailureStrategy
    from model.states import TaskState, WorkflowState

    t0 = datetime(2024, 6, 1, 2, 0, 0, tzinfo=UTC)

    def at(seconds: int) -> datetime:
        return datetime.fromtimestamp(t0.timestamp() + seconds, UTC)

    return InstanceStatus(
        instance_id="ds-1001-20240601020000-sample", definition_code=1001, definition_name="daily_orders_etl",
        definition_version=3, project_code=42, state=WorkflowState.FAILURE, failure_strategy=FailureStrategy.CONTINUE,
        start_time=t0, end_time=at(725), schedule_time=t0, run_times=1,
        nodes=[
            NodeStatus(code=1, name="extract_orders", task_type="SHELL", state=TaskState.SUCCESS, attempts=1,
                       start_time=at(1), end_time=at(62), host="worker-1", log_path="/logs/1.1.log"),
            NodeStatus(code=2, name="load_warehouse", task_type="SQL", state=TaskState.FAILURE, attempts=3,
                       max_attempts=3, start_time=at(63), end_time=at(700), host="worker-2",
                       log_path="/logs/2.3.log", error="relation \"dw.orders\" does not exist",
                       timeout_warned=True),
            NodeStatus(code=3, name="refresh_report", task_type="HTTP", state=TaskState.DEPEND_FAILED),
            NodeStatus(code=4, name="archive_raw", task_type="SHELL", state=TaskState.FORBIDDEN),
        ],
    )


def sample_context(kind: str, biz: Mapping[str, Any] | None = None, *, temporal_url: str = "",
                   api_url: str = "http://porpoise.example") -> dict[str, Any]:
    status = sample_status()
    return build_context(status, kind=kind, task_code=2 if kind != "WORKFLOW_END" else None,
                         project_name="sales", warning_type="FAILURE", timezone="Asia/Shanghai",
                         temporal_url=temporal_url or "http://temporal.example/namespaces/default/workflows/"
                         + status.instance_id, api_url=api_url, biz=biz,
                         now=datetime(2024, 6, 1, 2, 12, 5, tzinfo=UTC))


@functools.lru_cache(maxsize=8)
def schema(kind: str) -> dict[str, frozenset[str] | None]:
    """Top-level placeholders for ``kind``: the keys of a dict-valued one, or None for a scalar or list."""
    ctx = sample_context(kind)
    return {k: frozenset(v) if isinstance(v, dict) and k not in ("biz", "counts") else None for k, v in ctx.items()}


NODE_FIELDS = frozenset({
    "code", "name", "type", "state", "attempts", "max_attempts", "start_time", "end_time", "duration",
    "duration_seconds", "host", "error", "timeout_warned", "sub_instance_id", "log_url"})
