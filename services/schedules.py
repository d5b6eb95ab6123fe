"""DS schedules (reference §1.1, §4.18) as Temporal Schedules: create, update, online/offline, delete,
list, and the runs a schedule started.

Each DS schedule is one Temporal schedule, id ``ds-schedule-<definition code>`` (DS allows one schedule
per definition). Its action starts the generic ``DsWorkflow`` with a fixed :class:`RunInput` whose
``instance_id`` is empty and ``command_type`` is ``SCHEDULER``: the workflow takes its Temporal workflow
id (``ds-<code>-sched-<fire time>``) as the instance id and ``TemporalScheduledStartTime`` (the
nominal fire time) as ``scheduleTime``, so ``system.biz.date`` and ``$[...]`` use the fire time, as DS
does. Online/offline is unpause/pause. The DS fields live in :mod:`storage.schedules`; the
Temporal schedule is the source of truth for firing. See ``docs/schedules.md``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecution,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import Priority as TemporalPriority
from temporalio.common import SearchAttributeKey, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from core import search_attributes as sa
from core.contracts import WORKFLOW_TASK_TIMEOUT, WORKFLOW_TYPE, RunInput
from core.quartz_temporal import DS_TIME_FORMAT, schedule_spec_for
from core.settings import Settings
from core.temporal import ui_run_url
from model.definition import FailureStrategy, Priority, WarningType, WorkflowDefinition
from model.definition import Schedule as DsSchedule
from model.problems import DefinitionError, Problem
from model.quartz import TEMPORAL_MAX_YEAR, QuartzError, fire_times, parse
from model.states import WorkflowState
from storage.definitions import DefinitionStore
from storage.schedules import OFFLINE, ScheduleExists, ScheduleRecord, ScheduleStore
from storage.security import Principal

from . import runnable
from .context import Services
from .errors import Conflict, Invalid, NotFound, Unavailable
from .schemas import ApiModel

SCHEDULED_BY = SearchAttributeKey.for_keyword("TemporalScheduledById")
SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
# Temporal refuses a catch-up window under 10 s; its default (and our "fire all") is one year.
MIN_CATCHUP = timedelta(seconds=10)
MAX_CATCHUP = timedelta(days=365)
DEFAULT_MISFIRE_THRESHOLD = 60  # seconds, DS's Quartz org.quartz.jobStore.misfireThreshold
# A definition this small travels inside the schedule's action (no load activity per fire); a bigger
# one by reference, loaded by the run (temporal-notes B8).
INLINE_DEFINITION_BYTES = 32 * 1024


class MisfirePolicy(StrEnum):
    """What fires for the times a schedule missed while Temporal (or Porpoise) was down (§4.18)."""

    FIRE_ALL_MISSED = "FIRE_ALL_MISSED"  # DS 3.2 (Quartz IgnoreMisfires): every missed time, oldest first
    FIRE_ONCE_NOW = "FIRE_ONCE_NOW"  # the most recent missed time only
    SKIP_MISSED = "SKIP_MISSED"  # none (a fire later than the misfire threshold is dropped)


class OverlapPolicy(StrEnum):
    """What a fire does while a run this schedule started is still open (Temporal's overlap policy)."""

    ALLOW_ALL = "ALLOW_ALL"  # DS: every fire starts an instance; executionType arbitrates
    SKIP = "SKIP"
    BUFFER_ONE = "BUFFER_ONE"
    BUFFER_ALL = "BUFFER_ALL"
    CANCEL_OTHER = "CANCEL_OTHER"
    TERMINATE_OTHER = "TERMINATE_OTHER"


def temporal_schedule_id(definition_code: int) -> str:
    return f"ds-schedule-{definition_code}"


def scheduled_workflow_id(definition_code: int) -> str:
    """The action's workflow id; Temporal appends ``-<fire time>`` (RFC 3339, UTC) to each run's."""
    return f"ds-{definition_code}-sched"


def ui_schedule_url(settings: Settings, schedule_id: str) -> str:
    return f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{settings.temporal_namespace}/schedules/{schedule_id}"


# -- request bodies ----------------------------------------------------------------------------------


class ScheduleBody(ApiModel):
    """DS ``createSchedule``/``updateSchedule`` fields. ``schedule`` is DS's JSON (object or string)
    ``{"startTime", "endTime", "crontab", "timezoneId"}``; the same keys may also come flat. On update
    every field is optional and what is not given stays."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    definition_code: int | None = Field(None, validation_alias=AliasChoices(
        "processDefinitionCode", "workflowDefinitionCode", "definitionCode"))
    schedule: dict[str, Any] | None = None
    crontab: str | None = None
    timezone_id: str | None = Field(None, alias="timezoneId")
    start_time: str | None = Field(None, alias="startTime")
    end_time: str | None = Field(None, alias="endTime")
    failure_strategy: FailureStrategy | None = Field(None, alias="failureStrategy")
    warning_type: WarningType | None = Field(None, alias="warningType")
    warning_group_id: int | None = Field(None, alias="warningGroupId")
    instance_priority: Priority | None = Field(None, validation_alias=AliasChoices(
        "processInstancePriority", "workflowInstancePriority", "instancePriority"))
    worker_group: str | None = Field(None, alias="workerGroup")
    tenant_code: str | None = Field(None, alias="tenantCode")
    environment_code: int | None = Field(None, alias="environmentCode")
    release_state: str | None = Field(None, alias="releaseState", pattern="^(ONLINE|OFFLINE)$")
    misfire_policy: MisfirePolicy | None = Field(None, alias="misfirePolicy")
    misfire_threshold_seconds: int | None = Field(None, alias="misfireThresholdSeconds", ge=10, le=365 * 86400)
    overlap_policy: OverlapPolicy | None = Field(None, alias="overlapPolicy")

    @field_validator("schedule", mode="before")
    @classmethod
    def _json_string(cls, v: Any) -> Any:
        if isinstance(v, str):
            return json.loads(v) if v.strip() else None
        return v

    def fields(self) -> dict[str, Any]:
        """The schedule-row fields this body sets (flat keys win over the ``schedule`` object's)."""
        nested = self.schedule or {}
        out: dict[str, Any] = {
            "crontab": self.crontab or nested.get("crontab"),
            "timezone_id": self.timezone_id or nested.get("timezoneId"),
            "start_time": self.start_time or nested.get("startTime"),
            "end_time": self.end_time or nested.get("endTime"),
            "failure_strategy": self.failure_strategy, "warning_type": self.warning_type,
            "warning_group_id": self.warning_group_id, "instance_priority": self.instance_priority,
            "worker_group": self.worker_group, "tenant_code": self.tenant_code,
            "environment_code": self.environment_code, "release_state": self.release_state,
            "misfire_policy": self.misfire_policy, "overlap_policy": self.overlap_policy,
            "misfire_threshold_seconds": self.misfire_threshold_seconds,
        }
        return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in out.items() if v is not None}


class PreviewBody(ApiModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    crontab: str
    timezone_id: str = Field("UTC", alias="timezoneId")
    start_time: str | None = Field(None, alias="startTime")
    end_time: str | None = Field(None, alias="endTime")
    count: int = Field(5, ge=1, le=100)


# -- validation and translation ------------------------------------------------------------------------


def _ds_time(text: str | None, zone: ZoneInfo, what: str, problems: list[Problem]) -> str | None:
    """A DS wall-clock time "yyyy-MM-dd HH:mm:ss" (ISO accepted; an offset is converted to the zone)."""
    if text is None or not str(text).strip():
        return None
    try:
        t = datetime.fromisoformat(str(text).strip())
    except ValueError:
        problems.append(Problem(f"/{what}", f"{text!r} is not 'yyyy-MM-dd HH:mm:ss'", code="format"))
        return None
    if t.tzinfo is not None:
        t = t.astimezone(zone).replace(tzinfo=None)
    return t.strftime(DS_TIME_FORMAT)


def normalise(fields: dict[str, Any]) -> dict[str, Any]:
    """Check the schedule fields as DS and Temporal need them; raise :class:`DefinitionError` listing
    every problem with a JSON pointer. Returns the fields with times in DS's format."""
    problems: list[Problem] = []
    out = dict(fields)
    tz = out.get("timezone_id") or "UTC"
    try:
        zone = ZoneInfo(tz)
    except (ValueError, KeyError):
        problems.append(Problem("/timezoneId", f"{tz!r} is not an IANA time zone name", code="timezone"))
        zone = ZoneInfo("UTC")
    crontab = (out.get("crontab") or "").strip()
    if not crontab:
        problems.append(Problem("/crontab", "a schedule needs a crontab (Quartz: second minute hour "
                                            "day-of-month month day-of-week [year])", code="required"))
    else:
        try:
            parse(crontab)
        except QuartzError as e:
            problems.append(Problem("/crontab", f"{e.field}: {e.reason}", code="crontab"))
        out["crontab"] = crontab
    for key, name in (("start_time", "startTime"), ("end_time", "endTime")):
        if key in out:
            out[key] = _ds_time(out[key], zone, name, problems)
    start, end = out.get("start_time"), out.get("end_time")
    if start and end and end < start:
        problems.append(Problem("/endTime", f"endTime {end} is before startTime {start}", code="range"))
    if problems:
        raise DefinitionError(problems)
    return out


def checked(fields: dict[str, Any]) -> dict[str, Any]:
    """:func:`normalise` for a request: problems are an :class:`Invalid` "Invalid schedule"."""
    try:
        return normalise(fields)
    except DefinitionError as e:
        raise Invalid.of("Invalid schedule", e.problems) from None


def ds_schedule(rec: ScheduleRecord) -> DsSchedule:
    # An end after Temporal's calendar horizon (pydolphinscheduler's 9999-12-31) is no end.
    end = rec.end_time if rec.end_time and int(rec.end_time[:4]) <= TEMPORAL_MAX_YEAR else None
    return DsSchedule(crontab=rec.crontab, timezone_id=rec.timezone_id, start_time=rec.start_time, end_time=end,
                      failure_strategy=FailureStrategy(rec.failure_strategy),
                      warning_type=WarningType(rec.warning_type), warning_group_id=rec.warning_group_id,
                      instance_priority=Priority(rec.instance_priority),
                      worker_group=rec.worker_group, tenant_code=rec.tenant_code,
                      environment_code=rec.environment_code)


def shortest_gap(crontab: str, timezone: str, now: datetime | None = None) -> timedelta | None:
    """The shortest time between two consecutive fires, over the next 1,000 fires (None: fires once)."""
    cron = parse(crontab)
    tod = [h * 3600 + m * 60 + s for h, m, s in cron.times_of_day()]
    if len(tod) > 1 and min(b - a for a, b in zip(tod, tod[1:], strict=False)) <= MIN_CATCHUP.total_seconds():
        return timedelta(seconds=min(b - a for a, b in zip(tod, tod[1:], strict=False)))
    now = now or datetime.now(UTC)
    horizon = min(now + timedelta(days=3660), datetime(TEMPORAL_MAX_YEAR, 12, 31, tzinfo=UTC))
    # in UTC: Python subtracts two datetimes of the same zone as wall-clock times, blind to DST
    times = [t.astimezone(UTC) for t in fire_times(cron, now, horizon, timezone, limit=1000)]
    if len(times) < 2:
        return None
    return min(b - a for a, b in zip(times, times[1:], strict=False))


def catchup_window(policy: MisfirePolicy | str, crontab: str, timezone: str,
                   threshold_seconds: int = DEFAULT_MISFIRE_THRESHOLD) -> timedelta:
    """The Temporal catch-up window for a misfire policy (docs/schedules.md). A fire that Temporal
    processes later than this after its time is a misfire; the threshold (DS: Quartz's 60 s
    ``misfireThreshold``) is how late a fire may be, e.g. on a busy server, and still count as on time.

    * FIRE_ALL_MISSED: one year: every missed time fires when the server catches up;
    * FIRE_ONCE_NOW: just under the shortest gap between two fires, but not under the threshold: of
      the missed times only the most recent can be that recent, so one fires, with its own fire time
      as scheduleTime (when the gap is shorter than the threshold, the fires of the last threshold);
    * SKIP_MISSED: the threshold (Temporal's minimum is 10 s).
    """
    policy = MisfirePolicy(policy)
    threshold = max(MIN_CATCHUP, timedelta(seconds=threshold_seconds))
    if policy is MisfirePolicy.FIRE_ALL_MISSED:
        return MAX_CATCHUP
    if policy is MisfirePolicy.SKIP_MISSED:
        return min(threshold, MAX_CATCHUP)
    gap = shortest_gap(crontab, timezone)
    if gap is None:
        return MAX_CATCHUP  # fires (at most) once more: nothing to collapse
    return max(threshold, min(MAX_CATCHUP, gap - timedelta(seconds=1)))


def run_input(rec: ScheduleRecord, definition: WorkflowDefinition, settings: Settings,
              task_group_sizes: dict[int, int] | None = None) -> RunInput:
    """The fixed input every fire starts DsWorkflow with (a DS ``SCHEDULER`` command, §4.18)."""
    inline = len(definition.model_dump_json()) <= INLINE_DEFINITION_BYTES
    return RunInput(
        definition=definition if inline else None,
        definition_code=definition.code,
        definition_version=definition.version,
        instance_id="",  # = the workflow id the schedule gives the run
        command_type="SCHEDULER",
        schedule_time=None,  # = TemporalScheduledStartTime, the nominal fire time
        failure_strategy=FailureStrategy(rec.failure_strategy),
        warning_type=WarningType(rec.warning_type),
        warning_group_id=rec.warning_group_id or definition.warning_group_id,
        timezone=rec.timezone_id,
        log_dir=str(settings.resolved_log_dir),
        minute_seconds=settings.minute_seconds,
        instance_priority=Priority(rec.instance_priority),
        task_group_sizes=task_group_sizes or {},
        max_sub_process_depth=settings.max_sub_process_depth,
        worker_group=(rec.worker_group or "").strip() or "default",  # DS: the schedule row's group (§4.18)
        datax_worker_group=settings.datax_worker_group, datax_heavy_xmx_gb=settings.datax_k8s_min_xmx_gb,
    )


def _search_attributes(definition: WorkflowDefinition, state: str | None = None) -> TypedSearchAttributes:
    return sa.of_instance(definition.project_code, definition.code, definition.name, definition.version,
                          state=state)


def temporal_schedule(rec: ScheduleRecord, definition: WorkflowDefinition, settings: Settings,
                      task_group_sizes: dict[int, int] | None = None) -> Schedule:
    """The whole Temporal schedule for a row: spec (Quartz translated), action, policy and state."""
    policy = MisfirePolicy(rec.misfire_policy)
    overlap = OverlapPolicy(rec.overlap_policy)
    inp = run_input(rec, definition, settings, task_group_sizes)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WORKFLOW_TYPE, inp,
            id=scheduled_workflow_id(definition.code),
            task_queue=settings.task_queue,
            task_timeout=WORKFLOW_TASK_TIMEOUT,
            typed_search_attributes=_search_attributes(definition, WorkflowState.RUNNING_EXECUTION.value),
            static_summary=f"{definition.name} v{definition.version} (SCHEDULER)",
            priority=TemporalPriority(priority_key=Priority(rec.instance_priority).rank + 1),
        ),
        spec=schedule_spec_for(ds_schedule(rec)),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy[overlap.value],
                              catchup_window=catchup_window(policy, rec.crontab, rec.timezone_id,
                                                            rec.misfire_threshold_seconds)),
        state=ScheduleState(paused=not rec.online, note=_note(rec)),
    )


