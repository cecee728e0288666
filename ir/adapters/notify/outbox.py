"""The outbox: notices and messages written in the command's transaction, claimed and settled by the
dispatcher, acknowledged by their recipients, escalated when a critical one goes unacknowledged.

Recipients: the people on duty in the notification's roles (the contact whose id is the user's id; when
none has a contact, the first contact of the role's group), the contacts of its groups (everyone, or the
first for groups with `reach: first`), and the webhooks and IM robots configured for its audience. Each
message's address is the contact's own sealed field, copied as it is (still sealed under the contact's
key); each has an idempotency key derived from the notice, the recipient and the channel.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from ir.adapters.db.tables import contact_groups, contacts, outbox_messages, outbox_notices
from ir.adapters.notify.config import ENDPOINT_CHANNELS, PERSON_CHANNELS, NotifyConfig
from ir.adapters.notify.templates import LANGS
from ir.app.notifications import PUBLISHED, DueNotice
from ir.app.ports import UnitOfWork
from ir.domain.deadlines import CalendarFor, due_instant
from ir.domain.errors import NotFound
from ir.domain.incident import Incident, Mode
from ir.domain.levels import ResponseLevel, WarningLevel
from ir.domain.playbook import Notification

M = outbox_messages
N = outbox_notices
DISPATCHER = "system:dispatcher"


@dataclass(frozen=True, slots=True)
class Member:
    contact_id: str
    position: int
    email: str | None  # sealed (JSON), as stored on the contact
    phone: str | None
    lang: str


def idempotency_key(log_id: str, incident_id: int, notification: str, cause: str, who: str, channel: str) -> str:
    raw = "\x00".join((log_id, str(incident_id), notification, cause, who, channel))
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def _conn(uow: UnitOfWork) -> Connection:
    conn = getattr(uow, "conn", None)
    assert isinstance(conn, Connection), "the outbox writes in a SQL unit of work"
    return conn


def _when(at: datetime | None, zone: str) -> str:
    if at is None:
        return ""
    return f"{at.astimezone(ZoneInfo(zone)).strftime('%Y-%m-%d %H:%M')} ({zone})"


class SqlOutbox:
    def __init__(
        self,
        *,
        config: NotifyConfig | Callable[[], NotifyConfig],
        log_id: str,
        zone: str = "Asia/Shanghai",
        calendar_for: CalendarFor | None = None,
    ) -> None:
        self._config = config if isinstance(config, NotifyConfig) else None
        self._load = None if isinstance(config, NotifyConfig) else config
        self._lock = threading.Lock()
        self.log_id = log_id
        self.zone = zone
        self.calendar_for = calendar_for

    @property
    def config(self) -> NotifyConfig:
        """The configuration, read on first use (a command that makes nothing due never reads it)."""
        if self._config is None:
            with self._lock:
                if self._config is None:
                    assert self._load is not None
                    self._config = self._load()
        return self._config

    # -- writing, in the command's transaction ----------------------------------------------------------

    def enqueue(
        self, uow: UnitOfWork, *, incident: Incident, notices: Sequence[DueNotice], actor: str, at: datetime
    ) -> int:
        conn = _conn(uow)
        told = {
            (str(r[0]), str(r[1]))
            for r in conn.execute(select(N.c.notification, N.c.cause).where(N.c.incident_id == incident.id))
        }
        written = 0
        for notice in notices:
            note = notice.notification
            if (note.id, notice.cause) in told:
                continue
            content = {lang: self._render(incident, note, notice.cause, lang, at) for lang in LANGS}
            notice_id = conn.execute(
                insert(N)
                .values(
                    incident_id=incident.id,
                    notification=note.id,
                    cause=notice.cause,
                    audience=note.audience.value,
                    critical=note.critical,
                    content=json.dumps(content, ensure_ascii=False),
                    actor=actor,
                    created_at=at,
                )
                .returning(N.c.id)
            ).scalar_one()
            rows = self._messages(conn, incident, note, notice.cause, int(notice_id), at)
            if rows:
                conn.execute(insert(M), rows)
            written += len(rows)
        return written

    def context(self, incident: Incident, note: Notification, cause: str, lang: str, at: datetime) -> dict[str, Any]:
        """The documented template variables (templates.SAMPLE) for one notice in one language."""
        en = lang == "en"
        level, warning = incident.level, incident.emergency.warning
        key: ResponseLevel | WarningLevel | None = level if note.applies_to_level(level) else warning
        due = note.due_for(key)
        try:
            due_at = due_instant(incident, due, self.calendar_for) if due is not None else None
        except Exception:  # a working-day offset without a calendar: shown without its due time
            due_at = None
        return {
            "incident": {
                "id": incident.id,
                "title": incident.title,
                "playbook": incident.playbook.id,
                "playbook_title": incident.playbook.title.get("en" if en else "zh-CN"),
                "level": level.value if level else "",
                "level_label": level.label.get("en" if en else "zh-CN") if level else "",
                "warning": warning.value if warning else "",
                "warning_label": warning.label.get("en" if en else "zh-CN") if warning else "",
                "mode": incident.mode.value,
                "opened_at": _when(incident.opened_at, self.zone),
                "url": f"{self.config.base_url}/incidents/{incident.id}",
                "summary": getattr(incident, "summary", "") or "",
            },
            "notification": {
                "id": note.id,
                "title": note.title.get("en" if en else "zh-CN"),
                "audience": note.audience.value,
                "critical": note.critical,
                "due_at": _when(due_at, self.zone),
                "cause": cause,
            },
            "org": self.config.org,
            "ack_url": "",  # filled per recipient (templates.ACK_MARK) when sent
            "reply_code": "",  # the same (templates.REPLY_MARK)
            "lang": lang,
            "now": _when(at, self.zone),
            "drill": incident.mode is not Mode.REAL,
        }

    def _render(self, incident: Incident, note: Notification, cause: str, lang: str, at: datetime) -> dict[str, str]:
        from ir.adapters.notify.templates import ACK_MARK, REPLY_MARK

        context = self.context(incident, note, cause, lang, at)
        context["ack_url"], context["reply_code"] = ACK_MARK, REPLY_MARK
        return self.config.templates.render(note.template, lang, context).as_dict()

    def _channels(
        self, incident: Incident, note: Notification, cause: str
    ) -> tuple[list[str], list[str], list[str], list[str]]:
        """(channels, roles, groups, extra endpoints) after the routes that match."""
        channels = [c.value for c in note.channels if c not in PUBLISHED]
        roles, groups, endpoints = list(note.roles), list(note.groups), []
        kind, _, value = cause.partition(":")
        for route in self.config.routes:
            if route.matches(
                level=value if kind == "level" else None,
                warning=value if kind == "warning" else None,
                playbook=incident.playbook.id,
                notification=note.id,
                audience=note.audience.value,
            ):
                channels += [c for c in route.channels if c not in channels and c not in {p.value for p in PUBLISHED}]
                roles += [r for r in route.roles if r not in roles]
                groups += [g for g in route.groups if g not in groups]
                endpoints += [e for e in route.endpoints if e not in endpoints]
        return channels, roles, groups, endpoints

    def _messages(
        self, conn: Connection, incident: Incident, note: Notification, cause: str, notice_id: int, at: datetime
    ) -> list[dict[str, Any]]:
        channels, roles, groups, extra = self._channels(incident, note, cause)
        escalate_at = at + timedelta(seconds=self.config.dispatch.escalate_after) if note.critical else None
        people: dict[str, tuple[Member, str]] = {}  # contact -> (member, via), first route wins
        on_duty = {role: incident.emergency.on_duty(role, at) for role in roles}
        users = {u for names in on_duty.values() for u in names}
        known = _contacts(conn, users) if users else {}
        role_groups = [self.config.role_groups[r] for r in roles if r in self.config.role_groups]
        members = _members(conn, [*groups, *role_groups])
        for role in roles:
            reached = [known[u] for u in on_duty[role] if u in known]
            if not reached:
                group = self.config.role_groups.get(role)
                reached = members.get(group, [])[:1] if group else []
            for m in reached:
                people.setdefault(m.contact_id, (m, f"role:{role}"))
        for group in groups:
            found = members.get(group, [])
            for m in found[:1] if group in self.config.first_only else found:
                people.setdefault(m.contact_id, (m, f"group:{group}"))
        rows: list[dict[str, Any]] = []
        for channel in channels:
            if channel in PERSON_CHANNELS:
                for member, via in people.values():
                    rows.append(
                        self._person_row(incident, note, cause, notice_id, channel, member, via, 1, at, escalate_at)
                    )
            elif channel in ENDPOINT_CHANNELS:
                names = [*self.config.audience_endpoints.get(note.audience.value, {}).get(channel, ())]
                names += [e for e in extra if e not in names and self.config.endpoints[e].kind == channel]
                if not names:
                    rows.append(
                        self._row(
                            incident,
                            note,
                            cause,
                            notice_id,
                            channel,
                            at,
                            who=f"none:{channel}",
                            lang="zh-CN",
                            via=f"audience:{note.audience.value}",
                            status="failed",
                            error=f"no {channel} endpoint is configured for the {note.audience.value} audience",
                        )
                    )
                for name in names:
                    rows.append(
                        self._row(
                            incident,
                            note,
                            cause,
                            notice_id,
                            channel,
                            at,
                            who=f"endpoint:{name}",
                            endpoint=name,
                            lang=self.config.endpoints[name].lang,
                            via=f"audience:{note.audience.value}",
                        )
                    )
        return rows

    def _row(
        self,
        incident: Incident,
        note: Notification,
        cause: str,
        notice_id: int,
        channel: str,
        at: datetime,
        *,
        who: str,
        lang: str,
        via: str,
        endpoint: str | None = None,
        contact_id: str | None = None,
        address: str | None = None,
        step: int = 1,
        status: str = "pending",
        error: str | None = None,
        escalate_at: datetime | None = None,
    ) -> dict[str, Any]:
        return {
            "notice_id": notice_id,
            "incident_id": incident.id,
            "key": idempotency_key(self.log_id, incident.id, note.id, cause, who, channel),
            "channel": channel,
            "contact_id": contact_id,
            "endpoint": endpoint,
            "address": address,
            "lang": lang,
            "via": via,
            "step": step,
            "status": status,
            "attempts": 0,
            "next_at": at,
            "claim": None,
            "lease_until": None,
            "error": error,
            "delivered_at": None,
            "acked_at": None,
            "acked_by": None,
            "escalate_at": escalate_at,
            "escalated_at": None,
            "created_at": at,
        }

    def _person_row(
        self,
        incident: Incident,
        note: Notification,
        cause: str,
        notice_id: int,
        channel: str,
        member: Member,
        via: str,
        step: int,
        at: datetime,
        escalate_at: datetime | None,
    ) -> dict[str, Any]:
        address = member.email if channel == "email" else member.phone
        status, error = "pending", None
        if address is None:
            status, error = "failed", f"the contact has no {'e-mail address' if channel == 'email' else 'phone number'}"
        elif channel == "phone":
            status, error = "person", "a call: made and marked by a person (ir notified)"
        return self._row(
            incident,
            note,
            cause,
            notice_id,
            channel,
            at,
            who=f"contact:{member.contact_id}",
            lang=member.lang,
            via=via,
            contact_id=member.contact_id,
            address=address,
            step=step,
            status=status,
            error=error,
            escalate_at=(at if status == "failed" else escalate_at) if escalate_at is not None else None,
        )

    # -- the dispatcher's side ----------------------------------------------------------------------------

    def claim(self, conn: Connection, *, now: datetime, limit: int, lease: float) -> tuple[str, list[dict[str, Any]]]:
        """Claim up to `limit` due messages (pending and due, or held by a claim that lapsed): one UPDATE
        over a SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL, one write transaction on SQLite."""
        token = secrets.token_hex(8)
        due = (
            select(M.c.id)
            .where(
                or_(
                    and_(M.c.status == "pending", M.c.next_at <= now),
                    and_(M.c.status == "sending", M.c.lease_until < now),
                )
            )
            .order_by(M.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        conn.execute(
            update(M)
            .where(M.c.id.in_(due.scalar_subquery()))
            .values(
                status="sending", claim=token, lease_until=now + timedelta(seconds=lease), attempts=M.c.attempts + 1
            )
        )
        rows = conn.execute(
            select(M, N.c.notification, N.c.content, N.c.critical, N.c.audience)
            .join(N, N.c.id == M.c.notice_id)
            .where(M.c.claim == token)
            .order_by(M.c.id)
        ).mappings()
        return token, [dict(r) for r in rows]

    def settle(
        self, conn: Connection, outcomes: Iterable[tuple[dict[str, Any], str | None, bool]], *, now: datetime
    ) -> None:
        """Record each claimed message's attempt: (row, error or None, permanent failure)."""
        d = self.config.dispatch
        delivered: list[int] = []
        for row, error, permanent in outcomes:
            if error is None:
                delivered.append(int(row["id"]))
                continue
            if permanent or row["attempts"] >= d.max_attempts:
                values: dict[str, Any] = {"status": "failed", "error": error[:300]}
                if row["escalate_at"] is not None:
                    values["escalate_at"] = now  # a critical message that cannot be delivered escalates now
            else:
                wait = min(d.backoff * 2 ** max(0, row["attempts"] - 1), d.backoff_max)
                values = {"status": "pending", "error": error[:300], "next_at": now + timedelta(seconds=wait)}
            conn.execute(
                update(M)
                .where(M.c.id == row["id"], M.c.status == "sending")
                .values(claim=None, lease_until=None, **values)
            )
        for i in range(0, len(delivered), 500):  # the delivered of a pass in a few statements
            conn.execute(
                update(M)
                .where(M.c.id.in_(delivered[i : i + 500]), M.c.status == "sending")
                .values(status="delivered", delivered_at=now, error=None, claim=None, lease_until=None)
            )

    def complete_notices(self, conn: Connection, notice_ids: Iterable[int]) -> list[tuple[int, int, str, int]]:
        """Notices not yet recorded whose every message is delivered: (notice, incident, notification, count)."""
        ids = sorted(set(notice_ids))
        if not ids:
            return []
        undelivered = func.count(M.c.id).filter(M.c.status != "delivered")
        rows = conn.execute(
            select(N.c.id, N.c.incident_id, N.c.notification, func.count(M.c.id), undelivered)
            .join(M, M.c.notice_id == N.c.id)
            .where(N.c.id.in_(ids), N.c.recorded_at.is_(None))
            .group_by(N.c.id, N.c.incident_id, N.c.notification)
        ).all()
        return [(int(r[0]), int(r[1]), str(r[2]), int(r[3])) for r in rows if int(r[4]) == 0]

    def notice_created(self, conn: Connection, notice_id: int) -> datetime | None:
        found = conn.execute(select(N.c.created_at).where(N.c.id == notice_id)).scalar_one_or_none()
        return found if isinstance(found, datetime) else None

    def mark_recorded(self, conn: Connection, notice_id: int, at: datetime) -> None:
        conn.execute(update(N).where(N.c.id == notice_id).values(recorded_at=at))

    def escalations(self, conn: Connection, *, now: datetime) -> list[dict[str, Any]]:
        """Critical messages unacknowledged past their time: one entry per (notice, recipient)."""
        rows = conn.execute(
            select(M.c.id, M.c.notice_id, M.c.incident_id, M.c.contact_id, M.c.via, M.c.step, M.c.channel, M.c.status)
            .where(
                M.c.escalate_at <= now, M.c.escalated_at.is_(None), M.c.acked_at.is_(None), M.c.contact_id.is_not(None)
            )
            .order_by(M.c.id)
        ).mappings()
        out: dict[tuple[int, str], dict[str, Any]] = {}
        for r in rows:
            entry = out.setdefault(
                (int(r["notice_id"]), str(r["contact_id"])),
                {
                    "notice_id": r["notice_id"],
                    "incident_id": r["incident_id"],
                    "contact_id": r["contact_id"],
                    "via": r["via"],
                    "step": r["step"],
                    "ids": [],
                    "channels": [],
                },
            )
            entry["ids"].append(r["id"])
            if r["channel"] not in entry["channels"]:
                entry["channels"].append(r["channel"])
        return list(out.values())

    def escalate(self, conn: Connection, entry: Mapping[str, Any], *, now: datetime) -> str | None:
        """Tell the next contact of the role's or group's order; returns who (None: nobody is left)."""
        kind, _, name = str(entry["via"]).partition(":")
        group = self.config.role_groups.get(name) if kind == "role" else name if kind == "group" else None
        conn.execute(update(M).where(M.c.id.in_(entry["ids"])).values(escalated_at=now))
        if group is None:
            return None
        notice = conn.execute(select(N).where(N.c.id == entry["notice_id"])).mappings().one()
        told = {
            str(r[0]) for r in conn.execute(select(M.c.contact_id).where(M.c.notice_id == entry["notice_id"])) if r[0]
        }
        members = _members(conn, [group]).get(group, [])
        current = next((m.position for m in members if m.contact_id == entry["contact_id"]), 0)
        nxt = next((m for m in members if m.position > current and m.contact_id not in told), None)
        if nxt is None:
            return None
        fake = _NoticeRef(int(notice["incident_id"]), str(notice["notification"]), str(notice["cause"]))
        escalate_at = now + timedelta(seconds=self.config.dispatch.escalate_after)
        rows = []
        for channel in entry["channels"]:
            address = nxt.email if channel == "email" else nxt.phone
            status, error = "pending", None
            if address is None:
                status, error = "failed", "the contact has no address for this channel"
            elif channel == "phone":
                status, error = "person", "a call: made and marked by a person (ir notified)"
            rows.append(
                {
                    "notice_id": entry["notice_id"],
                    "incident_id": fake.incident_id,
                    "key": idempotency_key(
                        self.log_id,
                        fake.incident_id,
                        fake.notification,
                        fake.cause,
                        f"contact:{nxt.contact_id}",
                        channel,
                    ),
                    "channel": channel,
                    "contact_id": nxt.contact_id,
                    "endpoint": None,
                    "address": address,
                    "lang": nxt.lang,
                    "via": entry["via"],
                    "step": int(entry["step"]) + 1,
                    "status": status,
                    "attempts": 0,
                    "next_at": now,
                    "claim": None,
                    "lease_until": None,
                    "error": error,
                    "delivered_at": None,
                    "acked_at": None,
                    "acked_by": None,
                    "escalate_at": escalate_at,
                    "escalated_at": None,
                    "created_at": now,
                }
            )
        conn.execute(insert(M), rows)
        return nxt.contact_id

    # -- reading and acknowledging -------------------------------------------------------------------------

    def listing(self, conn: Connection, incident_id: int) -> list[dict[str, Any]]:
        """The incident's notices and their messages (addresses never shown: the contact id says who)."""
        notices = conn.execute(select(N).where(N.c.incident_id == incident_id).order_by(N.c.id)).mappings().all()
        messages: dict[int, list[dict[str, Any]]] = {}
        for r in conn.execute(select(M).where(M.c.incident_id == incident_id).order_by(M.c.id)).mappings():
            messages.setdefault(int(r["notice_id"]), []).append(
                {
                    "id": r["id"],
                    "channel": r["channel"],
                    "recipient": f"contact:{r['contact_id']}"
                    if r["contact_id"]
                    else (f"endpoint:{r['endpoint']}" if r["endpoint"] else None),
                    "via": r["via"],
                    "step": r["step"],
                    "status": r["status"],
                    "attempts": r["attempts"],
                    "error": r["error"],
                    "delivered_at": _iso(r["delivered_at"]),
                    "acked_at": _iso(r["acked_at"]),
                    "acked_by": r["acked_by"],
                    "escalated_at": _iso(r["escalated_at"]),
                    "idempotency_key": r["key"],
                }
            )
        out = []
        for n in notices:
            msgs = messages.get(int(n["id"]), [])
            counts: dict[str, int] = {}
            for m in msgs:
                counts[m["status"]] = counts.get(m["status"], 0) + 1
            content = json.loads(n["content"])
            out.append(
                {
                    "notice": n["id"],
                    "notification": n["notification"],
                    "cause": n["cause"],
                    "audience": n["audience"],
                    "critical": n["critical"],
                    "subject": {lang: content.get(lang, {}).get("subject", "") for lang in LANGS},
                    "created_at": _iso(n["created_at"]),
                    "recorded_at": _iso(n["recorded_at"]),
                    "counts": counts,
                    "acknowledged": sum(1 for m in msgs if m["acked_at"]),
                    "messages": msgs,
                }
            )
        return out

    def message(self, conn: Connection, message_id: int) -> dict[str, Any]:
        row = (
            conn.execute(
                select(M, N.c.notification, N.c.content).join(N, N.c.id == M.c.notice_id).where(M.c.id == message_id)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no notification message {message_id}")
        return dict(row)

    def answered(
        self,
        conn: Connection,
        channel: str,
        *,
        keys: Sequence[str] = (),
        ids: Sequence[int] = (),
        since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Messages a reply on `channel` ("email", "sms" or an endpoint's name) may answer: those with these
        idempotency keys or numbers, or else those delivered since then and not yet acknowledged (newest
        first, at most 1,000)."""
        where = M.c.channel == channel if channel in ("email", "sms") else M.c.endpoint == channel
        query = select(M.c.id, M.c.address, M.c.acked_at).where(where)
        if keys:
            query = query.where(M.c.key.in_(list(keys)))
        elif ids:
            query = query.where(M.c.id.in_(list(ids)))
        else:
            assert since is not None
            query = query.where(M.c.acked_at.is_(None), M.c.delivered_at >= since).order_by(M.c.id.desc()).limit(1000)
        return [dict(r) for r in conn.execute(query).mappings()]

    def acknowledge(self, conn: Connection, message_id: int, *, by: str, at: datetime) -> tuple[dict[str, Any], bool]:
        """Acknowledge a message — and the recipient's other messages of the same notice; returns the
        message and whether this act acknowledged it (False: it already was: acknowledging is idempotent)."""
        row = self.message(conn, message_id)
        if row["acked_at"] is not None:
            return row, False
        same = M.c.contact_id == row["contact_id"] if row["contact_id"] else M.c.endpoint == row["endpoint"]
        conn.execute(
            update(M)
            .where(M.c.notice_id == row["notice_id"], same, M.c.acked_at.is_(None))
            .values(acked_at=at, acked_by=by[:200])
        )
        return self.message(conn, message_id), True


@dataclass(frozen=True, slots=True)
class _NoticeRef:
    incident_id: int
    notification: str
    cause: str


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _contacts(conn: Connection, ids: Iterable[str]) -> dict[str, Member]:
    rows = conn.execute(
        select(contacts.c.id, contacts.c.email, contacts.c.phone, contacts.c.lang).where(contacts.c.id.in_(sorted(ids)))
    ).all()
    return {str(r[0]): Member(str(r[0]), 0, r[1], r[2], str(r[3])) for r in rows}


def _members(conn: Connection, groups: Sequence[str]) -> dict[str, list[Member]]:
    """Each group's contacts in escalation order."""
    if not groups:
        return {}
    rows = conn.execute(
        select(
            contact_groups.c.group_id,
            contacts.c.id,
            contact_groups.c.position,
            contacts.c.email,
            contacts.c.phone,
            contacts.c.lang,
        )
        .join(contacts, contacts.c.id == contact_groups.c.contact_id)
        .where(contact_groups.c.group_id.in_(sorted(set(groups))))
        .order_by(contact_groups.c.group_id, contact_groups.c.position)
    ).all()
    out: dict[str, list[Member]] = {}
    for g, cid, pos, email, phone, lang in rows:
        out.setdefault(str(g), []).append(
            Member(str(cid), int(pos), cast(str | None, email), cast(str | None, phone), str(lang))
        )
    return out
