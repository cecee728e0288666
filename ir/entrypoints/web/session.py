"""Who is at the console and what they were last told.

- The session is the API's (cookie `ir_session`, signed; its CSRF token travels in every form as `csrf`).
- Before a session exists, the sign-in form is protected by a signed double-submit cookie: the cookie holds
  a random token signed with the server's key, the form holds the token, and both must agree.
- Flash messages survive one redirect (POST -> redirect -> GET) in a short-lived signed cookie.
- The language is `?lang=` once, then a cookie; else the user's own setting; else zh-CN.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ir.app.signin import Principal
from ir.domain.text import Lang
from ir.entrypoints.http.auth import core, optional
from ir.entrypoints.web.i18n import LANG_COOKIE, lang_of

LOGIN_COOKIE = "ir_login_csrf"
FLASH_COOKIE = "ir_flash"
LOGIN_TOKEN_AGE = 12 * 3600
FLASH_AGE = 120


class LoginRequired(Exception):
    """Not signed in: the console answers with a redirect to /login (and back afterwards)."""

    def __init__(self, back: str) -> None:
        super().__init__(back)
        self.back = back


class PasswordChangeRequired(Exception):
    """Signed in with a one-time password: nothing but the password page until it is changed."""


class CsrfRefused(Exception):
    """A change without the right token: refused, nothing done."""


def _signer(request: Request, salt: str) -> URLSafeTimedSerializer:
    cache: dict[str, URLSafeTimedSerializer] | None = getattr(request.app.state, "console_signers", None)
    if cache is None:
        cache = {}
        request.app.state.console_signers = cache
    found = cache.get(salt)
    if found is None:
        found = URLSafeTimedSerializer(core(request).settings.session_secret(), salt=salt)
        cache[salt] = found
    return found


def cookie_options(request: Request) -> dict[str, Any]:
    return {"httponly": True, "samesite": "lax", "secure": core(request).settings.secure_cookies, "path": "/"}


# -- who ------------------------------------------------------------------------------------------------


def here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def principal(request: Request) -> Principal | None:
    found = getattr(request.state, "principal", None)
    if found is None:
        found = optional(request)
        request.state.principal = found
    return found if isinstance(found, Principal) else None


def require_user(request: Request, *, allow_password_change: bool = False) -> Principal:
    """The signed-in user of a console session (API tokens are for machines, not the console)."""
    found = principal(request)
    if found is None or found.session_id is None:
        back = here(request) if request.method == "GET" else request.headers.get("referer", "/")
        raise LoginRequired(safe_next(back))
    if found.must_change_password and not allow_password_change:
        raise PasswordChangeRequired()
    return found


def check_csrf(form_value: object, user: Principal) -> None:
    if not isinstance(form_value, str) or not user.csrf or not hmac.compare_digest(form_value, user.csrf):
        raise CsrfRefused()


def safe_next(value: str | None) -> str:
    """Only a path on this site: never another host (`//evil`, `https://…`, `/\\evil`)."""
    if not value:
        return "/"
    if "://" in value and not value.startswith("/"):
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        value = parts.path + (f"?{parts.query}" if parts.query else "")
    if not value.startswith("/") or value.startswith("//") or "\\" in value or any(ord(ch) < 32 for ch in value):
        return "/"
    if value.startswith(("/login", "/logout", "/password")):
        return "/"
    return value


def login_url(back: str) -> str:
    return "/login" + (f"?{urlencode({'next': back})}" if back and back != "/" else "")


# -- the sign-in form's token (before any session) ------------------------------------------------------


def login_token(request: Request) -> tuple[str, str | None]:
    """(the form's token, the cookie to set or None to keep the current one): one token across tabs."""
    signer = _signer(request, "ir-login-csrf")
    cookie = request.cookies.get(LOGIN_COOKIE)
    if cookie:
        try:
            token = signer.loads(cookie, max_age=LOGIN_TOKEN_AGE)
            if isinstance(token, str):
                return token, None
        except BadSignature:
            pass
    token = secrets.token_urlsafe(32)
    return token, signer.dumps(token)


def set_login_cookie(request: Request, response: Response, cookie: str | None) -> None:
    if cookie is not None:
        options = cookie_options(request) | {"samesite": "strict"}
        response.set_cookie(LOGIN_COOKIE, cookie, max_age=LOGIN_TOKEN_AGE, **options)


def login_token_ok(request: Request, form_value: object) -> bool:
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not cookie or not isinstance(form_value, str) or not form_value:
        return False
    try:
        token = _signer(request, "ir-login-csrf").loads(cookie, max_age=LOGIN_TOKEN_AGE)
    except BadSignature:
        return False
    return isinstance(token, str) and hmac.compare_digest(token, form_value)


# -- flash messages -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flash:
    kind: str  # ok | error
    text: str
    where: str = ""  # the section (or step) it is about: shown there, else at the top


def flash(request: Request, response: Response, messages: list[Flash]) -> None:
    value = _signer(request, "ir-flash").dumps([[m.kind, m.text, m.where] for m in messages])
    response.set_cookie(FLASH_COOKIE, value, max_age=FLASH_AGE, **cookie_options(request))


def read_flash(request: Request) -> list[Flash]:
    """The messages left for this page (shown once: `clear_flash` on the response)."""
    cookie = request.cookies.get(FLASH_COOKIE)
    if not cookie:
        return []
    try:
        raw = _signer(request, "ir-flash").loads(cookie, max_age=FLASH_AGE)
    except BadSignature:
        return []
    out = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, list) and len(item) == 3 and all(isinstance(x, str) for x in item):
            out.append(Flash(item[0], item[1], item[2]))
    return out


def clear_flash(request: Request, response: Response) -> None:
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path="/")


# -- language -------------------------------------------------------------------------------------------


def language(request: Request, user: Principal | None) -> tuple[Lang, bool]:
    """(the language of this page, whether ?lang= asked to remember it)."""
    asked = request.query_params.get("lang")
    if asked in ("en", "zh-CN"):
        return lang_of(asked), True
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in ("en", "zh-CN"):
        return lang_of(cookie), False
    return lang_of(user.lang if user else None), False


def remember_language(request: Request, response: Response, lang: Lang) -> None:
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/", httponly=True)


def switch_url(request: Request, lang: Lang) -> str:
    """This page in the other language."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    params.append(("lang", "zh-CN" if lang == "en" else "en"))
    return request.url.path + "?" + urlencode(params)
