"""Deadlines, derived from an incident's state: never stored as timers, recomputed at will.

Every open step with a due time, every notification obligation (and its repeats), and the recovery
objectives (RTO and MTPD for the current level) are listed with their due instant. `due_list(inc, now)`
says for one instant which are upcoming, due soon, overdue, met or missed, and by how much.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ir.domain.clocks import ClockName
from ir.domain.durations import WorkingCalendar, shift
from ir.domain.events import (
    CommandHandedOver,
    Event,
    ImpactSet,
    IncidentLinked,
    IncidentUnlinked,
    LogEntryAdded,
    NoteAdded,
    NotificationSent,
    ResourceAllocated,
    ResourceMoved,
    ResourceRequestCancelled,
    ResourceRequested,
    RoleAssigned,
    RoleUnassigned,
    SitrepDrafted,
    SitrepEdited,
    SitrepReleased,
    StepCompleted,
    StepSkipped,
)
from ir.domain.incident import Incident, StepStatus
from ir.domain.playbook import Calendar, Due
from ir.domain.text import Text

CalendarFor = Callable[[Calendar], WorkingCalendar]
DUE_SOON = timedelta(minutes=15)


class DeadlineState(StrEnum):
    WAITING = "waiting"  # its anchor has not happened yet
    UPCOMING = "upcoming"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    MET = "met"
    MISSED = "missed"  # done, but late


@dataclass(frozen=True, slots=True)
class Deadline:
    ref: str  # step:<id>, notification:<id>, rto, mtpd
    kind: str  # step | notification | rto | mtpd
    title: Text
    due_at: datetime | None
    done_at: datetime | None
    role: str | None = None
    anchor: str = ""

    def state(self, now: datetime, soon: timedelta = DUE_SOON) -> DeadlineState:
        if self.due_at is None:
            return DeadlineState.WAITING if self.done_at is None else DeadlineState.MET
        if self.done_at is not None:
            return DeadlineState.MET if self.done_at <= self.due_at else DeadlineState.MISSED
        if now > self.due_at:
            return DeadlineState.OVERDUE
        if self.due_at - now <= soon:
            return DeadlineState.DUE_SOON
        return DeadlineState.UPCOMING

    def late_by(self, now: datetime) -> timedelta | None:
        if self.due_at is None:
            return None
        end = self.done_at or now
        return end - self.due_at if end > self.due_at else None

    def left(self, now: datetime) -> timedelta | None:
        if self.due_at is None or self.done_at is not None:
            return None
        return self.due_at - now


@dataclass(frozen=True, slots=True)
class DueItem:
    deadline: Deadline
    state: DeadlineState
    late_by: timedelta | None
    left: timedelta | None


def due_instant(inc: Incident, due: Due, calendar_for: CalendarFor | None) -> datetime | None:
    if due.anchor_step is not None:
        prog = inc.steps.get(due.anchor_step)
        if prog is None or prog.status not in (StepStatus.DONE, StepStatus.SKIPPED) or prog.finished_at is None:
            return None
        anchor = prog.finished_at
    else:
        assert due.anchor_clock is not None
        found = inc.clock(due.anchor_clock)
        if found is None:
            return None
        anchor = found
    calendar = calendar_for(inc.playbook.calendar) if due.offset.is_working and calendar_for else None
    return shift(anchor, due.offset, negative=due.negative, calendar=calendar)


def step_deadline(inc: Incident, step_id: str, calendar_for: CalendarFor | None) -> Deadline | None:
    step = inc.playbook.steps[step_id]
    if step.due is None:
        return None
    status = inc.step_status(step_id)
    if status is StepStatus.NOT_APPLICABLE:
        return None
    prog = inc.steps.get(step_id)
    done = prog.finished_at if prog is not None and status in (StepStatus.DONE, StepStatus.SKIPPED) else None
    return Deadline(
        ref=f"step:{step_id}",
        kind="step",
        title=step.title,
        due_at=due_instant(inc, step.due, calendar_for),
        done_at=done,
        role=step.role,
        anchor=str(step.due),
    )


def notification_deadlines(inc: Incident, calendar_for: CalendarFor | None) -> list[Deadline]:
    out: list[Deadline] = []
    for note in inc.playbook.notifications.values():
        if not inc.notification_active(note):
            continue
        key = inc.level if note.applies_to_level(inc.level) else inc.warning  # a warning phase has no level
        due = note.due_for(key)
        if due is None:
            continue
        first = due_instant(inc, due, calendar_for)
        sent = sorted(inc.notifications_sent.get(note.id, []))
        done: datetime | None = None
        due_at = first
        if sent:
            if note.repeat is not None and not note.repeat.is_working and note.repeat.seconds:
                # each sending answers the due time set by the one before it (the first: the first due)
                every = timedelta(seconds=note.repeat.seconds)
                ended = inc.clock(ClockName.RESTORATION_FULL) or inc.clock(ClockName.RESPONSE_END)
                last = sent[-1]
                if ended is not None and last >= ended:
                    done = last
                    due_at = sent[-2] + every if len(sent) > 1 else first
                else:
                    due_at = last + every
            else:
                done = sent[0]
        out.append(
            Deadline(
                ref=f"notification:{note.id}",
                kind="notification",
                title=note.title,
                due_at=due_at,
                done_at=done,
                role=note.roles[0] if note.roles else None,
                anchor=str(due) + (f" (every {note.repeat})" if note.repeat else ""),
            )
        )
    return out


def recovery_deadlines(inc: Incident) -> list[Deadline]:
    if inc.level is None:
        return []
    spec = inc.playbook.levels[inc.level]
    onset = inc.recovery_start
    restored = inc.restored_at
    out = []
    for ref, duration, title in (
        ("rto", spec.rto, Text("恢复时间目标 (RTO)", "recovery time objective (RTO)")),
        (
            "mtpd",
            spec.mtpd,
            Text("最大可容忍中断时间 (MTPD)", "maximum tolerable period of disruption (MTPD)"),
        ),
    ):
        due = onset + timedelta(seconds=duration.seconds) if onset is not None else None
        out.append(Deadline(ref, ref, title, due, restored, None, f"detection + {duration}"))
    return out


_SITREP_TITLE = Text("态势报告", "situation report")


def sitrep_deadline(inc: Incident) -> Deadline | None:
    """Situation reports at the playbook's interval for the level: the first one interval after the
    declaration, each next one interval after the last released; none due once the response ended."""
    if inc.level is None:
        return None
    interval = inc.playbook.sitrep_interval_for(inc.level)
    declared = inc.clock(ClockName.DECLARATION)
    if interval is None or interval.is_working or not interval.seconds or declared is None:
        return None
    every = timedelta(seconds=interval.seconds)
    released = [r.released_at for r in inc.emergency.sitreps if r.released_at is not None]
    ended = inc.clock(ClockName.RESPONSE_END) or (inc.clock(ClockName.CLOSURE) if inc.closed else None)
    due = (released[-1] if released else declared) + every
    done = None
    if ended is not None:
        if released and released[-1] >= ended - every:
            done, due = released[-1], (released[-2] if len(released) > 1 else declared) + every
        else:
            done = ended
    return Deadline("sitrep", "sitrep", _SITREP_TITLE, due, done, None, f"every {interval}")


def resource_deadlines(inc: Incident) -> list[Deadline]:
    out = []
    for r in inc.emergency.requests.values():
        if r.cancelled or r.needed_by is None:
            continue
        arrived = sorted((m.arrived_at, m.capacity) for m in r.units.values() if m.arrived_at is not None)
        done, total = None, 0
        for at, capacity in arrived:
            total += capacity
            if total >= r.quantity:
                done = at
                break
        res = inc.playbook.resources.get(r.resource)
        title = Text(
            f"{res.title.zh_cn if res else r.resource} ×{r.quantity} 到达 {r.destination}",
            f"{res.title.en if res else r.resource} x{r.quantity} at {r.destination}",
        )
        out.append(Deadline(f"resource:{r.id}", "resource", title, r.needed_by, done, None, "needed by"))
    return out


def regime_deadlines(inc: Incident, calendar_for: CalendarFor | None) -> list[Deadline]:
    from ir.domain.obligations import obligation_states

    out = []
    for s in obligation_states(inc, inc.regimes, calendar_for=calendar_for):
        title = Text(
            f"{s.regime.title.zh_cn}：{s.obligation.title.zh_cn}", f"{s.regime.title.en}: {s.obligation.title.en}"
        )
        anchor = " / ".join(str(c) for c in s.variant.clauses) if s.variant else ""
        out.append(Deadline(s.ref, "regime", title, s.due_at, s.submitted_at, None, anchor))
    return out


def deadlines(
    inc: Incident, *, calendar_for: CalendarFor | None = None, refs: Iterable[str] | None = None
) -> list[Deadline]:
    """Every deadline of the incident (or only those named by `refs`), in due order."""
    wanted = set(refs) if refs is not None else None
    out: list[Deadline] = []
    if wanted is None:
        step_ids: Iterable[str] = inc.playbook.steps
    else:
        step_ids = [r[5:] for r in wanted if r.startswith("step:") and r[5:] in inc.playbook.steps]
    for sid in step_ids:
        found = step_deadline(inc, sid, calendar_for)
        if found is not None:
            out.append(found)
    if wanted is None or any(r.startswith("notification:") for r in wanted):
        out.extend(d for d in notification_deadlines(inc, calendar_for) if wanted is None or d.ref in wanted)
    if wanted is None or "rto" in wanted or "mtpd" in wanted:
        out.extend(d for d in recovery_deadlines(inc) if wanted is None or d.ref in wanted)
    if wanted is None or "sitrep" in wanted:
        sitrep = sitrep_deadline(inc)
        if sitrep is not None:
            out.append(sitrep)
    if wanted is None or any(r.startswith("resource:") for r in wanted):
        out.extend(d for d in resource_deadlines(inc) if wanted is None or d.ref in wanted)
    if inc.regimes and (wanted is None or any(r.startswith("regime:") for r in wanted)):
        out.extend(d for d in regime_deadlines(inc, calendar_for) if wanted is None or d.ref in wanted)
    far = datetime.max.replace(tzinfo=inc.opened_at.tzinfo if inc.opened_at else None)
    out.sort(key=lambda d: (d.due_at is None, d.due_at or far, d.ref))
    return out


def due_list(
    inc: Incident, now: datetime, *, calendar_for: CalendarFor | None = None, soon: timedelta = DUE_SOON
) -> list[DueItem]:
    """For one instant: each deadline's state, how late it is, and how long is left."""
    return [
        DueItem(d, d.state(now, soon), d.late_by(now), d.left(now)) for d in deadlines(inc, calendar_for=calendar_for)
    ]


