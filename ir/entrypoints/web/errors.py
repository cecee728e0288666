"""The domain's errors as the console shows them: one line, in the reader's language where ir's own words
are concerned (the lead), the domain's line after it; never a traceback."""

from __future__ import annotations

from typing import Any

from fastapi.responses import HTMLResponse

from ir.domain.errors import Conflict, InvalidInput, InvalidTransition, IrError, NotFound, NotPermitted
from ir.domain.text import Lang
from ir.entrypoints.web.i18n import translate
from ir.entrypoints.web.rendering import render


class ConsoleInputError(InvalidInput):
    """A form the console itself finds incomplete; its message is already in the reader's language."""


def error_line(lang: Lang, exc: IrError) -> str:
    if isinstance(exc, ConsoleInputError):
        return exc.message
    if isinstance(exc, Conflict):
        key = "error.conflict"
    elif isinstance(exc, InvalidInput):
        key = "error.invalid"
    elif isinstance(exc, NotFound):
        key = "error.not_found"
    elif isinstance(exc, NotPermitted):
        key = "error.forbidden"
    elif isinstance(exc, InvalidTransition):
        key = "error.transition"
    else:
        key = "error.other"
    return translate(lang, key, detail=exc.message)


def error_page(context: dict[str, Any], *, title_key: str, message: str, status: int, back: str = "/") -> HTMLResponse:
    lang: Lang = context["lang"]
    page = context | {"title": translate(lang, title_key), "message": message, "back": back}
    return render("error.html", page, status=status)
