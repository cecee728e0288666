"""Automated step actions: an HTTP call declared in the playbook, run when its step starts (after the
commander's confirmation where the playbook asks for it), only to allowed hosts, with a timeout and
retries. The answer is kept as the step's evidence; a failure fails the step."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from ir.domain.commands import Actor
from ir.domain.events import ActionConfirmed, Event, StepRetried, StepStarted
from ir.domain.incident import Incident
from ir.domain.playbook import HttpAction

ACTOR = Actor(id="system:action", roles=frozenset({"admin"}))
_PLACEHOLDER = re.compile(r"\{\{\s*(facts|incident)\.([a-z_][a-z0-9_]*)\s*\}\}")


@dataclass(frozen=True, slots=True)
class ActionRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    timeout: float
    retries: int
    expect_status: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ActionResult:
    ok: bool
    status: int | None
    body: bytes
    media_type: str
    attempts: int
    error: str | None = None


class ActionClient(Protocol):
    def call(self, request: ActionRequest) -> ActionResult: ...


def host_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if host.startswith("["):
        return host[1 : host.index("]")] if "]" in host else host
    return host.rsplit(":", 1)[0].lower()


def due_actions(incident: Incident, events: list[Event]) -> list[str]:
    """Steps whose action runs now, given the events just committed: on start (unless the playbook asks
    for confirmation), on confirmation, and on retry (once confirmed, where confirmation is asked)."""
    out = []
    for e in events:
        if not isinstance(e, StepStarted | StepRetried | ActionConfirmed):
            continue
        step = incident.playbook.steps.get(e.step)
        if step is None or step.action is None:
            continue
        prog = incident.steps.get(e.step)
        confirmed = bool(prog and prog.action_confirmed)
        if isinstance(e, ActionConfirmed) or not step.action.confirm or confirmed:
            out.append(e.step)
    return out


def render(value: Any, incident: Incident) -> Any:
    """Fill `{{ facts.x }}` and `{{ incident.id|title|level }}` in strings (no template language)."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            scope, name = m.group(1), m.group(2)
            if scope == "facts":
                found = incident.facts.get(name)
                if isinstance(found, timedelta):
                    return str(int(found.total_seconds()))
                return "" if found is None else str(found)
            return str(
                {
                    "id": incident.id,
                    "title": incident.title,
                    "level": incident.level.value if incident.level else "",
                }.get(name, "")
            )

        return _PLACEHOLDER.sub(sub, value)
    if isinstance(value, dict):
        return {k: render(v, incident) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, incident) for v in value]
    return value


def build_request(action: HttpAction, incident: Incident, secrets: dict[str, str]) -> ActionRequest:
    headers = {k: render(v, incident) for k, v in action.headers.items()}
    if action.secret is not None:
        token = secrets.get(action.secret)
        if not token:
            raise LookupError(f"the secret {action.secret} is not configured (set IR_SECRET_{action.secret})")
        headers["Authorization"] = f"Bearer {token}"
    headers.setdefault("Idempotency-Key", f"ir-incident-{incident.id}-v{incident.version}")
    return ActionRequest(
        method=action.method,
        url=render(action.url, incident),
        headers=headers,
        body=render(action.body, incident),
        timeout=action.timeout_seconds,
        retries=action.retries,
        expect_status=action.expect_status,
    )


def answer_document(request: ActionRequest, result: ActionResult) -> bytes:
    return json.dumps(
        {
            "request": {"method": request.method, "url": request.url},
            "status": result.status,
            "attempts": result.attempts,
            "error": result.error,
            "body": result.body.decode("utf-8", errors="replace")[:100_000],
        },
        ensure_ascii=False,
        indent=2,
    ).encode()


def automated(outcome: Any) -> bool:
    """Whether a change started, retried or confirmed a step with an automated action (which may be due)."""
    if outcome.automated is not None:  # told by the process that carried it out
        return bool(outcome.automated)
    if not any(isinstance(e, StepStarted | StepRetried | ActionConfirmed) for e in outcome.events):
        return False
    incident = outcome.incident
    return incident is not None and any(
        getattr(e, "step", None) in incident.playbook.steps and incident.playbook.steps[e.step].action
        for e in outcome.events
    )


class ActionHook:
    """After a command commits: run the automated actions it started, and record their answers."""

    def __init__(
        self,
        *,
        handle: Any,
        load: Any,
        client: ActionClient,
        allow_hosts: frozenset[str],
        secrets: dict[str, str],
    ) -> None:
        self.handle = handle  # Handlers.handle
        self.load = load  # incident id -> Incident (fresh)
        self.client = client
        self.allow_hosts = allow_hosts
        self.secrets = secrets

    def __call__(self, outcome: Any) -> None:
        from ir.domain.commands import RecordActionResult

        if not automated(outcome):
            return
        incident = self.load(outcome.incident_id)  # a fresh read: the cached one may move on meanwhile
        for step_id in due_actions(incident, outcome.events):
            action = incident.playbook.steps[step_id].action
            assert action is not None
            try:
                request = build_request(action, incident, self.secrets)
                host = host_of(request.url)
                if host not in self.allow_hosts:
                    result = ActionResult(
                        False,
                        None,
                        b"",
                        "text/plain",
                        0,
                        f"host {host} is not on the action allow-list (IR_ACTION_ALLOW_HOSTS)",
                    )
                else:
                    result = self.client.call(request)
            except LookupError as exc:
                request = ActionRequest(action.method, action.url, {}, None, action.timeout_seconds, 0, ())
                result = ActionResult(False, None, b"", "text/plain", 0, str(exc))
            self.handle(
                RecordActionResult(
                    actor=ACTOR,
                    incident_id=incident.id,
                    step_id=step_id,
                    ok=result.ok,
                    status=result.status,
                    attempts=result.attempts,
                    error=result.error,
                    answer=answer_document(request, result),
                )
            )
