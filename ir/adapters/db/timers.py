"""The timer service's store: due work from the projections, marks recorded once (unique key)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, select
from sqlalchemy.exc import IntegrityError

from ir.adapters.db.tables import incidents, timer_marks, work_items
from ir.adapters.db.uow import Database
from ir.app.timers import DueCandidate, TimerMark
from ir.domain.levels import ResponseLevel

_OPEN = ("pending", "ready", "in_progress", "failed", "open")


def _incident_now(row: Any, real_now: datetime) -> datetime:
    start: datetime | None = row["simulated_start"]
    real: datetime | None = row["real_start"]
    if start is None or real is None:
        return real_now
    return start + (real_now - real) * float(row["speed"])


def _to_real(row: Any, instant: datetime) -> datetime:
    start: datetime | None = row["simulated_start"]
    real: datetime | None = row["real_start"]
    if start is None or real is None:
        return instant
    return real + (instant - start) / float(row["speed"])


class SqlTimerStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _rows(self, conn: Any, real_now: datetime, soon: timedelta, *, future_only: bool) -> list[Any]:
        """Open work of open incidents: real-clock ones filtered in SQL, simulated ones (few) in Python."""
        cols = [
            work_items.c.incident_id,
            work_items.c.ref,
            work_items.c.kind,
            work_items.c.role,
            work_items.c.due_at,
            incidents.c.level,
            incidents.c.playbook_hash,
            incidents.c.simulated_start,
            incidents.c.real_start,
            incidents.c.speed,
        ]
        base = (
            select(*cols)
            .join(incidents, incidents.c.id == work_items.c.incident_id)
            .where(
                and_(
                    incidents.c.status != "closed",
                    work_items.c.done_at.is_(None),
                    work_items.c.due_at.is_not(None),
                    work_items.c.status.in_(_OPEN),
                )
            )
        )
        real_clock = incidents.c.simulated_start.is_(None)
        if future_only:
            real_part = base.where(and_(real_clock, work_items.c.due_at > real_now - soon)).order_by(
                work_items.c.due_at
            )
        else:
            real_part = base.where(and_(real_clock, work_items.c.due_at <= real_now + soon))
        rows = list(conn.execute(real_part).mappings())
        rows += list(conn.execute(base.where(incidents.c.simulated_start.is_not(None))).mappings())
        return rows

    def candidates(self, real_now: datetime, soon: timedelta) -> list[DueCandidate]:
        out: list[DueCandidate] = []
        with self.db.connection() as conn:
            for row in self._rows(conn, real_now, soon, future_only=False):
                now = _incident_now(row, real_now)
                if row["due_at"] > now + soon:
                    continue
                escalate_to = None
                if row["level"] is not None:
                    playbook = self.db.playbooks.get(conn, row["playbook_hash"])
                    escalate_to = playbook.levels[ResponseLevel(row["level"])].escalate_to
                out.append(
                    DueCandidate(
                        row["incident_id"],
                        row["ref"],
                        row["kind"],
                        row["role"],
                        row["due_at"],
                        now,
                        escalate_to,
                    )
                )
        return out

    def record(self, marks: list[TimerMark]) -> list[TimerMark]:
        if not marks:
            return []
        with self.db.connection() as conn:
            ids = {m.incident_id for m in marks}
            existing = {
                (r[0], r[1], r[2], r[3])
                for r in conn.execute(
                    select(
                        timer_marks.c.incident_id, timer_marks.c.ref, timer_marks.c.mark, timer_marks.c.due_at
                    ).where(timer_marks.c.incident_id.in_(ids))
                )
            }
        fresh = [m for m in marks if (m.incident_id, m.ref, m.mark, m.due_at) not in existing]
        recorded: list[TimerMark] = []
        for m in fresh:  # one transaction each: a concurrent worker's duplicate fails alone
            with self.db.uow() as uow:
                try:
                    uow.conn.execute(
                        insert(timer_marks).values(
                            incident_id=m.incident_id,
                            ref=m.ref,
                            mark=m.mark,
                            due_at=m.due_at,
                            marked_at=m.marked_at,
                            target=m.target,
                        )
                    )
                except IntegrityError:
                    continue
                uow.audit.record(
                    action=f"timer.{m.mark}",
                    actor="system:timer",
                    subject=f"incident:{m.incident_id}",
                    payload={"ref": m.ref, "due_at": m.due_at.isoformat(), "target": m.target},
                    at=self.db.clock.now(),
                )
                uow.commit()
                recorded.append(m)
        return recorded

    def next_wake(self, real_now: datetime, soon: timedelta) -> datetime | None:
        best: datetime | None = None
        with self.db.connection() as conn:
            for row in self._rows(conn, real_now, soon, future_only=True):
                now = _incident_now(row, real_now)
                for threshold in (row["due_at"] - soon, row["due_at"]):
                    if threshold > now:
                        real = _to_real(row, threshold)
                        if best is None or real < best:
                            best = real
                        break
        return best
