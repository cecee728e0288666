"""The HTTP application: the JSON API under /api (OpenAPI at /docs), the console, and — on the embedded
default — the timers, the audit sealer and live updates, in one process. Nothing is built at import."""

from __future__ import annotations

import gc
import logging
import secrets
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ir.adapters.changes import change_feed
from ir.bootstrap import App, build
from ir.config import Settings
from ir.domain.errors import IrError
from ir.entrypoints.http import alerts, problems
from ir.entrypoints.http.headers import SecurityHeaders
from ir.entrypoints.http.live import Broadcaster, Change
from ir.entrypoints.http.writer import CommandWriter
from ir.entrypoints.http.writer_process import WriterProcess

log = logging.getLogger("ir.http")


def ensure_admin(app: App, out: Any = sys.stderr) -> str | None:
    """On first start with no users: an administrator with a one-time password, printed once."""
    with app.db.uow() as uow:
        if uow.users.count() > 0:
            return None
        password = secrets.token_urlsafe(15)
        uow.users.add(
            "admin", display_name="Administrator", password=password, roles=["admin"], must_change_password=True
        )
        uow.audit.record(
            action="user.add",
            actor="system:first-start",
            subject="user:admin",
            payload={"roles": ["admin"], "first_start": True},
            at=app.clock.now(),
        )
        uow.commit()
    print(
        f"ir: first start: sign in as 'admin' with the one-time password {password} (you will be asked to change it)",
        file=out,
        flush=True,
    )
    return password


def create_app(
    settings: Settings | None = None,
    *,
    app: App | None = None,
    background: bool = True,
    writer: WriterProcess | None = None,
) -> FastAPI:
    """The FastAPI application. `app` lets tests hand in an App built on their own database and clock;
    `writer`, the process that carries out the changes (`ir serve` on SQLite; without it, a thread does)."""
    settings = settings or (app.settings if app else Settings())
    broadcaster = Broadcaster()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        core = app or build(settings)
        api.state.core = core
        api.state.writer = CommandWriter(core, process=writer)
        broadcaster.open()
        # this process's commits at once, first of the after-commit hooks; every process's from the feed
        core.handlers.after_commit.insert(
            0, lambda outcome: broadcaster.publish(Change(outcome.incident_id, outcome.version))
        )
        feed = change_feed(
            core.settings.database_url,
            publish=lambda incident, version: broadcaster.publish(Change(incident, version)),
        )
        feed.start()
        ensure_admin(core)
        stop = threading.Event()
        if background:
            core.audit.start()
            from ir.adapters.scheduler.worker import run_worker

            timer = threading.Thread(
                target=run_worker,
                args=(core.db, core.clock),
                kwargs={"soon": timedelta(minutes=core.settings.due_soon_minutes), "stop": stop, "quiet": True},
                name="ir-timers",
                daemon=True,
            )
            timer.start()
            state["timer"] = timer
            if core.notify is not None:  # the outbox's dispatcher, beside the timers
                dispatcher = threading.Thread(
                    target=core.notify.dispatcher().run, kwargs={"stop": stop}, name="ir-notify", daemon=True
                )
                dispatcher.start()
                state["dispatcher"] = dispatcher
        # what start-up made (modules, routes, playbooks, the app) lives as long as the process: out of
        # the collector's sight, a full collection under load scans only what requests made since, and
        # pauses every request for 10-25 ms instead of 70-115 (bench/bench_server.py)
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            alerts.close(api)
            broadcaster.close()  # live streams end (`ir serve` does this as soon as it is told to stop)
            feed.stop()
            api.state.writer.close()
            stop.set()
            if "timer" in state:
                state["timer"].join(timeout=10)
            if "dispatcher" in state and core.notify is not None:
                core.notify.wake()
                state["dispatcher"].join(timeout=10)
            if app is None:
                core.close()  # seal and publish what this process wrote
            else:
                core.audit.stop()

    api = FastAPI(
        title="ir",
        summary="Incident response and emergency-plan runner / 应急预案执行与事件响应",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    api.state.broadcaster = broadcaster
    api.add_exception_handler(IrError, problems.ir_error)
    api.add_exception_handler(RequestValidationError, problems.validation_error)
    api.add_exception_handler(StarletteHTTPException, problems.http_error)
    api.add_exception_handler(Exception, problems.internal_error)

    from ir.entrypoints.http import routes

    routes.install(api)
    try:
        from ir.entrypoints.web import console
    except ImportError:  # pragma: no cover - the console is part of the package
        console = None  # type: ignore[assignment]
    if console is not None and hasattr(console, "install"):
        console.install(api)

    api.add_middleware(SecurityHeaders)

    return api