@dataclass(frozen=True, slots=True)
class RecoveryClock:
    """RTO or MTPD for the current level, or RPO from the last good data point."""

    name: str
    target: timedelta
    due_at: datetime | None
    actual: timedelta | None  # recovery time, or data loss for RPO
    met: bool | None  # None while it runs
    left: timedelta | None
    breached: bool


def recovery_clocks(inc: Incident, now: datetime) -> list[RecoveryClock]:
    if inc.level is None:
        return []
    spec = inc.playbook.levels[inc.level]
    onset = inc.recovery_start
    restored = inc.restored_at
    out: list[RecoveryClock] = []
    for name, duration in (("rto", spec.rto), ("mtpd", spec.mtpd)):
        target = timedelta(seconds=duration.seconds)
        due = onset + target if onset else None
        actual = restored - onset if restored and onset else None
        met = None if actual is None else actual <= target
        left = None if due is None or restored is not None else due - now
        breached = (met is False) or (restored is None and due is not None and now > due)
        out.append(RecoveryClock(name, target, due, actual, met, left, breached))
    last_good = inc.clock(ClockName.LAST_GOOD_DATA)
    target = timedelta(seconds=spec.rpo.seconds)
    loss = onset - last_good if onset and last_good else None
    out.append(
        RecoveryClock(
            "rpo",
            target,
            None,
            loss,
            None if loss is None else loss <= target,
            None,
            bool(loss and loss > target),
        )
    )
    return out


