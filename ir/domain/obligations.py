"""An incident's obligations to regulators: which apply, when each falls due, and whether it was met.

The regimes the incident's playbook names are attached to the incident when it is loaded (they are
data, not events); judgements of reportability and submissions are events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ir.domain.clocks import CLOCK_NAMES, ClockName
from ir.domain.events import Event, ReportabilityJudged, ReportSubmitted
from ir.domain.personal import Personal
from ir.domain.regimes import (
    CalendarFor,
    ObligationState,
    Regime,
    applicable_variant,
    clause_due,
    user_minutes_reportable_at,
)

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
    if regime.levels:
        return inc.level is not None and inc.level in regime.levels
    return True


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
            done = final or (submissions[0] if submissions and obligation.may_phase else None)
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
                    reference=done.reference if done else None,
                    late_by=late,
                    partial=bool(done and done.partial),
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
