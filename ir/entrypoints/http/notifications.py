"""Notifications over HTTP: the incident's messages (delivery, failures, acknowledgements), acknowledging
one as a signed-in user, the acknowledgement links sent in messages (`/ack/<token>`, no sign-in), and the
recipients' replies forwarded by the mail server, the SMS gateway or an IM bridge (a machine's token).

A link opened (GET) shows what it acknowledges and a button; the acknowledgement itself is the POST, so
a mail scanner that fetches every link in a message acknowledges nothing. Acknowledging twice is harmless.
"""

from __future__ import annotations

import html
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ir.adapters.notify.replies import MAX_FORWARDED, MAX_MAIL, forwarded, parse_mail
from ir.adapters.notify.service import NotifyService
from ir.bootstrap import App
from ir.domain.errors import InvalidInput
from ir.entrypoints.http.auth import Caller, Core, source
from ir.entrypoints.http.commands import IncidentId

router = APIRouter(tags=["notifications"])

MessageId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a notification message's number")]
Token = Annotated[str, Path(min_length=3, max_length=80, pattern=r"^[0-9]+\.[A-Za-z0-9_-]+$")]
Channel = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="sms, or an IM endpoint's name")
]


def _service(core: App) -> NotifyService:
    if core.notify is None:
        raise InvalidInput("notifications are not configured on this server (IR_NOTIFICATIONS_DIR)")
    return core.notify


@router.get("/api/incidents/{incident_id}/notifications")
def incident_notifications(incident_id: IncidentId, principal: Caller, core: Core) -> list[dict[str, Any]]:
    """Each notification the incident made due, with every message: channel, recipient (a contact's id or
    an endpoint's name, never an address), delivery status, attempts, last failure, acknowledgement."""
    return _service(core).listing(principal.actor, incident_id)


@router.post("/api/incidents/{incident_id}/notifications/{message_id}/ack")
def acknowledge(incident_id: IncidentId, message_id: MessageId, principal: Caller, core: Core) -> dict[str, Any]:
    """Acknowledge a message (and the recipient's other messages of the same notification)."""
    found, first = _service(core).acknowledge(principal.actor, incident_id, message_id)
    return {**found, "acknowledged_now": first}


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>确认收到 / Acknowledge</title>
<style>body{{font-family:sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
button{{font-size:1.1rem;padding:.6rem 1.4rem;background:#b91c1c;color:#fff;border:0;border-radius:4px}}</style>
</head><body>
<h1>{subject}</h1>
<p>事件 / Incident {incident} · {notification}</p>
{body}
</body></html>"""


def _page(found: dict[str, Any], body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(
            subject=html.escape(found["subject"]),
            incident=int(found["incident"]),
            notification=html.escape(found["notification"]),
            body=body,
        ),
        status_code=status,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )


def _acked(found: dict[str, Any]) -> str:
    at = html.escape(str(found["acked_at"]))
    return f"<p><strong>已确认收到 / Acknowledged</strong> ({at})。</p>"


@router.get("/ack/{token}", response_class=HTMLResponse, include_in_schema=False)
def ack_page(token: Token, core: Core) -> Response:
    found = _service(core).describe(token)
    if found["acked_at"]:
        return _page(found, _acked(found))
    form = (
        f'<form method="post" action="/ack/{html.escape(token)}">'
        "<p>请确认您已收到此通知。/ Please confirm you received this notice.</p>"
        '<button type="submit">确认收到 / Acknowledge</button></form>'
    )
    return _page(found, form)


@router.post("/ack/{token}", include_in_schema=False)
def ack_link(token: Token, core: Core, request: Request) -> Response:
    found, first = _service(core).acknowledge_link(token, source=source(request))
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({**found, "acknowledged_now": first})
    return _page(found, _acked(found))


# -- replies ---------------------------------------------------------------------------------------------------


async def _body(request: Request, limit: int) -> bytes:
    """The request's body, refused past `limit` bytes without reading the rest."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InvalidInput(f"the request is larger than {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_REPLIED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "acknowledged (`acknowledged`: true), or why the reply acknowledges nothing",
        "content": {"application/json": {}},
    }
}


@router.post(
    "/api/notifications/replies/mail",
    responses=_REPLIED,
    openapi_extra={"requestBody": {"required": True, "content": {"message/rfc822": {"schema": {"type": "string"}}}}},
)
async def reply_by_mail(principal: Caller, core: Core, request: Request) -> dict[str, Any]:
    """A recipient's reply by e-mail, posted whole (RFC 5322, `message/rfc822`) by the mail server or an
    inbound-mail service. It acknowledges the message its In-Reply-To or References header names when it
    comes from the address that message went to (or the message whose acknowledgement link it quotes);
    automatic answers (out of office, bounces) acknowledge nothing."""
    raw = await _body(request, MAX_MAIL)
    service = _service(core)

    def reply() -> dict[str, Any]:  # parsing up to 2 MB of mail is work for a thread, not the event loop
        return service.reply(principal.actor, parse_mail(raw, domain=service.config.smtp.domain), source=where)

    where = source(request)
    return await run_in_threadpool(reply)


@router.post("/api/notifications/replies/{channel}", responses=_REPLIED)
async def reply_by_text(channel: Channel, principal: Caller, core: Core, request: Request) -> dict[str, Any]:
    """A recipient's reply by SMS (`sms`, posted by the SMS gateway) or in a chat (the IM robot's endpoint
    name, posted by a bridge): JSON or a form whose sender and text fields the channel's `replies` setting
    names (default `from` and `text`). It acknowledges the message whose reply code it contains, sent to that
    number or robot, or else the latest one sent there in the last day."""
    raw = await _body(request, MAX_FORWARDED)
    service = _service(core)
    kind, where = request.headers.get("content-type", ""), source(request)

    def reply() -> dict[str, Any]:
        fields = service.reply_fields(channel)
        said = forwarded(channel, raw, kind, sender_field=fields.sender, text_field=fields.text)
        return service.reply(principal.actor, said, source=where)

    return await run_in_threadpool(reply)