def _note(rec: ScheduleRecord) -> str:
    return (f"DS schedule {rec.id} of {rec.definition_name or rec.definition_code} v{rec.definition_version}: "
            f"{rec.release_state}; crontab '{rec.crontab}' {rec.timezone_id}; misfire {rec.misfire_policy} "
            f"(threshold {rec.misfire_threshold_seconds}s); overlap {rec.overlap_policy}")


# -- keeping Temporal in step with the rows --------------------------------------------------------------


async def sync(client: Client, settings: Settings, store: DefinitionStore, sstore: ScheduleStore,
               rec: ScheduleRecord) -> ScheduleRecord:
    """Create or replace the Temporal schedule for a row (spec, action, policy, paused state)."""
    definition = await run_in_threadpool(store.get, rec.definition_code, rec.definition_version)
    if definition is None:
        raise NotFound(f"definition {rec.definition_code} v{rec.definition_version} does not exist")
    groups = {t.task_group_id for t in definition.tasks if t.task_group_id > 0}
    sizes = await run_in_threadpool(store.task_group_sizes, groups)
    schedule = temporal_schedule(rec, definition, settings, sizes)
    attrs = _search_attributes(definition)
    handle = client.get_schedule_handle(temporal_schedule_id(rec.definition_code))

    def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule, search_attributes=attrs)

    try:
        await handle.update(replace)
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:
            raise
        await client.create_schedule(handle.id, schedule, search_attributes=attrs)
    if rec.synced:
        return rec
    marked: ScheduleRecord | None = await run_in_threadpool(lambda: sstore.update(rec.id, synced=True))
    return marked or rec


