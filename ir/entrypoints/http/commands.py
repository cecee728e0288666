"""The API's changes: each endpoint builds the command the command line builds.

The pattern: `POST /api/incidents/{id}/<act>` with a JSON body; `If-Match` carries the version the
caller saw (a stale one is a 409 conflict); the answer is the new version (also as ETag) and the events
recorded, personal data masked. Reads of an incident carry its version as ETag.

Every change goes through `Changer`: a signed-in caller (session with its CSRF token, or a token with
the write scope) who has no one-time password left to change.

This module holds what the API's command modules share, and the incident's own acts: open, facts,
clocks, classification, levels, warnings, steps (with checklists, approvals and evidence), notes,
notifications, restoration and the incident's end. commands_emergency, commands_reports and
commands_admin hold the rest.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Header, Path, Query, Request, Response, UploadFile
from pydantic import AwareDatetime, BaseModel, Field, field_validator

from ir.app.handlers import MAX_EVIDENCE
from ir.app.permissions import authorize
from ir.app.signin import Principal
from ir.bootstrap import App, calendar_for
from ir.domain import commands as c
from ir.domain.deadlines import due_list
from ir.domain.decisions import classify as classify_incident
from ir.domain.errors import Conflict, NotFound, NotPermitted
from ir.domain.events import event_to_dict
from ir.domain.incident import Incident
from ir.domain.personal import Personal, from_json, masked
from ir.entrypoints.http.auth import Caller, Core, current
from ir.entrypoints.http.routes import OutcomeOut, changed, etag, if_match, lang_of, run

router = APIRouter(prefix="/api", tags=["incidents"])
step_acts = APIRouter(prefix="/api", tags=["incidents"])  # the most frequent requests of all: tried first

MUST_CHANGE = "change your one-time password first (POST /api/auth/password)"
INT32 = 2_147_483_647


# -- what every command module shares ------------------------------------------------------------------


async def changer(request: Request) -> Principal:
    """The caller of a change: refused while they still hold a one-time password. (It asks `current` itself
    rather than depending on `Caller`: each level of dependencies costs FastAPI time on every request.)"""
    principal = await current(request)
    if principal.must_change_password:
        raise NotPermitted(MUST_CHANGE)
    return principal


Changer = Annotated[Principal, Depends(changer)]


async def expected_version(
    request: Request,
    if_match_header: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='The incident\'s ETag as you read it, e.g. "12": refused (409) if it has moved on since.',
        ),
    ] = None,
) -> int | None:
    return if_match(request)


Expected = Annotated[int | None, Depends(expected_version)]
IncidentId = Annotated[int, Path(ge=1, le=INT32, description="the incident's number")]
StepId = Annotated[str, Path(min_length=1, max_length=200, description="a step's id (joined playbooks: id.step)")]
Limit = Annotated[int, Query(ge=1, le=500, description="at most this many items")]
Offset = Annotated[int, Query(ge=0, le=INT32, description="skip this many items")]
Lang = Annotated[Literal["zh-CN", "en"] | None, Query(description="the language of titles (default: yours)")]
Reason = Annotated[str | None, Field(default=None, max_length=10_000)]
Text = Annotated[str, Field(min_length=1, max_length=10_000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
# A playbook from the library, by id: never a path on the server.
PlaybookId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
# Identifiers in paths and queries (user names, token ids, resource kinds): no control characters.
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, tzinfo=UTC)
T = TypeVar("T")


def _refusal(value: Any) -> str | None:
    """What is wrong with a value of a request body, anywhere in it: NUL characters (no database keeps
    them in text), or an instant no emergency has (the calendar arithmetic of deadlines has limits)."""
    if isinstance(value, str):
        return "must not contain NUL characters" if "\x00" in value else None
    if isinstance(value, datetime):
        inside = EARLIEST <= value <= LATEST
        return None if inside else "an instant between 1970-01-01 and 2999-12-31"
    if isinstance(value, dict):
        return next((r for r in map(_refusal, [*value.keys(), *value.values()]) if r), None)
    if isinstance(value, list | tuple):
        return next((r for r in map(_refusal, value) if r), None)
    return None


class In(BaseModel):
    """A request body: its strings hold no NUL characters and its instants are plausible (422 otherwise)."""

    @field_validator("*", mode="after")
    @classmethod
    def _plausible(cls, value: Any) -> Any:
        refusal = _refusal(value)
        if refusal is not None:
            raise ValueError(refusal)
        return value


class Page(BaseModel, Generic[T]):
    """One page of a list that can grow: `next_offset` is where the next page starts (null at the end)."""

    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None


def page(items: Sequence[T], limit: int, offset: int) -> Page[T]:
    chosen = list(items[offset : offset + limit])
    more = offset + limit < len(items)
    return Page[T](
        items=chosen, total=len(items), limit=limit, offset=offset, next_offset=offset + limit if more else None
    )


def load(core: App, incident_id: int) -> Incident:
    with core.db.read() as repo:
        return repo.get(incident_id)


def read_incident(core: App, principal: Principal, incident_id: int, response: Response) -> Incident:
    """An incident for a reader (incident.read), its version as the answer's ETag."""
    authorize(principal.actor, "incident.read")
    incident = load(core, incident_id)
    response.headers["ETag"] = etag(incident.version)
    return incident


