"""What every DS route needs: the caller (from DS's ``token`` header) and the request's parameters.

The token is checked by ONE function, :func:`check_token`: a Porpoise access token
(``storage/security.py``, the same check as ``api/auth.py``). No token, or a refused one, answers as
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


async def ds_principal(request: Request) -> Principal:
    token = request.headers.get("token", "")
    store: SecurityStore = request.app.state.security
    principal = await run_in_threadpool(check_token, store, token) if token else None
    if principal is None:
        raise DsError(Status.USER_NOT_EXIST, "(no valid token)" if token else "(no token header)",
                      http_status=401)
    if not principal.is_admin:  # no project or datasource checks here yet (see above)
        raise DsError(Status.USER_NO_OPERATION_PERM, http_status=403)
    return principal


async def ds_params(request: Request) -> Params:
    return await Params.of(request)


PrincipalDep = Annotated[Principal, Depends(ds_principal)]
ParamsDep = Annotated[Params, Depends(ds_params)]