async def _sync_or_mark(ctx: Services, rec: ScheduleRecord) -> ScheduleRecord:
    """Sync, or when Temporal cannot be reached leave the row marked unsynced (the next save syncs)."""
    sstore = ctx.schedules
    try:
        return await sync(await ctx.client(), ctx.settings, ctx.store, sstore, rec)
    except (RPCError, Unavailable):
        return await run_in_threadpool(lambda: sstore.update(rec.id, synced=False)) or rec


# -- the import hook -----------------------------------------------------------------------------------------


def check_schedule_blocks(definitions: list[WorkflowDefinition]) -> None:
    """Refuse (before anything is saved) definitions whose ``schedule`` block cannot be scheduled."""
    problems: list[Problem] = []
    for i, d in enumerate(definitions):
        if d.schedule is None:
            continue
        try:
            normalise({"crontab": d.schedule.crontab, "timezone_id": d.schedule.timezone_id,
                       "start_time": d.schedule.start_time, "end_time": d.schedule.end_time})
        except DefinitionError as e:
            prefix = f"/{i}/schedule" if len(definitions) > 1 else "/schedule"
            problems += [Problem(prefix + p.pointer, p.message, code=p.code) for p in e.problems]
    if problems:
        raise DefinitionError(problems)


async def import_schedule(state: Services, definition: WorkflowDefinition) -> dict[str, Any] | None:
    """Called by :func:`services.definitions.submit` after each definition is saved.

    * The definition already has a schedule: when this is a new version, the schedule now starts it
      (DS runs the current version at each fire). The schedule's own settings stay; a ``schedule``
      block in the new document is ignored (edit the schedule through ``PUT /schedules/{id}``).
    * It has none and the document carries a ``schedule`` block: the block becomes the definition's
      schedule, **offline**, as DS import does.

    Returns the schedule as the API shows it, or None. Temporal being down does not fail the save: the
    row is kept unsynced and the next online/update (or definition save) pushes it.
    """
    sstore = state.schedules
    existing = await run_in_threadpool(sstore.by_definition, definition.code)
    if existing is not None:
        if existing.definition_version == definition.version and existing.synced:
            return view(existing, state.settings)
        rec = await run_in_threadpool(lambda: sstore.update(
            existing.id, definition_version=definition.version, definition_name=definition.name,
            project_code=definition.project_code))
        assert rec is not None
        return view(await _sync_or_mark(state, rec), state.settings)
    if definition.schedule is None:
        return None
    block = definition.schedule
    fields = normalise({
        "crontab": block.crontab, "timezone_id": block.timezone_id, "start_time": block.start_time,
        "end_time": block.end_time, "failure_strategy": block.failure_strategy.value,
        "warning_type": block.warning_type.value, "warning_group_id": block.warning_group_id,
        "instance_priority": block.instance_priority.value, "worker_group": block.worker_group,
        "tenant_code": block.tenant_code, "environment_code": block.environment_code,
    })
    try:
        rec = await run_in_threadpool(
            sstore.create, definition.code, project_code=definition.project_code,
            definition_name=definition.name, definition_version=definition.version, release_state=OFFLINE,
            **fields)
    except ScheduleExists:  # a concurrent import won
        return None
    return view(await _sync_or_mark(state, rec), state.settings)


