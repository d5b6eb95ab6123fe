"""Workflow definitions: create (any DS format), validate, list, get, versions."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from model.definition import WorkflowDefinition
from model.formats import parse_document, parse_text
from model.problems import DefinitionError, Problem
from services import definitions as service
from services.schemas import (
    DefinitionListItem,
    DefinitionVersion,
    DefinitionView,
    SubmittedDefinition,
    ValidatedDefinition,
)

from ..auth import PrincipalDep, project_filter, require_datasources_of, require_project, security_store
from ..deps import ServicesDep, SettingsDep

router = APIRouter(prefix="/definitions", tags=["definitions"])

# The body is parsed by model.formats (every DS format), not by FastAPI: OpenAPI says what it takes.
_DS_DOCUMENT = {"description": "a DS export (3.1/3.2/3.3: an array of definitions or one), the create-API "
                               "form as JSON, or pydolphinscheduler get_define() output",
                "anyOf": [{"type": "array", "items": {"type": "object"}}, {"type": "object"}]}
DEFINITION_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": _DS_DOCUMENT},
    "application/x-www-form-urlencoded": {"schema": {
        "type": "object", "description": "DS's create-API form: name, taskDefinitionJson, taskRelationJson, ..."}}}}}


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


@router.post("", status_code=201, response_model=list[SubmittedDefinition], openapi_extra=DEFINITION_BODY,
             summary="Create a definition, or a new version of one")
async def create(request: Request, settings: SettingsDep, ctx: ServicesDep, principal: PrincipalDep,
                 project_code: int | None = Query(None, alias="projectCode")) -> list[dict[str, Any]]:
    """Accepts a DS export (3.1/3.2/3.3, array or object), the create-API form (form-encoded or JSON)
    or pydolphinscheduler output. Returns the stored code and version of each definition.

    An export's ``schedule`` block becomes the definition's schedule, offline, as DS import does; a
    new version of a scheduled definition moves its schedule to that version (docs/schedules.md).
    """
    definitions = await read_definitions(request, settings.max_definition_bytes)
    for d in definitions:  # every check before anything is saved
        require_project(principal, project_code if project_code is not None and not d.project_code
                        else d.project_code)
        await require_datasources_of(principal, security_store(request), d)
        if d.code and (old := await run_in_threadpool(ctx.store.get, d.code, None)) is not None:
            require_project(principal, old.project_code)  # no overwriting or moving another project's
    return await service.submit(ctx, definitions, project_code, principal=principal)


@router.post("/validate", response_model=list[ValidatedDefinition], openapi_extra=DEFINITION_BODY,
             summary="Validate without saving; returns the normalised definitions")
async def validate(request: Request, settings: SettingsDep) -> list[dict[str, Any]]:
    return service.validate(await read_definitions(request, settings.max_definition_bytes))


@router.get("", response_model=list[DefinitionListItem], summary="List definitions (latest versions)")
async def list_definitions(ctx: ServicesDep, principal: PrincipalDep,
                           project_code: int | None = Query(None, alias="projectCode"),
                           limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)
                           ) -> list[dict[str, Any]]:
    return await service.list_definitions(ctx, project_code, limit, offset,
                                          projects=project_filter(principal, project_code))


async def check(ctx: ServicesDep, principal: PrincipalDep, code: int) -> None:
    """404 for an unknown definition, 403 unless its latest version's project is the caller's."""
    require_project(principal, (await service.load(ctx, code)).project_code)


@router.get("/{code}", response_model=DefinitionView, summary="The latest version of a definition")
async def get(code: int, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    await check(ctx, principal, code)
    return await service.get(ctx, code)


@router.get("/{code}/versions", response_model=list[DefinitionVersion],
            summary="Every stored version of a definition")
async def versions(code: int, ctx: ServicesDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    await check(ctx, principal, code)
    return await service.versions(ctx, code)


@router.get("/{code}/versions/{version}", response_model=DefinitionView,
            summary="One version of a definition")
async def get_version(code: int, version: int, ctx: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    await check(ctx, principal, code)  # the latest version's project
    return await service.get(ctx, code, version)
