"""The console's pages (GET): the dashboard, an incident's board, its timeline, and the fragments live.js
swaps in when a change is announced. They render the same views as the API and the command line."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from ir.app.permissions import authorize
from ir.app.signin import Principal
from ir.bootstrap import App
from ir.domain.errors import IrError, NotFound
from ir.domain.incident import Incident
from ir.domain.text import Lang
from ir.entrypoints.http.auth import core
from ir.entrypoints.web.board_model import can, dashboard_row, incident_page
from ir.entrypoints.web.errors import error_line, error_page
from ir.entrypoints.web.i18n import MESSAGES
from ir.entrypoints.web.rendering import Texts, render
from ir.entrypoints.web.session import (
    Flash,
    clear_flash,
    language,
    read_flash,
    remember_language,
    require_user,
    switch_url,
)

router = APIRouter(include_in_schema=False)


def page_context(
    request: Request, user: Principal | None, lang: Lang, flash: list[Flash] | None = None
) -> dict[str, Any]:
    """What every page's frame needs: strings, the user and their CSRF token, messages, the language switch."""
    app = core(request)
    texts = Texts(lang, app.settings.timezone, app.clock.now())
    return {
        "t": texts,
        "lang": lang,
        "user": user,
        "csrf": user.csrf if user and user.csrf else "",
        "flash": flash or [],
        "flash_places": set(),
        "switch_url": switch_url(request, lang),
        "js_strings": texts.js(),
        "due_soon_s": app.settings.due_soon_minutes * 60,
        "known_keys": MESSAGES.keys(),
    }


def show(
    request: Request,
    template: str,
    user: Principal | None,
    extra: dict[str, Any],
    *,
    status: int = 200,
    fragment: bool = False,
) -> HTMLResponse:
    """Render a page: flash messages are shown once, a `?lang=` choice is remembered."""
    lang, remember = language(request, user)
    flash = [] if fragment else read_flash(request)
    context = page_context(request, user, lang, flash) | extra
    response = render(template, context, status=status)
    if not fragment:
        clear_flash(request, response)
    if remember:
        remember_language(request, response, lang)
    return response


def _lang(request: Request, user: Principal) -> Lang:
    return language(request, user)[0]


# -- the dashboard ----------------------------------------------------------------------------------------


def _incidents(app: App, lang: Lang, *, show_all: bool) -> list[dict[str, Any]]:
    from ir.adapters.db.queries import list_incidents
    from ir.app.views import board
    from ir.bootstrap import calendar_for

    with app.db.connection() as conn:
        rows = list_incidents(conn, open_only=not show_all, limit=200)
    out = []
    with app.db.read() as repo:
        for row in rows:
            inc = repo.get(row["id"])
            view = board(inc, inc.now(app.clock.now()), lang=lang, calendar_for=calendar_for)
            out.append(dashboard_row(row, view))
    # open before closed, the most severe level first (triage after IV), then the most overdue, the newest
    rank = {"I": 1, "II": 2, "III": 3, "IV": 4}
    out.sort(key=lambda i: (i["closed"], rank.get(i["level"] or "", 5), -i["overdue"], -i["id"]))
    return out


@router.get("/")
def dashboard(request: Request, all: bool = False) -> HTMLResponse:
    user = require_user(request)
    authorize(user.actor, "incident.read")
    app = core(request)
    lang = _lang(request, user)
    playbooks = sorted((p.id, p.title.get(lang)) for p in app.library.playbooks())
    return show(
        request,
        "dashboard.html",
        user,
        {
            "incidents": _incidents(app, lang, show_all=all),
            "show_all": all,
            "playbooks": playbooks,
            "can": lambda action: can(user.actor, action),
            "flash_places": {"new"},
        },
    )


@router.get("/dashboard/list")
def dashboard_list(request: Request, all: bool = False) -> HTMLResponse:
    """The incident list alone, for live.js to swap in."""
    user = require_user(request)
    authorize(user.actor, "incident.read")
    lang = _lang(request, user)
    incidents = _incidents(core(request), lang, show_all=all)
    return show(request, "_incidents.html", user, {"incidents": incidents, "show_all": all}, fragment=True)


# -- an incident ------------------------------------------------------------------------------------------


def _board_context(request: Request, user: Principal, incident_id: int) -> dict[str, Any]:
    from ir.app.views import board
    from ir.bootstrap import calendar_for

    authorize(user.actor, "incident.read")
    app = core(request)
    lang = _lang(request, user)
    with app.db.read() as repo:
        inc: Incident = repo.get(incident_id)
    view = board(inc, inc.now(app.clock.now()), lang=lang, calendar_for=calendar_for)
    context = incident_page(inc, view, lang=lang, actor=user.actor)
    context["flash_places"] = {"steps", "deadlines", "command", "facts", "people", "resources", "log"} | {
        "sitreps",
        "links",
        "clocks",
        "status",
        *(s["anchor"] for s in context["steps"]),
    }
    with app.db.uow() as uow:
        context["known_users"] = [u.id for u in uow.users.all() if not u.disabled]
    if app.notify is not None:  # the outbox: delivery, failures and acknowledgements (docs/notifications.md)
        context["notices"] = app.notify.listing(user.actor, incident_id)
    if can(user.actor, "status.publish"):  # what was published, to publish the next update from
        from ir.entrypoints.http.status_updates import service

        context["status_updates"] = service(request).published(incident_id)
    return context


def _missing(request: Request, user: Principal, exc: IrError) -> HTMLResponse:
    lang = _lang(request, user)
    return error_page(
        page_context(request, user, lang),
        title_key="error.not_found_title",
        message=error_line(lang, exc),
        status=404 if isinstance(exc, NotFound) else exc.http_status,
    )


@router.get("/incidents/{incident_id}")
def incident(request: Request, incident_id: int) -> HTMLResponse:
    user = require_user(request)
    try:
        context = _board_context(request, user, incident_id)
    except NotFound as exc:
        return _missing(request, user, exc)
    return show(request, "incident.html", user, context)


@router.get("/incidents/{incident_id}/board")
def board_fragment(request: Request, incident_id: int) -> HTMLResponse:
    """The board section alone (what live.js swaps in on a change)."""
    user = require_user(request)
    try:
        context = _board_context(request, user, incident_id)
    except NotFound as exc:
        return _missing(request, user, exc)
    return show(request, "_board.html", user, context, fragment=True)


@router.get("/incidents/{incident_id}/timeline")
def timeline(request: Request, incident_id: int, after: int = 0) -> HTMLResponse:
    from ir.app.views import timeline as view

    user = require_user(request)
    authorize(user.actor, "incident.read")
    app = core(request)
    page = 200
    try:
        with app.db.read() as repo:
            inc = repo.get(incident_id)
            entries = view(repo.events(incident_id, after=max(after, 0), limit=page + 1))
    except NotFound as exc:
        return _missing(request, user, exc)
    more = len(entries) > page
    entries = entries[:page]
    return show(
        request,
        "timeline.html",
        user,
        {
            "inc": {"id": inc.id, "title": inc.title},
            "entries": entries,
            "next_after": entries[-1]["seq"] if more else None,
            "after": after,
        },
    )
