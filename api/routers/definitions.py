"""Workflow definitions: create (any DS format), validate, list, get, versions."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from model.definition import WorkflowDefinition
from model.formats import parse_document, parse_text
from model.problems import DefinitionError, Problem
from model.task_types import RUNNABLE

from ..auth import PrincipalDep, project_filter, require_datasources_of, require_project, security_store
from ..deps import AppState, SettingsDep, StoreDep, app_state
from ..problems import ProblemError
from ..schemas import DefinitionSummary
from .schedules import check_schedule_blocks, import_schedule

router = APIRouter(prefix="/definitions", tags=["definitions"])


async def read_definitions(request: Request, max_bytes: int) -> list[WorkflowDefinition]:
    """Parse the body as JSON (any accepted format) or as the create-API form, within the size limit."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise DefinitionError([Problem("", f"payload is {declared} bytes, over the limit of {max_bytes}",
                                       code="too-large")])
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise DefinitionError([Problem("", f"payload is over the limit of {max_bytes} bytes",
                                           code="too-large")])
    if "application/x-www-form-urlencoded" in request.headers.get("content-type", ""):
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            raise DefinitionError([Problem("", "form body is not UTF-8", code="malformed")]) from None
        return parse_document(form)
    return parse_text(bytes(body))


def not_runnable(d: WorkflowDefinition) -> list[str]:
    return [f"{t.name} ({t.task_type})" for t in d.tasks if t.enabled and t.task_type not in RUNNABLE]


def summary(d: WorkflowDefinition, created: bool | None = None) -> dict[str, Any]:
    bad = not_runnable(d)
    return DefinitionSummary(code=d.code, version=d.version, name=d.name, project_code=d.project_code,
                             created_version=created, runnable=not bad,
                             not_runnable_tasks=bad).model_dump(by_alias=True)


@router.post("", status_code=201, summary="Create a definition, or a new version of one")
async def create(request: Request, settings: SettingsDep, store: StoreDep, principal: PrincipalDep,
                 state: Annotated[AppState, Depends(app_state)],
                 project_code: int | None = Query(None, alias="projectCode")) -> list[dict[str, Any]]:
    """Accepts a DS export (3.1/3.2/3.3, array or object), the create-API form (form-encoded or JSON)
    or pydolphinscheduler output. Returns the stored code and version of each definition.

    An export's ``schedule`` block becomes the definition's schedule, offline, as DS import does; a
    new version of a scheduled definition moves its schedule to that version (docs/schedules.md).
    """
    definitions = await read_definitions(request, settings.max_definition_bytes)
    check_schedule_blocks(definitions)  # before anything is saved
    out = []
    for d in definitions:
        if project_code is not None and not d.project_code:
            d = d.model_copy(update={"project_code": project_code})
        require_project(principal, d.project_code)
        await require_datasources_of(principal, security_store(request), d)
        if d.code and (old := await run_in_threadpool(store.get, d.code, None)) is not None:
            require_project(principal, old.project_code)  # no overwriting or moving another project's
        saved = await run_in_threadpool(store.save, d)
        schedule = await import_schedule(state, saved.definition)
        out.append(summary(saved.definition, saved.created_version) | {"schedule": schedule})
    return out


@router.post("/validate", summary="Validate without saving; returns the normalised definitions")
async def validate(request: Request, settings: SettingsDep) -> list[dict[str, Any]]:
    definitions = await read_definitions(request, settings.max_definition_bytes)
    return [json.loads(d.model_dump_json()) | {"notRunnableTasks": not_runnable(d)} for d in definitions]


@router.get("", summary="List definitions (latest versions)")
async def list_definitions(store: StoreDep, principal: PrincipalDep,
                           project_code: int | None = Query(None, alias="projectCode"),
                           limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)
                           ) -> list[dict[str, Any]]:
    allowed = project_filter(principal, project_code)
    rows = await run_in_threadpool(store.list, project_code, limit, offset)
    return [{"code": r.code, "name": r.name, "projectCode": r.project_code, "version": r.latest_version,
             "updatedAt": r.updated_at} for r in rows if allowed is None or r.project_code in allowed]


async def load(store: StoreDep, code: int, version: int | None = None) -> WorkflowDefinition:
    d = await run_in_threadpool(store.get, code, version)
    if d is None:
        what = f"definition {code}" + (f" version {version}" if version else "")
        raise ProblemError(404, "Not found", f"{what} does not exist")
    return d


@router.get("/{code}", summary="The latest version of a definition")
async def get(code: int, store: StoreDep, principal: PrincipalDep) -> dict[str, Any]:
    d = await load(store, code)
    require_project(principal, d.project_code)
    return json.loads(d.model_dump_json())


@router.get("/{code}/versions", summary="Every stored version of a definition")
async def versions(code: int, store: StoreDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    require_project(principal, (await load(store, code)).project_code)
    return await run_in_threadpool(store.versions, code)


@router.get("/{code}/versions/{version}", summary="One version of a definition")
async def get_version(code: int, version: int, store: StoreDep, principal: PrincipalDep) -> dict[str, Any]:
    require_project(principal, (await load(store, code)).project_code)  # the latest version's project
    return json.loads((await load(store, code, version)).model_dump_json())
