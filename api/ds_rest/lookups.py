"""Finding a DS workflow instance or task instance by its integer id, shared by the instance, task
instance, executor and log routers. A DS workflow instance id is the integer :mod:`storage.ds_ids`
keeps for a Temporal workflow id; a task instance id the one it keeps for (workflow id, run, task
code, attempt). Instances started outside these routes (schedules, complements,
``/definitions/{code}/runs``) get their id when first listed or read."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool

from core.contracts import InstanceStatus, NodeStatus

from . import views
from .deps import Principal, project_perm
from .envelope import DS_TIME, DsError
from .porpoise import NotFound, Porpoise
from .status import Status


async def instance(pp: Porpoise, project_code: int, ds_id: int) -> tuple[str, InstanceStatus, str]:
    """(Temporal workflow id, DS status, Temporal status) of DS instance ``ds_id``; 50001 when unknown,
    deleted, or of another project."""
    wid = await run_in_threadpool(pp.ids.workflow_id, ds_id)
    if wid is None:
        raise DsError(Status.PROCESS_INSTANCE_NOT_EXIST, ds_id)
    try:
        st, tstatus = await pp.status(wid)
    except NotFound as e:
        raise DsError(Status.PROCESS_INSTANCE_NOT_EXIST, ds_id) from e
    if project_code and st.project_code != project_code:  # the route's project was checked (deps.py)
        raise DsError(Status.PROCESS_INSTANCE_NOT_EXIST, ds_id)
    return wid, st, tstatus


def visibility_time(text: str | None, name: str, zone: str) -> str | None:
    if not text or not text.strip():
        return None
    try:
        t = datetime.strptime(text.strip(), DS_TIME).replace(tzinfo=ZoneInfo(zone))
    except ValueError:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, name) from None
    return t.isoformat()


async def task_rows(pp: Porpoise, st: InstanceStatus, instance_ds_id: int) -> list[dict[str, Any]]:
    out = []
    for n in st.nodes:
        if n.state in views.NO_INSTANCE:
            continue
        tid = await run_in_threadpool(pp.ids.task_instance_id, st.instance_id, st.run_times, n.code, max(n.attempts, 1))
        out.append(views.task_instance(n, tid, st, instance_ds_id, pp.zone))
    return out


async def task(pp: Porpoise, task_instance_id: int, who: Principal,
               project_code: int | None = None) -> tuple[Any, InstanceStatus, NodeStatus]:
    """The task instance, its workflow instance's status and its node. Its instance's project must be
    ``project_code`` (the route's, checked in deps.py) when given; a route without one (``/log/detail``)
    checks the instance's project against the caller here."""
    key = await run_in_threadpool(pp.ids.task_instance, task_instance_id)
    if key is None:
        raise DsError(Status.TASK_INSTANCE_NOT_FOUND)
    try:
        st, _ = await pp.status(key.workflow_id)
    except NotFound as e:
        raise DsError(Status.TASK_INSTANCE_NOT_FOUND) from e
    if project_code is None:
        project_perm(who, st.project_code)
    elif project_code and st.project_code != project_code:
        raise DsError(Status.TASK_INSTANCE_NOT_FOUND)
    node = next((n for n in st.nodes if n.code == key.task_code), None)
    if node is None:
        raise DsError(Status.TASK_INSTANCE_NOT_FOUND)
    return key, st, node
