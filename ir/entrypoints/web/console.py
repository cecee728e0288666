"""The console (server-rendered with Jinja2): installed on the HTTP application by `install`."""

from __future__ import annotations

from fastapi import FastAPI


def install(api: FastAPI) -> None:
    """The console's routes; pages arrive with the console."""