# -- views -----------------------------------------------------------------------------------------------------


def view(rec: ScheduleRecord, settings: Settings, desc: ScheduleDescription | None = None) -> dict[str, Any]:
    sid = temporal_schedule_id(rec.definition_code)
    out: dict[str, Any] = {
        "id": rec.id,
        "processDefinitionCode": rec.definition_code,
        "processDefinitionName": rec.definition_name,
        "processDefinitionVersion": rec.definition_version,
        "projectCode": rec.project_code,
        "crontab": rec.crontab,
        "timezoneId": rec.timezone_id,
        "startTime": rec.start_time,
        "endTime": rec.end_time,
        "failureStrategy": rec.failure_strategy,
        "warningType": rec.warning_type,
        "warningGroupId": rec.warning_group_id,
        "processInstancePriority": rec.instance_priority,
        "workerGroup": rec.worker_group,
        "tenantCode": rec.tenant_code,
        "environmentCode": rec.environment_code,
        "releaseState": rec.release_state,
        "misfirePolicy": rec.misfire_policy,
        "misfireThresholdSeconds": rec.misfire_threshold_seconds,
        "overlapPolicy": rec.overlap_policy,
        "synced": rec.synced,
        "createTime": rec.created_at.isoformat() if rec.created_at else None,
        "updateTime": rec.updated_at.isoformat() if rec.updated_at else None,
        "temporalScheduleId": sid,
        "temporalUiUrl": ui_schedule_url(settings, sid),
        "runsUrl": f"/schedules/{rec.id}/runs",
    }
    if desc is not None:
        info = desc.info
        out["temporal"] = {
            "paused": desc.schedule.state.paused,
            "note": desc.schedule.state.note,
            "catchupWindowSeconds": int((desc.schedule.policy.catchup_window or MAX_CATCHUP).total_seconds()),
            "overlap": desc.schedule.policy.overlap.name,
            "nextFireTimes": [t.isoformat() for t in info.next_action_times],
            "numActions": info.num_actions,
            "numSkippedOverlap": info.num_actions_skipped_overlap,
            "numMissedCatchupWindow": info.num_actions_missed_catchup_window,
            "runningInstances": [_started(a) for a in info.running_actions],
            "recentFires": [{"scheduleTime": a.scheduled_at.isoformat(), "startedAt": a.started_at.isoformat(),
                             "instanceId": _started(a.action)} for a in info.recent_actions],
        }
    return out


