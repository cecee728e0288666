"""The public status page: status updates published by the communications role, each one a CAP 1.2 alert.

Publishing is an explicit act (`status.publish`: communications, commanders, administrators). A published
update is a row of its own table (the StatusBoard port), not an event of the incident: the public side
reads nothing but these rows, so nothing else of an incident can leak there, and publishing never competes
with a commander for the incident's version. Each row keeps its CAP alert exactly as published (validated
against the official schema before it is stored), and each publish is audited in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from ir.app.permissions import authorize
from ir.app.ports import UnitOfWork, UnitOfWorkFactory
from ir.domain.clocks import Clock
from ir.domain.commands import Actor
from ir.domain.errors import NotFound
from ir.domain.status_updates import PublishStatusUpdate, cap_terms, check_eta, check_text, msg_type

# CAP's instruction when the author gave none (an all-clear needs none)
DEFAULT_INSTRUCTION = ("请关注本状态页和后续通告。", "Follow the status page and further notices.")
PUBLIC_MODES = ("real", "drill")  # test-mode updates are never listed (their alerts are served by identifier)


@dataclass(frozen=True, slots=True)
class PublishedUpdate:
    """One published status update, as stored and as the public sees it (with its CAP alert)."""

    id: int
    incident_id: int
    public_ref: str  # the incident's public reference (never its internal number)
    seq: int  # 1, 2, … within the incident
    mode: str  # real | drill | test
    title_zh: str
    title_en: str
    message_zh: str
    message_en: str
    area_zh: str
    area_en: str
    instruction_zh: str | None
    instruction_en: str | None
    eta: datetime | None
    warning: str | None  # the incident's warning level when published
    level: str | None  # the incident's response level when published
    resolved: bool
    published_at: datetime
    published_by: str
    cap_identifier: str
    cap_msg_type: str
    cap_sent: str  # as written in the alert (local time with its offset)
    cap_xml: str

    def title(self, lang: str) -> str:
        return self.title_en if lang == "en" else self.title_zh

    def message(self, lang: str) -> str:
        return self.message_en if lang == "en" else self.message_zh

    def area(self, lang: str) -> str:
        return self.area_en if lang == "en" else self.area_zh

    def instruction(self, lang: str) -> str | None:
        return self.instruction_en if lang == "en" else self.instruction_zh


@dataclass(frozen=True, slots=True)
class PublicIncident:
    """An incident as the public sees it: its updates, newest first, and what the latest one says."""

    ref: str
    mode: str
    updates: tuple[PublishedUpdate, ...]

    @property
    def latest(self) -> PublishedUpdate:
        return self.updates[0]

    @property
    def resolved(self) -> bool:
        return self.latest.resolved

    @property
    def eta(self) -> datetime | None:
        return None if self.latest.resolved else self.latest.eta


class StatusBoard(Protocol):
    """The published updates, on the unit of work's transaction."""

    def of_incident(self, incident_id: int, *, lock: bool = False) -> list[PublishedUpdate]:
        """The incident's updates in order; `lock` holds off other publishers of it until the commit."""
        ...

    def add(self, update: PublishedUpdate) -> int:
        """Store an update (its id is allocated here)."""
        ...


class StatusReader(Protocol):
    """The public side: read-only, test-mode updates excluded where it says so."""

    def public(self, *, incidents: int, with_xml: bool = True) -> list[PublishedUpdate]:
        """Every update of the `incidents` most recently updated public incidents, newest first (their
        alerts' XML left empty unless `with_xml`)."""
        ...

    def version(self) -> tuple[int, int]:
        """Changes whenever anything is published: (the highest id, the number of updates)."""
        ...

    def alert(self, identifier: str) -> PublishedUpdate | None: ...

    def of_incident(self, incident_id: int) -> list[PublishedUpdate]: ...


# -- CAP, as the service hands it to the adapter that writes the XML ---------------------------------------


