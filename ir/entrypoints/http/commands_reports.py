"""Regulators and personal data over the API: obligations with countdowns, judgements of reportability,
regulator reports drafted (JSON, HTML, PDF) and filed, and personal data revealed — a recorded act, for
the roles allowed to (ir obligations | reportable | report | report submit | reveal)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field

from ir.domain.errors import InvalidInput
from ir.entrypoints.http.auth import Caller, Core
from ir.entrypoints.http.commands import (
    Changer,
    Expected,
    In,
    IncidentId,
    Lang,
    Text,
    events_since,
    read_incident,
    require_version,
    safe_filename,
)
from ir.entrypoints.http.routes import OutcomeOut, etag, lang_of

router = APIRouter(prefix="/api", tags=["regulators"])

RegimeId = Annotated[str, Path(min_length=1, max_length=64, description="a regime's id (cn-miit-2017, …)")]
Stage = Annotated[
    str, Path(min_length=1, max_length=64, description="initial | intermediate | final, or an obligation id")
]
MAX_DOCUMENT = 16 * 1024 * 1024


@router.get("/incidents/{incident_id}/obligations")
def obligations(
    incident_id: IncidentId, principal: Caller, core: Core, request: Request, response: Response, lang: Lang = None
) -> list[dict[str, Any]]:
    """Every regulator obligation of the incident, with its countdown (ir obligations)."""
    incident = read_incident(core, principal, incident_id, response)
    rows = core.reports.overview(principal.actor, incident_id, lang_of(request, principal))
    response.headers["ETag"] = etag(incident.version)
    return rows


class JudgeIn(In):
    reportable: bool = Field(default=True, description="false: judged not reportable")
    at: AwareDatetime | None = Field(default=None, description="reportable since (default: now)")
    reason: Text


@router.post("/incidents/{incident_id}/reportability/{regime}")
def judge(
    incident_id: IncidentId,
    regime: RegimeId,
    body: JudgeIn,
    principal: Changer,
    core: Core,
    expected: Expected,
    response: Response,
) -> OutcomeOut:
    """Record a judgement of reportability under a regime (ir reportable)."""
    before = require_version(core, incident_id, expected)
    core.reports.judge(principal.actor, incident_id, regime, reportable=body.reportable, at=body.at, reason=body.reason)
    return events_since(core, incident_id, before, response)


_MEDIA = {"json": "application/json", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}


@router.get(
    "/incidents/{incident_id}/reports/{regime}/{stage}",
    response_class=Response,
    responses={
        200: {
            "description": "the report, filled from the record; missing required fields are listed, never invented",
            "content": {"application/json": {}, "text/html": {}, "application/pdf": {}},
        }
    },
)
def draft_report(
    incident_id: IncidentId,
    regime: RegimeId,
    stage: Stage,
    principal: Caller,
    core: Core,
    request: Request,
    format: Annotated[Literal["json", "html", "pdf"], Query(description="the document's format")] = "json",
    lang: Lang = None,
) -> Response:
    """A regulator report drafted from the incident's record (ir report ID --regime --stage --format)."""
    language = lang_of(request, principal)
    report = core.reports.draft(principal.actor, incident_id, regime, stage, language)
    content, _media, suffix = core.reports.render(report, format, language)
    name = f"incident-{incident_id}-{regime}-{report.obligation}.{suffix}"
    headers = {
        "ETag": f'"{hashlib.sha256(content).hexdigest()[:32]}"',
        "Content-Disposition": f'{"attachment" if format == "pdf" else "inline"}; filename="{name}"',
        "Cache-Control": "private, no-cache",
    }
    if report.missing:
        headers["X-Missing-Fields"] = str(len(report.missing))
    if format == "html":
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return Response(content=content, media_type=_MEDIA[format], headers=headers)


class SubmitIn(In):
    reference: Annotated[str, Field(min_length=1, max_length=500)] = Field(
        description="the regulator's reference for the filing"
    )
    late_reason: Annotated[str, Field(max_length=10_000)] | None = Field(
        default=None, description="why it is late (required by some regimes)"
    )
    partial: bool = Field(default=False, description="a phased submission: more will follow")
    lang: Literal["zh-CN", "en"] | None = None
    document_base64: Annotated[str, Field(max_length=(MAX_DOCUMENT // 3 + 1) * 4)] | None = Field(
        default=None, description="the exact document filed, base64 (default: the report rendered now as PDF)"
    )
    document_name: Annotated[str, Field(max_length=255)] | None = None


class SubmitOut(OutcomeOut):
    obligation: str
    document_sha256: str


@router.post("/incidents/{incident_id}/reports/{regime}/{stage}/submit")
def submit_report(
    incident_id: IncidentId,
    regime: RegimeId,
    stage: Stage,
    body: SubmitIn,
    principal: Changer,
    core: Core,
    expected: Expected,
    request: Request,
    response: Response,
) -> SubmitOut:
    """Record a filing with a regulator and keep the exact document; it stops that clock (ir report submit)."""
    document: bytes | None = None
    if body.document_base64 is not None:
        try:
            document = base64.b64decode(body.document_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("document_base64 is not base64", field="document_base64") from None
        if not document:
            raise InvalidInput("the document is empty", field="document_base64")
    before = require_version(core, incident_id, expected)
    obligation, digest = core.reports.submit(
        principal.actor,
        incident_id,
        regime,
        stage,
        reference=body.reference,
        lang=body.lang or lang_of(request, principal),
        document=document,
        document_name=safe_filename(body.document_name, "report") if document is not None else None,
        late_reason=body.late_reason,
        partial=body.partial,
    )
    done = events_since(core, incident_id, before, response)
    return SubmitOut(**done.model_dump(), obligation=obligation, document_sha256=digest)


class RevealIn(In):
    fact: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="the personal fact to reveal"
    )
    note: int | None = Field(default=None, ge=1, le=1_000_000, description="the note to reveal (its number)")
    reason: Text = Field(description="why you need to see it (recorded)")


class RevealOut(BaseModel):
    value: str


@router.post("/incidents/{incident_id}/reveal", tags=["personal data"])
def reveal(incident_id: IncidentId, body: RevealIn, principal: Changer, core: Core, response: Response) -> RevealOut:
    """Reveal masked personal data: a recorded act, for those allowed (ir reveal)."""
    value = core.personal.reveal(principal.actor, incident_id, fact=body.fact, note=body.note, reason=body.reason)
    response.headers["Cache-Control"] = "no-store"
    return RevealOut(value=value)
