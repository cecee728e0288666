"""Regulator obligations and reports: countdowns, reportability judgements, drafting and filing."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from ir.app.auditing import record_events
from ir.app.permissions import authorize
from ir.app.ports import UnitOfWorkFactory
from ir.domain.clocks import Clock
from ir.domain.commands import Actor
from ir.domain.deadlines import CalendarFor
from ir.domain.errors import InvalidInput, NotFound
from ir.domain.incident import Incident
from ir.domain.obligations import fill_fields, judge_reportability, obligation_states, reportable_at, submit_report
from ir.domain.regimes import ObligationState, Regime
from ir.domain.text import Lang, Text


@dataclass(frozen=True, slots=True)
class ReportLine:
    id: str
    title: str
    value: str | None
    required: bool


@dataclass(frozen=True, slots=True)
class RegulatorReport:
    regime: str
    regime_title: str
    authority: str
    source: str
    obligation: str
    stage: str
    title: str
    incident_id: int
    incident_title: str
    mode: str
    generated_at: str
    due_at: str | None
    late: str | None
    variant: str | None
    fields: list[ReportLine]
    missing: list[str]
    note: str | None
    lang: str


class ReportRenderer(Protocol):
    def __call__(self, report: RegulatorReport, fmt: str, lang: Lang) -> tuple[bytes, str, str]:
        """(content, media type, file suffix)."""
        ...


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    return (f"{days}d" if days else "") + f"{rest // 60}h{rest % 60:02d}m"


@dataclass(slots=True)
class Reports:
    uow: UnitOfWorkFactory
    clock: Clock
    regimes: Mapping[str, Regime]
    render: ReportRenderer
    calendar_for: CalendarFor | None = None
    org: Mapping[str, str] = field(default_factory=dict)
    zone: str = "Asia/Shanghai"
    service_name: Callable[[str], Text] = Text.same  # a catalogue id as people read it

    def _regime(self, incident: Incident, regime_id: str) -> Regime:
        regime = self.regimes.get(regime_id)
        if regime is None:
            raise NotFound(f"no regime '{regime_id}' (known: {', '.join(sorted(self.regimes))})")
        if regime_id not in incident.playbook.regimes:
            raise InvalidInput(
                f"regime {regime_id} does not apply to incident {incident.id} "
                f"(its playbook names: {', '.join(incident.playbook.regimes) or 'none'})"
            )
        return regime

    def states(self, incident: Incident) -> list[ObligationState]:
        return obligation_states(incident, self.regimes, calendar_for=self.calendar_for)

    def state(self, incident: Incident, regime: Regime, stage: str) -> ObligationState:
        states = [s for s in self.states(incident) if s.regime.id == regime.id]
        chosen = [s for s in states if s.obligation.id == stage] or [s for s in states if s.obligation.stage == stage]
        if not chosen:
            known = ", ".join(f"{o.id} ({o.stage})" for o in regime.obligations)
            raise NotFound(
                f"no {stage} obligation of {regime.id} applies to incident {incident.id} now (it has: {known})"
            )
        return chosen[0]

    def overview(self, actor: Actor, incident_id: int, lang: Lang) -> list[dict[str, Any]]:
        authorize(actor, "incident.read")
        with self.uow() as uow:
            incident = uow.incidents.get(incident_id)
        now = incident.now(self.clock.now())
        out = []
        for regime_id in incident.playbook.regimes:
            regime = self.regimes.get(regime_id)
            if regime is None:
                continue
            at, how = reportable_at(incident, regime)
            states = [s for s in self.states(incident) if s.regime.id == regime_id]
            out.append(
                {
                    "regime": regime_id,
                    "title": regime.title.get(lang),
                    "reportable": how,
                    "reportable_at": at.isoformat() if at else None,
                    "obligations": [
                        {
                            "id": s.obligation.id,
                            "stage": s.obligation.stage,
                            "title": s.obligation.title.get(lang),
                            "due_at": s.due_at.isoformat() if s.due_at else None,
                            "waiting_for": s.waiting_for,
                            "left_s": int((s.due_at - now).total_seconds())
                            if s.due_at and not s.submitted_at
                            else None,
                            "submitted_at": s.submitted_at.isoformat() if s.submitted_at else None,
                            "reference": s.reference,
                            "late_by_s": int(s.late_by.total_seconds()) if s.late_by else None,
                            "partial": s.partial,
                            "variant": s.variant.label.get(lang) if s.variant and s.variant.label else None,
                        }
                        for s in states
                    ],
                }
            )
        return out

    def draft(self, actor: Actor, incident_id: int, regime_id: str, stage: str, lang: Lang) -> RegulatorReport:
        authorize(actor, "report.draft")
        with self.uow() as uow:
            incident = uow.incidents.get(incident_id)
            report = self._build(incident, self._regime(incident, regime_id), stage, lang)
            uow.audit.record(
                action="report.draft",
                actor=actor.id,
                subject=f"incident:{incident_id}",
                payload={"regime": regime_id, "obligation": report.obligation, "missing": report.missing},
                at=self.clock.now(),
            )
            uow.commit()
        return report

    def _build(self, incident: Incident, regime: Regime, stage: str, lang: Lang) -> RegulatorReport:
        state = self.state(incident, regime, stage)
        now = incident.now(self.clock.now())
        zone = ZoneInfo(self.zone)
        filled = fill_fields(
            incident, state.obligation, lang=lang, org=self.org, zone=self.zone, service_name=self.service_name
        )
        missing = [f.title.get(lang) for f in filled if f.required and f.value is None]
        late = None
        if state.due_at is not None:
            end = state.submitted_at or now
            if end > state.due_at:
                late = _span(end - state.due_at)
        return RegulatorReport(
            regime=regime.id,
            regime_title=regime.title.get(lang),
            authority=regime.authority.get(lang),
            source=regime.source,
            obligation=state.obligation.id,
            stage=state.obligation.stage,
            title=state.obligation.title.get(lang),
            incident_id=incident.id,
            incident_title=incident.title,
            mode=incident.mode.value,
            generated_at=now.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
            due_at=state.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if state.due_at else None,
            late=late,
            variant=state.variant.label.get(lang) if state.variant and state.variant.label else None,
            fields=[ReportLine(f.id, f.title.get(lang), f.value, f.required) for f in filled],
            missing=missing,
            note=state.obligation.note.get(lang) if state.obligation.note else None,
            lang=lang,
        )

    def judge(
        self,
        actor: Actor,
        incident_id: int,
        regime_id: str,
        *,
        reportable: bool,
        at: datetime | None,
        reason: str | None,
    ) -> None:
        authorize(actor, "report.judge")
        with self.uow() as uow:
            incident = uow.incidents.get(incident_id)
            regime = self._regime(incident, regime_id)
            now = incident.now(self.clock.now())
            events = judge_reportability(
                incident, regime, reportable=reportable, instant=at or now, reason=reason, actor=actor.id, now=now
            )
            stored = uow.incidents.append(incident, events)
            record_events(uow, actor=actor.id, action="report.judge", stored=stored, at=self.clock.now())
            uow.commit()

    def submit(
        self,
        actor: Actor,
        incident_id: int,
        regime_id: str,
        stage: str,
        *,
        reference: str,
        lang: Lang,
        document: bytes | None = None,
        document_name: str | None = None,
        fmt: str = "pdf",
        late_reason: str | None = None,
        partial: bool = False,
    ) -> tuple[str, str]:
        """Record a filing (and keep the exact document); returns (obligation, document sha256)."""
        authorize(actor, "report.submit")
        with self.uow() as uow:
            incident = uow.incidents.get(incident_id)
            regime = self._regime(incident, regime_id)
            report = self._build(incident, regime, stage, lang)
            state = self.state(incident, regime, stage)
            if document is None:
                document, _media, suffix = self.render(report, fmt, lang)
                document_name = f"incident-{incident_id}-{regime_id}-{report.obligation}.{suffix}"
            media = "application/pdf" if (document_name or "").endswith(".pdf") else "application/octet-stream"
            digest = hashlib.sha256(document).hexdigest()
            now = incident.now(self.clock.now())
            events = submit_report(
                incident,
                state,
                reference=reference,
                document_sha256=digest,
                document_name=document_name or "report",
                missing=report.missing,
                late_reason=late_reason,
                partial=partial,
                actor=actor.id,
                now=now,
            )
            uow.evidence.put(document, media)
            stored = uow.incidents.append(incident, events)
            record_events(uow, actor=actor.id, action="report.submit", stored=stored, at=self.clock.now())
            uow.commit()
        return report.obligation, digest
