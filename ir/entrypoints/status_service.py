"""The status page service of an application, as the command line and the server build it."""

from __future__ import annotations

from ir.adapters.db.status_board import board_of, reader_of
from ir.adapters.notify.cap import compose
from ir.app.status_page import StatusPage
from ir.bootstrap import App


def status_page(app: App) -> StatusPage:
    settings = app.settings
    return StatusPage(
        uow=app.db.uow,
        board=board_of,
        reader=reader_of(app.db),
        compose=compose,
        clock=app.clock,
        sender=settings.status_sender,
        zone=settings.timezone,
        sender_name=settings.org_name,
        default_area=(settings.status_area_zh, settings.status_area_en),
        web=f"{settings.status_url.rstrip('/')}" if settings.status_url else None,
        after_commit=(lambda _update: app.audit.wake(),),
    )
