"""Workflow definitions: submit (a new version, and the import of an export's schedule), validate,
list, read. Parsing the request body (formats, size limit) is the caller's: it hands over
:class:`WorkflowDefinition` objects."""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool

from model.definition import WorkflowDefinition
from model.task_types import RUNNABLE
from storage.security import Principal

from . import runnable, schedules
from .context import Services
from .errors import NotFound
from .schemas import DefinitionSummary


def not_runnable(d: WorkflowDefinition) -> list[str]:
    return [f"{t.name} ({t.task_type})" for t in d.tasks if t.enabled and t.task_type not in RUNNABLE]


def summary(d: WorkflowDefinition, created: bool | None = None) -> dict[str, Any]:
    bad = not_runnable(d)
    return DefinitionSummary(code=d.code, version=d.version, name=d.name, project_code=d.project_code,
                             created_version=created, runnable=not bad,
                             not_runnable_tasks=bad).model_dump(by_alias=True)


async def submit(ctx: Services, definitions: list[WorkflowDefinition],
                 project_code: int | None = None, *, principal: Principal | None = None) -> list[dict[str, Any]]:
    """Store each definition (a new version when it changed) and import its ``schedule`` block.

    An export's ``schedule`` block becomes the definition's schedule, offline, as DS import does; a
    new version of a scheduled definition moves its schedule to that version (docs/schedules.md).
    Every schedule block is checked, and every definition refused that could never run (SUB_PROCESS
    cycles or nesting too deep, too large for a Temporal payload: :mod:`services.runnable`), before
    anything is saved. With ``principal`` (a general user), a SUB_PROCESS or DEPENDENT task naming a
    definition of a project they are not authorized for is refused (403, :func:`runnable.check_references`).
    """
    if project_code is not None:
        definitions = [d.model_copy(update={"project_code": project_code}) if not d.project_code else d
                       for d in definitions]
    schedules.check_schedule_blocks(definitions)
    await run_in_threadpool(runnable.check, ctx.store, definitions, ctx.settings)
    await runnable.check_access(ctx.store, ctx.store.engine, definitions,
                                [g for d in definitions for g in (d.warning_group_id,
                                                                  d.schedule.warning_group_id if d.schedule else 0)],
                                principal)
    out = []
    for d in definitions:
        saved = await run_in_threadpool(ctx.store.save, d)
        schedule = await schedules.import_schedule(ctx, saved.definition)
        out.append(summary(saved.definition, saved.created_version) | {"schedule": schedule})
    return out


def validate(definitions: list[WorkflowDefinition]) -> list[dict[str, Any]]:
    """The normalised definitions, each with the tasks this Porpoise cannot run."""
    return [json.loads(d.model_dump_json()) | {"notRunnableTasks": not_runnable(d)} for d in definitions]


async def list_definitions(ctx: Services, project_code: int | None = None, limit: int = 100,
                           offset: int = 0, *, projects: frozenset[int] | None = None) -> list[dict[str, Any]]:
    """``projects``: only these projects' definitions (the caller's authorized ones; None: all)."""
    rows = await run_in_threadpool(ctx.store.list, project_code, limit, offset, projects)
    return [{"code": r.code, "name": r.name, "projectCode": r.project_code, "version": r.latest_version,
             "updatedAt": r.updated_at} for r in rows]


async def load(ctx: Services, code: int, version: int | None = None) -> WorkflowDefinition:
    d = await run_in_threadpool(ctx.store.get, code, version)
    if d is None:
        what = f"definition {code}" + (f" version {version}" if version else "")
        raise NotFound(f"{what} does not exist")
    return d


async def get(ctx: Services, code: int, version: int | None = None) -> dict[str, Any]:
    return json.loads((await load(ctx, code, version)).model_dump_json())  # type: ignore[no-any-return]


async def versions(ctx: Services, code: int) -> list[dict[str, object]]:
    await load(ctx, code)
    return await run_in_threadpool(ctx.store.versions, code)
