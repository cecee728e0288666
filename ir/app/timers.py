"""The timer service: due-soon, overdue and breach marks, and escalations, computed from stored state.

Nothing is kept as a timer. Each tick reads what is due from the projections, records the marks that
are not yet recorded (each mark has an idempotency key: incident, item, mark, due instant), and says when
to look again. A restart simply ticks: nothing is missed, nothing is recorded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True, slots=True)
class DueCandidate:
    incident_id: int
    ref: str
    kind: str  # step | notification | rto | mtpd
    role: str | None
    due_at: datetime  # in the incident's own time
    incident_now: datetime  # the incident's own time now (real, or its simulated clock)
    escalate_to: str | None


@dataclass(frozen=True, slots=True)
class TimerMark:
    incident_id: int
    ref: str
    mark: str  # due_soon | overdue | breached | escalated
    due_at: datetime
    marked_at: datetime
    target: str | None = None


class TimerStore(Protocol):
    def candidates(self, real_now: datetime, soon: timedelta) -> list[DueCandidate]: ...

    def record(self, marks: list[TimerMark]) -> list[TimerMark]:
        """Record marks not recorded before (and audit them); returns those newly recorded."""
        ...

    def next_wake(self, real_now: datetime, soon: timedelta) -> datetime | None:
        """The next real instant at which something becomes due soon or overdue."""
        ...


def marks_for(candidates: list[DueCandidate]) -> list[TimerMark]:
    marks: list[TimerMark] = []
    for c in candidates:
        now = c.incident_now
        if now >= c.due_at:
            kind = "breached" if c.kind in ("rto", "mtpd") else "overdue"
            marks.append(TimerMark(c.incident_id, c.ref, kind, c.due_at, now))
            if c.escalate_to:
                marks.append(TimerMark(c.incident_id, c.ref, "escalated", c.due_at, now, c.escalate_to))
        else:
            marks.append(TimerMark(c.incident_id, c.ref, "due_soon", c.due_at, now))
    return marks


@dataclass(slots=True)
class TimerService:
    store: TimerStore
    soon: timedelta = timedelta(minutes=15)

    def tick(self, real_now: datetime) -> tuple[list[TimerMark], datetime | None]:
        """Record what is due; return the new marks and when to tick next."""
        new = self.store.record(marks_for(self.store.candidates(real_now, self.soon)))
        return new, self.store.next_wake(real_now, self.soon)
