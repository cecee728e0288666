"""Errors as application/problem+json (RFC 9457), mapped once from the domain's errors."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ir.app.signin import TooManyAttempts
from ir.domain.errors import InvalidInput, IrError

PROBLEM = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not permitted",
    404: "Not found",
    409: "Conflict",
    412: "Precondition failed",
    422: "Invalid input",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal error",
    503: "Not available",
}


def problem(status: int, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status, "detail": detail, **extra}
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ir"'
    if "retry_after" in extra:
        headers["Retry-After"] = str(extra["retry_after"])
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def ir_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, IrError)
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidInput) and exc.field:
        extra["field"] = exc.field
    if isinstance(exc, TooManyAttempts):
        extra["retry_after"] = exc.retry_after
    status = exc.http_status if exc.http_status != 500 else 400
    if status == 403:  # every permission refused is recorded
        _record_refusal(request, exc.message)
    return problem(status, exc.message, **extra)


def _record_refusal(request: Request, message: str) -> None:
    core = getattr(request.app.state, "core", None)
    if core is None:
        return
    principal = getattr(request.state, "principal", None)
    source = request.client.host if request.client else "unknown"
    try:
        core.appender.append(
            action="permission.refused",
            actor=principal.actor.id if principal else f"source:{source}",
            subject="permission",
            payload={"method": request.method, "path": request.url.path, "why": message, "source": source},
            at=core.clock.now(),
        )
    except Exception:  # the refusal stands; a failed record is logged, never hidden
        import logging

        logging.getLogger("ir.http").exception("could not record a refused permission")


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {}
    field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    detail = f"{field}: {first.get('msg', 'invalid')}" if field else str(first.get("msg", "invalid input"))
    return problem(
        422,
        detail,
        field=field or None,
        errors=[{"field": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in errors],
    )


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem(exc.status_code, str(exc.detail))


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    return problem(500, "internal error: the request was not carried out")
