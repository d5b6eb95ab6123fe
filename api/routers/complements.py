"""Complement data (backfill, reference §4.13): start one, follow it, stop it.

``POST /definitions/{code}/complements`` takes DS's start fields for ``execType=COMPLEMENT_DATA``:
``scheduleTime`` (a JSON string or object: ``complementStartDate``/``complementEndDate`` or
``complementScheduleDateList``), ``runMode``, ``expectedParallelismNumber``, ``executionOrder``, plus
Porpoise's ``continueOnFailure`` and the normal start fields. The dates are computed here: the fire
times of the definition's **online** schedule inside the closed range (DS), or daily at midnight when it
has none; a date list is taken as given. Then one ``Complement`` workflow (workflows/complement.py)
runs them. See docs/schedules.md.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.common import Priority as TemporalPriority
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from core import search_attributes as sa
from core.contracts import RunInput
from core.settings import Settings
from core.temporal import ui_run_url
from model.clock import is_zone
from model.problems import DefinitionError, Problem
from model.quartz import QuartzError, fire_times
from model.states import WorkflowState
from workflows.complement import (
    COMPLEMENT_WORKFLOW_TYPE,
    PROGRESS_QUERY,
    ComplementInput,
    ComplementStatus,
    ExecutionOrder,
    RunMode,
    child_id,
    deal,
)

from ..auth import PrincipalDep, project_filter, require_project, visibility_clause
from ..deps import ClientDep, SettingsDep, StoreDep
from ..problems import ProblemError
from ..schemas import StartRun
from .definitions import load, not_runnable
from .runs import INSTANCE_ID
from .schedules import ScheduleStoreDep

router = APIRouter(tags=["complements"])

DAILY = "0 0 0 * * ? *"  # DS CronUtils.getSelfFireDateList without a schedule
MAX_DATES = 10_000
MAX_CHAINS = 1_000  # below Temporal's 2,000 pending children per workflow


class ComplementDates(BaseModel):
    """DS's ``scheduleTime`` for a complement."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    start: datetime | None = Field(None, alias="complementStartDate")
    end: datetime | None = Field(None, alias="complementEndDate")
    date_list: list[datetime] | None = Field(None, alias="complementScheduleDateList")

    @field_validator("date_list", mode="before")
    @classmethod
    def _list(cls, v: Any) -> Any:
        if isinstance(v, str):  # DS: "yyyy-MM-dd HH:mm:ss,yyyy-MM-dd HH:mm:ss"
            return [s.strip() for s in v.split(",") if s.strip()]
        return v


