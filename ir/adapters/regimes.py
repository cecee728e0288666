"""Regulatory regimes as data: notifications/regimes/<id>.yaml, checked and compiled to domain Regimes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ir.adapters.playbooks.document import Ident, TextDoc
from ir.domain.clocks import CLOCK_NAMES
from ir.domain.durations import Duration, DurationError, parse_duration
from ir.domain.errors import InvalidInput
from ir.domain.expressions import ExpressionError, parse_expression
from ir.domain.levels import ResponseLevel
from ir.domain.playbook import REGIME_IDS, Calendar
from ir.domain.regimes import Clause, Obligation, Regime, Reportability, ReportField, Variant
from ir.domain.text import Text

_REPO = Path(__file__).resolve().parents[2] / "notifications" / "regimes"
_MONTHS = re.compile(r"^\s*(\d{1,2})mo\s*$")
_SOURCE = re.compile(r"^(clock:[a-z_]+|fact:[a-z][a-z0-9_]*|incident:[a-z_]+|org:[a-z_]+|steps:done|log:[a-z]+|input)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalendarDoc(_Strict):
    country: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    zone: str = "Asia/Shanghai"


class ClauseDoc(_Strict):
    after: str = Field(
        description="a clock (detection, awareness, classification, reportability, response_end, "
        "closure) or submission:<obligation id>"
    )
    within: str = Field(description="elapsed (72h, 30d), working days (3wd) or calendar months (1mo)")
    calendar: CalendarDoc | None = None
    roll: Literal["next_working_day_noon"] | None = None


class VariantDoc(_Strict):
    when: str | None = None
    label: TextDoc | None = None
    due: list[ClauseDoc] = Field(min_length=1, description="the earliest of these")


class FieldDoc(_Strict):
    id: Ident
    title: TextDoc
    source: str
    required: bool = True


class ObligationDoc(_Strict):
    id: Ident
    stage: Literal["initial", "intermediate", "final"]
    title: TextDoc
    variants: list[VariantDoc] = Field(min_length=1)
    levels: list[Literal["I", "II", "III", "IV"]] | None = None
    fields: list[FieldDoc] = Field(default_factory=list)
    may_phase: bool = False
    late_reason_required: bool = False
    note: TextDoc | None = None


class ReportabilityDoc(_Strict):
    kind: Literal["always", "judgement", "user_minutes"] = "always"
    min_duration: str | None = None
    min_user_minutes: int = Field(default=0, ge=0)
    users_fact: str = "affected_users"


class RegimeDoc(_Strict):
    id: str
    title: TextDoc
    authority: TextDoc
    source: str = Field(min_length=1)
    calendar: CalendarDoc = Field(default_factory=CalendarDoc)
    levels: list[Literal["I", "II", "III", "IV"]] | None = None
    reportability: ReportabilityDoc = Field(default_factory=ReportabilityDoc)
    obligations: list[ObligationDoc] = Field(min_length=1)


def _text(doc: TextDoc) -> Text:
    return Text(doc.zh_cn, doc.en)


def _clause(doc: ClauseDoc, ids: set[str], where: str) -> Clause:
    trigger = doc.after.strip()
    if trigger.startswith("submission:"):
        if trigger.split(":", 1)[1] not in ids:
            raise InvalidInput(f"{where}: '{trigger}' names no obligation of this regime")
    elif trigger not in CLOCK_NAMES:
        raise InvalidInput(f"{where}: unknown trigger '{trigger}'")
    months = _MONTHS.match(doc.within)
    calendar = Calendar(doc.calendar.country, doc.calendar.zone) if doc.calendar else None
    if months:
        return Clause(trigger, Duration(), int(months.group(1)), calendar, doc.roll is not None)
    try:
        offset = parse_duration(doc.within)
    except DurationError as exc:
        raise InvalidInput(f"{where}: invalid 'within' {doc.within!r}: {exc.message}") from None
    return Clause(trigger, offset, 0, calendar, doc.roll is not None)


def compile_regime(doc: RegimeDoc) -> Regime:
    if doc.id not in REGIME_IDS:
        raise InvalidInput(f"unknown regime id '{doc.id}' (known: {', '.join(sorted(REGIME_IDS))})")
    ids = {o.id for o in doc.obligations}
    obligations = []
    for o in doc.obligations:
        variants = []
        for i, v in enumerate(o.variants):
            where = f"{doc.id}: obligation {o.id}, variant {i + 1}"
            when = None
            if v.when is not None:
                try:
                    when = parse_expression(v.when)
                except ExpressionError as exc:
                    raise InvalidInput(f"{where}: invalid condition: {exc.message}") from None
            variants.append(
                Variant(when, tuple(_clause(c, ids, where) for c in v.due), _text(v.label) if v.label else None)
            )
        for f in o.fields:
            if not _SOURCE.match(f.source):
                raise InvalidInput(f"{doc.id}: field {f.id}: unknown source '{f.source}'")
        obligations.append(
            Obligation(
                id=o.id,
                stage=o.stage,
                title=_text(o.title),
                variants=tuple(variants),
                fields=tuple(ReportField(f.id, _text(f.title), f.source, f.required) for f in o.fields),
                levels=frozenset(ResponseLevel(x) for x in o.levels or []),
                may_phase=o.may_phase,
                late_reason_required=o.late_reason_required,
                note=_text(o.note) if o.note else None,
            )
        )
    r = doc.reportability
    minimum = parse_duration(r.min_duration).as_timedelta() if r.min_duration else Duration().as_timedelta()
    return Regime(
        id=doc.id,
        title=_text(doc.title),
        authority=_text(doc.authority),
        source=doc.source,
        levels=frozenset(ResponseLevel(x) for x in doc.levels or []),
        reportability=Reportability(r.kind, minimum, r.min_user_minutes, r.users_fact),
        obligations=tuple(obligations),
        calendar=Calendar(doc.calendar.country, doc.calendar.zone),
    )


def default_regimes_dir() -> str:
    local = Path("notifications") / "regimes"
    return str(local if local.is_dir() else _REPO)


def load_regimes(folder: str | None = None) -> dict[str, Regime]:
    """Every regime in the folder (by id); a broken file is an error naming it."""
    folder = folder or default_regimes_dir()
    out: dict[str, Regime] = {}
    if not os.path.isdir(folder):
        return out
    for name in sorted(os.listdir(folder)):
        if not name.endswith((".yaml", ".yml")):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as fh:
                doc = RegimeDoc.model_validate(yaml.safe_load(fh))
        except (yaml.YAMLError, ValidationError) as exc:
            raise InvalidInput(f"regime file {path} is not valid: {exc}") from None
        regime = compile_regime(doc)
        if regime.id in out:
            raise InvalidInput(f"regime {regime.id} is defined twice ({path})")
        out[regime.id] = regime
    return out
