"""The JSON API under /api: the same commands as the command line, the same views, the same errors.

Each change is the command the CLI builds, handed to the same handlers (permissions are checked there).
A change may carry `If-Match: "<version>"` (the incident's ETag): a stale version is a 409 conflict.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ir.app.handlers import Outcome
from ir.app.permissions import authorize
from ir.app.signin import Principal
from ir.domain.commands import Command
from ir.domain.errors import InvalidInput
from ir.domain.events import event_to_dict
from ir.domain.personal import from_json, masked
from ir.domain.text import Lang
from ir.entrypoints.http.auth import COOKIE, Caller, Core, serializer, signin, source

router = APIRouter(prefix="/api")
MAX_ID = 2**31 - 1  # what both databases hold in an integer column


def etag(version: int) -> str:
    return f'"{version}"'


def if_match(request: Request) -> int | None:
    """The version a change was made against (If-Match), if given."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    try:
        return int(header.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise InvalidInput('If-Match takes the incident\'s ETag, e.g. "12"', field="If-Match") from None


def lang_of(request: Request, principal: Principal | None) -> Lang:
    asked = request.query_params.get("lang") or (principal.lang if principal else None)
    return "en" if asked == "en" else "zh-CN"


class OutcomeOut(BaseModel):
    incident: int
    version: int
    events: list[dict[str, Any]]


def outcome_out(outcome: Outcome, response: Response) -> OutcomeOut:
    response.headers["ETag"] = etag(outcome.version)
    events = [{"kind": e.kind, **masked(from_json(event_to_dict(e)))} for e in outcome.events]
    return OutcomeOut(incident=outcome.incident_id, version=outcome.version, events=events)


def run(core: Any, command: Command, response: Response) -> OutcomeOut:
    outcome: Outcome = core.handlers.handle(command)
    return outcome_out(outcome, response)


async def changed(request: Request, command: Command, response: Response) -> OutcomeOut:
    """A change from an async endpoint: run by the command writer, awaited on the event loop."""
    outcome = await request.app.state.writer.handle(command)
    return outcome_out(outcome, response)


# -- health, sign-in ------------------------------------------------------------------------------------


@router.get("/health", tags=["server"])
def health() -> dict[str, str]:
    return {"status": "ok"}


class LoginIn(BaseModel):
    user: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00]+$")
    password: str = Field(min_length=1, max_length=1024, pattern=r"^[^\x00]+$")


class MeOut(BaseModel):
    user: str
    display_name: str
    roles: list[str]
    lang: str
    csrf: str | None = None
    must_change_password: bool = False


