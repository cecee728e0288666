"""Options shared by commands."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click

F = TypeVar("F", bound=Callable[..., Any])


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="machine-readable output")(fn)


def lang_option(fn: F) -> F:
    return click.option(
        "--lang",
        type=click.Choice(["zh-CN", "en"]),
        default=lambda: __import__("os").environ.get("IR_LANG", "zh-CN"),
        show_default="zh-CN (IR_LANG)",
        help="language of what is printed",
    )(fn)


def today() -> date:
    """Today's date in the configured zone, read through the system clock adapter."""
    from ir.adapters.clock import SystemClock

    zone = ZoneInfo(__import__("os").environ.get("IR_TIMEZONE", "Asia/Shanghai"))
    now: datetime = SystemClock().now()
    return now.astimezone(zone).date()
