"""Who is calling, and may they (docs/security.md).

Every route but health, the docs and the Temporal UI's codec path needs an access token:
``Authorization: Bearer TOKEN`` or DolphinScheduler's ``token: TOKEN`` header. No token, an unknown,
revoked or expired one: 401. The token's user is the request's :class:`Principal`.

Routes call the small checks below: ``require_admin`` (users, tokens, task groups, key rotation),
``require_project`` (a definition, run, schedule or complement belongs to its definition's project;
403 for a general user not authorized for it), ``require_run`` (a run's project, from its
``DsProjectCode`` search attribute) and ``require_datasource`` (owner or explicit grant).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core import search_attributes as sa
from model.definition import WorkflowDefinition
from storage.security import Principal, SecurityStore

from .problems import ProblemError

# Health and the docs (api/docs.py; their assets are a mount, /openapi.json FastAPI's own route).
PUBLIC_PATHS = {"/health", "/", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
PUBLIC_PREFIXES = ("/codec/ui/",  # its own path secret (api/routers/codec.py)
                   "/dolphinscheduler/")  # DS's REST API checks DS's token header itself (api/ds_rest/deps.py)

__all__ = ["Principal", "PrincipalDep", "authenticate", "require_admin", "require_project", "require_run",
           "require_datasource", "project_filter", "security_store"]


def security_store(request: Request) -> SecurityStore:
    store: SecurityStore = request.app.state.security
    return store


def token_of(request: Request) -> str:
    auth = request.headers.get("authorization", "").strip()
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("token", "").strip()


# Declared for the OpenAPI docs ("Authorize" in /docs); the header is read by token_of either way.
_bearer = HTTPBearer(auto_error=False, description="an access token (`porpoise token create`)")
_ds_token = APIKeyHeader(name="token", auto_error=False, description="DolphinScheduler's token header")


async def authenticate(request: Request, _b: Annotated[object, Depends(_bearer)] = None,
                       _t: Annotated[object, Depends(_ds_token)] = None) -> Principal | None:
    """The app-wide dependency: the caller's principal, or 401. Public paths pass with None."""
    path = request.url.path
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return None
    token = token_of(request)
    if not token:
        raise ProblemError(401, "Unauthorized",
                           "an access token is required: `Authorization: Bearer TOKEN` or a `token` header "
                           "(`porpoise token create`)")
    principal = await run_in_threadpool(security_store(request).principal, token)
    if principal is None:
        raise ProblemError(401, "Unauthorized", "the access token is unknown, revoked or expired")
    request.state.principal = principal
    return principal


async def current_principal(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None) or await authenticate(request)
    if principal is None:
        raise ProblemError(401, "Unauthorized", "an access token is required")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise ProblemError(403, "Forbidden", "only an administrator may do this")


def require_project(principal: Principal, project_code: int | None) -> None:
    """403 unless the principal may see and change project ``project_code``."""
    if not principal.may_use_project(int(project_code or 0)):
        raise ProblemError(403, "Forbidden", f"you are not authorized for project {int(project_code or 0)}")


def require_projects(principal: Principal, project_codes: Iterable[int | None]) -> None:
    for code in project_codes:
        require_project(principal, code)


def project_filter(principal: Principal, asked: int | None = None) -> frozenset[int] | None:
    """The project codes a listing may show: None = every project (an administrator asking for
    none in particular); otherwise the asked one (checked) or all the principal's."""
    if asked is not None:
        require_project(principal, asked)
        return frozenset({int(asked)})
    return principal.listed_projects


async def require_run(principal: Principal, client: Client, instance_id: str) -> None:
    """403 unless the principal may use the project of workflow instance ``instance_id`` (its
    ``DsProjectCode`` search attribute). Administrators skip the lookup."""
    if principal.is_admin:
        return
    try:
        desc = await client.get_workflow_handle(instance_id).describe()
    except RPCError as e:
        if e.status == RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not found", f"workflow instance {instance_id} does not exist") from e
        if e.status == RPCStatusCode.INVALID_ARGUMENT:
            raise ProblemError(422, "Invalid instance id", f"{instance_id!r} is not a workflow instance id") from e
        raise
    require_project(principal, desc.typed_search_attributes.get(sa.DS_PROJECT))


async def require_datasource(principal: Principal, store: SecurityStore, datasource_id: int,
                             *, owner: bool = False) -> None:
    """403 unless the principal owns datasource ``datasource_id`` or (``owner=False``) has a grant."""
    if principal.is_admin:
        return
    access = await run_in_threadpool(store.datasource_access, principal.user_id)
    if datasource_id not in access or (owner and not access[datasource_id]):
        what = "owner" if owner else "owner or a user it is granted to"
        raise ProblemError(403, "Forbidden", f"only the datasource's {what} may do this")


async def admin_only(principal: PrincipalDep) -> None:
    """A route dependency: ``@router.put(..., dependencies=[ADMIN_ONLY])``."""
    require_admin(principal)


ADMIN_ONLY = Depends(admin_only)


AccessDep = Annotated[SecurityStore, Depends(security_store)]

# Where task types name datasources by id (DS taskParams keys).
DATASOURCE_KEYS = {"SQL": ("datasource",), "PROCEDURE": ("datasource",), "DATAX": ("dataSource", "dataTarget")}


def datasource_ids(definition: WorkflowDefinition) -> set[int]:
    ids: set[int] = set()
    for task in definition.tasks:
        for key in DATASOURCE_KEYS.get(task.task_type, ()):
            with contextlib.suppress(TypeError, ValueError):
                if (value := int(task.task_params.get(key) or 0)) > 0:
                    ids.add(value)
    return ids


async def require_datasources_of(principal: Principal, store: SecurityStore, definition: WorkflowDefinition) -> None:
    """403 unless a general user may use every datasource the definition's tasks name: a task cannot
    borrow credentials its author was never granted."""
    if principal.is_admin:
        return
    ids = datasource_ids(definition)
    if not ids:
        return
    access = await run_in_threadpool(store.datasource_access, principal.user_id)
    if missing := sorted(ids - set(access)):
        raise ProblemError(403, "Forbidden", f"datasource(s) {', '.join(map(str, missing))} are neither yours nor "
                                             "granted to you")
