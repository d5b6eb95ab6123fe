"""Users, projects, access tokens and datasource grants (docs/security.md). Administrators manage
users and tokens; a project's owner (or an administrator) authorizes users for it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from services.schemas import IssuedToken, NewProject, NewToken, NewUser, ProjectView, TokenView, UserView
from storage.security import SecurityError, SecurityStore

from ..auth import PrincipalDep, require_admin, require_datasource, security_store
from ..problems import ProblemError

router = APIRouter(tags=["access"])


def _store(store: SecurityStore = Depends(security_store)) -> SecurityStore:
    return store


async def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except SecurityError as e:
        raise ProblemError(409 if "exists" in str(e) else 404, "Refused", str(e)) from e


@router.get("/users", response_model=list[UserView], summary="List users (administrators only)")
async def users(principal: PrincipalDep, store: SecurityStore = Depends(_store)) -> list[dict[str, Any]]:
    require_admin(principal)
    return await _call(store.users)  # type: ignore[no-any-return]


@router.post("/users", status_code=201, response_model=UserView,
             summary="Create a user (administrators only)")
async def create_user(body: NewUser, principal: PrincipalDep, store: SecurityStore = Depends(_store)) -> dict[str, Any]:
    require_admin(principal)
    return await _call(store.create_user, body.name, is_admin=body.admin)  # type: ignore[no-any-return]


@router.post("/tokens", status_code=201, response_model=IssuedToken,
             summary="Issue an access token (administrators only); shown once")
async def create_token(body: NewToken, principal: PrincipalDep,
                       store: SecurityStore = Depends(_store)) -> dict[str, Any]:
    require_admin(principal)
    record, token = await _call(store.issue_token, body.name, name=body.name, admin=body.admin,
                                projects=body.projects, expires_days=body.expires_days)
    return record | {"token": token}  # type: ignore[no-any-return]


@router.get("/tokens", response_model=list[TokenView],
            summary="List access tokens, never their values (administrators only)")
async def tokens(principal: PrincipalDep, store: SecurityStore = Depends(_store)) -> list[dict[str, Any]]:
    require_admin(principal)
    return await _call(store.tokens)  # type: ignore[no-any-return]


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke an access token (administrators only)")
async def revoke_token(token_id: int, principal: PrincipalDep, store: SecurityStore = Depends(_store)) -> None:
    require_admin(principal)
    if not await _call(store.revoke_token, token_id):
        raise ProblemError(404, "Not found", f"token {token_id} does not exist")


@router.get("/projects", response_model=list[ProjectView], summary="The projects the caller may use")
async def projects(principal: PrincipalDep, store: SecurityStore = Depends(_store)) -> list[dict[str, Any]]:
    return await _call(store.projects, principal.listed_projects)  # type: ignore[no-any-return]


@router.post("/projects", status_code=201, response_model=ProjectView,
             summary="Register a project (administrators only)")
async def create_project(body: NewProject, principal: PrincipalDep,
                         store: SecurityStore = Depends(_store)) -> dict[str, Any]:
    require_admin(principal)
    return await _call(store.create_project, body.code, body.name,  # type: ignore[no-any-return]
                       body.owner or principal.name)


async def _require_project_owner(principal: PrincipalDep, store: SecurityStore, code: int) -> None:
    if not principal.is_admin and await run_in_threadpool(store.project_owner, code) != principal.user_id:
        raise ProblemError(403, "Forbidden", f"only project {code}'s owner or an administrator may authorize users")


@router.put("/projects/{code}/users/{user}", status_code=204, summary="Authorize a user for a project")
async def authorize(code: int, user: str, principal: PrincipalDep, store: SecurityStore = Depends(_store)) -> None:
    await _require_project_owner(principal, store, code)
    await _call(store.authorize, code, user)


@router.delete("/projects/{code}/users/{user}", status_code=204, summary="Withdraw a user's authorization")
async def unauthorize(code: int, user: str, principal: PrincipalDep, store: SecurityStore = Depends(_store)) -> None:
    await _require_project_owner(principal, store, code)
    await _call(store.unauthorize, code, user)


@router.put("/datasources/{datasource_id}/grants/{user}", status_code=204,
            summary="Let another user use a datasource (its owner or an administrator)")
async def grant(datasource_id: int, user: str, principal: PrincipalDep, store: SecurityStore = Depends(_store)) -> None:
    await require_datasource(principal, store, datasource_id, owner=True)
    await _call(store.grant_datasource, datasource_id, user)


@router.delete("/datasources/{datasource_id}/grants/{user}", status_code=204, summary="Withdraw a datasource grant")
async def ungrant(datasource_id: int, user: str, principal: PrincipalDep,
                  store: SecurityStore = Depends(_store)) -> None:
    await require_datasource(principal, store, datasource_id, owner=True)
    await _call(store.revoke_datasource, datasource_id, user)