def _started(action: ScheduleActionExecution) -> str | None:
    return action.workflow_id if isinstance(action, ScheduleActionExecutionStartWorkflow) else None


# -- operations --------------------------------------------------------------------------------------------------


async def _record(sstore: ScheduleStore, schedule_id: int) -> ScheduleRecord:
    rec = await run_in_threadpool(sstore.get, schedule_id)
    if rec is None:
        raise NotFound(f"schedule {schedule_id} does not exist")
    return rec


async def _check_reach(ctx: Services, definition: WorkflowDefinition | None, warning_group_id: int | None,
                       principal: Principal | None) -> None:
    """A schedule starts its definition with no one's permissions: with ``principal`` (a general user
    making, changing, releasing or triggering it), the definition's SUB_PROCESS and DEPENDENT tasks and
    the alert group must be the caller's to reach (services.runnable; no check for an administrator)."""
    await runnable.check_access(ctx.store, ctx.store.engine, [definition] if definition is not None else [],
                                [warning_group_id or (definition.warning_group_id if definition else 0)], principal)


async def create(ctx: Services, body: ScheduleBody, *, principal: Principal | None = None) -> dict[str, Any]:
    """Create a definition's schedule (offline unless ``releaseState``) and its Temporal schedule."""
    settings, store, sstore = ctx.settings, ctx.store, ctx.schedules
    if body.definition_code is None:
        raise Invalid.of("Invalid schedule", [Problem("/processDefinitionCode", "which definition to schedule",
                                                      code="required")])
    client = await ctx.client()
    definition = await run_in_threadpool(store.get, body.definition_code, None)
    if definition is None:
        raise NotFound(f"definition {body.definition_code} does not exist")
    await _check_reach(ctx, definition, body.warning_group_id, principal)
    fields = checked({"timezone_id": settings.default_timezone, "release_state": OFFLINE} | body.fields())
    try:
        rec = await run_in_threadpool(
            sstore.create, definition.code, project_code=definition.project_code, definition_name=definition.name,
            definition_version=definition.version, synced=False, **fields)
    except ScheduleExists:
        existing = await run_in_threadpool(sstore.by_definition, definition.code)
        raise Conflict(f"definition {definition.code} already has schedule {existing.id if existing else '?'}; "
                       "update it", title="Schedule exists") from None
    try:
        rec = await sync(client, settings, store, sstore, rec)
    except Exception:
        await run_in_threadpool(sstore.delete, rec.id)  # nothing half-made stays behind
        raise
    return view(rec, settings)


