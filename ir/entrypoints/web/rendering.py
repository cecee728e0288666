"""Rendering the console's pages: the Jinja2 environment (autoescaped, strict), time and countdown text in the
reader's language and zone, and the headers every page carries (no caching, a strict Content-Security-Policy:
scripts only from /static, so a title holding `<script>` is text twice over)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ir.domain.text import Lang
from ir.entrypoints.web.i18n import translate

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    return env


@cache
def _static_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """/static/<name>?v=<content hash>: a changed file is fetched afresh, an unchanged one stays cached."""
    return f"/static/{name}?v={_static_version(name)}"


class Texts:
    """What templates need to say things: strings, times and spans in one language and zone."""

    def __init__(self, lang: Lang, zone: str, now: datetime) -> None:
        self.lang = lang
        self.zone_name = zone
        self.zone = ZoneInfo(zone)
        self.this_year = now.astimezone(self.zone).year  # from the Clock port, like every reading of the time

    def __call__(self, key: str, **fields: Any) -> str:
        return translate(self.lang, key, **fields)

    def when(self, value: str | datetime | None, *, seconds: bool = False) -> str:
        """An instant in the reader's zone: 10-01 09:00 (with the year when it is not this year's)."""
        if value is None:
            return translate(self.lang, "common.dash")
        instant = datetime.fromisoformat(value) if isinstance(value, str) else value
        local = instant.astimezone(self.zone)
        fmt = "%m-%d %H:%M:%S" if seconds else "%m-%d %H:%M"
        if local.year != self.this_year:
            fmt = "%Y-" + fmt
        return local.strftime(fmt)

    def iso(self, value: str | datetime | None) -> str:
        if value is None:
            return ""
        instant = datetime.fromisoformat(value) if isinstance(value, str) else value
        return instant.astimezone(self.zone).isoformat(timespec="seconds")

    def span(self, seconds: int | None) -> str:
        """A length of time: 3天2小时, 1小时5分, 12分30秒 / 3d 2h, 1h 5m, 12m 30s."""
        if seconds is None:
            return translate(self.lang, "common.dash")
        return span_text(abs(seconds), self.lang)

    def countdown(self, left_s: int | None, late_s: int | None, state: str | None = None) -> str:
        if late_s or state in ("overdue", "missed"):
            return translate(self.lang, "cd.late", t=self.span(late_s or 0))
        if left_s is not None:
            return translate(self.lang, "cd.left", t=self.span(left_s))
        return translate(self.lang, "common.dash")

    def js(self) -> dict[str, str]:
        """The strings live.js needs, from the same dictionary."""
        keys = [
            "cd.left",
            "cd.late",
            "unit.d",
            "unit.h",
            "unit.m",
            "unit.s",
            "unit.sep",
            "live.connected",
            "live.updated",
            "live.list_updated",
            "live.reconnecting",
            "live.pending",
            "live.apply",
        ]
        return {k: translate(self.lang, k) for k in keys}


def span_text(s: int, lang: Lang) -> str:
    u = {k: translate(lang, f"unit.{k}") for k in ("d", "h", "m", "s")}
    sep = translate(lang, "unit.sep")
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    if d:
        parts = [f"{d}{u['d']}", f"{h}{u['h']}" if h else ""]
    elif h:
        parts = [f"{h}{u['h']}", f"{m}{u['m']}" if m else ""]
    elif m:
        parts = [f"{m}{u['m']}", f"{sec}{u['s']}" if sec and m < 10 else ""]
    else:
        parts = [f"{sec}{u['s']}"]
    return sep.join(p for p in parts if p)


def render(template: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    html = environment().get_template(template).render(**context)
    return page_response(html, status=status)


def page_response(html: str, *, status: int = 200) -> HTMLResponse:
    response = HTMLResponse(html, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = CSP
    return response
