"""The public status page (no sign-in): /status in zh-CN (?lang=en for English), its Atom feed, its CAP
feed and each CAP alert by identifier — and the console's form that publishes an update.

The public routes are PUBLIC_PATHS, listed here on purpose: they read only the published updates (the
StatusPage service's public side), never an incident, and they never look at who is calling (no session is
read, no cookie is set), so a page may be cached by a proxy in front of the server for a few seconds.
Every other route still needs a sign-in (tests/integration/test_status_page.py tries them all).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ir.app.status_page import PublicIncident, PublishedUpdate
from ir.domain.errors import IrError
from ir.domain.status_updates import PublishStatusUpdate
from ir.domain.text import Lang
from ir.entrypoints.http.auth import core
from ir.entrypoints.http.status_updates import service
from ir.entrypoints.web.errors import ConsoleInputError, error_line
from ir.entrypoints.web.i18n import translate
from ir.entrypoints.web.rendering import environment
from ir.entrypoints.web.session import Flash, check_csrf, flash, language, require_user
from ir.entrypoints.web.status_feeds import ATOM_TYPE, feed

log = logging.getLogger("ir.status")
router = APIRouter(include_in_schema=False)

PUBLIC_PATHS = frozenset({"/status", "/status/feed.atom", "/status/feed.cap.xml", "/status/alerts/{identifier}.xml"})
CACHE = "public, max-age=30"
# the public page has no script and no form: nothing but its own stylesheet
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def _lang(request: Request) -> Lang:
    """?lang=en, else zh-CN: the address alone says the language (no cookie, so a cache serves it right)."""
    return "en" if request.query_params.get("lang") == "en" else "zh-CN"


def _base(request: Request) -> str:
    configured = core(request).settings.status_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/") + "/status"


# -- the page ---------------------------------------------------------------------------------------------


def _when(instant: datetime | None, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M") if instant else ""


def _update_view(u: PublishedUpdate, lang: Lang, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "title": u.title(lang),
        "message": u.message(lang),
        "area": u.area(lang),
        "instruction": u.instruction(lang),
        "eta": _when(u.eta, zone) if u.eta and not u.resolved else "",
        "at": _when(u.published_at, zone),
        "iso": u.published_at.astimezone(zone).isoformat(timespec="seconds"),
        "resolved": u.resolved,
        "cap": f"/status/alerts/{u.cap_identifier}.xml",
    }


def _incident_view(i: PublicIncident, lang: Lang, zone: ZoneInfo) -> dict[str, Any]:
    latest = _update_view(i.latest, lang, zone)
    return {
        "ref": i.ref,
        "exercise": i.mode == "drill",
        "resolved": i.resolved,
        "title": latest["title"],
        "area": latest["area"],
        "eta": latest["eta"],
        "updated": latest["at"],
        "updated_iso": latest["iso"],
        "updates": [_update_view(u, lang, zone) for u in i.updates],
    }


_Cache = dict[tuple[str, ...], tuple[tuple[int, int], bytes]]


def _cached(request: Request, key: tuple[str, ...], make: Callable[[], bytes]) -> bytes:
    """A rendered public document, kept in this process until anything is published (by any process: the
    key includes the board's version, read afresh on every request), so a crowd costs one small query each;
    after a publish, one request renders while the others wait for it (no stampede of renders)."""
    state = request.app.state
    cache: _Cache = state.status_cache
    version = service(request).version()
    found = cache.get(key)
    if found is not None and found[0] == version:
        return found[1]
    with state.status_lock:
        cache = state.status_cache
        found = cache.get(key)
        if found is not None and found[0] == version:
            return found[1]
        made = make()
        cache[key] = (version, made)  # a handful of keys: the documents times the two languages
        return made


def _page(request: Request, lang: Lang) -> bytes:
    app = core(request)
    zone = ZoneInfo(app.settings.timezone)
    incidents = [_incident_view(i, lang, zone) for i in service(request).public()]
    other: Lang = "en" if lang == "zh-CN" else "zh-CN"
    html = (
        environment()
        .get_template("status.html")
        .render(
            t=lambda key, **fields: translate(lang, key, **fields),
            lang=lang,
            zone=app.settings.timezone,
            ongoing=[i for i in incidents if not i["resolved"]],
            resolved=[i for i in incidents if i["resolved"]],
            switch_url="/status?" + urlencode({"lang": other}) if other == "en" else "/status",
            feed_suffix="?lang=en" if lang == "en" else "",
            org=app.settings.org_name,
        )
    )
    return html.encode()


@router.api_route("/status", methods=["GET", "HEAD"])
def status_page(request: Request) -> Response:
    lang = _lang(request)
    html = _cached(request, ("page", lang), lambda: _page(request, lang))
    response = Response(html, media_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = CACHE
    response.headers["Content-Security-Policy"] = CSP
    return response


# -- the feeds and the alerts -----------------------------------------------------------------------------


def _feed(request: Request, *, cap: bool) -> Response:
    app = core(request)
    lang = _lang(request)
    base = _base(request)

    def make() -> bytes:
        return feed(
            service(request).public(with_xml=cap),
            lang=lang,
            zone=app.settings.timezone,
            base=base,
            sender=app.settings.status_sender,
            author=app.settings.org_name or app.settings.status_sender,
            now=app.clock.now(),
            cap=cap,
        )

    body = _cached(request, ("cap" if cap else "atom", lang, base), make)
    return Response(body, media_type=ATOM_TYPE, headers={"Cache-Control": CACHE})


@router.api_route("/status/feed.atom", methods=["GET", "HEAD"])
def atom_feed(request: Request) -> Response:
    return _feed(request, cap=False)


@router.api_route("/status/feed.cap.xml", methods=["GET", "HEAD"])
def cap_feed(request: Request) -> Response:
    return _feed(request, cap=True)


@router.api_route("/status/alerts/{identifier}.xml", methods=["GET", "HEAD"])
def cap_alert(request: Request, identifier: str) -> Response:
    """One CAP 1.2 alert, exactly as it was published (404 problem for an unknown identifier)."""
    found = service(request).alert(identifier)
    return Response(found.cap_xml, media_type="application/cap+xml", headers={"Cache-Control": CACHE})


# -- the console's form -----------------------------------------------------------------------------------


@router.post("/incidents/{incident_id}/status-update")
async def publish_form(request: Request, incident_id: int) -> Response:
    """The board's form: the same command as `ir status-page publish` and the API; back to the board."""
    form = await request.form()
    user = await run_in_threadpool(require_user, request)
    check_csrf(form.get("csrf"), user)
    lang = language(request, user)[0]
    zone = core(request).settings.timezone

    def text(name: str) -> str:
        value = form.get(name)
        return value.replace("\r\n", "\n").strip() if isinstance(value, str) else ""

    def build() -> PublishStatusUpdate:
        eta = None
        if text("eta"):
            try:
                eta = datetime.fromisoformat(text("eta").replace("Z", "+00:00"))
            except ValueError:
                what = translate(lang, "status.f_eta", zone=zone)
                raise ConsoleInputError(translate(lang, "error.bad_instant", what=what, zone=zone)) from None
            eta = eta if eta.tzinfo else eta.replace(tzinfo=ZoneInfo(zone))
        return PublishStatusUpdate(
            actor=user.actor,
            incident_id=incident_id,
            title_zh=text("title_zh"),
            title_en=text("title_en"),
            message_zh=text("message_zh"),
            message_en=text("message_en"),
            area_zh=text("area_zh") or None,
            area_en=text("area_en") or None,
            instruction_zh=text("instruction_zh") or None,
            instruction_en=text("instruction_en") or None,
            eta=eta,
            resolved=text("resolved") == "yes",
        )

    try:
        command = build()
        published = await run_in_threadpool(service(request).publish, command)
        text_ok = translate(lang, "status.published", n=published.seq, id=published.cap_identifier)
        message = Flash("ok", text_ok, "status")
    except IrError as exc:
        message = Flash("error", error_line(lang, exc), "status")
    except Exception:  # a fault of ours: logged with its traceback, the user gets one line
        log.exception("console: publishing a status update of incident %s failed", incident_id)
        message = Flash("error", translate(lang, "error.other", detail="internal error"), "status")
    response = RedirectResponse(f"/incidents/{incident_id}#status", status_code=303)
    flash(request, response, [message])
    return response


def install(api: FastAPI) -> None:
    """The public page, its feeds and the console's form (before the console's own /incidents/{id}/{act}),
    and the API's status-update routes."""
    from ir.entrypoints.http import status_updates
    from ir.entrypoints.http.routes import mount

    api.state.status_cache = {}
    api.state.status_lock = threading.Lock()
    mount(api, router)
    mount(api, status_updates.router)
