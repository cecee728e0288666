"""The HTTP client of automated step actions (httpx): timeout, retries with back-off, no redirects."""

from __future__ import annotations

import time

from ir.app.actions import ActionRequest, ActionResult

MAX_ANSWER = 1024 * 1024


class HttpActionClient:
    def __init__(self, *, backoff: float = 0.5) -> None:
        self.backoff = backoff

    def call(self, request: ActionRequest) -> ActionResult:
        import httpx  # imported when an action runs: command-line start-up stays small

        attempts = 0
        last_error: str | None = None
        last_status: int | None = None
        body = b""
        media = "text/plain"
        for attempt in range(1 + request.retries):
            attempts = attempt + 1
            try:
                with httpx.Client(timeout=request.timeout, follow_redirects=False) as client:
                    kwargs: dict[str, object] = {"headers": request.headers}
                    if request.body is not None and request.method != "GET":
                        kwargs["json"] = request.body
                    response = client.request(request.method, request.url, **kwargs)  # type: ignore[arg-type]
                    body = response.content[:MAX_ANSWER]
                    media = response.headers.get("content-type", "application/octet-stream")
                    last_status = response.status_code
                    if response.status_code in request.expect_status:
                        return ActionResult(True, response.status_code, body, media, attempts)
                    last_error = f"HTTP {response.status_code}"
                    if response.status_code < 500 and response.status_code != 429:
                        break  # a client error will not get better by retrying
            except httpx.TimeoutException:
                last_error = f"no answer within {request.timeout:g}s"
            except httpx.HTTPError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if attempt < request.retries:
                time.sleep(self.backoff * (2**attempt))
        return ActionResult(False, last_status, body, media, attempts, last_error)