def require_version(core: App, incident_id: int, expected: int | None) -> int:
    """For acts whose service does not take an expected version: refuse a stale If-Match up front."""
    version = load(core, incident_id).version
    if expected is not None and version != expected:
        raise Conflict(f"incident {incident_id} changed (version {version}, you had {expected}): reload and try again")
    return version


def events_since(core: App, incident_id: int, after: int, response: Response) -> OutcomeOut:
    """The answer of an act done by a service that returns no outcome: what it recorded after `after`."""
    with core.db.read() as repo:
        incident = repo.get(incident_id)
        stored = repo.events(incident_id, after=after)
    response.headers["ETag"] = etag(incident.version)
    events = [{"kind": s.event.kind, **masked(from_json(event_to_dict(s.event)))} for s in stored]
    return OutcomeOut(incident=incident_id, version=incident.version, events=events)


def content_etag(data: Any) -> str:
    """A weak ETag for a read that is not one incident's: a digest of what is answered."""
    text = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return f'W/"{hashlib.sha256(text.encode()).hexdigest()[:32]}"'


def safe_filename(name: str | None, default: str) -> str:
    """A file name without folders or control characters, at most 255 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return base[-255:] or default


def read_upload(file: UploadFile, limit: int) -> bytes:
    """At most limit + 1 bytes of an upload (one more than allowed, to tell that it is too large)."""
    return file.file.read(limit + 1)


def iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


# -- opening --------------------------------------------------------------------------------------------

FactValue = str | int | Annotated[float, Field(allow_inf_nan=False)] | bool | None
Facts = Annotated[dict[Annotated[str, Field(max_length=64)], FactValue], Field(max_length=200)]


class OpenIn(In):
    playbook: PlaybookId
    title: Name
    mode: Literal["real", "drill", "test"] = "real"
    facts: Facts = Field(default_factory=dict)
    level: Literal["I", "II", "III", "IV"] | None = None
    warning: Literal["red", "orange", "yellow", "blue"] | None = None
    expected_impact: AwareDatetime | None = None
    detected_at: AwareDatetime | None = None
    commander: Annotated[str, Field(max_length=200)] | None = None
    summary: Reason = None
    simulate_from: AwareDatetime | None = Field(default=None, description="a drill or test on simulated time")
    speed: float = Field(default=1.0, gt=0, le=10_000, description="simulated time runs this many times faster")


@router.post("/incidents", status_code=201)
def open_incident(body: OpenIn, principal: Changer, core: Core, response: Response) -> OutcomeOut:
    """Open an incident from a playbook of the library."""
    answer = run(
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
            summary=body.summary,
            simulate_from=body.simulate_from,
            speed=body.speed,
        ),
        response,
    )
    response.headers["Location"] = f"/api/incidents/{answer.incident}"
    return answer


# -- facts, clocks, classification, levels, warnings ----------------------------------------------------


class FactsIn(In):
    facts: Facts = Field(description="name -> value; an empty string or null clears a fact")
    reason: Reason = None


@router.post("/incidents/{incident_id}/facts")
def set_facts(
    incident_id: IncidentId, body: FactsIn, principal: Changer, core: Core, expected: Expected, response: Response
) -> OutcomeOut:
    """Set facts (ir fact)."""
    command = c.SetFacts(
        actor=principal.actor,
        incident_id=incident_id,
        facts=dict(body.facts),
        reason=body.reason,
        expected_version=expected,
    )
    return run(core, command, response)


class ClockIn(In):
    instant: AwareDatetime | None = Field(default=None, description="the instant it asserts (default: now)")
    reason: Reason = Field(default=None, description="required to correct a clock")


@router.post("/incidents/{incident_id}/clocks/{clock}")
def record_clock(
    incident_id: IncidentId,
    clock: Annotated[str, Path(min_length=1, max_length=64, description="detection, awareness, …")],
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
    body: ClockIn | None = None,
) -> OutcomeOut:
    """Record a clock (ir clock)."""
    body = body or ClockIn()
    command = c.RecordClock(
        actor=principal.actor,
        incident_id=incident_id,
        clock=clock,
        instant=body.instant,
        reason=body.reason,
        expected_version=expected,
    )
    return run(core, command, response)


class VerdictOut(BaseModel):
    level: str
    holds: bool | None
    missing: list[str]
    criteria: str


class ClassifyOut(BaseModel):
    suggested: str | None
    current: str | None
    missing_facts: list[str]
    levels: list[VerdictOut]


@router.get("/incidents/{incident_id}/classify")
def classify(incident_id: IncidentId, principal: Caller, core: Core, response: Response) -> ClassifyOut:
    """The level criteria evaluated on the current facts, and the level they suggest (ir classify)."""
    incident = read_incident(core, principal, incident_id, response)
    result = classify_incident(incident)
    return ClassifyOut(
        suggested=result.suggested.value if result.suggested else None,
        current=incident.level.value if incident.level else None,
        missing_facts=sorted(result.missing),
        levels=[
            VerdictOut(level=v.level.value, holds=v.holds, missing=sorted(v.missing), criteria=str(v.criteria))
            for v in result.verdicts
        ],
    )


class LevelIn(In):
    level: Literal["I", "II", "III", "IV"]
    reason: Reason = Field(default=None, description="required to change a declared level")


@router.post("/incidents/{incident_id}/level")
def declare_level(
    incident_id: IncidentId, body: LevelIn, principal: Changer, core: Core, expected: Expected, response: Response
) -> OutcomeOut:
    """Declare or change the response level (ir level)."""
    command = c.DeclareLevel(
        actor=principal.actor, incident_id=incident_id, level=body.level, reason=body.reason, expected_version=expected
    )
    return run(core, command, response)


class WarningIn(In):
    level: Literal["red", "orange", "yellow", "blue"]
    reason: Reason = Field(default=None, description="required to raise or lower a warning")
    expected_impact: AwareDatetime | None = None


@router.post("/incidents/{incident_id}/warning")
def issue_warning(
    incident_id: IncidentId, body: WarningIn, principal: Changer, core: Core, expected: Expected, response: Response
) -> OutcomeOut:
    """Issue, raise or lower a warning (预警) (ir warning)."""
    command = c.IssueWarning(
        actor=principal.actor,
        incident_id=incident_id,
        level=body.level,
        reason=body.reason,
        expected_impact=body.expected_impact,
        expected_version=expected,
    )
    return run(core, command, response)


class ReasonIn(In):
    reason: Reason = None


@router.post("/incidents/{incident_id}/warning/lift")
def lift_warning(
    incident_id: IncidentId,
    body: ReasonIn,
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
) -> OutcomeOut:
    """Lift the warning (ir warning ID lift --reason)."""
    command = c.LiftWarning(
        actor=principal.actor, incident_id=incident_id, reason=body.reason, expected_version=expected
    )
    return run(core, command, response)


# -- steps ----------------------------------------------------------------------------------------------


class StepIn(In):
    note: Reason = Field(default=None, description="a note; the reason for skip and fail")
    assignee: Annotated[str, Field(max_length=200)] | None = Field(default=None, description="start: who takes it")


_STEP_ACTS: dict[str, tuple[type[c.StepCommand], str]] = {
    "start": (c.StartStep, "Start a step (ir step ID STEP start)."),
    "complete": (c.CompleteStep, "Complete a step (ir step ID STEP done)."),
    "skip": (c.SkipStep, "Skip a step, with the reason as note."),
    "fail": (c.FailStep, "Record that a step failed, with the reason as note."),
    "retry": (c.RetryStep, "Retry a failed step."),
    "confirm": (c.ConfirmAction, "Confirm a step's automated action (it runs after the confirmation)."),
}


def _step_endpoint(act: str, cls: type[c.StepCommand]) -> Callable[..., Awaitable[OutcomeOut]]:
    async def endpoint(
        request: Request,
        incident_id: IncidentId,
        step_id: StepId,
        response: Response,
        body: StepIn | None = None,
    ) -> OutcomeOut:
        principal = await changer(request)  # not a dependency, nor If-Match a parameter: see IF_MATCH below
        expected = if_match(request)
        body = body or StepIn()
        kwargs: dict[str, Any] = {
            "actor": principal.actor,
            "incident_id": incident_id,
            "step_id": step_id,
            "note": body.note,
            "expected_version": expected,
        }
        if cls is c.StartStep:
            kwargs["assignee"] = body.assignee
        return await changed(request, cls(**kwargs), response)

    endpoint.__name__ = f"step_{act}"
    return endpoint


# The step acts are the most frequent requests of all: they ask for their caller and read If-Match
# themselves, and the header is documented here, instead of through the `Changer` and `Expected`
# dependencies (FastAPI resolves each dependency and parameter on every request, with a dozen calls of its
# own: the two were a fifth of the event loop's time per transition).
IF_MATCH = {
    "parameters": [
        {
            "name": "If-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": 'The incident\'s ETag as you read it, e.g. "12": refused (409) if it has moved on since.',
        }
    ]
}

for _act, (_cls, _doc) in _STEP_ACTS.items():
    step_acts.add_api_route(
        f"/incidents/{{incident_id}}/steps/{{step_id}}/{_act}",
        _step_endpoint(_act, _cls),
        methods=["POST"],
        name=f"step_{_act}",
        description=_doc,
        response_model=OutcomeOut,
        openapi_extra=IF_MATCH,
    )


class ApproveIn(In):
    role: Annotated[str, Field(max_length=64)] | None = Field(
        default=None, description="the playbook role you approve as (needed when several are waiting)"
    )
    note: Reason = None


@router.post("/incidents/{incident_id}/steps/{step_id}/approve")
def approve_step(
    incident_id: IncidentId,
    step_id: StepId,
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
    body: ApproveIn | None = None,
) -> OutcomeOut:
    """Approve a step that requires approval, as one of its approving roles (ir approve --as)."""
    body = body or ApproveIn()
    command = c.ApproveStep(
        actor=principal.actor,
        incident_id=incident_id,
        step_id=step_id,
        role=body.role,
        note=body.note,
        expected_version=expected,
    )
    return run(core, command, response)


ItemNumber = Annotated[int, Path(ge=1, le=10_000, description="the checklist item's number, from 1")]


def _check(
    principal: Principal, incident_id: int, step_id: str, item: int, checked: bool, expected: int | None
) -> c.CheckItem:
    return c.CheckItem(
        actor=principal.actor,
        incident_id=incident_id,
        step_id=step_id,
        item=item,
        checked=checked,
        expected_version=expected,
    )


@router.post("/incidents/{incident_id}/steps/{step_id}/checklist/{item}/check")
def check_item(
    incident_id: IncidentId,
    step_id: StepId,
    item: ItemNumber,
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
) -> OutcomeOut:
    """Tick a checklist item of a step."""
    return run(core, _check(principal, incident_id, step_id, item, True, expected), response)


@router.post("/incidents/{incident_id}/steps/{step_id}/checklist/{item}/uncheck")
def uncheck_item(
    incident_id: IncidentId,
    step_id: StepId,
    item: ItemNumber,
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
) -> OutcomeOut:
    """Untick a checklist item of a step."""
    return run(core, _check(principal, incident_id, step_id, item, False, expected), response)


_MEDIA_TYPE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]{0,63}/[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]{0,63}$")


@router.post("/incidents/{incident_id}/steps/{step_id}/evidence")
def attach_evidence(
    incident_id: IncidentId,
    step_id: StepId,
    file: Annotated[UploadFile, File(description="the evidence file (at most 64 MiB)")],
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
) -> OutcomeOut:
    """Attach a file as evidence of a step (multipart/form-data, field `file`)."""
    content = read_upload(file, MAX_EVIDENCE)
    media = (file.content_type or "").split(";")[0].strip()
    require_version(core, incident_id, expected)
    command = c.AttachEvidence(
        actor=principal.actor,
        incident_id=incident_id,
        step_id=step_id,
        filename=safe_filename(file.filename, "evidence"),
        content=content,
        media_type=media if _MEDIA_TYPE.match(media) else "application/octet-stream",
        expected_version=expected,
    )
    return run(core, command, response)


Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="the file's SHA-256, in lower-case hex")]


@router.get(
    "/incidents/{incident_id}/evidence/{sha256}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "the file, as attached"}},
)
def download_evidence(incident_id: IncidentId, sha256: Sha256, principal: Caller, core: Core) -> Response:
    """A file attached to one of the incident's steps, or a report filed for it, by SHA-256 (recorded)."""
    from ir.adapters.db.evidence import SqlEvidenceStore

    authorize(principal.actor, "incident.read")
    incident = load(core, incident_id)
    found: tuple[str, str, str] | None = None  # (file name, media type, where)
    for step_id, progress in incident.steps.items():
        for e in progress.evidence:
            if e.sha256 == sha256:
                found = (e.filename, e.media_type, f"step:{step_id}")
    for (regime, obligation), filings in incident.regulatory.submissions.items():
        for s in filings:
            if s.document_sha256 == sha256:
                media = "application/pdf" if s.document_name.endswith(".pdf") else "application/octet-stream"
                found = (s.document_name, media, f"report:{regime}:{obligation}")
    if found is None:
        raise NotFound(f"incident {incident_id} has no evidence {sha256[:12]}")
    with core.db.connection() as conn:
        content = SqlEvidenceStore(conn, folder=core.db.evidence_folder, now=core.clock.now()).get(sha256)
    core.appender.append(
        action="evidence.download",
        actor=principal.actor.id,
        subject=f"incident:{incident_id}",
        payload={"sha256": sha256, "of": found[2]},
        at=core.clock.now(),
    )
    name = safe_filename(found[0], "evidence")
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return Response(
        content=content,
        media_type=found[1],
        headers={
            "ETag": f'"{sha256}"',
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}",
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, no-store",
        },
    )