@router.post("/auth/login", tags=["auth"])
def login(body: LoginIn, request: Request, response: Response, core: Core) -> MeOut:
    """Sign in with a password: a session cookie (HttpOnly, SameSite=Lax) and its CSRF token."""
    principal = signin(request).password(body.user, body.password, source=source(request))
    assert principal.session_id is not None
    response.set_cookie(
        COOKIE,
        serializer(request).dumps(principal.session_id),
        max_age=int(core.settings.session_ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=core.settings.secure_cookies,
        path="/",
    )
    return me_out(principal)


@router.post("/auth/logout", tags=["auth"], status_code=204)
def logout(principal: Caller, request: Request, response: Response) -> Response:
    signin(request).sign_out(principal)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


def me_out(principal: Principal) -> MeOut:
    return MeOut(
        user=principal.actor.id,
        display_name=principal.display_name,
        roles=sorted(principal.actor.roles),
        lang=principal.lang,
        csrf=principal.csrf,
        must_change_password=principal.must_change_password,
    )


@router.get("/me", tags=["auth"])
def me(principal: Caller) -> MeOut:
    return me_out(principal)


# -- incidents: list, board, timeline -------------------------------------------------------------------


@router.get("/incidents", tags=["incidents"])
def list_incidents(
    principal: Caller,
    core: Core,
    open: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> dict[str, Any]:
    from ir.adapters.db.queries import list_incidents as query

    authorize(principal.actor, "incident.read")
    if not 1 <= limit <= 500 or offset < 0:
        raise InvalidInput("limit is 1 to 500, offset at least 0", field="limit")
    with core.db.connection() as conn:
        rows = query(conn, open_only=open, limit=limit + 1, offset=offset)
    more = len(rows) > limit
    items = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in rows[:limit]]
    return {"items": items, "limit": limit, "offset": offset, "next_offset": offset + limit if more else None}


@router.get("/incidents/{incident_id}", tags=["incidents"])
def board(
    incident_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    principal: Caller,
    core: Core,
    request: Request,
    response: Response,
) -> dict[str, Any]:
    from ir.app.views import board as view
    from ir.bootstrap import calendar_for

    authorize(principal.actor, "incident.read")
    with core.db.read() as repo:
        incident = repo.get(incident_id)
    response.headers["ETag"] = etag(incident.version)
    return view(incident, incident.now(core.clock.now()), lang=lang_of(request, principal), calendar_for=calendar_for)


@router.get("/incidents/{incident_id}/timeline", tags=["incidents"])
def timeline(
    incident_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    principal: Caller,
    core: Core,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> dict[str, Any]:
    from ir.app.views import timeline as view

    authorize(principal.actor, "incident.read")
    if not 1 <= limit <= 5000 or after < 0:
        raise InvalidInput("limit is 1 to 5,000, after at least 0", field="limit")
    with core.db.read() as repo:
        repo.get(incident_id)
        entries = view(repo.events(incident_id, after=after, limit=limit + 1))
    more = len(entries) > limit
    return {"items": entries[:limit], "next_after": entries[limit - 1]["seq"] if more else None}


# -- live updates -----------------------------------------------------------------------------------------


@router.get("/stream", tags=["live"])
async def stream(principal: Caller, request: Request, incident: int | None = None) -> StreamingResponse:
    """Server-Sent Events: `change` with {incident, version} after each committed change."""
    authorize(principal.actor, "incident.read")
    broadcaster = request.app.state.broadcaster
    queue = broadcaster.subscribe()

    async def events() -> AsyncIterator[bytes]:
        try:
            yield b": connected\n\n"
            while True:
                try:
                    async with asyncio.timeout(15):  # no task per message, unlike wait_for
                        change = await queue.get()
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if change is None:
                    return  # the server is stopping: the browser reconnects to the next one
                if incident is not None and change.incident_id != incident:
                    continue
                data = json.dumps({"incident": change.incident_id, "version": change.version})
                yield f"event: change\ndata: {data}\n\n".encode()
        finally:
            broadcaster.unsubscribe(queue)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def mount(api: FastAPI, module: APIRouter) -> None:
    """A module's routes on the application's own router, in order, rather than `api.include_router`.

    FastAPI keeps an included router as one branch, and matches a request twice through it: once to pick
    the branch, once inside it to pick the route. With every module included, that was a third of the
    event loop's work per step transition, more than the endpoint itself (bench/bench_server.py). The
    routes are complete without the branch: each carries its full path, tags and dependencies from the
    module's router. A module router's own lifespan would be lost: none may have one."""
    if not isinstance(module.lifespan_context, _NO_LIFESPAN):
        raise ValueError("a mounted router may not have a lifespan of its own: give it to the application's")
    api.router.routes.extend(module.routes)


_NO_LIFESPAN = type(APIRouter().lifespan_context)  # what a router without a lifespan of its own has


def install(api: FastAPI) -> None:
    from ir.entrypoints.http import (
        alerts,
        commands,
        commands_admin,
        commands_emergency,
        commands_reports,
        notifications,
    )

    # routes are tried in order: the most frequent requests first (a step act passes every route before it)
    for module in (
        commands.step_acts,
        commands.router,
        router,
        alerts.router,
        commands_emergency.router,
        commands_reports.router,
        commands_admin.router,
        notifications.router,
    ):
        mount(api, module)
