"""What every DS route needs: the caller (from DS's ``token`` header) and the request's parameters.

The token is checked by ONE function, :func:`check_token`. Until Porpoise's access tokens land
(``api/auth.py`` + ``storage/security.py``), it accepts any non-empty token and names the caller
``porpoise``; re-point it at the real check there and nothing else changes. No token, or a refused
one, answers as DS's ``LoginHandlerInterceptor`` does: HTTP 401 (with DS's envelope as the body, where
DS sends none, so a client that parses the body still gets a code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .envelope import DsError
from .params import Params
from .status import Status


@dataclass(frozen=True)
class Principal:
    user_id: int
    user_name: str


def check_token(token: str) -> Principal | None:
    """The caller a DS ``token`` belongs to, or None. PLACEHOLDER: any non-empty token is accepted."""
    return Principal(user_id=1, user_name="porpoise") if token.strip() else None


async def ds_principal(request: Request) -> Principal:
    token = request.headers.get("token", "")
    principal = check_token(token) if token else None
    if principal is None:
        raise DsError(Status.USER_NOT_EXIST, "(no valid token)" if token else "(no token header)",
                      http_status=401)
    return principal


async def ds_params(request: Request) -> Params:
    return await Params.of(request)


PrincipalDep = Annotated[Principal, Depends(ds_principal)]
ParamsDep = Annotated[Params, Depends(ds_params)]
