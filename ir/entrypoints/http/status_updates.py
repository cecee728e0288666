"""Status updates over the API: publish one for the public (status.publish), list an incident's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, Field

from ir.app.status_page import PublishedUpdate, StatusPage
from ir.domain.status_updates import MAX_AREA, MAX_INSTRUCTION, MAX_MESSAGE, MAX_TITLE, PublishStatusUpdate
from ir.entrypoints.http.auth import Caller, core
from ir.entrypoints.http.commands import Changer, IncidentId

router = APIRouter(prefix="/api", tags=["status page"])

Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE)]
Message = Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE)]
Area = Annotated[str, Field(max_length=MAX_AREA)] | None
Instruction = Annotated[str, Field(max_length=MAX_INSTRUCTION)] | None


def service(request: Request) -> StatusPage:
    """This application's status page service, built on first use."""
    found = getattr(request.app.state, "status_page", None)
    if found is None:
        from ir.entrypoints.status_service import status_page

        found = request.app.state.status_page = status_page(core(request))
    assert isinstance(found, StatusPage)
    return found


class StatusUpdateIn(BaseModel):
    """A status update for the public, in both languages (nothing else of the incident is published)."""

    title_zh: Title = Field(description="the public title (公开标题), never the internal one")
    title_en: Title
    message_zh: Message
    message_en: Message
    eta: AwareDatetime | None = Field(default=None, description="the restoration estimate (预计恢复时间)")
    area_zh: Area = Field(default=None, description="the area affected (default: as last published)")
    area_en: Area = None
    instruction_zh: Instruction = Field(default=None, description="what users should do")
    instruction_en: Instruction = None
    resolved: bool = Field(default=False, description="the all-clear: service is back (CAP msgType Cancel)")


class StatusUpdateOut(BaseModel):
    id: int
    incident: int
    public_ref: str
    seq: int
    mode: str
    title_zh: str
    title_en: str
    message_zh: str
    message_en: str
    area_zh: str
    area_en: str
    instruction_zh: str | None
    instruction_en: str | None
    eta: datetime | None
    resolved: bool
    published_at: datetime
    published_by: str
    cap_identifier: str
    cap_msg_type: str
    cap_url: str


def update_out(u: PublishedUpdate) -> StatusUpdateOut:
    return StatusUpdateOut(
        id=u.id,
        incident=u.incident_id,
        public_ref=u.public_ref,
        seq=u.seq,
        mode=u.mode,
        title_zh=u.title_zh,
        title_en=u.title_en,
        message_zh=u.message_zh,
        message_en=u.message_en,
        area_zh=u.area_zh,
        area_en=u.area_en,
        instruction_zh=u.instruction_zh,
        instruction_en=u.instruction_en,
        eta=u.eta,
        resolved=u.resolved,
        published_at=u.published_at,
        published_by=u.published_by,
        cap_identifier=u.cap_identifier,
        cap_msg_type=u.cap_msg_type,
        cap_url=f"/status/alerts/{u.cap_identifier}.xml",
    )


@router.post("/incidents/{incident_id}/status-updates", status_code=201)
def publish(incident_id: IncidentId, body: StatusUpdateIn, principal: Changer, request: Request) -> StatusUpdateOut:
    """Publish a status update on the public status page, its feeds and as a CAP 1.2 alert (status.publish:
    communications, commanders, administrators). It is audited; it changes nothing of the incident."""
    command = PublishStatusUpdate(actor=principal.actor, incident_id=incident_id, **body.model_dump())
    return update_out(service(request).publish(command))


@router.get("/incidents/{incident_id}/status-updates")
def list_updates(incident_id: IncidentId, principal: Caller, request: Request) -> list[StatusUpdateOut]:
    """The incident's published status updates, oldest first."""
    return [update_out(u) for u in service(request).updates(principal.actor, incident_id)]
