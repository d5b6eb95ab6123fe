"""DS ``ProjectController`` (``/projects``) and ``ProjectV2Controller`` (``/v2/projects``, JSON bodies).

Projects live in ``storage/ds_ids.py`` until Porpoise has a project table of its own."""

from __future__ import annotations

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from storage.ds_ids import NameTaken, Project

from .. import views
from ..common import PorpoiseDep, ds_router
from ..deps import ParamsDep, PrincipalDep
from ..envelope import DsError, ds_error, ok, page
from ..params import Params, paging, path_int
from ..porpoise import Porpoise
from ..status import Status

router = ds_router()

MAX_NAME = 100  # DS t_ds_project.name is varchar(255); its UI caps at 100


def _name(p: Params) -> str:
    name = (p.req("projectName")).strip()
    if not name or len(name) > MAX_NAME:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "projectName")
    return name


async def _view(pp: Porpoise, p: Project) -> dict[str, object]:
    return views.project(p, pp.zone, len(await pp.definitions(p.code)))


async def _found(pp: Porpoise, code: int) -> Project:
    p = await run_in_threadpool(pp.ids.project, code)
    if p is None:
        raise DsError(Status.PROJECT_NOT_FOUND, code)
    return p


async def _create(pp: Porpoise, name: str, description: str, user: str) -> Response:
    try:
        p = await run_in_threadpool(pp.ids.create_project, name, description, user)
    except NameTaken:
        raise DsError(Status.PROJECT_ALREADY_EXISTS, name) from None
    return ok(await _view(pp, p), 201)


async def _update(pp: Porpoise, code: int, name: str, description: str | None) -> Response:
    try:
        p = await run_in_threadpool(pp.ids.update_project, code, name, description)
    except NameTaken:
        raise DsError(Status.PROJECT_ALREADY_EXISTS, name) from None
    if p is None:
        raise DsError(Status.PROJECT_NOT_FOUND, code)
    return ok(await _view(pp, p))


async def _delete(pp: Porpoise, code: int) -> Response:
    await _found(pp, code)
    if await pp.definitions(code):
        raise DsError(Status.DELETE_PROJECT_ERROR_DEFINES_NOT_NULL)
    await run_in_threadpool(pp.ids.delete_project, code)
    return ok(True)


async def _list(pp: Porpoise, p: Params) -> Response:
    page_no, page_size = paging(p)
    rows, total = await run_in_threadpool(pp.ids.projects, p.text("searchVal"), (page_no - 1) * page_size, page_size)
    return ok(page([await _view(pp, r) for r in rows], total, page_no, page_size))


@router.post("/projects", openapi_extra=ds_error(Status.CREATE_PROJECT_ERROR))
async def create_project(pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep) -> Response:
    return await _create(pp, _name(p), p.text("description", "") or "", who.user_name)


@router.get("/projects")
async def list_projects(pp: PorpoiseDep, p: ParamsDep) -> Response:
    return await _list(pp, p)


@router.get("/projects/list")
async def all_projects(pp: PorpoiseDep) -> Response:
    rows, _ = await run_in_threadpool(pp.ids.projects)
    return ok([await _view(pp, r) for r in rows])


@router.get("/projects/{code}")
async def get_project(code: str, pp: PorpoiseDep) -> Response:
    return ok(await _view(pp, await _found(pp, path_int(code, "code"))))


@router.put("/projects/{code}")
async def update_project(code: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    return await _update(pp, path_int(code, "code"), _name(p), p.text("description"))


@router.delete("/projects/{code}", openapi_extra=ds_error(Status.DELETE_PROJECT_ERROR))
async def delete_project(code: str, pp: PorpoiseDep) -> Response:
    return await _delete(pp, path_int(code, "code"))


# -- v2: JSON bodies (ProjectCreateRequest {projectName, description}), same answers --------------------


@router.post("/v2/projects", openapi_extra=ds_error(Status.CREATE_PROJECT_ERROR))
async def v2_create(pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep) -> Response:
    return await _create(pp, _name(p), p.text("description", "") or "", who.user_name)


@router.get("/v2/projects")
async def v2_list(pp: PorpoiseDep, p: ParamsDep) -> Response:
    return await _list(pp, p)


@router.get("/v2/projects/list")
async def v2_all(pp: PorpoiseDep) -> Response:
    return await all_projects(pp)


@router.get("/v2/projects/{code}")
async def v2_get(code: str, pp: PorpoiseDep) -> Response:
    return await get_project(code, pp)


@router.put("/v2/projects/{code}")
async def v2_update(code: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    c = path_int(code, "code")
    current = await _found(pp, c)
    name = (p.text("projectName") or current.name).strip()
    return await _update(pp, c, name, p.text("description"))


@router.delete("/v2/projects/{code}", openapi_extra=ds_error(Status.DELETE_PROJECT_ERROR))
async def v2_delete(code: str, pp: PorpoiseDep) -> Response:
    return await _delete(pp, path_int(code, "code"))
