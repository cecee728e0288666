"""The console (server-rendered with Jinja2): installed on the HTTP application by `install`.

Pages work without JavaScript: every change is a plain HTML form posting to a console route that builds
the same command as the CLI and the API, hands it to `core.handlers.handle`, and redirects back
(POST/redirect/GET). static/live.js only adds live updates (Server-Sent Events from /api/stream).
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ir.app.signin import Principal
from ir.domain.errors import IrError, NotPermitted
from ir.entrypoints.http.routes import mount
from ir.entrypoints.web import accounts, forms, pages, status_page
from ir.entrypoints.web.errors import error_line, error_page
from ir.entrypoints.web.i18n import translate
from ir.entrypoints.web.rendering import STATIC
from ir.entrypoints.web.session import (
    CsrfRefused,
    LoginRequired,
    PasswordChangeRequired,
    here,
    language,
    login_url,
    principal,
)

CONSOLE_PREFIXES = ("/incidents", "/dashboard", "/password", "/login", "/logout")


def _is_console(request: Request) -> bool:
    path = request.url.path
    return path == "/" or path.startswith(CONSOLE_PREFIXES)


def install(api: FastAPI) -> None:
    """The console's routes, its static files, and how it answers a visitor who may not do something."""
    api.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    status_page.install(api)  # the public page (no sign-in) and its form, before the console's /incidents/{id}/{act}
    for module in (accounts.router, pages.router, forms.router):
        mount(api, module)
    previous_forbidden = api.exception_handlers.get(IrError)  # the API's problem+json

    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(login_url(exc.back), status_code=303)

    async def password_change_required(request: Request, exc: Exception) -> Response:
        return RedirectResponse("/password?" + _next(request), status_code=303)

    async def csrf_refused(request: Request, exc: Exception) -> Response:
        user = principal(request)
        lang = language(request, user)[0]
        context = pages.page_context(request, user, lang)
        return error_page(
            context,
            title_key="error.page_title",
            message=translate(lang, "error.csrf"),
            status=403,
            back=request.headers.get("referer", "/") if _same_site(request) else "/",
        )

    async def forbidden(request: Request, exc: Exception) -> Response:
        """A page the user's roles do not allow: a page saying so (the API keeps its problem+json)."""
        assert isinstance(exc, NotPermitted)
        user: Principal | None = principal(request) if _is_console(request) else None
        if user is None:
            if previous_forbidden is None:  # pragma: no cover - the HTTP app always maps IrError
                raise exc
            answer = previous_forbidden(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        lang = language(request, user)[0]
        context = pages.page_context(request, user, lang)
        return error_page(context, title_key="error.page_title", message=error_line(lang, exc), status=403)

    api.add_exception_handler(LoginRequired, login_required)
    api.add_exception_handler(PasswordChangeRequired, password_change_required)
    api.add_exception_handler(CsrfRefused, csrf_refused)
    api.add_exception_handler(NotPermitted, forbidden)


def _next(request: Request) -> str:
    from urllib.parse import urlencode

    back = here(request) if request.method == "GET" else "/"
    return urlencode({"next": back})


def _same_site(request: Request) -> bool:
    referer = request.headers.get("referer", "")
    return referer.startswith(str(request.base_url))
