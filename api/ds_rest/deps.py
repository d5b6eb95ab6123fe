"""What every DS route needs: the caller (from DS's ``token`` header) and the request's parameters.

The caller is found by ONE dependency, :func:`ds_caller`: a Porpoise access token in the ``token``
header (:func:`check_token`, ``storage/security.py``, the same check as ``api/auth.py``) or, without
one, a DS login session (:func:`check_session`). No token, or a refused one, answers as
DS's ``LoginHandlerInterceptor`` does: HTTP 401 (with DS's envelope as the body, where DS sends none,
so a client that parses the body still gets a code).

Permissions are the native API's (``api/auth.py``: ``require_project``, ``require_datasource``,
``require_admin``, ...), called from here and the DS routers and answered in DS's words: a project
the caller may not use is ``USER_NO_OPERATION_PROJECT_PERM`` (30002), anything else refused is
``USER_NO_OPERATION_PERM`` (30001), HTTP 200 as DS's ``ApiExceptionHandler`` answers both. Every
route with a ``{projectCode}`` in its path checks it here, before the route runs.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from storage.login import LoginStore
from storage.security import Principal, SecurityStore

from ..auth import require_admin, require_datasource, require_project
from ..problems import ProblemError
from .envelope import DsError
from .params import Params
from .status import Status

# The native checks the DS routers call directly (a refusal, ProblemError 403, is answered 30001 by DsRoute).
__all__ = ["ADMIN_ONLY", "ParamsDep", "Principal", "PrincipalDep", "check_token", "ds_principal", "project_perm",
           "require_datasource"]


def check_token(store: SecurityStore, token: str) -> Principal | None:
    """The caller a DS ``token`` belongs to, or None (unknown, revoked or expired)."""
    return store.principal(token.strip()) if token.strip() else None


def project_perm(principal: Principal, code: int) -> None:
    """DS's 30002 unless the caller may use project ``code`` (``api.auth.require_project`` decides).
    Project 0 ("no project") is refused to general users here: DS routes address one project."""
    try:
        if not principal.is_admin and not code:
            raise ProblemError(403, "Forbidden", "project 0")
        require_project(principal, code)
    except ProblemError as e:
        raise DsError(Status.USER_NO_OPERATION_PROJECT_PERM, principal.name, code) from e


def check_session(store: SecurityStore, session_id: str) -> Principal | None:
    """The caller of a DS login session (``POST /login``, storage/login.py), or None (unknown, ended, expired)."""
    user_id = LoginStore(store.engine).session_user(session_id.strip())
    return store.principal_of_user(user_id) if user_id is not None else None


async def ds_caller(request: Request) -> Principal:
    """Who calls, as DS's ``LoginHandlerInterceptor``: the ``token`` header; without one, the login
    session in the ``sessionId`` header or cookie. Neither valid: HTTP 401."""
    token = request.headers.get("token", "")
    store: SecurityStore = request.app.state.security
    principal = await run_in_threadpool(check_token, store, token) if token else None
    session = "" if token else request.headers.get("sessionId") or request.cookies.get("sessionId") or ""
    if session:
        principal = await run_in_threadpool(check_session, store, session)
    if principal is None:
        raise DsError(Status.USER_NOT_EXIST, "(no valid token)" if token else
                      "(no valid session)" if session else "(no token header)", http_status=401)
    return principal


async def ds_principal(request: Request) -> Principal:
    """The caller (:func:`ds_caller`), checked against the ``{projectCode}`` of the path if it has one."""
    principal = await ds_caller(request)
    request.state.principal = principal
    code = request.path_params.get("projectCode")
    if code is not None:
        try:
            number = int(code)  # as params.path_int reads it
        except ValueError:
            number = None  # the route answers a malformed code (REQUEST_PARAMS_NOT_VALID_ERROR)
        if number is not None:
            project_perm(principal, number)
    return principal


async def ds_params(request: Request) -> Params:
    return await Params.of(request)


PrincipalDep = Annotated[Principal, Depends(ds_principal)]
CallerDep = Annotated[Principal, Depends(ds_caller)]  # any signed-in user: routes that check rights themselves
ParamsDep = Annotated[Params, Depends(ds_params)]


async def ds_admin_only(principal: PrincipalDep) -> None:
    """``api.auth.require_admin`` for a DS route (``dependencies=[ADMIN_ONLY]``): DS's 30001 otherwise."""
    try:
        require_admin(principal)
    except ProblemError as e:
        raise DsError(Status.USER_NO_OPERATION_PERM) from e


ADMIN_ONLY = Depends(ds_admin_only)
