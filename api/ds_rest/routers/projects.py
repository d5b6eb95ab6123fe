"""DS ``ProjectController`` (``/projects``) and ``ProjectV2Controller`` (``/v2/projects``, JSON bodies).

Projects are Porpoise's projects (``porpoise_projects``, read and written through ``storage/ds_ids.py``):
one a DS client creates is owned by its creator and is the project tokens and Porpoise's routes know.
A general user lists only the projects they own or are authorized for, and reads, changes or deletes
only those (DS's 30002 otherwise, ``deps.project_perm``)."""

from __future__ import annotations

from fastapi import Response
from starlette.concurrency import run_in_threadpool

from storage.ds_ids import NameTaken, Project

from .. import views
from ..common import PorpoiseDep, ds_router
from ..deps import ParamsDep, Principal, PrincipalDep, project_perm
from ..envelope import DsError, ds_error, ok, page, paged
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


async def _create(pp: Porpoise, name: str, description: str, who: Principal) -> Response:
    try:
        p = await run_in_threadpool(pp.ids.create_project, name, description, who.user_id)
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


async def _list(pp: Porpoise, p: Params, who: Principal) -> Response:
    page_no, page_size = paging(p)
    rows, total = await run_in_threadpool(pp.ids.projects, p.text("searchVal"), (page_no - 1) * page_size, page_size,
                                          who.listed_projects)
    return ok(page([await _view(pp, r) for r in rows], total, page_no, page_size))


def _code(code: str, who: Principal) -> int:
    number = path_int(code, "code")
    project_perm(who, number)
    return number


@router.post("/projects", openapi_extra=ds_error(Status.CREATE_PROJECT_ERROR))
async def create_project(pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep) -> Response:
    return await _create(pp, _name(p), p.text("description", "") or "", who)


@router.get("/projects")
@paged
async def list_projects(pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep) -> Response:
    return await _list(pp, p, who)


@router.get("/projects/list")
async def all_projects(pp: PorpoiseDep, who: PrincipalDep) -> Response:
    rows, _ = await run_in_threadpool(pp.ids.projects, None, 0, None, who.listed_projects)
    return ok([await _view(pp, r) for r in rows])


@router.get("/projects/{code}")
async def get_project(code: str, pp: PorpoiseDep, who: PrincipalDep) -> Response:
    return ok(await _view(pp, await _found(pp, _code(code, who))))


@router.put("/projects/{code}")
async def update_project(code: str, pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep) -> Response:
    return await _update(pp, _code(code, who), _name(p), p.text("description"))


@router.delete("/projects/{code}", openapi_extra=ds_error(Status.DELETE_PROJECT_ERROR))
async def delete_project(code: str, pp: PorpoiseDep, who: PrincipalDep) -> Response:
    return await _delete(pp, _code(code, who))


# -- v2: JSON bodies (ProjectCreateRequest {projectName, description}), same answers --------------------


@router.post("/v2/projects", openapi_extra=ds_error(Status.CREATE_PROJECT_ERROR))
async def v2_create(pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep) -> Response:
    return await _create(pp, _name(p), p.text("description", "") or "", who)


@router.get("/v2/projects")
@paged
async def v2_list(pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep) -> Response:
    return await _list(pp, p, who)


@router.get("/v2/projects/list")
async def v2_all(pp: PorpoiseDep, who: PrincipalDep) -> Response:
    return await all_projects(pp, who)


@router.get("/v2/projects/{code}")
async def v2_get(code: str, pp: PorpoiseDep, who: PrincipalDep) -> Response:
    return await get_project(code, pp, who)


@router.put("/v2/projects/{code}")
async def v2_update(code: str, pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep) -> Response:
    c = _code(code, who)
    current = await _found(pp, c)
    name = (p.text("projectName") or current.name).strip()
    return await _update(pp, c, name, p.text("description"))


@router.delete("/v2/projects/{code}", openapi_extra=ds_error(Status.DELETE_PROJECT_ERROR))
async def v2_delete(code: str, pp: PorpoiseDep, who: PrincipalDep) -> Response:
    return await _delete(pp, _code(code, who))