async def list_schedules(ctx: Services, definition_code: int | None = None, project_code: int | None = None,
                         release_state: str | None = None, limit: int = 100, offset: int = 0, *,
                         projects: frozenset[int] | None = None) -> list[dict[str, Any]]:
    """``projects``: only these projects' schedules (the caller's authorized ones; None: all)."""
    rows = await run_in_threadpool(lambda: ctx.schedules.list(
        definition_code=definition_code, project_code=project_code, release_state=release_state, limit=limit,
        offset=offset, projects=projects))
    return [view(r, ctx.settings) for r in rows]


async def preview(body: PreviewBody) -> dict[str, Any]:
    """The next fire times of a crontab (DS preview)."""
    fields = checked({"crontab": body.crontab, "timezone_id": body.timezone_id, "start_time": body.start_time,
                      "end_time": body.end_time})
    zone = ZoneInfo(fields["timezone_id"])
    now = datetime.now(UTC)
    start = now
    if fields.get("start_time"):
        start = max(now, datetime.strptime(fields["start_time"], DS_TIME_FORMAT).replace(tzinfo=zone)
                    - timedelta(microseconds=1))
    end = datetime(TEMPORAL_MAX_YEAR, 12, 31, 23, 59, 59, tzinfo=UTC)
    if fields.get("end_time"):
        end = min(end, datetime.strptime(fields["end_time"], DS_TIME_FORMAT).replace(tzinfo=zone))
    times = await run_in_threadpool(fire_times, fields["crontab"], start, end, zone, limit=body.count)
    return {"crontab": fields["crontab"], "timezoneId": fields["timezone_id"],
            "fireTimes": [t.isoformat() for t in times]}


