"""An incident's obligations to regulators: which apply, when each falls due, and whether it was met.

The regimes the incident's playbook names are attached to the incident when it is loaded (they are
data, not events); judgements of reportability and submissions are events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ir.domain.clocks import CLOCK_NAMES, ClockName
from ir.domain.errors import InvalidInput, InvalidTransition
from ir.domain.events import Event, ReportabilityJudged, ReportSubmitted
from ir.domain.personal import Personal
from ir.domain.regimes import (
    CalendarFor,
    Obligation,
    ObligationState,
    Regime,
    applicable_variant,
    clause_due,
    user_minutes_reportable_at,
)
from ir.domain.text import Lang, Text

if TYPE_CHECKING:
    from ir.domain.incident import Incident


@dataclass(slots=True)
class Judgement:
    reportable: bool
    instant: datetime
    reason: str
    actor: str
    at: datetime


@dataclass(slots=True)
class Submission:
    at: datetime
    actor: str
    reference: str
    document_sha256: str
    document_name: str
    late_reason: str | None
    partial: bool


@dataclass(slots=True)
class Regulatory:
    judgements: dict[str, Judgement] = field(default_factory=dict)
    submissions: dict[tuple[str, str], list[Submission]] = field(default_factory=dict)


def _judged(inc: Incident, e: ReportabilityJudged) -> None:
    inc.regulatory.judgements[e.regime] = Judgement(e.reportable, e.instant, e.reason, e.actor, e.at)


def _submitted(inc: Incident, e: ReportSubmitted) -> None:
    inc.regulatory.submissions.setdefault((e.regime, e.obligation), []).append(
        Submission(e.at, e.actor, e.reference, e.document_sha256, e.document_name, e.late_reason, e.partial)
    )


APPLY: dict[type[Event], Callable[[Any, Any], None]] = {ReportabilityJudged: _judged, ReportSubmitted: _submitted}


def regime_facts(inc: Incident) -> dict[str, Any]:
    """The facts a regime's conditions see: the incident's (personal ones left out) and its level."""
    facts = {k: v for k, v in inc.facts.items() if not isinstance(v, Personal)}
    if inc.level is not None:
        facts["level"] = inc.level.value
    return facts


def reportable_at(inc: Incident, regime: Regime) -> tuple[datetime | None, str]:
    """When the incident became reportable under the regime, and how that is known.

    Returns (instant, how): how is "judged", "computed", "clock", "not reportable" or "unknown".
    """
    judged = inc.regulatory.judgements.get(regime.id)
    if judged is not None:
        return (judged.instant, "judged") if judged.reportable else (None, "not reportable")
    rule = regime.reportability
    if rule.kind == "user_minutes":
        onset = inc.onset
        users = inc.facts.get(rule.users_fact)
        if onset is None or not isinstance(users, int | float) or users <= 0:
            return None, "unknown"
        at = user_minutes_reportable_at(onset, int(users), rule)
        restored = inc.restored_at
        if at is None or (restored is not None and restored < at):
            return None, "not reportable"
        return at, "computed"
    clock = inc.clock(ClockName.REPORTABILITY)
    if clock is not None:
        return clock, "clock"
    if rule.kind == "always":
        return inc.clock(ClockName.DETECTION), "computed"
    return None, "unknown"


def regime_applies(inc: Incident, regime: Regime) -> bool:
    """A regime applies once the incident is classified at one of its levels; before that only where
    reportability is measured (FCC's user-minutes) or was judged: an alert in triage may be a false alarm."""
    if regime.id in inc.regulatory.judgements or regime.reportability.kind == "user_minutes":
        return not regime.levels or inc.level is None or inc.level in regime.levels
    if inc.level is None:
        return False
    return not regime.levels or inc.level in regime.levels


def obligation_states(
    inc: Incident, regimes: Mapping[str, Regime], *, calendar_for: CalendarFor | None
) -> list[ObligationState]:
    out: list[ObligationState] = []
    facts = regime_facts(inc)
    for regime_id in inc.playbook.regimes:
        regime = regimes.get(regime_id)
        if regime is None or not regime_applies(inc, regime):
            continue
        reportable, how = reportable_at(inc, regime)
        if how == "not reportable":
            continue
        for obligation in regime.obligations:
            if obligation.levels and (inc.level is None or inc.level not in obligation.levels):
                continue
            variant = applicable_variant(obligation, facts)
            submissions = inc.regulatory.submissions.get((regime.id, obligation.id), [])
            final = next((s for s in submissions if not s.partial), None)
            # a phased report meets its deadline with its first phase; the rest supplements it
            done = submissions[0] if submissions and obligation.may_phase else final
            due: datetime | None = None
            waiting: str | None = None
            for clause in variant.clauses if variant else ():
                anchor = _anchor(inc, regime, clause.trigger, reportable)
                if anchor is None:
                    waiting = waiting or clause.trigger
                    continue
                candidate = clause_due(clause, anchor, regime, calendar_for)
                due = candidate if due is None or candidate < due else due
            late = done.at - due if done is not None and due is not None and done.at > due else None
            out.append(
                ObligationState(
                    regime=regime,
                    obligation=obligation,
                    variant=variant,
                    due_at=due,
                    waiting_for=None if due is not None else waiting,
                    submitted_at=done.at if done else None,
                    reference=submissions[-1].reference if done else None,  # the latest phase's
                    late_by=late,
                    partial=bool(submissions) and final is None,
                )
            )
    return out


def _anchor(inc: Incident, regime: Regime, trigger: str, reportable: datetime | None) -> datetime | None:
    if trigger.startswith("submission:"):
        subs = inc.regulatory.submissions.get((regime.id, trigger.split(":", 1)[1]), [])
        return subs[0].at if subs else None
    if trigger == ClockName.REPORTABILITY.value:
        return reportable
    if trigger in CLOCK_NAMES:
        return inc.clock(ClockName(trigger))
    return None


# -- reports: the regime's form filled from the incident ----------------------------------------------


@dataclass(frozen=True, slots=True)
class FilledField:
    id: str
    title: Text
    value: str | None  # None: missing (never invented)
    required: bool


def _local(value: datetime | None, zone: str) -> str | None:
    from zoneinfo import ZoneInfo

    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z") if value else None


def fill_fields(
    inc: Incident,
    obligation: Obligation,
    *,
    lang: Lang,
    org: Mapping[str, str],
    zone: str,
    service_name: Callable[[str], Text] = Text.same,
) -> list[FilledField]:
    """Each field of the form from what the incident already knows; what it does not know stays missing."""
    out = []
    for f in obligation.fields:
        kind, _, name = f.source.partition(":")
        value: str | None = None
        if kind == "clock":
            value = _local(inc.clock(ClockName(name)), zone) if name in CLOCK_NAMES else None
        elif kind == "fact":
            raw = inc.facts.get(name)
            if raw is not None and not isinstance(raw, Personal):
                value = _shown(raw, lang)
        elif kind == "org":
            value = org.get(name) or None
        elif kind == "steps" and name == "done":
            done = [
                (p.finished_at, inc.playbook.steps[sid].title.get(lang))
                for sid, p in inc.steps.items()
                if p.status.value == "done" and p.finished_at and sid in inc.playbook.steps
            ]
            value = "\n".join(f"{_local(at, zone)} {title}" for at, title in sorted(done)) or None
        elif kind == "log":
            entries = [e for e in inc.emergency.log if e.category == name and not isinstance(e.text, Personal)]
            value = "\n".join(str(e.text) for e in entries) or None
        elif kind == "incident":
            value = _incident_value(inc, name, lang, service_name)
        out.append(FilledField(f.id, f.title, value, f.required))
    return out


def _shown(value: Any, lang: Lang) -> str:
    """A fact value as a person reads it in a report."""
    if isinstance(value, bool):
        return ("是" if value else "否") if lang == "zh-CN" else ("yes" if value else "no")
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds() // 60)} min"
    return str(value)


def _incident_value(inc: Incident, name: str, lang: Lang, service_name: Callable[[str], Text]) -> str | None:
    from ir.domain.incident_types import incident_type_label

    if name == "title":
        return inc.title or None
    if name == "type":
        return incident_type_label(inc.playbook.type).get(lang)
    if name == "level":
        return f"{inc.level.value} {inc.level.label.get(lang)}" if inc.level else None
    if name == "services":
        return ", ".join(service_name(s).get(lang) for s in inc.emergency.services) or None
    if name == "areas":
        return ", ".join(inc.emergency.areas) or None
    if name == "duration":
        if inc.onset and inc.restored_at:
            minutes = int((inc.restored_at - inc.onset).total_seconds() // 60)
            return f"{minutes // 60}h{minutes % 60:02d}m"
        return None
    if name == "impact":
        parts = []
        for fact_name, value in inc.facts.items():
            fact = inc.playbook.facts.get(fact_name)
            if fact is None or fact.personal or isinstance(value, Personal):
                continue
            unit = f" {fact.unit}" if fact.unit and not isinstance(value, bool) else ""
            parts.append(f"{fact.title.get(lang)}: {_shown(value, lang)}{unit}")
        if inc.emergency.services:
            names = ", ".join(service_name(s).get(lang) for s in inc.emergency.services)
            parts.append(("受影响业务: " if lang == "zh-CN" else "Services: ") + names)
        if inc.emergency.areas:
            parts.append(("受影响地区: " if lang == "zh-CN" else "Areas: ") + ", ".join(inc.emergency.areas))
        return "\n".join(parts) or None
    return None


# -- decisions -----------------------------------------------------------------------------------------


def judge_reportability(
    inc: Incident,
    regime: Regime,
    *,
    reportable: bool,
    instant: datetime,
    reason: str | None,
    actor: str,
    now: datetime,
) -> list[Event]:
    from ir.domain.decisions import FUTURE_TOLERANCE, _open, _text

    _open(inc)
    if regime.id not in inc.playbook.regimes:
        raise InvalidInput(f"regime {regime.id} does not apply to playbook {inc.playbook.id}")
    why = _text(reason, "reason")
    if why is None:
        raise InvalidInput("a judgement of reportability needs --reason", field="reason")
    if instant.tzinfo is None:
        raise InvalidInput("give the instant with its time zone", field="at")
    if instant > now + FUTURE_TOLERANCE:
        raise InvalidInput("reportability cannot be judged for the future", field="at")
    return [
        ReportabilityJudged(at=now, actor=actor, regime=regime.id, reportable=reportable, instant=instant, reason=why)
    ]


def submit_report(
    inc: Incident,
    state: ObligationState,
    *,
    reference: str,
    document_sha256: str,
    document_name: str,
    missing: list[str],
    late_reason: str | None,
    partial: bool,
    actor: str,
    now: datetime,
) -> list[Event]:
    from ir.domain.decisions import _text

    ref = _text(reference, "reference", limit=200)
    if ref is None:
        raise InvalidInput("a submission records the regulator's reference (--reference)", field="reference")
    ob = state.obligation
    if state.submitted_at is not None and not state.partial:
        raise InvalidTransition(f"the {ob.id} report under {state.regime.id} was already submitted ({state.reference})")
    on_time_phase = state.partial and state.submitted_at is not None  # a supplement to a phase already filed
    if partial and not ob.may_phase:
        raise InvalidInput(
            f"the {ob.id} report under {state.regime.id} may not be submitted in phases", field="partial"
        )
    if missing and not partial:
        hint = " (or submit in phases with --partial)" if ob.may_phase else ""
        raise InvalidTransition(f"required fields are missing: {', '.join(missing)}{hint}")
    why = _text(late_reason, "late_reason")
    late = state.due_at is not None and now > state.due_at and not on_time_phase
    if late and ob.late_reason_required and why is None:
        assert state.due_at is not None
        minutes = int((now - state.due_at).total_seconds() // 60)
        raise InvalidInput(
            f"this report is late by {minutes} min: the regime requires the reason (--late-reason)",
            field="late_reason",
        )
    return [
        ReportSubmitted(
            at=now,
            actor=actor,
            regime=state.regime.id,
            obligation=ob.id,
            reference=ref,
            document_sha256=document_sha256,
            document_name=document_name,
            late_reason=why,
            partial=partial,
        )
    ]
