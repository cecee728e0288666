"""The API's changes: each endpoint builds the command the command line builds.

The pattern: `POST /api/incidents/{id}/<act>` with a JSON body; `If-Match` carries the version the
caller saw; the answer is the new version (also as ETag) and the events recorded, personal data masked.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from ir.domain import commands as c
from ir.entrypoints.http.auth import Caller, Core
from ir.entrypoints.http.routes import OutcomeOut, if_match, run

router = APIRouter(prefix="/api", tags=["incidents"])


class OpenIn(BaseModel):
    playbook: str = Field(min_length=1, max_length=500)
    title: str = Field(min_length=1, max_length=200)
    mode: str = "real"
    facts: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    level: str | None = None
    warning: str | None = None
    expected_impact: datetime | None = None
    detected_at: datetime | None = None
    commander: str | None = None


@router.post("/incidents", status_code=201)
def open_incident(body: OpenIn, principal: Caller, core: Core, response: Response) -> OutcomeOut:
    return run(
        core,
        c.OpenIncident(
            actor=principal.actor,
            playbook=body.playbook,
            title=body.title,
            mode=body.mode,
            facts=dict(body.facts),
            level=body.level,
            warning=body.warning,
            expected_impact=body.expected_impact,
            detected_at=body.detected_at,
            commander=body.commander,
        ),
        response,
    )


class StepIn(BaseModel):
    note: str | None = Field(default=None, max_length=10_000)
    assignee: str | None = Field(default=None, max_length=200)


_STEP_ACTS = {
    "start": c.StartStep,
    "complete": c.CompleteStep,
    "skip": c.SkipStep,
    "fail": c.FailStep,
    "retry": c.RetryStep,
    "confirm": c.ConfirmAction,
}


@router.post("/incidents/{incident_id}/steps/{step_id}/{act}")
def step(
    incident_id: int,
    step_id: str,
    act: str,
    principal: Caller,
    core: Core,
    request: Request,
    response: Response,
    body: StepIn | None = None,
) -> OutcomeOut:
    """start | complete | skip | fail | retry | confirm (the step's automated action)."""
    from ir.domain.errors import NotFound

    cls = _STEP_ACTS.get(act)
    if cls is None:
        raise NotFound(f"no step act '{act}' (acts: {', '.join(_STEP_ACTS)})")
    body = body or StepIn()
    kwargs: dict[str, object] = {
        "actor": principal.actor,
        "incident_id": incident_id,
        "step_id": step_id,
        "note": body.note,
        "expected_version": if_match(request),
    }
    if cls is c.StartStep:
        kwargs["assignee"] = body.assignee
    return run(core, cls(**kwargs), response)
