"""What every DS route needs: the caller (from DS's ``token`` header) and the request's parameters.

The caller is found by ONE dependency, :func:`ds_caller`: a Porpoise access token in the ``token``
header (:func:`check_token`, ``storage/security.py``, the same check as ``api/auth.py``) or, without
one, a DS login session (:func:`check_session`). No token, or a refused one, answers as
DS's ``LoginHandlerInterceptor`` does: HTTP 401 (with DS's envelope as the body, where DS sends none,
so a client that parses the body still gets a code). These routes do not check projects or datasource
grants yet, so they serve administrators only: a general user's token is refused (403,
USER_NO_OPERATION_PERM) rather than let through to other projects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from storage.login import LoginStore
from storage.security import SecurityStore

from .envelope import DsError
from .params import Params
from .status import Status


@dataclass(frozen=True)
class Principal:
    user_id: int
    user_name: str
    is_admin: bool = False


def check_token(store: SecurityStore, token: str) -> Principal | None:
    """The caller a DS ``token`` belongs to, or None (unknown, revoked or expired)."""
    found = store.principal(token.strip()) if token.strip() else None
    return Principal(user_id=found.user_id, user_name=found.name, is_admin=found.is_admin) if found else None


def check_session(store: SecurityStore, session_id: str) -> Principal | None:
    """The caller of a DS login session (``POST /login``, storage/login.py), or None (unknown, ended, expired)."""
    user_id = LoginStore(store.engine).session_user(session_id.strip())
    found = store.principal_of_user(user_id) if user_id is not None else None
    return Principal(user_id=found.user_id, user_name=found.name, is_admin=found.is_admin) if found else None


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
    principal = await ds_caller(request)
    if not principal.is_admin:  # no project or datasource checks here yet (see above)
        raise DsError(Status.USER_NO_OPERATION_PERM, http_status=403)
    return principal


async def ds_params(request: Request) -> Params:
    return await Params.of(request)


PrincipalDep = Annotated[Principal, Depends(ds_principal)]
CallerDep = Annotated[Principal, Depends(ds_caller)]  # any signed-in user: routes that check rights themselves
ParamsDep = Annotated[Params, Depends(ds_params)]
