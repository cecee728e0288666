"""Who is calling: a console session (signed, HttpOnly, SameSite cookie, CSRF token on every change) or an
API token (Authorization: Bearer, stored hashed, scoped, expiring, revocable)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from ir.app.ports import Users
from ir.app.signin import Principal, SignIn, require_scope
from ir.bootstrap import App
from ir.domain.errors import NotAuthenticated, NotPermitted

COOKIE = "ir_session"
SAFE = {"GET", "HEAD", "OPTIONS"}


def core(request: Request) -> App:
    found: App = request.app.state.core
    return found


def signin(request: Request) -> SignIn:
    found = getattr(request.app.state, "signin", None)
    if found is None:
        app = core(request)
        found = SignIn(
            uow=app.db.uow,
            clock=app.clock,
            appender=app.appender,
            session_ttl=app.settings.session_ttl,
            reader=_users_reader(app),
            users_version=lambda: app.db.users_version,
            recheck=app.settings.token_recheck_seconds,
        )
        request.app.state.signin = found
    assert isinstance(found, SignIn)
    return found


def _users_reader(app: App) -> Callable[[], AbstractContextManager[Users]]:
    """Users on a plain read connection: checking a token or a session takes no write lock."""

    @contextmanager
    def read() -> Iterator[Users]:
        from ir.adapters.db.users import SqlUsers

        with app.db.connection() as conn:
            yield SqlUsers(conn, now=app.clock.now())

    return read


def serializer(request: Request) -> URLSafeTimedSerializer:
    found = getattr(request.app.state, "cookie_signer", None)
    if found is None:
        found = URLSafeTimedSerializer(core(request).settings.session_secret(), salt="ir-session")
        request.app.state.cookie_signer = found
    assert isinstance(found, URLSafeTimedSerializer)
    return found


def source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def _remembered(request: Request) -> Principal | None:
    """A bearer token checked a moment ago, from memory: no worker thread, no database."""
    secret = _bearer(request)
    return None if secret is None else signin(request).remembered_token(secret)


def _principal(request: Request) -> Principal | None:
    secret = _bearer(request)
    if secret is not None:
        return signin(request).token(secret, source=source(request))
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    try:
        session_id = serializer(request).loads(cookie, max_age=int(core(request).settings.session_ttl.total_seconds()))
    except BadSignature:
        return None
    try:
        return signin(request).session(str(session_id))
    except NotAuthenticated:
        return None


async def check_csrf(request: Request, principal: Principal) -> None:
    """A change made with a session cookie carries the session's CSRF token (header or form field)."""
    if request.method in SAFE or principal.session_id is None:
        return
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else None
    if not sent or principal.csrf is None or not hmac.compare_digest(sent, principal.csrf):
        raise NotPermitted("the form is stale or forged (CSRF token missing or wrong): reload the page")


async def current(request: Request) -> Principal:
    # the check reads the database (and may note a token's use): in a worker thread, off the event loop
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        principal = _remembered(request)
    if principal is None:
        principal = await run_in_threadpool(_principal, request)
    if principal is None:
        raise NotAuthenticated("sign in first (a session, or Authorization: Bearer <token>)")
    request.state.principal = principal
    await check_csrf(request, principal)
    require_scope(principal, write=request.method not in SAFE)
    return principal


def optional(request: Request) -> Principal | None:
    return _principal(request)


async def _core(request: Request) -> App:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a hop for a dictionary lookup
    return core(request)


Caller = Annotated[Principal, Depends(current)]
Core = Annotated[App, Depends(_core)]
