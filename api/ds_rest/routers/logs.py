"""DS ``LoggerController``: a task instance's log by lines (``/log/detail``) and as a download."""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import PlainTextResponse

from .. import lookups
from ..common import PorpoiseDep, ds_router
from ..deps import ParamsDep, Principal, PrincipalDep
from ..envelope import DsError, answers, ds_error, ok
from ..params import Params, path_int
from ..porpoise import Porpoise
from ..status import Status

router = ds_router()


async def _log_text(pp: Porpoise, p: Params, who: Principal, project_code: int | None) -> tuple[str, str]:
    tid = p.req_int("taskInstanceId")
    key, _st, node = await lookups.task(pp, tid, who, project_code)
    path = pp.log_path(key.workflow_id, key.task_code, key.attempt)
    if not path.is_file():
        if node.host is None and not node.state.is_finished:
            raise DsError(Status.TASK_INSTANCE_HOST_IS_NULL)
        return "", node.name
    return await pp.read_log(path, node.task_type), node.name


async def log_detail(pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep, projectCode: str | None = None) -> Response:
    """``ResponseTaskLog {lineNum, message}``: ``limit`` lines after the first ``skipLineNum``."""
    project_code = path_int(projectCode, "projectCode") if projectCode is not None else None
    skip, limit = p.req_int("skipLineNum"), p.req_int("limit")
    if skip < 0:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "skipLineNum")
    if limit < 0:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "limit")
    text, _ = await _log_text(pp, p, who, project_code)
    lines = text.splitlines(keepends=True)[skip: skip + limit]
    return ok({"lineNum": len(lines), "message": "".join(lines)})


@answers(str)
async def download_log(pp: PorpoiseDep, p: ParamsDep, who: PrincipalDep,
                       projectCode: str | None = None) -> Response:
    project_code = path_int(projectCode, "projectCode") if projectCode is not None else None
    text, name = await _log_text(pp, p, who, project_code)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "task"
    return PlainTextResponse(text, headers={"Content-Disposition": f'attachment; filename="{safe}.log"'})


router.add_api_route("/log/detail", log_detail, methods=["GET"], name="log:detail",
                     openapi_extra=ds_error(Status.QUERY_TASK_INSTANCE_LOG_ERROR))
router.add_api_route("/log/{projectCode}/detail", log_detail, methods=["GET"], name="log:project-detail",
                     openapi_extra=ds_error(Status.QUERY_TASK_INSTANCE_LOG_ERROR))
router.add_api_route("/log/download-log", download_log, methods=["GET"], name="log:download",
                     response_class=PlainTextResponse)
router.add_api_route("/log/{projectCode}/download-log", download_log, methods=["GET"], name="log:project-download",
                     response_class=PlainTextResponse)
