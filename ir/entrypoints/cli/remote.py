"""The command line against a server: each command the command line builds becomes the API request that
builds the same command on the server, sent with the token (Authorization: Bearer), acting as its user.

The server's refusals (application/problem+json) keep their meaning: 401 -> exit 6, 403 -> 5, 404 -> 3,
409 -> 4, 422 -> 2, 429 -> 5, 503 -> 7, with the server's own words. A server that cannot be reached
(refused, unknown name, TLS failure, no answer in time) is one line and exit 69 (EX_UNAVAILABLE of
sysexits.h, beside the 70 of an internal error).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx

from ir.domain import commands as c
from ir.domain.errors import InvalidInput, IrError
from ir.entrypoints.cli.backend import Done

if TYPE_CHECKING:
    from ir.domain.text import Lang

UNREACHABLE = 69  # EX_UNAVAILABLE: the server could not be reached, or failed
TIMEOUT_S = 30.0  # an answer within this (IR_SERVER_TIMEOUT, seconds); connecting within 5 s of it
_EXIT = {400: 2, 401: 6, 403: 5, 404: 3, 409: 4, 412: 4, 422: 2, 428: 4, 429: 5, 503: 7}


class RemoteRefusal(IrError):
    """The server refused (its problem+json detail), with the exit code its status maps to."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ServerUnreachable(IrError):
    exit_code = UNREACHABLE


