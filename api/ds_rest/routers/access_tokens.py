"""DS ``AccessTokenController`` (``/access-tokens``) on Porpoise's one token store.

The tokens are the ones ``porpoise token create|list|revoke`` and ``/tokens`` manage (storage/security.py):
a token made here works on Porpoise's own API too. They are stored hashed, so the token value is in
the answer of create, update and generate only; lists show ``token`` null (DS shows the stored value).
A token a client chooses itself must look like one of Porpoise's (``pp_`` + at least 43 URL-safe
characters: take one from ``generate``); DS's own 32-hex tokens are refused with 10001.

Rights as DS: an administrator manages every token; a general user lists, makes, changes and deletes
only their own (and, unlike DS, cannot hand a token over to another user with update).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from starlette.concurrency import run_in_threadpool

from storage.login import DsToken, TokenInUse, UnknownToken, UnknownUser, strong_token
from storage.security import new_token

from ..common import PorpoiseDep, ds_router
from ..deps import CallerDep, ParamsDep, Principal
from ..envelope import DS_TIME, DsError, ds_error, ds_time, ok, page
from ..params import Params, paging, path_int
from ..status import Status
from .login import login_store

router = ds_router(token=False)  # every route asks for the caller itself (CallerDep): general users too


def _view(t: DsToken, zone: str) -> dict[str, Any]:
    return {"id": t.id, "userId": t.user_id, "userName": t.user_name, "token": t.token,
            "expireTime": ds_time(t.expires_at, zone), "createTime": ds_time(t.created_at, zone),
            "updateTime": ds_time(t.created_at, zone)}


def _expire_time(p: Params, zone: str) -> datetime:
    raw = p.req("expireTime").strip()
    try:
        return datetime.strptime(raw, DS_TIME).replace(tzinfo=ZoneInfo(zone))
    except ValueError:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "expireTime") from None


def _token_value(p: Params) -> str | None:
    token = (p.text("token") or "").strip()
    if token and not strong_token(token):
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "token",
                      msg="request parameter token is not valid: use a token from POST /access-tokens/generate "
                          "or leave it empty")
    return token or None


def _check_user(caller: Principal, user_id: int) -> None:
    if user_id <= 0:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "userId",
                      msg=f"User id: {user_id} should not less than or equals to 0.")
    if not caller.is_admin and user_id != caller.user_id:
        raise DsError(Status.USER_NO_OPERATION_PERM)


async def _owned(request: Request, caller: Principal, token_id: int) -> DsToken:
    found = await run_in_threadpool(login_store(request).ds_token, token_id)
    if found is None:
        raise DsError(Status.ACCESS_TOKEN_NOT_EXIST, token_id)
    if not caller.is_admin and found.user_id != caller.user_id:
        raise DsError(Status.USER_NO_OPERATION_PERM)
    return found


@router.post("/access-tokens", openapi_extra=ds_error(Status.CREATE_ACCESS_TOKEN_ERROR))
async def create_token(request: Request, caller: CallerDep, pp: PorpoiseDep, p: ParamsDep) -> Response:
    user_id = p.req_int("userId")
    expires = _expire_time(p, pp.zone)
    token = _token_value(p)
    _check_user(caller, user_id)
    try:
        made = await run_in_threadpool(login_store(request).create_ds_token, user_id, expires, token)
    except UnknownUser:
        raise DsError(Status.USER_NOT_EXIST, user_id) from None
    except TokenInUse:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "token") from None
    return ok(_view(made, pp.zone), 201)


@router.post("/access-tokens/generate", openapi_extra=ds_error(Status.GENERATE_TOKEN_ERROR))
async def generate_token(caller: CallerDep, p: ParamsDep) -> Response:
    """A fresh token value, not stored: pass it to create or update (DS: an MD5 of the inputs)."""
    p.req_int("userId")
    p.req("expireTime")
    return ok(new_token(), 201)


@router.get("/access-tokens", openapi_extra=ds_error(Status.QUERY_ACCESSTOKEN_LIST_PAGING_ERROR))
async def list_tokens(request: Request, caller: CallerDep, pp: PorpoiseDep, p: ParamsDep) -> Response:
    page_no, page_size = paging(p)
    search = (p.text("searchVal") or "").strip()
    rows = await run_in_threadpool(login_store(request).ds_tokens, None if caller.is_admin else caller.user_id,
                                   search)
    chunk = rows[(page_no - 1) * page_size: page_no * page_size]
    return ok(page([_view(t, pp.zone) for t in chunk], len(rows), page_no, page_size))


@router.get("/access-tokens/user/{user_id}", openapi_extra=ds_error(Status.QUERY_ACCESSTOKEN_BY_USER_ERROR))
async def tokens_of_user(request: Request, user_id: str, caller: CallerDep, pp: PorpoiseDep) -> Response:
    uid = path_int(user_id, "userId")
    if not caller.is_admin and uid != caller.user_id:
        raise DsError(Status.USER_NO_OPERATION_PERM)
    rows = await run_in_threadpool(login_store(request).ds_tokens, uid)
    return ok([_view(t, pp.zone) for t in rows])


@router.put("/access-tokens/{token_id}", openapi_extra=ds_error(Status.UPDATE_ACCESS_TOKEN_ERROR))
async def update_token(request: Request, token_id: str, caller: CallerDep, pp: PorpoiseDep,
                       p: ParamsDep) -> Response:
    tid = path_int(token_id, "id")
    user_id = p.req_int("userId")
    expires = _expire_time(p, pp.zone)
    token = _token_value(p)
    await _owned(request, caller, tid)
    _check_user(caller, user_id)
    try:
        made = await run_in_threadpool(login_store(request).update_ds_token, tid, user_id, expires, token)
    except UnknownUser:
        raise DsError(Status.USER_NOT_EXIST, user_id) from None
    except UnknownToken:
        raise DsError(Status.ACCESS_TOKEN_NOT_EXIST, tid) from None
    except TokenInUse:
        raise DsError(Status.REQUEST_PARAMS_NOT_VALID_ERROR, "token") from None
    return ok(_view(made, pp.zone))


@router.delete("/access-tokens/{token_id}", openapi_extra=ds_error(Status.DELETE_ACCESS_TOKEN_ERROR))
async def delete_token(request: Request, token_id: str, caller: CallerDep) -> Response:
    """Revokes the token at once; data ``false`` as DS answers."""
    tid = path_int(token_id, "id")
    await _owned(request, caller, tid)
    if not await run_in_threadpool(login_store(request).delete_ds_token, tid):
        raise DsError(Status.ACCESS_TOKEN_NOT_EXIST, tid)
    return ok(False)