async def get(ctx: Services, schedule_id: int) -> dict[str, Any]:
    """A schedule, with its next fire times and recent fires (when its Temporal schedule exists)."""
    client = await ctx.client()
    rec = await _record(ctx.schedules, schedule_id)
    desc = None
    try:
        desc = await client.get_schedule_handle(temporal_schedule_id(rec.definition_code)).describe()
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:
            raise
    return view(rec, ctx.settings, desc)


async def of_definition(ctx: Services, code: int) -> dict[str, Any]:
    await ctx.client()
    rec = await run_in_threadpool(ctx.schedules.by_definition, code)
    if rec is None:
        raise NotFound(f"definition {code} has no schedule")
    return await get(ctx, rec.id)


async def update(ctx: Services, schedule_id: int, body: ScheduleBody, *,
                 principal: Principal | None = None) -> dict[str, Any]:
    """Update a schedule; what is not given stays. Also moves it to the definition's current version."""
    settings, store, sstore = ctx.settings, ctx.store, ctx.schedules
    client = await ctx.client()
    rec = await _record(sstore, schedule_id)
    if body.definition_code is not None and body.definition_code != rec.definition_code:
        raise Invalid("a schedule belongs to its definition; create one for the other definition",
                      title="Cannot move a schedule")
    current = {"crontab": rec.crontab, "timezone_id": rec.timezone_id, "start_time": rec.start_time,
               "end_time": rec.end_time}
    fields = checked(current | body.fields())
    # Saving a schedule also moves it to the definition's current version (DS fires the current one).
    definition = await run_in_threadpool(store.get, rec.definition_code, None)
    await _check_reach(ctx, definition, body.warning_group_id or rec.warning_group_id, principal)
    if definition is not None:
        fields |= {"definition_version": definition.version, "definition_name": definition.name,
                   "project_code": definition.project_code}
    new = await run_in_threadpool(lambda: sstore.update(schedule_id, **fields))
    assert new is not None
    try:
        new = await sync(client, settings, store, sstore, new)
    except Exception:
        await run_in_threadpool(lambda: sstore.update(schedule_id, synced=False))
        raise
    return view(new, settings)


