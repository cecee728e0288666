"""Notifications wired into one process: the outbox behind the handlers, the dispatcher, acknowledgements
(by link, without signing in, or by a signed-in user) and the incident's notification listing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ir.adapters.db.uow import Database
from ir.adapters.notify.ack import AckSigner
from ir.adapters.notify.config import NotifyConfig, ReplyFields, load_config
from ir.adapters.notify.outbox import DISPATCHER, SqlOutbox
from ir.adapters.notify.replies import Reply, same_address, same_number
from ir.app.handlers import Handlers, Outcome
from ir.app.notifications import ACTIVATING
from ir.app.permissions import authorize
from ir.domain.clocks import Clock
from ir.domain.commands import Actor, MarkNotificationSent
from ir.domain.deadlines import CalendarFor
from ir.domain.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from ir.domain.personal import Personal, from_json

REPLY_WINDOW = timedelta(days=1)  # a text without a reply code answers a message sent this recently

if TYPE_CHECKING:
    from ir.adapters.notify.dispatcher import Dispatcher

SYSTEM = Actor(id=DISPATCHER, roles=frozenset({"communications"}))


class NotifyService:
    def __init__(
        self,
        *,
        folder: str,
        db: Database,
        handlers: Handlers,
        clock: Clock,
        keys_dir: str,
        log_id: str,
        zone: str,
        calendar_for: CalendarFor | None = None,
        on_commit: Callable[[], None] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.db = db
        self.handlers = handlers
        self.clock = clock
        self.keys_dir = keys_dir
        self.on_commit = on_commit
        self.outbox = SqlOutbox(
            config=lambda: load_config(folder, env=env), log_id=log_id, zone=zone, calendar_for=calendar_for
        )
        self._signer: AckSigner | None = None
        self._dispatcher: Dispatcher | None = None

    @property
    def config(self) -> NotifyConfig:
        return self.outbox.config

    @property
    def signer(self) -> AckSigner:
        if self._signer is None:
            self._signer = AckSigner.from_folder(self.keys_dir)
        return self._signer

    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            from ir.adapters.notify.dispatcher import Dispatcher  # its channels (httpx): only where it runs

            self._dispatcher = Dispatcher(
                db=self.db,
                outbox=self.outbox,
                signer=self.signer,
                clock=self.clock,
                record_sent=self.record_sent,
                on_commit=self.on_commit,
            )
        return self._dispatcher

    def wake(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.wake()

    def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.close()

    def record_sent(self, incident_id: int, notification: str, created: datetime, reference: str) -> bool:
        """The notification's deadline is met: recorded once on the incident, as a person would have, unless
        a person already marked it sent since it became due (then there is nothing to add)."""
        with self.db.read() as repo:
            incident = repo.get(incident_id)
        if any(at >= created for at in incident.notifications_sent.get(notification, [])):
            return True
        try:
            self.handlers.handle(
                MarkNotificationSent(
                    actor=SYSTEM, incident_id=incident_id, notification_id=notification, reference=reference
                )
            )
        except (InvalidTransition, NotFound):
            return True  # closed meanwhile, or the notification no longer applies: nothing to record
        except Conflict:
            return False  # busy: the next pass records it
        return True

    # -- reading and acknowledging ---------------------------------------------------------------------------

    def listing(self, actor: Actor, incident_id: int) -> list[dict[str, Any]]:
        authorize(actor, "incident.read")
        with self.db.read() as repo:
            repo.get(incident_id)  # NotFound for an unknown incident
        with self.db.connection() as conn:
            return self.outbox.listing(conn, incident_id)

    def describe(self, token: str) -> dict[str, Any]:
        """What an acknowledgement link is about (no sign-in: the signed token is the permission)."""
        message_id = self.signer.verify(token)
        if message_id is None:
            raise NotFound("this acknowledgement link is not valid")
        with self.db.connection() as conn:
            return self._public(self.outbox.message(conn, message_id))

    def acknowledge_link(self, token: str, *, source: str = "") -> tuple[dict[str, Any], bool]:
        message_id = self.signer.verify(token)
        if message_id is None:
            raise NotFound("this acknowledgement link is not valid")
        return self._acknowledge(message_id, by="link", actor=f"ack-link:{message_id}", source=source)

    def acknowledge(self, actor: Actor, incident_id: int, message_id: int) -> tuple[dict[str, Any], bool]:
        """A signed-in user acknowledges a message on the console or over the API."""
        authorize(actor, "log.add")
        with self.db.connection() as conn:
            row = self.outbox.message(conn, message_id)
        if int(row["incident_id"]) != incident_id:
            raise NotFound(f"incident {incident_id} has no notification message {message_id}")
        return self._acknowledge(message_id, by=actor.id, actor=actor.id)

    # -- acknowledging by reply ---------------------------------------------------------------------------------

    def reply_channels(self) -> list[str]:
        """Where replies may come from: e-mail, SMS, and each configured IM robot or webhook endpoint."""
        return ["email", "sms", *sorted(self.config.endpoints)]

    def reply_fields(self, channel: str) -> ReplyFields:
        """Where the sender and the text are in what the SMS gateway or this IM bridge posts."""
        if channel == "sms":
            return self.config.sms.replies
        if channel in ("email", "mail"):
            raise InvalidInput("a reply by e-mail is the whole mail, as the mail server received it (RFC 5322)")
        endpoint = self.config.endpoints.get(channel)
        if endpoint is None:
            raise NotFound(f"no channel '{channel}' (replies come by {', '.join(self.reply_channels())})")
        return endpoint.replies

    def reply(self, actor: Actor, reply: Reply, *, source: str = "") -> dict[str, Any]:
        """A recipient's reply, forwarded by the mail server, an SMS gateway or an IM bridge (`actor`: the
        machine user forwarding it): the message it answers is acknowledged. A reply that answers nothing,
        or a machine's automatic answer, changes nothing and says why."""
        authorize(actor, "log.add")
        if reply.channel not in self.reply_channels():
            raise NotFound(f"no channel '{reply.channel}' (replies come by {', '.join(self.reply_channels())})")
        reason = reply.automatic
        message_id = None
        if not reason:
            message_id, reason = self._answered(reply)
        if message_id is None:
            self._refused_reply(actor, reply.channel, reason, source)
            return {"acknowledged": False, "reason": reason}
        # the sender (an address, a number, a name in a chat) is personal data: it is not kept
        found, first = self._acknowledge(message_id, by=f"reply:{reply.channel}", actor=actor.id, source=source)
        return {"acknowledged": True, "acknowledged_now": first, **found}

    def _answered(self, reply: Reply) -> tuple[int | None, str]:
        """The message a reply answers, or None and why none."""
        person = reply.channel in ("email", "sms")
        same = same_address if reply.channel == "email" else same_number
        with self.db.connection() as conn:

            def first_from_sender(rows: list[dict[str, Any]]) -> int | None:
                if not person:
                    return int(rows[0]["id"]) if rows else None
                sealed = [from_json(json.loads(r["address"])) if r["address"] else None for r in rows]
                found = [v for v in sealed if isinstance(v, Personal)]
                opened = iter(self.db.vault.open_many(conn, found) if found else [])
                for r, v in zip(rows, sealed, strict=True):
                    if isinstance(v, Personal) and same(next(opened), reply.sender):
                        return int(r["id"])
                return None

            if reply.channel == "email":
                rows = self.outbox.answered(conn, "email", keys=reply.keys) if reply.keys else []
                found = first_from_sender(rows)
                if found is not None:
                    return found, ""
                for token in reply.links():
                    linked = self.signer.verify(token)
                    if linked is not None:
                        return linked, ""
                if rows:
                    return None, "the reply comes from another address than the one the message was sent to"
                return None, (
                    "the mail answers no message of ours: no In-Reply-To or References header names one, "
                    "and it quotes no acknowledgement link"
                )
            codes = reply.codes()
            if codes:
                rank = {c: i for i, c in enumerate(codes)}
                rows = sorted(self.outbox.answered(conn, reply.channel, ids=codes), key=lambda r: rank[int(r["id"])])
                found = first_from_sender(rows)
                if found is not None:
                    return found, ""
            since = self.clock.now() - REPLY_WINDOW
            found = first_from_sender(self.outbox.answered(conn, reply.channel, since=since))
            if found is not None:
                return found, ""
        where = "this number" if person else f"'{reply.channel}'"
        return None, (
            f"no message sent to {where} in the last day awaits acknowledgement, "
            "and the reply names no reply code of a message sent there"
        )

    def _refused_reply(self, actor: Actor, channel: str, reason: str, source: str) -> None:
        now = self.clock.now()
        with self.db.uow() as uow:
            uow.audit.record(
                action="notification.reply_refused",
                actor=actor.id,
                subject="notifications",
                payload={"channel": channel, "reason": reason, "source": source},
                at=now,
            )
            uow.commit()

    def _acknowledge(self, message_id: int, *, by: str, actor: str, source: str = "") -> tuple[dict[str, Any], bool]:
        now = self.clock.now()
        with self.db.uow() as uow:
            row, changed = self.outbox.acknowledge(uow.conn, message_id, by=by, at=now)
            uow.audit.record(
                action="notification.ack",
                actor=actor,
                subject=f"incident:{row['incident_id']}",
                payload={
                    "message": message_id,
                    "notification": row["notification"],
                    "recipient": f"contact:{row['contact_id']}" if row["contact_id"] else f"endpoint:{row['endpoint']}",
                    "first": changed,
                    "by": by,
                    "source": source,
                },
                at=now,
            )
            uow.commit()
        if self.on_commit is not None:
            self.on_commit()
        return self._public(row), changed

    @staticmethod
    def _public(row: dict[str, Any]) -> dict[str, Any]:
        content = json.loads(row["content"])
        part = content.get(row["lang"]) or content.get("zh-CN", {})
        return {
            "message": row["id"],
            "incident": row["incident_id"],
            "notification": row["notification"],
            "subject": part.get("subject", ""),
            "lang": row["lang"],
            "channel": row["channel"],
            "status": row["status"],
            "acked_at": row["acked_at"].isoformat() if row["acked_at"] else None,
        }


def install(
    *,
    folder: str,
    db: Database,
    handlers: Handlers,
    clock: Clock,
    keys_dir: str,
    log_id: str,
    zone: str,
    calendar_for: CalendarFor | None,
    on_commit: Callable[[], None] | None,
) -> NotifyService | None:
    """Notifications for this process, when the configuration folder exists (read on first use)."""
    if not os.path.isdir(folder):
        return None
    service = NotifyService(
        folder=folder,
        db=db,
        handlers=handlers,
        clock=clock,
        keys_dir=keys_dir,
        log_id=log_id,
        zone=zone,
        calendar_for=calendar_for,
        on_commit=on_commit,
    )
    handlers.outbox = service.outbox

    def wake(outcome: Outcome) -> None:
        if any(isinstance(e, ACTIVATING) for e in outcome.events):
            service.wake()

    handlers.after_commit.append(wake)
    return service
