"""The one place the DS REST layer calls Porpoise: definitions, runs, logs, schedules, datasources,
task groups and alert groups, through ``services/`` and the stores of ``storage/``. No DS module
imports ``api.routers``; the DS routers import Porpoise's types from here.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from activities.logs import read_log
from core import search_attributes as sa
from core.contracts import WORKFLOW_TYPE, InstanceStatus, RunInput
from core.errors import DomainError, NotFound
from core.settings import Settings
from model.definition import WorkflowDefinition
from model.formats import parse_document, parse_text
from model.states import TaskState
from services import complements as complements_service
from services import runnable
from services import runs as runs_service
from services import schedules as schedules_service
from services import task_groups as task_groups_service
from services.context import Services
from services.datasources import identity_changes
from services.schemas import StartRun
from storage.alerts import AlertConflict, AlertStore, GroupPatch, GroupSpec
from storage.crypto import SecretKeyError
from storage.datasources import (
    ConnectionInfo,
    DatasourceConflict,
    DatasourceNotFound,
    DatasourcePatch,
    DatasourceSpec,
    DatasourceStore,
    DatasourceView,
)
from storage.definitions import DefinitionRow, DefinitionStore, Saved
from storage.ds_ids import DsIds
from storage.schedules import ScheduleRecord, ScheduleStore
from storage.security import Principal

from ..auth import require_datasources_of
from .deps import PrincipalDep

# Porpoise's types the DS routers use (datasources, alert groups, schedules, refusals), re-exported here.
__all__ = ["AlertConflict", "ConnectionInfo", "DatasourceConflict", "DatasourceNotFound", "DatasourcePatch",
           "DatasourceSpec", "DatasourceView", "DomainError", "GroupPatch", "GroupSpec", "NotFound", "Porpoise",
           "ScheduleRecord", "SecretKeyError", "StartRun", "identity_changes", "porpoise"]

_ids: weakref.WeakKeyDictionary[Services, DsIds] = weakref.WeakKeyDictionary()


class Porpoise:
    """Porpoise as the DS routes see it, for one request: the process's :class:`Services`, the
    datasource and alert stores the app opened at start, and the DS ids."""

    def __init__(self, ctx: Services, app: Any = None, principal: Principal | None = None) -> None:
        self.ctx = ctx
        self.request_app = app
        self.principal = principal  # the caller: saves and starts check its datasource grants
        self.settings: Settings = ctx.settings
        self.store: DefinitionStore = ctx.store
        found = _ids.get(ctx)
        if found is None:
            found = _ids[ctx] = DsIds(ctx.store.engine)  # Porpoise's database (core/settings.py)
        self.ids: DsIds = found

    async def client(self) -> Client:
        return await self.ctx.client()

    @property
    def zone(self) -> str:
        return self.settings.default_timezone

    # -- definitions --------------------------------------------------------------------------------

    @staticmethod
    def parse_form(form: dict[str, Any]) -> list[WorkflowDefinition]:
        return parse_document(form)

    def parse_export(self, body: bytes) -> list[WorkflowDefinition]:
        return parse_text(body, max_bytes=self.settings.max_definition_bytes)

    async def check_runnable(self, definitions: list[WorkflowDefinition]) -> None:
        """Refuse (DefinitionError) what could never run, as Porpoise's submit does: SUB_PROCESS cycles
        or nesting too deep, a definition too large for a Temporal payload."""
        await run_in_threadpool(runnable.check, self.store, definitions, self.settings)

    async def check_datasources(self, d: WorkflowDefinition) -> None:
        """A general user's definition may name only datasources they own or were granted (the native
        API's check, ``api.auth.require_datasources_of``)."""
        if self.principal is not None:
            await require_datasources_of(self.principal, self.request_app.state.security, d)

    async def save(self, d: WorkflowDefinition) -> Saved:
        await self.check_datasources(d)
        await self.check_runnable([d])
        return await run_in_threadpool(self.store.save, d)

    async def after_save(self, d: WorkflowDefinition) -> dict[str, Any] | None:
        """What Porpoise does after a save: an existing schedule moves to the new version, an
        imported ``schedule`` block becomes an offline schedule."""
        return await schedules_service.import_schedule(self.ctx, d)

    async def definition(self, code: int, version: int | None = None) -> WorkflowDefinition | None:
        return await run_in_threadpool(self.store.get, code, version)

    async def versions(self, code: int) -> list[dict[str, Any]]:
        rows = await run_in_threadpool(self.store.versions, code)
        for r in rows:
            t = r.get("created_at")
            if isinstance(t, datetime) and t.tzinfo is None:
                r["created_at"] = t.replace(tzinfo=UTC)
        return rows

    async def version_time(self, code: int, version: int) -> datetime | None:
        """When this version was saved (DS's updateTime of the definition at that version)."""
        rows = await run_in_threadpool(self.store.versions, code)
        found = next((r["created_at"] for r in rows if r["version"] == version), None)
        if isinstance(found, datetime) and found.tzinfo is None:
            found = found.replace(tzinfo=UTC)  # SQLite gives naive UTC back
        return found if isinstance(found, datetime) else None

    async def definitions(self, project_code: int) -> list[DefinitionRow]:
        return await run_in_threadpool(self.store.list, project_code, 1_000_000, 0)

    async def delete_definition(self, code: int) -> None:
        await run_in_threadpool(self.ids.delete_definition, code)

    # -- runs ---------------------------------------------------------------------------------------

    async def start(self, definition: WorkflowDefinition, body: StartRun) -> str:
        await self.check_datasources(definition)
        created = await runs_service.start_run(await self.client(), self.settings, definition, body, self.store)
        return created.instance_id

    async def start_complement(self, code: int, fields: dict[str, Any]) -> dict[str, Any]:
        """DS ``execType=COMPLEMENT_DATA``: Porpoise's complement (one Complement workflow, one
        instance per business date). ``fields`` are DS's start parameters."""
        body = complements_service.StartComplement.model_validate(fields)
        return await complements_service.start(self.ctx, code, body)

    async def status(self, workflow_id: str) -> tuple[InstanceStatus, str]:
        """The instance's DS status with every node, and Temporal's status name; forced-success marks
        on a finished instance are shown as DS shows them."""
        status, tstatus = await runs_service.instance_status(await self.client(), workflow_id)
        if tstatus != "RUNNING":
            forced = await run_in_threadpool(self.store.forced_success, workflow_id)
            for n in status.nodes:
                if n.code in forced:
                    n.state = TaskState.FORCED_SUCCESS
        return status, tstatus

    async def run_input(self, workflow_id: str) -> RunInput | None:
        """The latest run's start input (command, warning settings, priority), or None when unreadable."""
        try:
            return await runs_service.original_input(await self.client(), workflow_id)
        except Exception:  # a vanished history is not worth failing a read for
            return None

    async def stop(self, workflow_id: str) -> Any:
        return await runs_service.stop(self.ctx, workflow_id)

    async def pause(self, workflow_id: str) -> Any:
        return await runs_service.pause(self.ctx, workflow_id)

    async def recover(self, workflow_id: str) -> Any:
        return await runs_service.recover(self.ctx, workflow_id)

    async def rerun(self, workflow_id: str) -> Any:
        return await runs_service.rerun(self.ctx, workflow_id)

    async def force_success(self, workflow_id: str, task_code: int) -> Any:
        return await runs_service.force_success(self.ctx, workflow_id, task_code)

    async def delete_instance(self, workflow_id: str) -> None:
        """Drop a finished instance's history from Temporal (DS deletes the instance rows)."""
        from temporalio.api.common.v1 import WorkflowExecution
        from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest

        client = await self.client()
        await client.workflow_service.delete_workflow_execution(DeleteWorkflowExecutionRequest(
            namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id)))

    async def list_instances(self, *, project_code: int | None = None, definition_code: int | None = None,
                             state: str | None = None, name_like: str | None = None,
                             start_after: str | None = None, start_before: str | None = None,
                             limit: int = 1000) -> tuple[list[Any], int]:
        """Instances from Temporal visibility, newest first: (executions, total matching)."""
        query = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
        if project_code is not None:
            query.append(f"DsProjectCode = {int(project_code)}")
        if definition_code:
            query.append(f"DsDefinitionCode = {int(definition_code)}")
        if state:
            query.append(f"DsState = '{state}'")
        if name_like:
            safe = name_like.replace("'", "")
            query.append(f"DsDefinitionName STARTS_WITH '{safe}'")
        if start_after:
            query.append(f"StartTime >= '{start_after}'")
        if start_before:
            query.append(f"StartTime <= '{start_before}'")
        if project_code is not None:  # Temporal deletes asynchronously: hide what DS clients deleted
            gone = await run_in_threadpool(self.ids.deleted_workflow_ids, project_code)
            if gone:
                query.append("WorkflowId NOT IN (" + ", ".join("'" + w.replace("'", "") + "'" for w in gone) + ")")
        q = " AND ".join(query)
        client = await self.client()
        count = await client.count_workflows(q)
        out = []
        async for wf in client.list_workflows(q, limit=limit):
            out.append(wf)
            if len(out) >= limit:
                break
        return out, count.count

    def search_attr(self, wf: Any, key: Any) -> Any:
        return wf.typed_search_attributes.get(key)

    @staticmethod
    def attrs() -> Any:
        return sa

    # -- logs ---------------------------------------------------------------------------------------

    def log_path(self, workflow_id: str, task_code: int, attempt: int) -> Path:
        return Path(self.settings.resolved_log_dir) / workflow_id / f"{task_code}.{attempt}.log"

    async def read_log(self, path: Path, task_type: str) -> str:
        """The attempt's log as stored, masked with the task type's rules as Porpoise serves it."""
        from activities.masking import rules_for

        part = await run_in_threadpool(read_log, path, offset=0, limit=64 * 1024 * 1024)
        rules = rules_for(task_type, self.settings.log_mask_rules)
        return rules.mask_bytes(bytes(part.data)).decode("utf-8", "replace")

    # -- schedules ----------------------------------------------------------------------------------

    @property
    def schedules(self) -> ScheduleStore:
        return self.ctx.schedules

    def schedule_view(self, rec: ScheduleRecord) -> dict[str, Any]:
        """Porpoise's view of a schedule row (what its ``/schedules`` answers)."""
        return schedules_service.view(rec, self.settings)

    async def create_schedule(self, fields: dict[str, Any]) -> dict[str, Any]:
        body = schedules_service.ScheduleBody.model_validate(fields)
        return await schedules_service.create(self.ctx, body)

    async def update_schedule(self, schedule_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        body = schedules_service.ScheduleBody.model_validate(fields)
        return await schedules_service.update(self.ctx, schedule_id, body)

    async def release_schedule(self, schedule_id: int, online: bool) -> dict[str, Any]:
        return await schedules_service.release(self.ctx, schedule_id, "ONLINE" if online else "OFFLINE")

    async def delete_schedule(self, schedule_id: int) -> dict[str, Any]:
        return await schedules_service.delete(self.ctx, schedule_id)

    async def preview_schedule(self, crontab: str, timezone_id: str, start: str | None, end: str | None,
                               count: int = 5) -> dict[str, Any]:
        body = schedules_service.PreviewBody.model_validate(
            {"crontab": crontab, "timezoneId": timezone_id, "startTime": start, "endTime": end, "count": count})
        return await schedules_service.preview(body)

    # -- task groups --------------------------------------------------------------------------------

    async def task_groups(self) -> list[dict[str, Any]]:
        return await task_groups_service.list_groups(self.ctx)

    async def put_task_group(self, group_id: int, name: str, size: int, project_code: int,
                             description: str) -> None:
        """Create or resize; a live task group semaphore takes the new size at once."""
        body = task_groups_service.TaskGroup.model_validate(
            {"name": name, "groupSize": size, "projectCode": project_code, "description": description})
        await task_groups_service.put(self.ctx, group_id, body)

    # -- datasources and alert groups (their stores are opened by the app at start) -------------------

    @property
    def datasources(self) -> DatasourceStore:
        store: DatasourceStore = self.request_app.state.datasources  # api/routers/datasources.install
        return store

    @property
    def alerts(self) -> AlertStore:
        store: AlertStore = self.request_app.state.alerts  # api/routers/alerts.install
        return store

    @staticmethod
    def check_datasource(info: ConnectionInfo) -> Any:
        from activities.datasources import check_connection

        return check_connection(info)


def porpoise(request: Request, who: PrincipalDep) -> Porpoise:
    return Porpoise(request.app.state.porpoise, request.app, who)


def first(xs: Sequence[Any]) -> Any:
    return xs[0] if xs else None