_NO_WORK = (LogEntryAdded, RoleAssigned, RoleUnassigned, CommandHandedOver, ImpactSet, IncidentLinked, IncidentUnlinked)


def touched_refs(incident: Incident, events: Sequence[Event]) -> set[str] | None:
    """Which projection rows a batch of events can change (None: all of them)."""
    refs: set[str] = set()
    anchored = incident.playbook.anchored_to_step
    for e in events:
        step = getattr(e, "step", None)
        if isinstance(e, NotificationSent):
            refs.add(f"notification:{e.notification}")
        elif isinstance(e, NoteAdded) and e.step is None:
            continue  # an incident-level note changes no work item
        elif isinstance(e, _NO_WORK):
            continue
        elif isinstance(e, SitrepDrafted | SitrepEdited | SitrepReleased):
            refs.add("sitrep")
        elif isinstance(e, ResourceRequested | ResourceAllocated | ResourceMoved | ResourceRequestCancelled):
            refs.add(f"resource:{e.request}")
        elif isinstance(step, str):
            refs.add(f"step:{step}")
            if isinstance(e, StepCompleted | StepSkipped):  # only these resolve a dependency
                refs.update(f"step:{d}" for d in incident.playbook.dependants.get(step, ()))
                refs.update(f"step:{d}" for d in anchored.get(step, ()))
                refs.update(f"notification:{n}" for n in incident.playbook.notifications_anchored_to_step.get(step, ()))
                if incident.playbook.steps[step].restores is not None:
                    return None
        else:
            return None  # facts, clocks, levels, opening, closing: everything may move
    return refs