class StartComplement(StartRun):
    """A DS start command with ``execType=COMPLEMENT_DATA``."""

    schedule_time: ComplementDates = Field(alias="scheduleTime")  # type: ignore[assignment]
    run_mode: RunMode = Field(RunMode.RUN_MODE_SERIAL, alias="runMode")
    expected_parallelism: int | None = Field(None, alias="expectedParallelismNumber", ge=0)
    execution_order: ExecutionOrder = Field(ExecutionOrder.DESC_ORDER, alias="executionOrder")
    continue_on_failure: bool = Field(False, alias="continueOnFailure")
    dependent_mode: str = Field("OFF_MODE", validation_alias=AliasChoices(
        "complementDependentMode", "dependentMode"), pattern="^(OFF_MODE|ALL_DEPENDENT)$")

    @field_validator("schedule_time", mode="before")
    @classmethod
    def _json(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return json.loads(v)
            except json.JSONDecodeError:
                raise ValueError("scheduleTime must be JSON: {\"complementStartDate\": ..., "
                                 "\"complementEndDate\": ...} or {\"complementScheduleDateList\": ...}") from None
        return v


def _aware(t: datetime, zone: ZoneInfo) -> datetime:
    return t.replace(tzinfo=zone) if t.tzinfo is None else t


def complement_dates(sel: ComplementDates, zone: ZoneInfo, crontab: str | None,
                     order: ExecutionOrder = ExecutionOrder.DESC_ORDER, max_dates: int = MAX_DATES) -> list[datetime]:
    """The business dates of a complement, in execution order (DS §4.13).

    A range gives the fire times of ``crontab`` (daily at midnight when None) in the *closed* range
    [start, end], evaluated in ``zone``; ``start == end`` gives that one date. A list is taken as given
    (duplicates dropped). Naive times are wall-clock times in ``zone``. Raises DefinitionError.
    """
    if sel.date_list is not None:
        if sel.start is not None or sel.end is not None:
            raise DefinitionError([Problem("/scheduleTime", "give a date range or a date list, not both")])
        if not sel.date_list:
            raise DefinitionError([Problem("/scheduleTime/complementScheduleDateList", "the date list is empty",
                                           code="required")])
        unique = {_aware(t, zone).astimezone(UTC): _aware(t, zone) for t in sel.date_list}
        dates = [unique[k] for k in sorted(unique)]
    else:
        if sel.start is None or sel.end is None:
            raise DefinitionError([Problem("/scheduleTime", "give complementStartDate and complementEndDate, "
                                                            "or complementScheduleDateList", code="required")])
        start, end = _aware(sel.start, zone), _aware(sel.end, zone)
        if end < start:
            raise DefinitionError([Problem("/scheduleTime/complementEndDate",
                                           "complementEndDate is before complementStartDate", code="range")])
        if start == end:
            dates = [start]
        else:
            try:
                dates = fire_times(crontab or DAILY, start - timedelta(microseconds=1), end, zone,
                                   limit=max_dates + 1)
            except QuartzError as e:
                raise DefinitionError([Problem("/crontab", f"the schedule's crontab: {e}", code="crontab")]) from None
    if not dates:
        raise DefinitionError([Problem("/scheduleTime", f"no fire time of '{crontab or DAILY}' in the range",
                                       code="empty")])
    if len(dates) > max_dates:
        raise DefinitionError([Problem("/scheduleTime", f"more than {max_dates} dates; split the complement",
                                       code="too-many")])
    return dates if order is ExecutionOrder.ASC_ORDER else list(reversed(dates))


def new_complement_id(code: int) -> str:
    return f"ds-complement-{code}-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"


@router.post("/definitions/{code}/complements", status_code=201,
             summary="Complement data (backfill): run the definition once per business date")
async def start_complement(code: int, body: StartComplement, client: ClientDep, settings: SettingsDep,
                           store: StoreDep, sstore: ScheduleStoreDep, principal: PrincipalDep) -> dict[str, Any]:
    if body.dependent_mode != "OFF_MODE":
        raise ProblemError(422, "Not supported", "complementDependentMode ALL_DEPENDENT is not supported yet: "
                                                 "complement the dependent workflows separately")
    definition = await load(store, code, body.version)
    require_project(principal, definition.project_code)
    bad = not_runnable(definition)
    if bad:
        raise ProblemError(422, "Definition cannot run here",
                           f"these task types are not runnable in this Porpoise version: {', '.join(bad)}")
    missing = [c for c in body.start_node_list if c not in {t.code for t in definition.tasks}]
    if missing:
        raise ProblemError(422, "Unknown start nodes",
                           f"startNodeList names {missing}, not in version {definition.version}")
    schedule = await run_in_threadpool(sstore.by_definition, code)
    online = schedule if schedule is not None and schedule.online else None
    timezone = body.timezone or (online.timezone_id if online else settings.default_timezone)
    if not is_zone(timezone):
        raise ProblemError(422, "Unknown timezone", f"timezone {timezone!r} is not an IANA time zone name")
    try:
        dates = await run_in_threadpool(complement_dates, body.schedule_time, ZoneInfo(timezone),
                                        online.crontab if online else None, body.execution_order)
    except DefinitionError as e:
        raise ProblemError(422, "Invalid complement", f"{len(e.problems)} problem(s) found", e.problems) from None
    if body.run_mode is RunMode.RUN_MODE_PARALLEL:
        chains = min(len(dates), body.expected_parallelism or len(dates), MAX_CHAINS)
    else:
        chains = 1
    groups = {t.task_group_id for t in definition.tasks if t.task_group_id > 0}
    sizes = await run_in_threadpool(store.task_group_sizes, groups)
    template = RunInput(
        definition=None, definition_code=definition.code, definition_version=definition.version,
        instance_id="", command_type="COMPLEMENT_DATA", start_params=body.start_params,
        failure_strategy=body.failure_strategy, warning_type=body.warning_type,
        warning_group_id=body.warning_group_id or definition.warning_group_id, dry_run=body.dry_run,
        timezone=timezone, start_node_list=body.start_node_list, task_depend_type=body.task_depend_type,
        log_dir=str(settings.resolved_log_dir), minute_seconds=settings.minute_seconds,
        instance_priority=body.instance_priority, task_group_sizes=sizes,
    )
    complement_id = new_complement_id(definition.code)
    inp = ComplementInput(
        complement_id=complement_id, definition_code=definition.code, definition_version=definition.version,
        definition_name=definition.name, project_code=definition.project_code, template=template, dates=dates,
        run_mode=body.run_mode, chains=chains, execution_order=body.execution_order,
        continue_on_failure=body.continue_on_failure, child_task_queue=settings.task_queue,
    )
    handle = await client.start_workflow(
        COMPLEMENT_WORKFLOW_TYPE, inp, id=complement_id, task_queue=settings.task_queue,
        search_attributes=sa.of_instance(definition.project_code, definition.code, definition.name,
                                         definition.version),
        static_summary=(f"complement of {definition.name} v{definition.version}: {len(dates)} dates, "
                        f"{body.run_mode.value} ({chains} chain{'s' if chains > 1 else ''})"),
        priority=TemporalPriority(priority_key=body.instance_priority.rank + 1),
    )
    return {
        "complementId": complement_id, "workflowId": complement_id, "runId": handle.result_run_id,
        "definitionCode": definition.code, "definitionVersion": definition.version,
        "runMode": body.run_mode.value, "chains": chains, "executionOrder": body.execution_order.value,
        "timezone": timezone, "crontab": online.crontab if online else DAILY if body.schedule_time.date_list is None
        else None, "dates": [d.isoformat() for d in dates],
        "temporalUiUrl": ui_run_url(settings, complement_id), "statusUrl": f"/complements/{complement_id}",
    }


def _handle(client: Client, complement_id: str) -> WorkflowHandle[Any, Any]:
    if not INSTANCE_ID.match(complement_id):
        raise ProblemError(422, "Invalid complement id", f"{complement_id!r} is not a complement id")
    return client.get_workflow_handle(complement_id, result_type=ComplementStatus)


async def complement_status(client: Client, complement_id: str) -> tuple[ComplementStatus, str]:
    """The complement's progress: the query while it runs, its result (or failure detail) once ended."""
    handle = _handle(client, complement_id)
    try:
        desc = await handle.describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not found", f"complement {complement_id} does not exist") from e
        raise
    if desc.workflow_type != COMPLEMENT_WORKFLOW_TYPE:
        raise ProblemError(404, "Not found", f"{complement_id} is not a complement")
    tstatus = desc.status.name if desc.status else "UNKNOWN"
    if desc.status == WorkflowExecutionStatus.COMPLETED:
        return await handle.result(), tstatus
    if desc.status == WorkflowExecutionStatus.FAILED:
        try:
            await handle.result()
        except WorkflowFailureError as e:
            cause = e.cause
            if isinstance(cause, ApplicationError) and cause.details:
                return ComplementStatus.model_validate(cause.details[0]), tstatus
    try:
        return await handle.query(PROGRESS_QUERY, result_type=ComplementStatus), tstatus
    except RPCError as e:
        raise ProblemError(503, "The complement did not answer", e.message) from e


def status_view(st: ComplementStatus, tstatus: str, settings: Settings) -> dict[str, Any]:
    lanes = deal(len(st.dates), st.chains)
    chain_of = {i: c for c, lane in enumerate(lanes) for i in lane}
    ended = tstatus != "RUNNING"
    entries = []
    counts: dict[str, int] = {}
    for i, (date, state) in enumerate(zip(st.dates, st.states, strict=False)):
        shown = state.value if state else ("NOT_RUN" if ended else "WAITING")
        counts[shown] = counts.get(shown, 0) + 1
        entries.append({"scheduleTime": date.isoformat(), "instanceId": child_id(st.complement_id, date)
                        if state else None, "state": shown, "chain": chain_of.get(i, 0)})
    return {
        "complementId": st.complement_id, "definitionCode": st.definition_code,
        "definitionVersion": st.definition_version, "definitionName": st.definition_name,
        "projectCode": st.project_code, "state": st.state.value, "temporalStatus": tstatus,
        "runMode": st.run_mode.value, "chains": st.chains, "executionOrder": st.execution_order.value,
        "continueOnFailure": st.continue_on_failure, "counts": counts,
        "startTime": st.start_time.isoformat() if st.start_time else None,
        "endTime": st.end_time.isoformat() if st.end_time else None, "continued": st.continued,
        "dates": entries, "temporalUiUrl": ui_run_url(settings, st.complement_id),
    }


@router.get("/complements/{complement_id}", summary="A complement: every date's instance and state")
async def get_complement(complement_id: str, client: ClientDep, settings: SettingsDep,
                         principal: PrincipalDep) -> dict[str, Any]:
    st, tstatus = await complement_status(client, complement_id)
    require_project(principal, st.project_code)
    return status_view(st, tstatus, settings)


@router.post("/complements/{complement_id}/stop",
             summary="Stop: running dates are stopped (STOP), no new date starts; the complement ends STOP")
async def stop_complement(complement_id: str, client: ClientDep, principal: PrincipalDep) -> dict[str, Any]:
    st, tstatus = await complement_status(client, complement_id)
    require_project(principal, st.project_code)
    if tstatus != "RUNNING":
        raise ProblemError(409, "Cannot stop", f"complement {complement_id} already ended {st.state.value}")
    await _handle(client, complement_id).cancel()
    return {"complementId": complement_id, "state": WorkflowState.READY_STOP.value}


@router.get("/complements", summary="List complements (Temporal visibility)")
async def list_complements(client: ClientDep, settings: SettingsDep, principal: PrincipalDep,
                           definition_code: int | None = Query(None, alias="definitionCode"),
                           state: WorkflowState | None = Query(None),
                           limit: int = Query(50, ge=1, le=1000)) -> list[dict[str, Any]]:
    query = [f"WorkflowType = '{COMPLEMENT_WORKFLOW_TYPE}'"]
    if definition_code is not None:
        query.append(f"DsDefinitionCode = {int(definition_code)}")
    if state is not None:
        query.append(f"DsState = '{state.value}'")
    if (only := visibility_clause(project_filter(principal))) is not None:
        query.append(only)
    out = []
    async for wf in client.list_workflows(" AND ".join(query), limit=limit):
        attrs = wf.typed_search_attributes
        out.append({
            "complementId": wf.id, "definitionCode": attrs.get(sa.DS_DEFINITION_CODE),
            "definitionName": attrs.get(sa.DS_DEFINITION_NAME), "state": attrs.get(sa.DS_STATE),
            "temporalStatus": wf.status.name if wf.status else "UNKNOWN",
            "startTime": wf.start_time.isoformat() if wf.start_time else None,
            "closeTime": wf.close_time.isoformat() if wf.close_time else None,
            "temporalUiUrl": ui_run_url(settings, wf.id),
        })
    return out
