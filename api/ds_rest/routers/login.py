"""DS ``LoginController``: ``POST /login`` (user name and password → a login session) and ``POST /signOut``.

The session id is answered in the envelope (``data.sessionId``) and set as the ``sessionId`` cookie,
as DS does; DS clients then send it back in the ``sessionId`` header or cookie (api/ds_rest/deps.py).
A wrong user name or password answers DS's ``USER_NAME_PASSWD_ERROR`` whichever was wrong. After
``ds_login_failures`` failures within a window for one user name (or four times that from one client
address) further attempts are refused for the rest of the window, without checking the password.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from storage.login import LoginStore

from ..common import ds_router
from ..deps import CallerDep, ParamsDep
from ..envelope import DsError, ds_error, ok, result
from ..status import Status

router = ds_router(token=False)  # login needs none; signOut asks for the caller itself

SESSION_COOKIE = "sessionId"
COOKIE_PATH = "/dolphinscheduler"
SECURITY_TYPE = "PASSWORD"  # DS's securityConfigType for its password authenticator
FAILURE_WINDOW = 300.0  # seconds a failed login counts against its user name and client


class LoginFailures:
    """Failed logins per key in a sliding window, in this API process (several API processes each
    count their own)."""

    def __init__(self, window: float = FAILURE_WINDOW) -> None:
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._seen.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def wait(self, keys: dict[str, int]) -> float:
        """Seconds until every key (key → allowed failures) may try again; 0 when none is paused."""
        now = time.monotonic()
        with self._lock:
            waits = [q[-limit] + self.window - now for key, limit in keys.items()
                     if len(q := self._recent(key, now)) >= limit]
            for key in [k for k, q in self._seen.items() if not q]:
                del self._seen[key]
        return max(waits, default=0.0)

    def failed(self, keys: dict[str, int]) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def forget(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)


def _failures(request: Request) -> LoginFailures:
    found = getattr(request.app.state, "ds_login_failures", None)
    if not isinstance(found, LoginFailures):
        found = request.app.state.ds_login_failures = LoginFailures()
    return found


def login_store(request: Request) -> LoginStore:
    return LoginStore(request.app.state.security.engine)


@router.post("/login", openapi_extra=ds_error(Status.USER_LOGIN_FAILURE))
async def login(request: Request, p: ParamsDep) -> Response:
    settings = request.app.state.porpoise.settings  # no caller yet: not the caller-bound PorpoiseDep
    name = p.req("userName")
    password = p.req("userPassword")
    if not name.strip():
        raise DsError(Status.USER_NAME_NULL)
    limit = settings.ds_login_failures
    keys = {f"user:{name}": limit, f"ip:{request.client.host if request.client else '?'}": limit * 4}
    failures = _failures(request)
    if (wait := failures.wait(keys)) > 0:
        raise DsError(Status.USER_LOGIN_FAILURE, http_status=429,
                      msg=f"{Status.USER_LOGIN_FAILURE.msg()}: too many failed logins, retry in {int(wait) + 1} s")
    store = login_store(request)
    user_id = await run_in_threadpool(store.authenticate, name, password)
    if user_id is None:
        failures.failed(keys)
        raise DsError(Status.USER_NAME_PASSWD_ERROR)
    failures.forget(f"user:{name}")
    seconds = settings.ds_session_seconds
    session_id = await run_in_threadpool(store.open_session, user_id, seconds)
    response = JSONResponse(result(data={"sessionId": session_id, "securityConfigType": SECURITY_TYPE},
                                   msg=Status.LOGIN_SUCCESS.msg()))
    for key, value in ((SESSION_COOKIE, session_id), ("securityConfigType", SECURITY_TYPE)):
        response.set_cookie(key, value, max_age=int(seconds), path=COOKIE_PATH, httponly=True, samesite="strict")
    return response


@router.post("/signOut", openapi_extra=ds_error(Status.SIGN_OUT_ERROR))
async def sign_out(request: Request, caller: CallerDep) -> Response:
    """Ends every session of the caller, as DS (``SessionService.expireSession(userId)``)."""
    await run_in_threadpool(login_store(request).end_sessions, caller.user_id)
    response = ok(None)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response