async def release(ctx: Services, schedule_id: int, state: str, *,
                  principal: Principal | None = None) -> dict[str, Any]:
    """ONLINE: the schedule fires (Temporal unpause); OFFLINE: it stops firing (pause)."""
    settings, store, sstore = ctx.settings, ctx.store, ctx.schedules
    client = await ctx.client()
    rec = await _record(sstore, schedule_id)
    fields: dict[str, Any] = {"release_state": state}
    definition = await run_in_threadpool(store.get, rec.definition_code, None)
    if state != OFFLINE:
        await _check_reach(ctx, definition, rec.warning_group_id, principal)
    if definition is not None:
        fields |= {"definition_version": definition.version, "definition_name": definition.name}
    new = await run_in_threadpool(lambda: sstore.update(schedule_id, **fields))
    assert new is not None
    try:
        new = await sync(client, settings, store, sstore, new)
    except Exception:
        await run_in_threadpool(lambda: sstore.update(schedule_id, release_state=rec.release_state))
        raise
    return view(new, settings)


async def delete(ctx: Services, schedule_id: int) -> dict[str, Any]:
    """Delete an offline schedule (as DS: offline first) and its Temporal schedule."""
    client = await ctx.client()
    rec = await _record(ctx.schedules, schedule_id)
    if rec.online:
        raise Conflict(f"schedule {schedule_id} is ONLINE; take it offline first", title="Schedule is online")
    try:
        await client.get_schedule_handle(temporal_schedule_id(rec.definition_code)).delete()
    except RPCError as e:
        if e.status != RPCStatusCode.NOT_FOUND:
            raise
    await run_in_threadpool(ctx.schedules.delete, schedule_id)
    return {"id": schedule_id, "deleted": True}


async def trigger(ctx: Services, schedule_id: int, *, principal: Principal | None = None) -> dict[str, Any]:
    """Fire now, once (scheduleTime = now), even when offline."""
    client = await ctx.client()
    rec = await _record(ctx.schedules, schedule_id)
    definition = await run_in_threadpool(ctx.store.get, rec.definition_code, None)
    await _check_reach(ctx, definition, rec.warning_group_id, principal)
    await client.get_schedule_handle(temporal_schedule_id(rec.definition_code)).trigger(
        overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    return {"id": schedule_id, "triggered": True, "runsUrl": f"/schedules/{schedule_id}/runs"}


async def runs(ctx: Services, schedule_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The workflow instances a schedule started (newest first)."""
    client = await ctx.client()
    rec = await _record(ctx.schedules, schedule_id)
    return await runs_of(client, ctx.settings, temporal_schedule_id(rec.definition_code), limit)


async def runs_of(client: Client, settings: Settings, temporal_id: str, limit: int = 100) -> list[dict[str, Any]]:
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND TemporalScheduledById = '{temporal_id}'"
    out: list[dict[str, Any]] = []
    async for wf in client.list_workflows(query, limit=limit):
        attrs = wf.typed_search_attributes
        fired = attrs.get(SCHEDULED_START)
        biz = attrs.get(sa.DS_SCHEDULE_TIME) or fired
        out.append({
            "instanceId": wf.id, "definitionCode": attrs.get(sa.DS_DEFINITION_CODE),
            "definitionVersion": attrs.get(sa.DS_DEFINITION_VERSION), "state": attrs.get(sa.DS_STATE),
            "scheduleTime": biz.isoformat() if biz else None,
            "temporalStatus": wf.status.name if wf.status else "UNKNOWN",
            "startTime": wf.start_time.isoformat() if wf.start_time else None,
            "closeTime": wf.close_time.isoformat() if wf.close_time else None,
            "temporalUiUrl": ui_run_url(settings, wf.id),
        })
    out.sort(key=lambda r: r["scheduleTime"] or "", reverse=True)
    return out