@dataclass(frozen=True, slots=True)
class Call:
    """One API request: method, path under the server, JSON body, form files."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _seg(value: object) -> str:
    return quote(str(value), safe="")


def _incident(command: c.IncidentCommand, tail: str, body: dict[str, Any] | None = None, method: str = "POST") -> Call:
    path = f"/api/incidents/{command.incident_id}{tail}"
    return Call(method, path, body)


def _open(x: c.OpenIncident) -> Call:
    if "/" in x.playbook or "\\" in x.playbook or x.playbook.endswith((".yaml", ".yml")):
        raise InvalidInput(
            "against a server, an incident opens from the server's library, by playbook id (ir playbooks): "
            f"not from a file here ('{x.playbook}')",
            field="playbook",
        )
    body = {
        "playbook": x.playbook,
        "title": x.title,
        "mode": x.mode,
        "facts": dict(x.facts),
        "level": x.level,
        "warning": x.warning,
        "expected_impact": _iso(x.expected_impact),
        "detected_at": _iso(x.detected_at),
        "commander": x.commander,
        "summary": x.summary,
        "simulate_from": _iso(x.simulate_from),
        "speed": x.speed,
    }
    return Call("POST", "/api/incidents", body)


_STEP_PATHS: dict[type[c.StepCommand], str] = {
    c.StartStep: "start",
    c.CompleteStep: "complete",
    c.SkipStep: "skip",
    c.FailStep: "fail",
    c.RetryStep: "retry",
    c.ConfirmAction: "confirm",
}


def _step(x: c.StepCommand) -> Call:
    body: dict[str, Any] = {"note": x.note}
    if isinstance(x, c.StartStep):
        body["assignee"] = x.assignee
    return _incident(x, f"/steps/{_seg(x.step_id)}/{_STEP_PATHS[type(x)]}", body)


def _approve(x: c.ApproveStep) -> Call:
    return _incident(x, f"/steps/{_seg(x.step_id)}/approve", {"role": x.role, "note": x.note})


def _check(x: c.CheckItem) -> Call:
    return _incident(x, f"/steps/{_seg(x.step_id)}/checklist/{x.item}/{'check' if x.checked else 'uncheck'}")


def _evidence(x: c.AttachEvidence) -> Call:
    path = f"/api/incidents/{x.incident_id}/steps/{_seg(x.step_id)}/evidence"
    return Call("POST", path, files={"file": (x.filename, x.content, x.media_type)})


def _link(x: c.LinkIncidents) -> Call:
    return _incident(x, "/links", {"child": x.child})


# The commands a server takes, and the request that makes each one there.
ROUTES: dict[type[c.Command], Callable[[Any], Call]] = {
    c.OpenIncident: _open,
    c.SetFacts: lambda x: _incident(x, "/facts", {"facts": dict(x.facts), "reason": x.reason}),
    c.RecordClock: lambda x: _incident(x, f"/clocks/{_seg(x.clock)}", {"instant": _iso(x.instant), "reason": x.reason}),
    c.DeclareLevel: lambda x: _incident(x, "/level", {"level": x.level, "reason": x.reason}),
    c.IssueWarning: lambda x: _incident(
        x, "/warning", {"level": x.level, "reason": x.reason, "expected_impact": _iso(x.expected_impact)}
    ),
    c.LiftWarning: lambda x: _incident(x, "/warning/lift", {"reason": x.reason}),
    **{cls: _step for cls in _STEP_PATHS},
    c.ApproveStep: _approve,
    c.CheckItem: _check,
    c.AttachEvidence: _evidence,
    c.AddNote: lambda x: _incident(x, "/notes", {"text": x.text, "step": x.step_id, "about": x.about}),
    c.MarkNotificationSent: lambda x: _incident(
        x, f"/notifications/{_seg(x.notification_id)}/sent", {"reference": x.reference}
    ),
    c.Restore: lambda x: _incident(x, "/restore", {"degraded": x.degraded, "at": _iso(x.at), "reason": x.reason}),
    c.EndResponse: lambda x: _incident(x, "/end-response", {"reason": x.reason}),
    c.CancelIncident: lambda x: _incident(x, "/cancel", {"reason": x.reason}),
    c.ReopenIncident: lambda x: _incident(x, "/reopen", {"reason": x.reason}),
    c.CloseIncident: lambda x: _incident(x, "/close", {"reason": x.reason}),
    c.AssignRole: lambda x: _incident(
        x,
        "/assignments",
        {"role": x.role, "user": x.user, "shift_start": _iso(x.shift_start), "shift_end": _iso(x.shift_end)},
    ),
    c.UnassignRole: lambda x: _incident(x, "/assignments/end", {"role": x.role, "user": x.user, "reason": x.reason}),
    c.HandOver: lambda x: _incident(x, "/handover", {"to": x.to, "note": x.note}),
    c.AddLogEntry: lambda x: _incident(
        x, "/log", {"category": x.category, "text": x.text, "source": x.source, "about": x.about}
    ),
    c.SetImpact: lambda x: _incident(x, "/impact", {"services": list(x.services), "areas": list(x.areas)}, "PUT"),
    c.LinkIncidents: _link,
    c.UnlinkIncidents: lambda x: _incident(x, f"/links/{x.child}", None, "DELETE"),
    c.AddPlaybook: lambda x: _incident(x, "/playbooks", {"playbook": x.playbook, "reason": x.reason}),
}


def route(command: c.Command) -> Call:
    """The request that makes this command on a server (refused if the server's API has none)."""
    make = ROUTES.get(type(command))
    if make is None:
        import click

        ctx = click.get_current_context(silent=True)
        what = ctx.command_path if ctx is not None else type(command).__name__
        raise InvalidInput(
            f"{what} is not available against a server yet: run it on the server's machine / 该操作暂不支持 --server"
        )
    found = make(command)
    expected = getattr(command, "expected_version", None)
    if expected is not None:
        found.headers["If-Match"] = f'"{expected}"'
    return found


def _timeout() -> float:
    import os

    text = os.environ.get("IR_SERVER_TIMEOUT", "").strip()
    if not text:
        return TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise InvalidInput(f"IR_SERVER_TIMEOUT is seconds, more than 0 and at most 3600; got '{text}'")
    return value


def _base(server: str) -> str:
    text = server.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(
            "--server takes the server's address, e.g. https://ir.example.org or http://127.0.0.1:8000;"
            f" got '{server}'",
            field="server",
        )
    return text


class RemoteBackend:
    """A server's API, with an API token."""

    def __init__(self, *, server: str, token: str | None, timeout: float | None = None) -> None:
        self.server = _base(server)
        self.timeout = _timeout() if timeout is None else timeout
        if not token:
            raise RemoteRefusal(
                f"acting on {self.server} takes an API token: --token-file FILE (or IR_TOKEN_FILE), "
                "--token or IR_TOKEN (an administrator issues one: ir users token create USER) "
                "/ 需要 API 令牌",
                6,
            )
        if not all("!" <= ch <= "~" for ch in token):
            raise InvalidInput("the API token has characters no token has (spaces, line breaks, non-ASCII)")
        from importlib.metadata import version

        self.client = httpx.Client(
            base_url=self.server,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"ir-cli/{version('ir')}"},
            timeout=httpx.Timeout(self.timeout, connect=min(5.0, self.timeout)),
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    # -- the wire -------------------------------------------------------------------------------------------

    def _send(self, call: Call, params: dict[str, Any] | None = None) -> Any:
        body = None if call.body is None else {k: v for k, v in call.body.items() if v is not None}
        try:
            answer = self.client.request(
                call.method, call.path, json=body, files=call.files, params=params, headers=call.headers
            )
        except httpx.TimeoutException:
            raise ServerUnreachable(
                f"the server {self.server} did not answer within {self.timeout:g} s / 服务器未及时响应"
            ) from None
        except httpx.HTTPError as exc:
            raise ServerUnreachable(f"cannot reach the server {self.server}: {_why(exc)} / 无法连接服务器") from None
        if answer.status_code >= 400:
            raise self._refusal(answer)
        if answer.is_redirect:
            moved = answer.headers.get("location", "elsewhere")
            raise ServerUnreachable(f"{self.server} sends requests to {moved}: give that address as --server")
        if answer.status_code == 204 or not answer.content:
            return None
        try:
            return answer.json()
        except ValueError:
            raise ServerUnreachable(
                f"{self.server} answered {answer.status_code} with something that is not JSON: is it an ir server?"
            ) from None

    def _refusal(self, answer: httpx.Response) -> IrError:
        detail = ""
        try:
            problem = answer.json()
            if isinstance(problem, dict):
                detail = str(problem.get("detail") or problem.get("title") or "")
        except ValueError:
            pass
        status = answer.status_code
        if not detail:
            detail = answer.reason_phrase or "refused"
        if status in _EXIT:
            return RemoteRefusal(detail, _EXIT[status])
        if status >= 500:
            return ServerUnreachable(f"the server {self.server} failed ({status}): {detail}")
        return RemoteRefusal(f"{detail} ({status})", 2)

    def _get(self, path: str, **params: Any) -> Any:
        return self._send(Call("GET", path), {k: v for k, v in params.items() if v is not None})

    def _pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._get(path, offset=offset, **params)
            items.extend(page["items"])
            if page.get("next_offset") is None:
                return items
            offset = int(page["next_offset"])

    # -- the backend ----------------------------------------------------------------------------------------

    def handle(self, command: c.Command) -> Done:
        answer = self._send(route(command))
        if answer is None:
            raise ServerUnreachable(f"{self.server} gave no answer to {type(command).__name__}")
        return Done(int(answer["incident"]), int(answer["version"]), list(answer["events"]))

    def incidents(self, *, open_only: bool) -> list[dict[str, Any]]:
        return self._pages("/api/incidents", open=str(open_only).lower(), limit=500)

    def board(self, incident_id: int, *, lang: Lang) -> dict[str, Any]:
        found: dict[str, Any] = self._get(f"/api/incidents/{incident_id}", lang=lang)
        return found

    def timeline(self, incident_id: int) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        after = 0
        while True:
            page = self._get(f"/api/incidents/{incident_id}/timeline", after=after, limit=5000)
            entries.extend(page["items"])
            if page.get("next_after") is None:
                return entries
            after = int(page["next_after"])

    def deadlines(self, incident_id: int, *, lang: Lang) -> list[dict[str, Any]]:
        return self._pages(f"/api/incidents/{incident_id}/deadlines", lang=lang, limit=500)

    def classify(self, incident_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self._get(f"/api/incidents/{incident_id}/classify")
        return found

    def reveal(self, incident_id: int, *, fact: str | None, note: int | None, reason: str | None) -> str:
        body = {"fact": fact, "note": note, "reason": reason}
        answer = self._send(Call("POST", f"/api/incidents/{incident_id}/reveal", body))
        return str(answer["value"])


def _why(exc: httpx.HTTPError) -> str:
    """Why a request failed, in a line: refused, unknown host, a TLS failure…"""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = cause.verify_message
            return f"TLS: the server's certificate is not trusted ({why}; SSL_CERT_FILE names a CA bundle)"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed ({cause.reason or cause})"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
