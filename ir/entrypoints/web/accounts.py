"""Signing in and out at the console, and changing a password (forced after a one-time password).

The same SignIn service as the API (lockout, per-source rate limit, audit); the session cookie is the API's,
so /api/stream and the API answer the console's browser too.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ir.app.signin import Principal, TooManyAttempts
from ir.domain.errors import InvalidInput, IrError, NotAuthenticated
from ir.domain.text import Lang
from ir.entrypoints.http.auth import COOKIE, core, serializer, signin, source
from ir.entrypoints.web.errors import error_line
from ir.entrypoints.web.i18n import translate
from ir.entrypoints.web.pages import show
from ir.entrypoints.web.session import (
    LOGIN_COOKIE,
    Flash,
    check_csrf,
    cookie_options,
    flash,
    language,
    login_token,
    login_token_ok,
    principal,
    require_user,
    safe_next,
    set_login_cookie,
)

router = APIRouter(include_in_schema=False)


def _password_url(next_url: str) -> str:
    return "/password" + (f"?{urlencode({'next': next_url})}" if next_url != "/" else "")


def _login_page(
    request: Request, *, next_url: str, error: str | None = None, user_name: str = "", status: int = 200
) -> HTMLResponse:
    token, cookie = login_token(request)
    response = show(
        request,
        "login.html",
        None,
        {"login_csrf": token, "next": next_url, "error": error, "user_name": user_name},
        status=status,
    )
    set_login_cookie(request, response, cookie)
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    found = principal(request)
    if found is not None and found.session_id is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next_url=safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    lang = language(request, None)[0]
    raw_next = form.get("next")
    next_url = safe_next(raw_next if isinstance(raw_next, str) else None)
    user_name = form.get("user")
    password = form.get("password")
    user_name = user_name.strip() if isinstance(user_name, str) else ""
    if not login_token_ok(request, form.get("csrf")):
        return _login_page(
            request, next_url=next_url, error=translate(lang, "error.csrf"), user_name=user_name, status=403
        )
    if not user_name or not isinstance(password, str) or not password:
        error = translate(lang, "error.required", what=translate(lang, "login.password"))
        return _login_page(request, next_url=next_url, error=error, user_name=user_name, status=422)
    try:
        found: Principal = await run_in_threadpool(
            signin(request).password, user_name, password, source=source(request)
        )
    except (NotAuthenticated, TooManyAttempts) as exc:
        status = 429 if isinstance(exc, TooManyAttempts) else 401
        error = translate(lang, "login.failed", detail=exc.message)
        response = _login_page(request, next_url=next_url, error=error, user_name=user_name, status=status)
        if isinstance(exc, TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    assert found.session_id is not None
    target = _password_url(next_url) if found.must_change_password else next_url
    signed_in = RedirectResponse(target, status_code=303)
    signed_in.set_cookie(
        COOKIE,
        serializer(request).dumps(found.session_id),
        max_age=int(core(request).settings.session_ttl.total_seconds()),
        **cookie_options(request),
    )
    signed_in.delete_cookie(LOGIN_COOKIE, path="/")
    return signed_in


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    found = principal(request)
    response = RedirectResponse("/login", status_code=303)
    if found is not None and found.session_id is not None:
        check_csrf(form.get("csrf"), found)
        await run_in_threadpool(signin(request).sign_out, found)
        lang = language(request, found)[0]
        flash(request, response, [Flash("ok", translate(lang, "login.signed_out"))])
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/password")
def password_form(request: Request, next: str = "/") -> HTMLResponse:
    user = require_user(request, allow_password_change=True)
    return show(request, "password.html", user, {"forced": user.must_change_password, "next": safe_next(next)})


def _change(request: Request, user: Principal, current: str, new: str, confirm: str, lg: Lang) -> None:
    """Check and store the new password, in one transaction with its audit record."""
    if new != confirm:
        raise InvalidInput(translate(lg, "password.mismatch"), field="confirm")
    service = signin(request)
    app = core(request)
    with app.db.uow() as uow:
        if not user.must_change_password:
            _user, outcome = uow.users.verify(
                user.actor.id, current, lock_after=service.lock_after, lock_for=service.lock_for
            )
            if outcome != "ok":
                uow.commit()  # a wrong guess counts towards the lockout
                raise NotAuthenticated(translate(lg, "password.wrong_current"))
            if current == new:
                raise InvalidInput(translate(lg, "password.same"), field="new")
        uow.users.set_password(user.actor.id, new, must_change=False, keep_session=user.session_id)
        uow.audit.record(
            action="user.password",
            actor=user.actor.id,
            subject=f"user:{user.actor.id}",
            payload={"forced": user.must_change_password, "source": source(request)},
            at=app.clock.now(),
        )
        uow.commit()


@router.post("/password")
async def change_password(request: Request) -> Response:
    form = await request.form()
    user = await run_in_threadpool(require_user, request, allow_password_change=True)
    check_csrf(form.get("csrf"), user)
    lang = language(request, user)[0]
    raw_next = form.get("next")
    next_url = safe_next(raw_next if isinstance(raw_next, str) else None)

    def field(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    try:
        await run_in_threadpool(_change, request, user, field("current"), field("new"), field("confirm"), lang)
    except IrError as exc:
        message = exc.message if isinstance(exc, InvalidInput | NotAuthenticated) else error_line(lang, exc)
        if isinstance(exc, InvalidInput) and exc.field == "password":
            message = error_line(lang, exc)
        response = RedirectResponse(_password_url(next_url), status_code=303)
        flash(request, response, [Flash("error", message)])
        return response
    response = RedirectResponse(next_url, status_code=303)
    flash(request, response, [Flash("ok", translate(lang, "password.changed"))])
    return response
