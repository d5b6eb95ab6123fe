"""Complement data (backfill, reference §4.13): start one, follow it, stop it.

``POST /definitions/{code}/complements`` takes DS's start fields for ``execType=COMPLEMENT_DATA``:
``scheduleTime`` (a JSON string or object: ``complementStartDate``/``complementEndDate`` or
``complementScheduleDateList``), ``runMode``, ``expectedParallelismNumber``, ``executionOrder``, plus
Porpoise's ``continueOnFailure`` and the normal start fields. The dates are computed by
:func:`model.complement.complement_dates`: the fire times of the definition's **online** schedule inside
the closed range (DS), or daily at midnight when it has none; a date list is taken as given. Then one
``Complement`` workflow (workflows/complement.py) runs them. See docs/schedules.md.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import AliasChoices, Field, field_validator
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.common import Priority as TemporalPriority
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from core import search_attributes as sa
from core.contracts import RunInput
from core.contracts.complement import (
    COMPLEMENT_WORKFLOW_TYPE,
    PROGRESS_QUERY,
    ComplementInput,
    ComplementStatus,
    ExecutionOrder,
    RunMode,
    child_id,
)
from core.settings import Settings
from core.temporal import ui_run_url
from model.clock import is_zone
from model.complement import DAILY, ComplementDates, complement_dates
from model.problems import DefinitionError
from model.states import WorkflowState
from storage.security import Principal
from workflows.complement import deal

from . import runnable
from .context import Services
from .definitions import load, not_runnable
from .errors import Conflict, Invalid, NotFound, Unavailable
from .runs import checked_handle, described, visibility_query
from .schemas import StartRun

__all__ = ["ComplementDates", "StartComplement", "complement_dates", "start", "get", "stop", "list_complements"]

MAX_CHAINS = 1_000  # below Temporal's 2,000 pending children per workflow


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


def new_complement_id(code: int) -> str:
    return f"ds-complement-{code}-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"


async def start(ctx: Services, code: int, body: StartComplement, *,
                principal: Principal | None = None) -> dict[str, Any]:
    """Complement data (backfill): run the definition once per business date, in one Complement workflow.
    With ``principal``, its SUB_PROCESS and DEPENDENT tasks must name only the caller's projects."""
    settings, store = ctx.settings, ctx.store
    if body.dependent_mode != "OFF_MODE":
        raise Invalid("complementDependentMode ALL_DEPENDENT is not supported yet: complement the dependent "
                      "workflows separately", title="Not supported")
    definition = await load(ctx, code, body.version)
    await runnable.check_access(ctx.store, ctx.store.engine, [definition],
                                [body.warning_group_id or definition.warning_group_id], principal)
    bad = not_runnable(definition)
    if bad:
        raise Invalid(f"these task types are not runnable in this Porpoise version: {', '.join(bad)}",
                      title="Definition cannot run here")
    missing = [c for c in body.start_node_list if c not in {t.code for t in definition.tasks}]
    if missing:
        raise Invalid(f"startNodeList names {missing}, not in version {definition.version}",
                      title="Unknown start nodes")
    schedule = await run_in_threadpool(ctx.schedules.by_definition, code)
    online = schedule if schedule is not None and schedule.online else None
    timezone = body.timezone or (online.timezone_id if online else settings.default_timezone)
    if not is_zone(timezone):
        raise Invalid(f"timezone {timezone!r} is not an IANA time zone name", title="Unknown timezone")
    try:
        dates = await run_in_threadpool(complement_dates, body.schedule_time, ZoneInfo(timezone),
                                        online.crontab if online else None, body.execution_order)
    except DefinitionError as e:
        raise Invalid.of("Invalid complement", e.problems) from None
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
        max_sub_process_depth=settings.max_sub_process_depth, worker_group=body.worker_group or "default",
        datax_worker_group=settings.datax_worker_group, datax_heavy_xmx_gb=settings.datax_k8s_min_xmx_gb,
    )
    complement_id = new_complement_id(definition.code)
    inp = ComplementInput(
        complement_id=complement_id, definition_code=definition.code, definition_version=definition.version,
        definition_name=definition.name, project_code=definition.project_code, template=template, dates=dates,
        run_mode=body.run_mode, chains=chains, execution_order=body.execution_order,
        continue_on_failure=body.continue_on_failure, child_task_queue=settings.task_queue,
    )
    handle = await (await ctx.client()).start_workflow(
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
    return checked_handle(client, complement_id, ComplementStatus, noun="complement", short="complement")


async def complement_status(client: Client, complement_id: str) -> tuple[ComplementStatus, str]:
    """The complement's progress: the query while it runs, its result (or failure detail) once ended."""
    handle = _handle(client, complement_id)
    desc, tstatus = await described(handle, "complement")
    if desc.workflow_type != COMPLEMENT_WORKFLOW_TYPE:
        raise NotFound(f"{complement_id} is not a complement")
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
        raise Unavailable(e.message, title="The complement did not answer") from e


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


async def get(ctx: Services, complement_id: str) -> dict[str, Any]:
    """A complement: every date's instance and state."""
    st, tstatus = await complement_status(await ctx.client(), complement_id)
    return status_view(st, tstatus, ctx.settings)


async def stop(ctx: Services, complement_id: str) -> dict[str, Any]:
    """Stop: running dates are stopped (STOP), no new date starts; the complement ends STOP."""
    client = await ctx.client()
    st, tstatus = await complement_status(client, complement_id)
    if tstatus != "RUNNING":
        raise Conflict(f"complement {complement_id} already ended {st.state.value}", title="Cannot stop")
    await _handle(client, complement_id).cancel()
    return {"complementId": complement_id, "state": WorkflowState.READY_STOP.value}


async def list_complements(ctx: Services, definition_code: int | None = None, state: WorkflowState | None = None,
                           limit: int = 50, *, projects: frozenset[int] | None = None) -> list[dict[str, Any]]:
    """Complements, newest first (Temporal visibility); ``projects``: only these projects' (None: all)."""
    client, settings = await ctx.client(), ctx.settings
    query = visibility_query(COMPLEMENT_WORKFLOW_TYPE, definition_code=definition_code, state=state,
                             projects=projects)
    out = []
    async for wf in client.list_workflows(query, limit=limit):
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
