"""The one place the DS REST layer calls Porpoise: definitions, runs, logs, schedules, datasources,
task groups and alert groups. Porpoise's service layer is being reorganised (``services/``,
``storage/``); at merge only this module is re-pointed, the DS routes stay as they are.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from activities.alerts.store import AlertConflict, GroupPatch, GroupSpec
from activities.datasources import (
    ConnectionInfo,
    DatasourceConflict,
    DatasourceNotFound,
    DatasourcePatch,
    DatasourceSpec,
    DatasourceView,
    SecretKeyError,
)
from activities.logs import read_log
from activities.schedules_store import ScheduleRecord, ScheduleStore
from activities.store import DefinitionRow, DefinitionStore, DefinitionVersionRow, Saved
from core import search_attributes as sa
from core.contracts import WORKFLOW_TYPE, InstanceStatus, RunInput
from core.settings import Settings
from model.definition import WorkflowDefinition
from model.formats import parse_document, parse_text
from model.states import TaskState
from storage.ds_ids import DsIds

from ..deps import AppState
from ..routers import runs as runs_router
from ..routers import schedules as schedules_router
from ..schemas import StartRun

# Porpoise's types the DS routers use (datasources, alert groups, schedules), re-exported from here.
__all__ = ["AlertConflict", "ConnectionInfo", "DatasourceConflict", "DatasourceNotFound", "DatasourcePatch",
           "DatasourceSpec", "DatasourceView", "GroupPatch", "GroupSpec", "Porpoise", "ScheduleRecord",
           "SecretKeyError", "porpoise"]

_ids: weakref.WeakKeyDictionary[AppState, DsIds] = weakref.WeakKeyDictionary()


class Porpoise:
    """Porpoise as the DS routes see it, for one request."""

    def __init__(self, state: AppState, app: Any = None) -> None:
        self.state = state
        self.request_app = app
        self.settings: Settings = state.settings
        self.store: DefinitionStore = state.store
        found = _ids.get(state)
        if found is None:
            found = _ids[state] = DsIds(state.store.engine)  # Porpoise's database (core/settings.py)
        self.ids: DsIds = found

    async def client(self) -> Client:
        return await self.state.client()

    @property
    def zone(self) -> str:
        return self.settings.default_timezone

    # -- definitions --------------------------------------------------------------------------------

    @staticmethod
    def parse_form(form: dict[str, Any]) -> list[WorkflowDefinition]:
        return parse_document(form)

    def parse_export(self, body: bytes) -> list[WorkflowDefinition]:
        return parse_text(body, max_bytes=self.settings.max_definition_bytes)

    async def save(self, d: WorkflowDefinition) -> Saved:
        return await run_in_threadpool(self.store.save, d)

    async def after_save(self, d: WorkflowDefinition) -> dict[str, Any] | None:
        """What Porpoise does after a save: an existing schedule moves to the new version, an
        imported ``schedule`` block becomes an offline schedule."""
        return await schedules_router.import_schedule(self.state, d)

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
        def go() -> None:
            with Session(self.store.engine) as s, s.begin():
                s.execute(sql_delete(DefinitionVersionRow).where(DefinitionVersionRow.code == code))
                s.execute(sql_delete(DefinitionRow).where(DefinitionRow.code == code))
            self.ids.delete_definition_meta(code)
        await run_in_threadpool(go)

    # -- runs ---------------------------------------------------------------------------------------

    async def start(self, definition: WorkflowDefinition, body: StartRun) -> str:
        created = await runs_router.start_run(await self.client(), self.settings, definition, body, self.store)
        return created.instance_id

    async def start_complement(self, code: int, fields: dict[str, Any]) -> dict[str, Any]:
        """DS ``execType=COMPLEMENT_DATA``: Porpoise's complement (one Complement workflow, one
        instance per business date). ``fields`` are DS's start parameters."""
        from ..routers import complements as complements_router

        body = complements_router.StartComplement.model_validate(fields)
        return await complements_router.start_complement(code, body, await self.client(), self.settings,
                                                         self.store, self.schedules)

    async def status(self, workflow_id: str) -> tuple[InstanceStatus, str]:
        """The instance's DS status with every node, and Temporal's status name; forced-success marks
        on a finished instance are shown as DS shows them."""
        status, tstatus = await runs_router.instance_status(await self.client(), workflow_id)
        if tstatus != "RUNNING":
            forced = await run_in_threadpool(self.store.forced_success, workflow_id)
            for n in status.nodes:
                if n.code in forced:
                    n.state = TaskState.FORCED_SUCCESS
        return status, tstatus

    async def run_input(self, workflow_id: str) -> RunInput | None:
        """The latest run's start input (command, warning settings, priority), or None when unreadable."""
        try:
            return await runs_router._original_input(await self.client(), workflow_id)
        except Exception:  # a vanished history is not worth failing a read for
            return None

    async def stop(self, workflow_id: str) -> Any:
        return await runs_router.stop(workflow_id, await self.client())

    async def pause(self, workflow_id: str) -> Any:
        return await runs_router.pause(workflow_id, await self.client())

    async def recover(self, workflow_id: str) -> Any:
        return await runs_router.recover(workflow_id, await self.client(), self.settings, self.store)

    async def rerun(self, workflow_id: str) -> Any:
        return await runs_router.rerun(workflow_id, await self.client(), self.settings, self.store)

    async def force_success(self, workflow_id: str, task_code: int) -> Any:
        return await runs_router.force_success(workflow_id, task_code, await self.client(), self.store)

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
        return schedules_router.schedule_store(self.store)

    def schedule_view(self, rec: ScheduleRecord) -> dict[str, Any]:
        """Porpoise's view of a schedule row (what its ``/schedules`` answers)."""
        return schedules_router.view(rec, self.settings)

    async def create_schedule(self, fields: dict[str, Any]) -> dict[str, Any]:
        body = schedules_router.ScheduleBody.model_validate(fields)
        return await schedules_router.create_schedule(body, await self.client(), self.settings, self.store,
                                                      self.schedules)

    async def update_schedule(self, schedule_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        body = schedules_router.ScheduleBody.model_validate(fields)
        return await schedules_router.update_schedule(schedule_id, body, await self.client(), self.settings,
                                                      self.store, self.schedules)

    async def release_schedule(self, schedule_id: int, online: bool) -> dict[str, Any]:
        f = schedules_router.online if online else schedules_router.offline
        return await f(schedule_id, await self.client(), self.settings, self.store, self.schedules)

    async def delete_schedule(self, schedule_id: int) -> dict[str, Any]:
        return await schedules_router.delete_schedule(schedule_id, await self.client(), self.schedules)

    async def preview_schedule(self, crontab: str, timezone_id: str, start: str | None, end: str | None,
                               count: int = 5) -> dict[str, Any]:
        body = schedules_router.PreviewBody.model_validate(
            {"crontab": crontab, "timezoneId": timezone_id, "startTime": start, "endTime": end, "count": count})
        return await schedules_router.preview(body)

    # -- task groups --------------------------------------------------------------------------------

    async def task_groups(self) -> list[dict[str, Any]]:
        return await run_in_threadpool(self.store.task_groups)

    async def put_task_group(self, group_id: int, name: str, size: int, project_code: int,
                             description: str) -> None:
        """Create or resize; a live task group semaphore takes the new size at once."""
        from ..routers import task_groups as task_groups_router

        body = task_groups_router.TaskGroup.model_validate(
            {"name": name, "groupSize": size, "projectCode": project_code, "description": description})
        await task_groups_router.put(group_id, body, self.store, await self.client())

    # -- datasources and alert groups (their stores are opened by the app at start) -------------------

    @property
    def datasources(self) -> Any:
        return self.request_app.state.datasources

    @property
    def alerts(self) -> Any:
        return self.request_app.state.alerts

    @staticmethod
    def check_datasource(info: ConnectionInfo) -> Any:
        from activities.datasources import check_connection

        return check_connection(info)


def porpoise(request: Request) -> Porpoise:
    return Porpoise(request.app.state.porpoise, request.app)


def first(xs: Sequence[Any]) -> Any:
    return xs[0] if xs else None
