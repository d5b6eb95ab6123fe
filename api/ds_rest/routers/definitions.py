"""DS ``ProcessDefinitionController`` (3.2, ``/projects/{projectCode}/process-definition``), with 3.3's
``workflow-definition`` paths as aliases, and ``gen-task-codes`` of ``TaskDefinitionController``.

Release state and canvas locations are DS fields Porpoise's definition store has no column for; they
live in ``storage/ds_ids.py``. A run needs the definition ONLINE, as in DS."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from model.definition import Relation, WorkflowDefinition
from storage.ds_ids import OFFLINE, ONLINE, new_code

from .. import views
from ..common import PorpoiseDep, check_project, ds_router
from ..deps import ParamsDep
from ..envelope import DsError, answers, ds_error, ds_time, ok, page, paged
from ..params import Params, paging, path_int
from ..porpoise import Porpoise
from ..status import Status

router = ds_router()
BASES = ("process-definition", "workflow-definition")


async def load(pp: Porpoise, project_code: int, code: int) -> WorkflowDefinition:
    d = await pp.definition(code)
    if d is None or (project_code and d.project_code != project_code):
        raise DsError(Status.PROCESS_DEFINE_NOT_EXIST, code)
    return d


async def render(pp: Porpoise, d: WorkflowDefinition, *, as_dag: bool = False) -> dict[str, Any]:
    meta = await run_in_threadpool(pp.ids.definition_meta, d.code)
    project = await run_in_threadpool(pp.ids.project, d.project_code)
    rec = await run_in_threadpool(pp.schedules.by_definition, d.code)
    sched = None
    if rec is not None:
        sched = views.schedule(pp.schedule_view(rec), pp.zone)
    kw: dict[str, Any] = {"project_name": project.name if project else "", "schedule": sched,
                          "updated": await pp.version_time(d.code, d.version)}
    return views.dag(d, meta, pp.zone, **kw) if as_dag else views.definition(d, meta, pp.zone, **kw)


def _form(p: Params, project_code: int) -> dict[str, Any]:
    """The create-API form as Porpoise's parser takes it (DS's @RequestParam names)."""
    form: dict[str, Any] = {k: v for k, v in p.values.items()}
    form["name"] = p.req("name").strip()
    p.req("taskRelationJson")
    p.req("taskDefinitionJson")
    if not form["name"]:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "name")
    timeout = p.integer("timeout", 0)
    if timeout is not None and timeout < 0:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "timeout")
    form["projectCode"] = project_code
    return form


async def _name_taken(pp: Porpoise, project_code: int, name: str, but: int = 0) -> bool:
    return any(r.name == name and r.code != but for r in await pp.definitions(project_code))


async def create(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    form = _form(p, project_code)
    if await _name_taken(pp, project_code, form["name"]):
        raise DsError(Status.PROCESS_DEFINITION_NAME_EXIST, form["name"])
    (d,) = pp.parse_form(form)
    d = d.model_copy(update={"project_code": project_code, "code": 0})
    saved = await pp.save(d)
    await run_in_threadpool(lambda: pp.ids.set_definition_meta(saved.definition.code,
                                                               locations=p.text("locations", "") or ""))
    await pp.after_save(saved.definition)
    return ok(await render(pp, saved.definition), 201)


async def update(projectCode: str, code: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    current = await load(pp, project_code, path_int(code, "code"))
    meta = await run_in_threadpool(pp.ids.definition_meta, current.code)
    if meta.release_state == ONLINE:
        raise DsError(Status.PROCESS_DEFINE_NOT_ALLOWED_EDIT, current.name)
    form = _form(p, project_code)
    if await _name_taken(pp, project_code, form["name"], but=current.code):
        raise DsError(Status.PROCESS_DEFINITION_NAME_EXIST, form["name"])
    release = p.text("releaseState", OFFLINE) or OFFLINE
    if release not in (ONLINE, OFFLINE):
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "releaseState")
    (d,) = pp.parse_form(form)
    saved = await pp.save(d.model_copy(update={"project_code": project_code, "code": current.code}))
    await run_in_threadpool(lambda: pp.ids.set_definition_meta(
        current.code, release_state=release,
        locations=p.text("locations") if p.has("locations") else None))
    await pp.after_save(saved.definition)
    return ok(await render(pp, saved.definition))


async def release(projectCode: str, code: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    d = await load(pp, path_int(projectCode, "projectCode"), path_int(code, "code"))
    state = p.req("releaseState").strip().upper()
    if state in ("0", "1"):  # Spring also binds the ordinal
        state = (OFFLINE, ONLINE)[int(state)]
    if state not in (ONLINE, OFFLINE):
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "releaseState")
    await run_in_threadpool(lambda: pp.ids.set_definition_meta(d.code, release_state=state))
    if state == OFFLINE:  # DS takes the schedule offline with its definition
        rec = await run_in_threadpool(pp.schedules.by_definition, d.code)
        if rec is not None and rec.online:
            await pp.release_schedule(rec.id, online=False)
    return ok(True)


async def get(projectCode: str, code: str, pp: PorpoiseDep) -> Response:
    d = await load(pp, path_int(projectCode, "projectCode"), path_int(code, "code"))
    return ok(await render(pp, d, as_dag=True))


async def _all(pp: Porpoise, project_code: int) -> list[WorkflowDefinition]:
    out = []
    for r in await pp.definitions(project_code):
        d = await pp.definition(r.code)
        if d is not None:
            out.append(d)
    return out


@paged
async def list_paging(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    page_no, page_size = paging(p)
    search = (p.text("searchVal") or "").strip().lower()
    rows = [r for r in await pp.definitions(project_code) if search in r.name.lower()]
    chunk = rows[(page_no - 1) * page_size: page_no * page_size]
    items = []
    for r in chunk:
        d = await pp.definition(r.code)
        if d is not None:
            items.append(await render(pp, d))
    return ok(page(items, len(rows), page_no, page_size))


async def simple_list(projectCode: str, pp: PorpoiseDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    out = []
    for r in await pp.definitions(project_code):
        meta = await run_in_threadpool(pp.ids.definition_meta, r.code)
        out.append({"id": meta.id, "code": r.code, "name": r.name, "projectCode": r.project_code})
    return ok(out)


async def list_all(projectCode: str, pp: PorpoiseDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    return ok([await render(pp, d, as_dag=True) for d in await _all(pp, project_code)])


async def query_by_name(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    name = p.req("name")
    for r in await pp.definitions(project_code):
        if r.name == name:
            d = await pp.definition(r.code)
            if d is not None:
                return ok(await render(pp, d, as_dag=True))
    raise DsError(Status.PROCESS_DEFINE_NOT_EXIST, name)


async def verify_name(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    name = p.req("name")
    but = p.integer("code", 0, alias=("workflowDefinitionCode", "processDefinitionCode")) or 0
    if await _name_taken(pp, project_code, name, but=but):
        raise DsError(Status.PROCESS_DEFINITION_NAME_EXIST, name)
    return ok(None)


async def tasks(projectCode: str, code: str, pp: PorpoiseDep) -> Response:
    d = await load(pp, path_int(projectCode, "projectCode"), path_int(code, "code"))
    return ok([views.task_definition(t, d.project_code, pp.zone) for t in d.tasks])


async def query_task_definition_list(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    code = p.req_int("processDefinitionCode", alias=("workflowDefinitionCode",))
    d = await load(pp, path_int(projectCode, "projectCode"), code)
    return ok([{"code": t.code, "name": t.name, "version": t.version} for t in d.tasks])


async def delete(projectCode: str, code: str, pp: PorpoiseDep) -> Response:
    d = await load(pp, path_int(projectCode, "projectCode"), path_int(code, "code"))
    meta = await run_in_threadpool(pp.ids.definition_meta, d.code)
    if meta.release_state == ONLINE:
        raise DsError(Status.PROCESS_DEFINE_STATE_ONLINE, d.code)
    rec = await run_in_threadpool(pp.schedules.by_definition, d.code)
    if rec is not None:
        if rec.online:
            raise DsError(Status.SCHEDULE_STATE_ONLINE, rec.id)
        await pp.delete_schedule(rec.id)
    await pp.delete_definition(d.code)
    return ok(None)


def _reimported(d: WorkflowDefinition, project_code: int, stamp: str, taken: set[str]) -> WorkflowDefinition:
    """DS ``checkAndImport``: a new name ``<name>_import_<time>``, new codes for the workflow and every
    task (relations follow), version 1. Codes inside taskParams are not remapped, as in DS."""
    codes = {t.code: new_code() for t in d.tasks}
    name = f"{d.name}_import_{stamp}"
    n = 1
    while name in taken:
        name = f"{d.name}_import_{stamp}({n})"
        n += 1
    taken.add(name)
    tasks = tuple(t.model_copy(update={"code": codes[t.code], "version": 1}) for t in d.tasks)
    rels = tuple(Relation(pre_task_code=codes.get(r.pre_task_code, 0), post_task_code=codes[r.post_task_code])
                 for r in d.relations if r.post_task_code in codes)
    return d.model_copy(update={"code": 0, "name": name, "version": 1, "project_code": project_code,
                                "tasks": tasks, "relations": rels})


async def import_file(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    project_code = path_int(projectCode, "projectCode")
    await check_project(pp, project_code)
    upload = p.files.get("file")
    if upload is None:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "file")
    body = await upload.read(pp.settings.max_definition_bytes + 1)
    try:
        definitions = pp.parse_export(body)
    except Exception as e:
        raise DsError(Status.IMPORT_PROCESS_DEFINE_ERROR, msg=f"{Status.IMPORT_PROCESS_DEFINE_ERROR.msg()}: {e}") from e
    stamp = datetime.now().strftime("%Y%m%d%H%M%S%f")[:17]
    taken = {r.name for r in await pp.definitions(project_code)}
    renamed = [_reimported(d, project_code, stamp, taken) for d in definitions]
    await pp.check_runnable(renamed)  # all or nothing: no definition is saved when one could not run
    for d in renamed:
        saved = await pp.save(d)
        await pp.after_save(saved.definition)
    return ok(None)


@answers(list[dict[str, Any]])
async def batch_export(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    """DS ``batch-export``: a JSON array of ``DagDataSchedule`` (what ``.../import`` reads back). As DS,
    the schedule is exported OFFLINE and a failure answers an empty body rather than an envelope."""
    project_code = path_int(projectCode, "projectCode")
    out = []
    for code in p.codes("codes"):
        d = await pp.definition(code)
        if d is None or d.project_code != project_code:
            continue
        dag = await render(pp, d, as_dag=True)
        schedule = dag["processDefinition"].pop("schedule", None)
        if schedule is not None:
            schedule = schedule | {"releaseState": OFFLINE}
        out.append(dag | {"schedule": schedule})
    return JSONResponse(out, headers={"Content-Disposition": 'attachment; filename="workflow.json"'})


@paged
async def versions(projectCode: str, code: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    """DS ``ProcessDefinitionLog`` rows, newest first, paged."""
    d = await load(pp, path_int(projectCode, "projectCode"), path_int(code, "code"))
    page_no, page_size = paging(p)
    rows = sorted(await pp.versions(d.code), key=lambda r: int(r["version"]), reverse=True)
    chunk = rows[(page_no - 1) * page_size: page_no * page_size]
    items = []
    for r in chunk:
        v = await pp.definition(d.code, int(r["version"]))
        if v is not None:
            items.append(await render(pp, v) | {"operator": 1, "operateTime": ds_time(r["created_at"], pp.zone)})
    return ok(page(items, len(rows), page_no, page_size))


async def gen_task_codes(projectCode: str, pp: PorpoiseDep, p: ParamsDep) -> Response:
    path_int(projectCode, "projectCode")
    n = p.req_int("genNum")
    if n < 1 or n > 100:  # DS refuses more than 100 at once
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "genNum")
    return ok([new_code() for _ in range(n)])


_Route = tuple[str, str, Callable[..., Any], int, Status | None]
ROUTES: list[_Route] = [
    ("POST", "", create, 201, None),
    ("GET", "", list_paging, 200, None),
    ("GET", "/simple-list", simple_list, 200, None),
    ("GET", "/list", list_all, 200, None),
    ("GET", "/all", list_all, 200, None),
    ("GET", "/query-by-name", query_by_name, 200, None),
    ("GET", "/verify-name", verify_name, 200, None),
    ("GET", "/query-task-definition-list", query_task_definition_list, 200, None),
    ("POST", "/import", import_file, 200, Status.IMPORT_PROCESS_DEFINE_ERROR),
    ("GET", "/{code}", get, 200, None),
    ("PUT", "/{code}", update, 200, None),
    ("DELETE", "/{code}", delete, 200, None),
    ("POST", "/{code}/release", release, 200, None),
    ("GET", "/{code}/tasks", tasks, 200, None),
    ("GET", "/{code}/versions", versions, 200, None),
    ("POST", "/batch-export", batch_export, 200, None),
]

for base in BASES:
    for method, suffix, fn, _status, err in ROUTES:
        router.add_api_route(f"/projects/{{projectCode}}/{base}{suffix}", fn, methods=[method],
                             name=f"{base}:{fn.__name__}", openapi_extra=ds_error(err) if err else None)
router.add_api_route("/projects/{projectCode}/task-definition/gen-task-codes", gen_task_codes, methods=["GET"])