# -- notes and notifications ----------------------------------------------------------------------------


class NoteIn(In):
    text: Text
    step: Annotated[str, Field(max_length=200)] | None = Field(default=None, description="the step it is about")
    about: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="the person it is about (a customer id, a phone number): the note is sealed as personal data",
    )


@router.post("/incidents/{incident_id}/notes", status_code=201)
def add_note(
    incident_id: IncidentId, body: NoteIn, principal: Changer, core: Core, expected: Expected, response: Response
) -> OutcomeOut:
    """Add a note to the incident or one of its steps (ir note)."""
    command = c.AddNote(
        actor=principal.actor,
        incident_id=incident_id,
        text=body.text,
        step_id=body.step,
        about=body.about,
        expected_version=expected,
    )
    return run(core, command, response)


class NoteOut(BaseModel):
    number: int
    at: str
    actor: str
    step: str | None
    text: str
    personal: bool = Field(description="personal data: masked here, revealed by POST …/reveal with a reason")


@router.get("/incidents/{incident_id}/notes")
def list_notes(
    incident_id: IncidentId, principal: Caller, core: Core, response: Response, limit: Limit = 50, offset: Offset = 0
) -> Page[NoteOut]:
    """The incident's notes, oldest first; personal ones masked."""
    incident = read_incident(core, principal, incident_id, response)
    notes = [
        NoteOut(
            number=i,
            at=n.at.isoformat(),
            actor=n.actor,
            step=n.step,
            text=str(masked(n.text)),
            personal=isinstance(n.text, Personal),
        )
        for i, n in enumerate(incident.notes, 1)
    ]
    return page(notes, limit, offset)