@dataclass(frozen=True, slots=True)
class CapInfo:
    language: str
    categories: tuple[str, ...]
    event: str
    response_type: str
    urgency: str
    severity: str
    certainty: str
    headline: str
    description: str
    instruction: str | None
    area_desc: str
    sender_name: str | None = None
    web: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CapAlert:
    identifier: str
    sender: str
    sent: str  # 2026-10-01T09:00:00+08:00
    status: str
    msg_type: str
    references: tuple[str, ...]  # "sender,identifier,sent" of the earlier alerts of the same notice
    incidents: str
    infos: tuple[CapInfo, ...]
    note: str | None = None


Compose = Callable[[CapAlert], str]  # the alert's XML, valid against the CAP 1.2 schema (or an error)


def cap_time(instant: datetime, zone: ZoneInfo) -> str:
    """CAP's dateTime: seconds, and an explicit offset (never Z)."""
    return instant.astimezone(zone).replace(microsecond=0).isoformat()


# -- the service ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class StatusPage:
    uow: UnitOfWorkFactory
    board: Callable[[UnitOfWork], StatusBoard]
    reader: Callable[[], AbstractContextManager[StatusReader]]  # the public side's read-only view
    compose: Compose
    clock: Clock
    sender: str  # CAP sender: the organisation's identifier (IR_STATUS_SENDER)
    zone: str = "Asia/Shanghai"
    sender_name: str | None = None
    default_area: tuple[str, str] = ("服务区域", "Service area")
    web: str | None = None  # the public page's address, for CAP <web> and the feeds
    after_commit: Sequence[Callable[[PublishedUpdate], None]] = field(default_factory=tuple)

    def publish(self, c: PublishStatusUpdate) -> PublishedUpdate:
        authorize(c.actor, "status.publish")
        text = check_text(c)
        now = self.clock.now()
        eta = check_eta(c.eta, now, resolved=c.resolved)
        zone = ZoneInfo(self.zone)
        with self.uow() as uow:
            incident = uow.incidents.get(c.incident_id)
            board = self.board(uow)
            earlier = board.of_incident(c.incident_id, lock=True)
            ref = earlier[0].public_ref if earlier else "n" + secrets.token_hex(5)
            seq = len(earlier) + 1
            last = earlier[-1] if earlier else None
            area_zh = text.area_zh or (last.area_zh if last else self.default_area[0])
            area_en = text.area_en or (last.area_en if last else self.default_area[1])
            thread = _open_thread(earlier)
            terms = cap_terms(
                mode=incident.mode.value,
                category=incident.playbook.category,
                playbook_type=incident.playbook.type,
                warning=incident.warning,
                level=incident.level,
                resolved=c.resolved,
            )
            sent = cap_time(now, zone)
            identifier = f"ir-{ref}-{seq}"
            parameters = (("estimatedRestoration", cap_time(eta, zone)),) if eta is not None else ()
            default_zh, default_en = (None, None) if c.resolved else DEFAULT_INSTRUCTION
            instruction_zh = text.instruction_zh or default_zh
            instruction_en = text.instruction_en or default_en
            infos = tuple(
                CapInfo(
                    language=lang,
                    categories=terms.categories,
                    event=event,
                    response_type=terms.response_type,
                    urgency=terms.urgency,
                    severity=terms.severity,
                    certainty=terms.certainty,
                    headline=title,
                    description=message,
                    instruction=instruction,
                    area_desc=area,
                    sender_name=self.sender_name,
                    web=self.web,
                    parameters=parameters,
                )
                for lang, event, title, message, instruction, area in (
                    ("zh-CN", terms.event_zh, text.title_zh, text.message_zh, instruction_zh, area_zh),
                    ("en", terms.event_en, text.title_en, text.message_en, instruction_en, area_en),
                )
            )
            alert = CapAlert(
                identifier=identifier,
                sender=self.sender,
                sent=sent,
                status=terms.status,
                msg_type=msg_type(resolved=c.resolved, earlier=len(thread)),
                references=tuple(f"{self.sender},{u.cap_identifier},{u.cap_sent}" for u in thread),
                incidents=ref,
                infos=infos,
                note={"drill": "演练 / exercise", "test": "测试 / test"}.get(incident.mode.value),
            )
            xml = self.compose(alert)
            update = PublishedUpdate(
                id=0,
                incident_id=c.incident_id,
                public_ref=ref,
                seq=seq,
                mode=incident.mode.value,
                title_zh=text.title_zh,
                title_en=text.title_en,
                message_zh=text.message_zh,
                message_en=text.message_en,
                area_zh=area_zh,
                area_en=area_en,
                instruction_zh=text.instruction_zh,
                instruction_en=text.instruction_en,
                eta=eta,
                warning=incident.warning.value if incident.warning else None,
                level=incident.level.value if incident.level else None,
                resolved=c.resolved,
                published_at=now,
                published_by=c.actor.id,
                cap_identifier=identifier,
                cap_msg_type=alert.msg_type,
                cap_sent=sent,
                cap_xml=xml,
            )
            update_id = board.add(update)
            uow.audit.record(
                action="status.publish",
                actor=c.actor.id,
                subject=f"incident:{c.incident_id}",
                payload={
                    "status_update": update_id,
                    "seq": seq,
                    "public_ref": ref,
                    "cap_identifier": identifier,
                    "msg_type": alert.msg_type,
                    "title": {"zh-CN": text.title_zh, "en": text.title_en},
                    "resolved": c.resolved,
                    "eta": eta.isoformat() if eta else None,
                },
                at=now,
                ref=f"status_update:{update_id}",
                digest=hashlib.sha256(xml.encode()).digest(),  # the alert exactly as published
            )
            uow.commit()
        published = _with_id(update, update_id)
        for hook in self.after_commit:
            hook(published)
        return published

    def updates(self, actor: Actor, incident_id: int) -> list[PublishedUpdate]:
        """An incident's published updates, oldest first (for the people who run it)."""
        authorize(actor, "incident.read")
        with self.uow() as uow:
            uow.incidents.get(incident_id)  # NotFound for an unknown incident
            return self.board(uow).of_incident(incident_id)

    def published(self, incident_id: int) -> list[PublishedUpdate]:
        """An incident's updates, oldest first, read without a write lock (for a page its reader may see)."""
        with self.reader() as reader:
            return reader.of_incident(incident_id)

    def public(self, *, incidents: int = 50, with_xml: bool = False) -> list[PublicIncident]:
        """What the public sees: incidents with published updates (real ones and drills), the unresolved
        first, real incidents before exercises, then the most recently updated."""
        with self.reader() as reader:
            rows = reader.public(incidents=incidents, with_xml=with_xml)
        grouped: dict[str, list[PublishedUpdate]] = {}
        for row in rows:
            grouped.setdefault(row.public_ref, []).append(row)
        out = [PublicIncident(ref, ups[0].mode, tuple(ups)) for ref, ups in grouped.items()]
        out.sort(key=lambda i: (i.resolved, i.mode != "real", -i.latest.published_at.timestamp()))
        return out

    def version(self) -> tuple[int, int]:
        """What the public side's caches are keyed on: it changes with every publish."""
        with self.reader() as reader:
            return reader.version()

    def alert(self, identifier: str) -> PublishedUpdate:
        with self.reader() as reader:
            found = reader.alert(identifier)
        if found is None:
            raise NotFound(f"no published alert '{identifier}'")
        return found


def _open_thread(earlier: list[PublishedUpdate]) -> list[PublishedUpdate]:
    """The updates since the last all-clear: what a new update refers to (a Cancel ends a notice)."""
    start = 0
    for i, u in enumerate(earlier):
        if u.resolved:
            start = i + 1
    return earlier[start:]


def _with_id(update: PublishedUpdate, update_id: int) -> PublishedUpdate:
    from dataclasses import replace

    return replace(update, id=update_id)
