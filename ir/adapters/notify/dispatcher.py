"""The dispatcher: claims due messages from the outbox, sends them (one SMTP connection per batch), and
records each attempt — delivered, retried later with exponential back-off, or failed — with an audit
record per attempt. Run by `ir serve` beside the timers, or `ir notify dispatch [--loop]`.

A crash between sending and recording leaves the message claimed; the claim lapses (dispatch.lease) and
the message is sent again with the same idempotency key (Message-ID, Idempotency-Key), which a receiver
that deduplicates recognises. When every message of a notice is delivered, the notification is recorded
as sent on the incident (once, by `system:dispatcher`); critical messages unacknowledged in time escalate.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ir.adapters.db.uow import Database
from ir.adapters.notify.ack import AckSigner
from ir.adapters.notify.channels import Failure, HttpChannels, Outgoing, Result, SmtpBatch
from ir.adapters.notify.outbox import DISPATCHER, SqlOutbox
from ir.adapters.notify.replies import reply_code
from ir.adapters.notify.templates import ACK_MARK, REPLY_MARK
from ir.domain.clocks import Clock
from ir.domain.personal import ERASED, Personal, from_json

log = logging.getLogger("ir.notify")

# (incident, notification, notice created at, reference) -> recorded (or nothing to record)? False: try later
RecordSent = Callable[[int, str, datetime, str], bool]


@dataclass(slots=True)
class Pass:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    escalated: int = 0
    recorded: int = 0
    errors: list[str] = field(default_factory=list)


class Dispatcher:
    def __init__(
        self,
        *,
        db: Database,
        outbox: SqlOutbox,
        signer: AckSigner,
        clock: Clock,
        record_sent: RecordSent | None = None,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.config = outbox.config
        self.signer = signer
        self.clock = clock
        self.record_sent = record_sent
        self.on_commit = on_commit or (lambda: None)
        self.http = HttpChannels(
            endpoints=self.config.endpoints, sms=self.config.sms, clock=clock, timeout=self.config.dispatch.timeout
        )
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self.http.close()

    def ack_url(self, message_id: int) -> str:
        return f"{self.config.base_url}/ack/{self.signer.sign(message_id)}"

    # -- one pass -----------------------------------------------------------------------------------------------

    def run_once(self) -> Pass:
        result = Pass()
        d = self.config.dispatch
        with self.db.uow() as uow:
            _token, rows = self.outbox.claim(uow.conn, now=self.clock.now(), limit=d.batch, lease=d.lease)
            uow.commit()
        result.claimed = len(rows)
        if rows:
            outcomes = self._send(rows)
            now = self.clock.now()
            with self.db.uow() as uow:
                self.outbox.settle(
                    uow.conn, ((r, f.error if f else None, f.permanent if f else False) for r, f in outcomes), now=now
                )
                for r, f in outcomes:
                    status = (
                        "delivered"
                        if f is None
                        else ("failed" if f.permanent or r["attempts"] >= d.max_attempts else "retry")
                    )
                    if status == "delivered":
                        result.delivered += 1
                    elif status == "failed":
                        result.failed += 1
                    else:
                        result.retrying += 1
                    uow.audit.record(
                        action="notification.deliver",
                        actor=DISPATCHER,
                        subject=f"incident:{r['incident_id']}",
                        payload={
                            "message": r["id"],
                            "notification": r["notification"],
                            "channel": r["channel"],
                            "recipient": _recipient(r),
                            "attempt": r["attempts"],
                            "status": status,
                            "error": f.error if f else None,
                            "key": r["key"],
                        },
                        at=now,
                    )
                uow.commit()
            self.on_commit()
            result.recorded = self._record({int(r["notice_id"]) for r in rows})
        result.escalated = self._escalate()
        return result

    def _send(self, rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Result]]:
        contents: dict[int, dict[str, Any]] = {}
        ready: list[tuple[dict[str, Any], Outgoing | Failure]] = []
        with self.db.connection() as conn:  # every address of the batch opened at once
            sealed = [from_json(json.loads(r["address"])) if r["address"] else None for r in rows]
            found = [v for v in sealed if isinstance(v, Personal)]
            opened = iter(self.db.vault.open_many(conn, found) if found else [])
            addresses = [next(opened) if isinstance(v, Personal) else "" for v in sealed]
        for r, address in zip(rows, addresses, strict=True):
            notice = int(r["notice_id"])
            if notice not in contents:
                contents[notice] = json.loads(r["content"])
            if address == ERASED:
                ready.append((r, Failure("the contact's personal data was erased", permanent=True)))
                continue
            if not address and r["channel"] in ("email", "sms"):
                ready.append((r, Failure("no address", permanent=True)))
                continue
            part = contents[notice].get(r["lang"]) or contents[notice]["zh-CN"]
            ack, code = self.ack_url(int(r["id"])), reply_code(int(r["id"]))
            ready.append(
                (
                    r,
                    Outgoing(
                        key=r["key"],
                        channel=r["channel"],
                        address=address,
                        endpoint=r["endpoint"],
                        subject=part["subject"],
                        text=part["text"].replace(ACK_MARK, ack).replace(REPLY_MARK, code),
                        html=part["html"].replace(ACK_MARK, ack).replace(REPLY_MARK, code),
                        ack_url=ack,
                        incident_id=int(r["incident_id"]),
                        notification=str(r["notification"]),
                        audience=str(r["audience"]),
                        critical=bool(r["critical"]),
                        lang=str(r["lang"]),
                    ),
                )
            )
        results: dict[int, Result] = {}
        mails = [(r, o) for r, o in ready if isinstance(o, Outgoing) and o.channel == "email"]
        if mails:
            smtp = SmtpBatch(self.config.smtp)
            try:
                for (r, _), res in zip(mails, smtp.send([o for _, o in mails]), strict=True):
                    results[int(r["id"])] = res
            finally:
                smtp.close()
        for r, o in ready:
            if isinstance(o, Failure):
                results[int(r["id"])] = o
            elif o.channel != "email":
                results[int(r["id"])] = self.http.send(o)
        return [(r, results[int(r["id"])]) for r in rows]

    def _record(self, notice_ids: set[int]) -> int:
        """Notifications whose every message is delivered are recorded as sent on their incident."""
        if self.record_sent is None:
            return 0
        with self.db.connection() as conn:
            done = self.outbox.complete_notices(conn, notice_ids)
            created = {
                n: at for n, at in ((n, self.outbox.notice_created(conn, n)) for n, *_ in done) if at is not None
            }
        recorded = 0
        for notice_id, incident_id, notification, count in done:
            try:
                ok = self.record_sent(
                    incident_id,
                    notification,
                    created.get(notice_id, self.clock.now()),
                    f"outbox notice {notice_id}: {count} message(s) delivered",
                )
            except Exception as exc:  # recorded on a later pass; never lost, never silent
                log.warning("notice %s: recording the delivery on incident %s failed: %s", notice_id, incident_id, exc)
                continue
            if ok:
                with self.db.uow() as uow:
                    self.outbox.mark_recorded(uow.conn, notice_id, self.clock.now())
                    uow.commit()
                recorded += 1
        return recorded

    def _escalate(self) -> int:
        now = self.clock.now()
        count = 0
        with self.db.uow() as uow:
            for entry in self.outbox.escalations(uow.conn, now=now):
                to = self.outbox.escalate(uow.conn, entry, now=now)
                uow.audit.record(
                    action="notification.escalate",
                    actor=DISPATCHER,
                    subject=f"incident:{entry['incident_id']}",
                    payload={
                        "notice": entry["notice_id"],
                        "from": f"contact:{entry['contact_id']}",
                        "to": f"contact:{to}" if to else None,
                        "via": entry["via"],
                        "step": entry["step"],
                    },
                    at=now,
                )
                count += 1 if to else 0
            uow.commit()
        if count:
            self.on_commit()
        return count

    # -- the loop ---------------------------------------------------------------------------------------------

    def run(self, *, stop: threading.Event, once: bool = False) -> Pass:
        """Pass after pass while there is work; between passes wait for a wake-up or the poll interval."""
        total = Pass()
        while not stop.is_set():
            try:
                done = self.run_once()
            except Exception as exc:  # the database away for a moment: say so and try again
                log.warning("notification dispatch pass failed: %s: %s", type(exc).__name__, exc)
                if once:
                    raise
                stop.wait(self.config.dispatch.poll)
                continue
            for name in ("claimed", "delivered", "retrying", "failed", "escalated", "recorded"):
                setattr(total, name, getattr(total, name) + getattr(done, name))
            busy = done.claimed or done.escalated
            if once and not busy:
                return total
            if not busy:
                self._wake.wait(self.config.dispatch.poll)
                self._wake.clear()
        return total


def _recipient(row: dict[str, Any]) -> str | None:
    if row["contact_id"]:
        return f"contact:{row['contact_id']}"
    return f"endpoint:{row['endpoint']}" if row["endpoint"] else None