class SentIn(In):
    reference: Annotated[str, Field(max_length=500)] | None = Field(
        default=None, description="a reference for what was sent (a ticket, a call log)"
    )


@router.post("/incidents/{incident_id}/notifications/{notification_id}/sent")
def mark_sent(
    incident_id: IncidentId,
    notification_id: Annotated[str, Path(min_length=1, max_length=200)],
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
    body: SentIn | None = None,
) -> OutcomeOut:
    """Record that a notification was made (a phone call, a filed report) (ir notified)."""
    command = c.MarkNotificationSent(
        actor=principal.actor,
        incident_id=incident_id,
        notification_id=notification_id,
        reference=(body or SentIn()).reference,
        expected_version=expected,
    )
    return run(core, command, response)


# -- deadlines ---------------------------------------------------------------------------------------------


class DeadlineOut(BaseModel):
    ref: str
    kind: str
    title: str
    role: str | None
    due_at: str | None
    done_at: str | None
    state: str
    late_by_s: int | None
    left_s: int | None


def _secs(value: timedelta | None) -> int | None:
    return int(value.total_seconds()) if value is not None else None


@router.get("/incidents/{incident_id}/deadlines")
def deadlines(
    incident_id: IncidentId,
    principal: Caller,
    core: Core,
    request: Request,
    response: Response,
    lang: Lang = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> Page[DeadlineOut]:
    """Every deadline of the incident at this moment (steps, notifications, regulators), soonest first."""
    incident = read_incident(core, principal, incident_id, response)
    language = lang_of(request, principal)
    items = due_list(incident, incident.now(core.clock.now()), calendar_for=calendar_for)
    rows = [
        DeadlineOut(
            ref=i.deadline.ref,
            kind=i.deadline.kind,
            title=i.deadline.title.get(language),
            role=i.deadline.role,
            due_at=iso(i.deadline.due_at),
            done_at=iso(i.deadline.done_at),
            state=i.state.value,
            late_by_s=_secs(i.late_by),
            left_s=_secs(i.left),
        )
        for i in items
    ]
    return page(rows, limit, offset)


# -- restoration and the end of an incident ------------------------------------------------------------


class RestoreIn(In):
    degraded: bool = Field(default=False, description="service is back, degraded (default: fully)")
    at: AwareDatetime | None = Field(default=None, description="when, if before now")
    reason: Reason = None


@router.post("/incidents/{incident_id}/restore")
def restore(
    incident_id: IncidentId,
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
    body: RestoreIn | None = None,
) -> OutcomeOut:
    """Record that service is restored, fully or degraded (ir restore)."""
    body = body or RestoreIn()
    command = c.Restore(
        actor=principal.actor,
        incident_id=incident_id,
        degraded=body.degraded,
        at=body.at,
        reason=body.reason,
        expected_version=expected,
    )
    return run(core, command, response)


_ENDINGS: dict[str, tuple[type[c.IncidentCommand], str]] = {
    "end-response": (c.EndResponse, "End the emergency response (响应结束), before closing (ir end-response)."),
    "cancel": (c.CancelIncident, "Cancel the incident as a false alarm; the reason is required (ir cancel)."),
    "reopen": (c.ReopenIncident, "Reopen a closed or cancelled incident; the reason is required (ir reopen)."),
    "close": (c.CloseIncident, "Close the incident; a reason is required while steps are open (ir close)."),
}


def _ending_endpoint(name: str, cls: type[c.IncidentCommand]) -> Callable[..., OutcomeOut]:
    def endpoint(
        incident_id: IncidentId,
        principal: Changer,
        core: Core,
        expected: Expected,
        response: Response,
        body: ReasonIn | None = None,
    ) -> OutcomeOut:
        kwargs: dict[str, Any] = {
            "actor": principal.actor,
            "incident_id": incident_id,
            "reason": (body or ReasonIn()).reason,
            "expected_version": expected,
        }
        return run(core, cls(**kwargs), response)

    endpoint.__name__ = name.replace("-", "_")
    return endpoint


for _name, (_kind, _doc) in _ENDINGS.items():
    router.add_api_route(
        f"/incidents/{{incident_id}}/{_name}",
        _ending_endpoint(_name, _kind),
        methods=["POST"],
        name=_name.replace("-", "_"),
        description=_doc,
        response_model=OutcomeOut,
    )
