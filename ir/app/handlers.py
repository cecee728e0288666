"""One handler per command: check permission, load, decide, append with projections and audit, commit."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ir.app.auditing import record_events
from ir.app.notifications import Outbox, due_notices
from ir.app.permissions import authorize
from ir.app.ports import (
    PlaybookSource,
    ServiceCatalogue,
    StaleIncident,
    StoredRow,
    UnitOfWork,
    UnitOfWorkFactory,
)
from ir.domain import decisions
from ir.domain.clocks import Clock, ClockName
from ir.domain.commands import (
    AddNote,
    ApproveStep,
    AttachEvidence,
    CheckItem,
    CloseIncident,
    Command,
    CompleteStep,
    ConfirmAction,
    DeclareLevel,
    FailStep,
    IncidentCommand,
    MarkNotificationSent,
    OpenIncident,
    RecordActionResult,
    RecordClock,
    Restore,
    RetryStep,
    SetFacts,
    SkipStep,
    StartStep,
)
from ir.domain.deadlines import CalendarFor
from ir.domain.emergency_decisions import issue_warning
from ir.domain.errors import Conflict, InvalidInput, InvalidTransition, NotPermitted
from ir.domain.events import Event, IncidentOpened, NoteAdded
from ir.domain.facts import check_fact_value, fact_named
from ir.domain.incident import Incident, Mode
from ir.domain.levels import ResponseLevel, WarningLevel
from ir.domain.playbook import Playbook

MAX_EVIDENCE = 64 * 1024 * 1024

Decide = Callable[[Incident, datetime, UnitOfWork], list[Event]]


@dataclass(slots=True)
class Outcome:
    incident_id: int
    version: int
    events: list[Event] = field(default_factory=list)
    incident: Incident | None = None  # the state after the command (for after-commit hooks; kept in its process)
    sealed: bool = False  # its audit records were sealed as they were committed: nothing for the sealer
    automated: bool | None = None  # it made an automated step's action due (None: `incident` tells)


@dataclass(slots=True)
class Handlers:
    uow: UnitOfWorkFactory
    clock: Clock
    playbooks: PlaybookSource
    calendar_for: CalendarFor | None = None
    catalogue: ServiceCatalogue | None = None
    after_commit: list[Callable[[Outcome], None]] = field(default_factory=list)
    outbox: Outbox | None = None  # notifications made due are written to it in the command's transaction
    _table: dict[type[Command], Callable[[Any], Outcome]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._table = {
            OpenIncident: self.open_incident,
            SetFacts: lambda c: self._act(
                c,
                "fact.set",
                lambda i, now, u: decisions.set_facts(
                    i, self._facts(i, c.facts, u), actor=c.actor.id, now=now, reason=c.reason
                ),
            ),
            RecordClock: lambda c: self._act(
                c,
                "clock.record",
                lambda i, now, u: decisions.record_clock(
                    i, _clock_name(c.clock), c.instant or now, actor=c.actor.id, now=now, reason=c.reason
                ),
            ),
            DeclareLevel: lambda c: self._act(
                c,
                "level.declare",
                lambda i, now, u: decisions.declare_level(
                    i, _level(c.level), actor=c.actor.id, now=now, reason=c.reason
                ),
            ),
            StartStep: lambda c: self._act(
                c,
                "step.start",
                lambda i, now, u: decisions.start_step(i, c.step_id, actor=c.actor.id, now=now, assignee=c.assignee),
                step=c.step_id,
            ),
            CompleteStep: lambda c: self._act(
                c,
                "step.complete",
                lambda i, now, u: decisions.complete_step(i, c.step_id, actor=c.actor.id, now=now, note=c.note),
                step=c.step_id,
            ),
            SkipStep: lambda c: self._act(
                c,
                "step.skip",
                lambda i, now, u: decisions.skip_step(i, c.step_id, actor=c.actor.id, now=now, reason=c.note),
                step=c.step_id,
            ),
            FailStep: lambda c: self._act(
                c,
                "step.fail",
                lambda i, now, u: decisions.fail_step(i, c.step_id, actor=c.actor.id, now=now, reason=c.note),
                step=c.step_id,
            ),
            RetryStep: lambda c: self._act(
                c,
                "step.retry",
                lambda i, now, u: decisions.retry_step(i, c.step_id, actor=c.actor.id, now=now, note=c.note),
                step=c.step_id,
            ),
            ApproveStep: lambda c: self._act(
                c,
                "step.approve",
                lambda i, now, u: decisions.approve_step(
                    i, c.step_id, role=c.role, actor=c.actor.id, now=now, note=c.note
                ),
                step=c.step_id,
            ),
            CheckItem: lambda c: self._act(
                c,
                "step.check",
                lambda i, now, u: decisions.check_item(
                    i, c.step_id, c.item, checked=c.checked, actor=c.actor.id, now=now
                ),
                step=c.step_id,
            ),
            ConfirmAction: lambda c: self._act(
                c,
                "step.confirm_action",
                lambda i, now, u: decisions.confirm_action(i, c.step_id, actor=c.actor.id, now=now),
                step=c.step_id,
            ),
            AttachEvidence: self.attach_evidence,
            RecordActionResult: self.record_action_result,
            AddNote: lambda c: self._act(c, "note.add", lambda i, now, u: self._note(i, c, now, u)),
            MarkNotificationSent: lambda c: self._act(
                c,
                "notification.mark_sent",
                lambda i, now, u: decisions.mark_notification_sent(
                    i, c.notification_id, actor=c.actor.id, now=now, reference=c.reference
                ),
            ),
            Restore: lambda c: self._act(
                c,
                "incident.restore",
                lambda i, now, u: decisions.restore(
                    i, degraded=c.degraded, actor=c.actor.id, now=now, at=c.at, reason=c.reason
                ),
            ),
            CloseIncident: lambda c: self._act(
                c,
                "incident.close",
                lambda i, now, u: decisions.close_incident(i, actor=c.actor.id, now=now, reason=c.reason),
            ),
        }
        self._register_emergency()

    def _authorize_step(self, c: IncidentCommand, incident: Incident, now: datetime) -> None:
        """Responders act on the steps of the playbook roles they are on duty for in this incident."""
        step_id = getattr(c, "step_id", None)
        if step_id is None or c.actor.roles & {"admin", "commander"}:
            return
        step = incident.playbook.steps.get(step_id)
        if step is None:
            return  # the decision names the unknown step
        if step.role not in incident.emergency.roles_of(c.actor.id, now):
            raise NotPermitted(
                f"{c.actor.id} is not on duty as '{step.role}' in incident {incident.id} (ir assign assigns roles)"
            )

    def _register_emergency(self) -> None:
        from ir.app.emergency_handlers import emergency_table

        self._table.update(emergency_table(self, self.catalogue or _NoCatalogue()))

    def handle(self, command: Command) -> Outcome:
        outcome = self.carry_out(command)
        self.announce(outcome)
        return outcome

    def carry_out(self, command: Command) -> Outcome:
        """The command decided and stored, without the after-commit hooks: a caller that gathers several
        commands into one transaction (group commit) announces each once that transaction is committed."""
        handler = self._table.get(type(command))
        if handler is None:
            raise InvalidInput(f"unknown command {type(command).__name__}")
        return handler(command)

    def announce(self, outcome: Outcome) -> None:
        """The after-commit hooks: live updates, waking the sealer and the notification dispatcher."""
        for hook in self.after_commit:
            hook(outcome)

    # -- opening ------------------------------------------------------------------------------------

    def open_incident(self, c: OpenIncident) -> Outcome:
        authorize(c.actor, "incident.open")
        playbook = self.playbooks.get(c.playbook)
        try:
            mode = Mode(c.mode)
        except ValueError:
            raise InvalidInput(f"mode is real, drill or test; got '{c.mode}'", field="mode") from None
        if c.simulate_from is not None and mode is Mode.REAL:
            raise InvalidInput("only a drill or a test runs on simulated time", field="mode")
        if not 0 < c.speed <= 10_000:
            raise InvalidInput("speed is between 0 and 10,000 times real time", field="speed")
        real_now = self.clock.now()
        now = c.simulate_from or real_now
        with self.uow() as uow:
            events = decisions.open_incident(
                playbook=playbook,
                title=c.title,
                mode=mode,
                facts=seal_facts(playbook, c.facts, uow),
                actor=c.actor.id,
                now=now,
                detected_at=c.detected_at,
                summary=c.summary,
            )
            if c.simulate_from is not None:
                opened = events[0]
                assert isinstance(opened, IncidentOpened)
                events[0] = replace(opened, simulated_start=c.simulate_from, real_start=real_now, speed=c.speed)
            if c.commander:
                opened = events[0]
                assert isinstance(opened, IncidentOpened)
                events[0] = replace(opened, commander=c.commander.strip())
            if c.expected_impact is not None and c.warning is None:
                raise InvalidInput("an expected impact goes with a warning (--warning)", field="expected_impact")
            probe = Incident(id=0, playbook=playbook)
            for e in events:
                probe.apply(e)
            follow: list[Event] = []
            if c.warning is not None:
                follow = issue_warning(
                    probe,
                    warning_level(c.warning),
                    actor=c.actor.id,
                    now=now,
                    reason=None,
                    expected_impact=c.expected_impact,
                )
                for e in follow:
                    probe.apply(e)
            if c.level is not None:
                follow += decisions.declare_level(probe, _level(c.level), actor=c.actor.id, now=now, reason=None)
            events += follow
            incident, stored = uow.incidents.add(Incident(id=0, playbook=playbook), events)
            self._audit(uow, c, "incident.open", stored)
            self._notify(uow, incident, events, c.actor.id, now)
            uow.commit()
        return Outcome(incident.id, incident.version, events, incident=incident)

    # -- acts on an incident --------------------------------------------------------------------------

    def _act(self, c: IncidentCommand, action: str, decide: Decide, *, step: str | None = None) -> Outcome:
        authorize(c.actor, action)
        for attempt in (1, 2):
            with self.uow() as uow:
                incident = uow.incidents.get(c.incident_id, fresh=attempt == 2)
                if c.expected_version is not None and incident.version != c.expected_version and attempt == 1:
                    continue  # the cached state may be behind: re-read before refusing
                if c.expected_version is not None and incident.version != c.expected_version:
                    raise Conflict(
                        f"incident {c.incident_id} changed (version {incident.version}, you had {c.expected_version}):"
                        " reload and try again"
                    )
                now = incident.now(self.clock.now())
                try:
                    self._authorize_step(c, incident, now)
                    events = decide(incident, now, uow)
                except (InvalidInput, InvalidTransition, NotPermitted):
                    if attempt == 2:
                        raise
                    continue  # refused on the cached state, which another process may have moved on: re-read
                try:
                    stored = uow.incidents.append(incident, events)
                except StaleIncident:
                    if attempt == 2:
                        raise Conflict(f"incident {c.incident_id} was changed by someone else: try again") from None
                    continue
                self._audit(uow, c, action, stored)
                self._notify(uow, incident, events, c.actor.id, now)
                uow.commit()
                return Outcome(incident.id, incident.version, events, incident=incident)
        raise AssertionError("unreachable")  # pragma: no cover

    def attach_evidence(self, c: AttachEvidence) -> Outcome:
        if len(c.content) > MAX_EVIDENCE:
            raise InvalidInput(f"evidence files are at most {MAX_EVIDENCE // 2**20} MiB", field="file")
        digest = hashlib.sha256(c.content).hexdigest()

        def decide(incident: Incident, now: datetime) -> list[Event]:
            return decisions.attach_evidence(
                incident,
                c.step_id,
                sha256=digest,
                filename=c.filename,
                size=len(c.content),
                media_type=c.media_type,
                actor=c.actor.id,
                now=now,
            )

        authorize(c.actor, "step.evidence")
        with self.uow() as uow:
            incident = uow.incidents.get(c.incident_id)
            if c.expected_version is not None and incident.version != c.expected_version:
                raise Conflict(
                    f"incident {c.incident_id} changed (version {incident.version}, you had {c.expected_version})"
                )
            now = incident.now(self.clock.now())
            self._authorize_step(c, incident, now)
            events = decide(incident, now)
            uow.evidence.put(c.content, c.media_type)
            stored = uow.incidents.append(incident, events)
            self._audit(uow, c, "step.evidence", stored)
            uow.commit()
        return Outcome(incident.id, incident.version, events)

    def record_action_result(self, c: RecordActionResult) -> Outcome:
        authorize(c.actor, "step.action_result")
        digest = hashlib.sha256(c.answer).hexdigest()
        with self.uow() as uow:
            incident = uow.incidents.get(c.incident_id)
            now = incident.now(self.clock.now())
            events = decisions.record_action_result(
                incident,
                c.step_id,
                ok=c.ok,
                status=c.status,
                attempts=c.attempts,
                error=c.error,
                answer_sha256=digest,
                answer_size=len(c.answer),
                actor=c.actor.id,
                now=now,
            )
            if events:
                uow.evidence.put(c.answer, "application/json")
                stored = uow.incidents.append(incident, events)
                self._audit(uow, c, "step.action_result", stored)
                uow.commit()
        return Outcome(incident.id, incident.version, events)

    # -- helpers ------------------------------------------------------------------------------------

    def _facts(self, incident: Incident, raw: dict[str, object], uow: UnitOfWork) -> dict[str, Any]:
        return seal_facts(incident.playbook, raw, uow)

    def _note(self, incident: Incident, c: AddNote, now: datetime, uow: UnitOfWork) -> list[Event]:
        events = decisions.add_note(incident, c.text, step_id=c.step_id, actor=c.actor.id, now=now)
        if c.about:  # a note about a person: sealed under their key
            events = [
                replace(e, text=uow.personal.seal(c.about, c.text.strip())) if isinstance(e, NoteAdded) else e
                for e in events
            ]
        return events

    def _notify(self, uow: UnitOfWork, incident: Incident, events: Sequence[Event], actor: str, now: datetime) -> None:
        """Notifications the command made due go to the outbox in its transaction (cheap when none did)."""
        if self.outbox is None:
            return
        notices = due_notices(incident, events)
        if notices:
            self.outbox.enqueue(uow, incident=incident, notices=notices, actor=actor, at=now)

    def _audit(self, uow: UnitOfWork, c: Command, action: str, stored: Sequence[StoredRow]) -> None:
        record_events(uow, actor=c.actor.id, action=action, stored=stored, at=self.clock.now())


def warning_level(text: str) -> WarningLevel:
    try:
        return WarningLevel(text.strip().lower())
    except ValueError:
        raise InvalidInput(f"a warning level is red, orange, yellow or blue; got '{text}'", field="level") from None


class _NoCatalogue:
    def ids(self) -> set[str]:
        return set()


def seal_facts(playbook: Playbook, raw: dict[str, object], uow: UnitOfWork) -> dict[str, Any]:
    """Fact values checked by type; personal ones sealed under the person they identify."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        fact = fact_named(playbook, name)
        checked = check_fact_value(fact, value)
        if fact.personal and isinstance(checked, str):
            checked = uow.personal.seal(checked, checked)
        out[name] = checked
    return out


def _level(text: str) -> ResponseLevel:
    try:
        return ResponseLevel(text.strip().upper())
    except ValueError:
        raise InvalidInput(f"a response level is I, II, III or IV; got '{text}'", field="level") from None


def _clock_name(text: str) -> ClockName:
    try:
        return ClockName(text.strip().lower().replace("-", "_"))
    except ValueError:
        import difflib

        names = [c.value for c in ClockName]
        close = difflib.get_close_matches(text, names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise InvalidInput(f"unknown clock '{text}'{hint} (clocks: {', '.join(names)})", field="clock") from None
