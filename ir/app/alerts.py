"""Alert intake: machines' alerts (Prometheus Alertmanager, or any source in the generic form) matched by
rules to playbooks, deduplicated by fingerprint, grouped into incidents that wait in triage for a person.

One webhook is one transaction: the deduplication rows, every incident it opens or attaches to, and its
audit records commit together or not at all. Deduplication lives in its own tables (the AlertLedger port):
a repeated alert touches only its fingerprint row (last seen, count), so repeats never append to an
incident's stream and never compete with a commander for its version. An alert's act — open, attach,
resolve — happens once per occurrence: the idempotency key is (fingerprint, startsAt, status), checked
against the fingerprint row locked in the same transaction.

Nothing here declares a level: an opened incident is in triage with its facts, its suggested level
written in its log, awaiting a person's declaration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from ir.app.auditing import record_events
from ir.app.handlers import Outcome, seal_facts
from ir.app.permissions import authorize
from ir.app.ports import PlaybookSource, StaleIncident, UnitOfWork, UnitOfWorkFactory
from ir.domain import decisions
from ir.domain import emergency_decisions as ed
from ir.domain.clocks import Clock
from ir.domain.commands import Actor
from ir.domain.errors import IrError
from ir.domain.events import Event, FactValue
from ir.domain.facts import check_fact_value
from ir.domain.incident import Incident, Mode, typed_fact
from ir.domain.playbook import Playbook

log = logging.getLogger("ir.alerts")

FIRING = "firing"
RESOLVED = "resolved"
MODES = ("real", "test")
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_TITLE = 200
MAX_LOG_TEXT = 10_000
MAX_LINES = 50  # alerts named one by one in one log entry; the rest are counted
FUTURE_TOLERANCE = timedelta(minutes=5)


# -- templates ---------------------------------------------------------------------------------------


class TemplateError(ValueError):
    pass


_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_REF = re.compile(r"^\s*(labels|annotations)\.([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|(.*))?$", re.DOTALL)

Part = str | tuple[str, str, str | None]  # literal text, or (labels|annotations, name, default)


@dataclass(frozen=True, slots=True)
class Template:
    """`{labels.<name>}` and `{annotations.<name>}` substituted, `{labels.<name>|default}` when absent,
    `{{` and `}}` for literal braces. Nothing is evaluated: a placeholder names a value, no more."""

    source: str
    parts: tuple[Part, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[Part] = []
        pos = 0
        for m in _TOKEN.finditer(text):
            if m.start() > pos:
                parts.append(text[pos : m.start()])
            piece = m.group(0)
            if piece == "{{":
                parts.append("{")
            elif piece == "}}":
                parts.append("}")
            elif m.group(1) is None:
                raise TemplateError(
                    f"unmatched '{piece}' at character {m.start() + 1} (write '{piece * 2}' for a brace)"
                )
            else:
                ref = _REF.match(m.group(1))
                if ref is None:
                    raise TemplateError(
                        f"unknown placeholder '{piece}': write {{labels.<name>}} or {{annotations.<name>}}"
                        ", optionally with |default"
                    )
                parts.append((ref.group(1), ref.group(2), ref.group(3)))
            pos = m.end()
        if pos < len(text):
            parts.append(text[pos:])
        return cls(text, tuple(parts))

    @property
    def constant(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def render(self, labels: Mapping[str, str], annotations: Mapping[str, str]) -> tuple[str, bool]:
        """The text, and whether every placeholder without a default found its value."""
        out: list[str] = []
        complete = True
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            namespace, name, default = part
            value = (labels if namespace == "labels" else annotations).get(name)
            if value is None or value == "":
                if default is None:
                    complete = False
                    continue
                value = default
            out.append(value)
        return "".join(out), complete


def _clean(text: str, limit: int) -> str:
    """One line of plain text: control characters out, whitespace collapsed, cut to `limit`."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- rules -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    value: str | None = None  # equality (an absent label is the empty string, as in Alertmanager)
    pattern: re.Pattern[str] | None = None  # or a regular expression matching the whole value

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.label, "")
        if self.pattern is not None:
            return self.pattern.fullmatch(value) is not None
        return value == self.value


FactSource = Template | bool | int | float


@dataclass(frozen=True, slots=True)
class AlertRule:
    id: str
    playbook: str
    matchers: tuple[Matcher, ...]
    mode: str = "real"
    title: Template | None = None
    summary: Template | None = None
    facts: Mapping[str, FactSource] = field(default_factory=dict)
    group_by: tuple[str, ...] = ("alertname",)
    sources: frozenset[str] = frozenset()  # empty: alerts from any source

    def matches(self, alert: Alert, source: str) -> bool:
        if self.sources and source not in self.sources:
            return False
        return all(m.matches(alert.labels) for m in self.matchers)

    def group(self, alert: Alert) -> tuple[str, dict[str, str]]:
        """The group an alert belongs to under this rule: a key, and the labels it is made of."""
        labels = {name: alert.labels.get(name, "") for name in self.group_by}
        raw = json.dumps([self.id, sorted(labels.items())], ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest(), labels

    def title_of(self, alert: Alert) -> str:
        if self.title is not None:
            text, _ = self.title.render(alert.labels, alert.annotations)
            text = _clean(text, MAX_TITLE)
            if text:
                return text
        for value in (
            alert.annotations.get("title"),
            alert.annotations.get("summary"),
            alert.labels.get("alertname"),
        ):
            if value and value.strip():
                return _clean(value, MAX_TITLE)
        return self.id

    def summary_of(self, alert: Alert) -> str | None:
        if self.summary is not None:
            text, _ = self.summary.render(alert.labels, alert.annotations)
        else:
            text = alert.annotations.get("description") or alert.annotations.get("summary") or ""
        text = text.strip()[:MAX_LOG_TEXT]
        return text or None


@dataclass(frozen=True, slots=True)
class AlertRules:
    rules: tuple[AlertRule, ...] = ()
    origin: str = ""

    def match(self, alert: Alert, source: str) -> AlertRule | None:
        """The first rule that matches, in file order."""
        for rule in self.rules:
            if rule.matches(alert, source):
                return rule
        return None


class AlertRulesInvalid(IrError):
    """The alert rules file has problems: alerts cannot be taken in until it is fixed (503: retry later)."""

    exit_code = 1
    http_status = 503

    def __init__(self, problems: Sequence[str]) -> None:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        super().__init__(f"the alert rules are not valid: {shown}")
        self.problems = list(problems)


class AlertIntakeBusy(IrError):
    """The same alerts or incident kept changing under this webhook: the sender should retry (503)."""

    exit_code = 4
    http_status = 503


def check_rule_facts(playbook: Playbook, facts: Mapping[str, FactSource]) -> list[tuple[str, str]]:
    """Problems with a rule's facts against its playbook: (fact name, message)."""
    problems: list[tuple[str, str]] = []
    for name, source in facts.items():
        fact = playbook.facts.get(name)
        if fact is None:
            import difflib

            close = difflib.get_close_matches(name, list(playbook.facts), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            known = ", ".join(playbook.facts) or "none"
            problems.append((name, f"playbook {playbook.id} has no fact '{name}'{hint} (its facts: {known})"))
            continue
        if fact.personal:
            problems.append((name, f"fact '{name}' is personal data: alerts may not set it"))
            continue
        value: object = source
        if isinstance(source, Template):
            if not source.constant:
                continue  # typed when an alert fills it in
            value, _ = source.render({}, {})
        try:
            check_fact_value(fact, value)
        except IrError as exc:
            problems.append((name, exc.message))
    return problems


# -- alerts and what became of them ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as received, whatever its source."""

    fingerprint: str
    status: str  # firing | resolved
    labels: Mapping[str, str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    url: str | None = None
    facts: Mapping[str, object] = field(default_factory=dict)  # given by the source (the generic form)


@dataclass(slots=True)
class AlertOutcome:
    fingerprint: str
    outcome: str  # opened | attached | deduplicated | resolved | ignored | rejected
    incident: int | None = None
    rule: str | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class IntakeResult:
    source: str
    alerts: list[AlertOutcome]
    incidents: list[int] = field(default_factory=list)  # opened or changed by this webhook

    def count(self, outcome: str) -> int:
        return sum(1 for a in self.alerts if a.outcome == outcome)


# -- the ledger port ---------------------------------------------------------------------------------


@dataclass(slots=True)
class SeenAlert:
    """A fingerprint's row: the occurrence it last acted on and what became of it."""

    key: str
    status: str
    incident_id: int | None
    starts_at: datetime | None
    count: int


@dataclass(frozen=True, slots=True)
class FingerprintWrite:
    key: str
    source: str
    rule: str
    group_key: str
    incident_id: int | None
    status: str
    starts_at: datetime | None
    ends_at: datetime | None
    summary: str
    add: int  # how many times seen in this webhook
    new: bool  # no row yet


@dataclass(frozen=True, slots=True)
class AlertGroupRow:
    key: str
    incident_id: int | None  # None: claimed, its incident not opened (a rejected alert)


class AlertRace(Exception):
    """Another transaction wrote the same fingerprint or group first: roll back and decide again."""


class AlertLedger(Protocol):
    """The deduplication tables, on the unit of work's transaction."""

    def seen(self, keys: Sequence[str]) -> dict[str, SeenAlert]:
        """The rows of these fingerprints, locked until the transaction ends."""
        ...

    def groups(self, keys: Sequence[str]) -> dict[str, AlertGroupRow]:
        """The rows of these groups, locked until the transaction ends."""
        ...

    def touch(self, counts: Mapping[str, int], *, at: datetime) -> None:
        """Repeats: last seen and count only, for every fingerprint in one statement."""
        ...

    def write(self, rows: Sequence[FingerprintWrite], *, at: datetime) -> None:
        """New and changed fingerprint rows (AlertRace when another transaction inserted one first)."""
        ...

    def claim_group(self, key: str, *, rule: str, labels: Mapping[str, str], at: datetime) -> None:
        """A new group's row, before its incident is opened (AlertRace when another transaction claimed it)."""
        ...

    def bind_group(self, key: str, *, incident_id: int, at: datetime) -> None:
        """The incident a group's alerts attach to from now on."""
        ...


LedgerOf = Callable[[UnitOfWork], AlertLedger]


# -- the service -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Matched:
    index: int
    alert: Alert
    rule: AlertRule
    key: str
    group_key: str
    group_labels: dict[str, str]


@dataclass(slots=True)
class _Touched:
    incident: Incident
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class _Job:
    """One webhook, matched, waiting for its transaction."""

    actor: Actor
    source: str
    receiver: str | None
    size: int
    matched: list[_Matched]
    ignored: dict[int, AlertOutcome]
    done: Future[_Decided] = field(default_factory=Future)


_Decided = tuple[list[AlertOutcome], list[_Touched]]


@dataclass(slots=True)
class AlertIntake:
    """Webhooks in, outcomes out. With `group_commit` (the default) one thread writes: the webhooks that
    arrive within `linger` of each other, or while a transaction commits, are taken together in the next
    one (each still all or nothing: if a shared transaction fails, each of its webhooks is run again in its
    own). A durable commit (an fsync) per webhook would bound throughput and keep the database's write
    lock from everyone else; several threads writing would queue on that lock."""

    uow: UnitOfWorkFactory
    ledger: LedgerOf
    clock: Clock
    playbooks: PlaybookSource
    rules: Callable[[], AlertRules]
    after_commit: Sequence[Callable[[Outcome], None]] = ()
    races: Callable[[Exception], bool] = lambda exc: False  # the database's "someone else wrote it first"
    attempts: int = 4
    group_commit: bool = True
    max_batch: int = 64
    # A transaction waits this long for more webhooks to join it: fewer, larger durable commits, and
    # the database's write lock free more often for everyone else (measured: bench/bench_alerts.py).
    linger: float = 0.01
    release: Callable[[], None] = lambda: None  # run on the writer thread as it stops (its connection)
    _queue: queue.SimpleQueue[_Job | None] = field(default_factory=queue.SimpleQueue, init=False, repr=False)
    _writer: threading.Thread | None = field(default=None, init=False, repr=False)
    _start: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def receive(
        self, *, actor: Actor, source: str, alerts: Sequence[Alert], receiver: str | None = None
    ) -> IntakeResult:
        authorize(actor, "alert.intake")
        rules = self.rules()
        ignored: dict[int, AlertOutcome] = {}
        matched: list[_Matched] = []
        for i, alert in enumerate(alerts):
            rule = rules.match(alert, source)
            if rule is None:
                ignored[i] = AlertOutcome(alert.fingerprint, "ignored", reason=_unmatched(alert, source))
                continue
            group_key, group_labels = rule.group(alert)
            matched.append(_Matched(i, alert, rule, f"{source}:{alert.fingerprint}", group_key, group_labels))
        job = _Job(actor, source, receiver, len(alerts), matched, ignored)
        if self.group_commit:
            self._ensure_writer()
            self._queue.put(job)
            outcomes, touched = job.done.result()
        else:
            outcomes, touched = self._alone(job)
        result = IntakeResult(source, outcomes, [t.incident.id for t in touched])
        for t in touched:
            outcome = Outcome(t.incident.id, t.incident.version, t.events, incident=t.incident)
            for hook in self.after_commit:
                try:
                    hook(outcome)
                except Exception:  # committed already: the alert is recorded; the hook's own retry applies
                    log.exception("after-commit hook failed for incident %s", t.incident.id)
        return result

    # -- transactions ---------------------------------------------------------------------------------

    def _ensure_writer(self) -> None:
        if self._writer is not None:
            return
        with self._start:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_forever, name="ir-alert-intake", daemon=True)
                self._writer.start()

    def close(self) -> None:
        """Stop the writer once the webhooks already queued are written (a later webhook starts it again)."""
        with self._start:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(None)
            writer.join(timeout=30)

    def _write_forever(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            until = time.monotonic() + self.linger
            while len(batch) < self.max_batch:
                try:
                    left = until - time.monotonic()
                    more = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            self._write(batch)
        self.release()

    def _write(self, batch: list[_Job]) -> None:
        if len(batch) > 1:
            try:
                decided = self._transaction(batch)
            except Exception as exc:  # each webhook again on its own: one's failure is not the others'
                log.debug("a shared alert transaction of %d webhooks failed (%r): each on its own", len(batch), exc)
            else:
                for job, result in zip(batch, decided, strict=True):
                    job.done.set_result(result)
                return
        for job in batch:
            try:
                job.done.set_result(self._alone(job))
            except BaseException as exc:
                job.done.set_exception(exc)

    def _alone(self, job: _Job) -> _Decided:
        """One webhook in its own transaction, decided again when another writer got there first."""
        for attempt in range(1, self.attempts + 1):
            try:
                return self._transaction([job])[0]
            except Exception as exc:
                if not isinstance(exc, AlertRace | StaleIncident) and not self.races(exc):
                    raise
                if attempt == self.attempts:
                    raise AlertIntakeBusy(
                        "these alerts' incident or fingerprints kept changing meanwhile: send them again"
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _transaction(self, jobs: Sequence[_Job]) -> list[_Decided]:
        with self.uow() as uow:
            ledger = self.ledger(uow)
            now = self.clock.now()
            decided = [self._decide(uow, ledger, job, now) for job in jobs]
            uow.commit()
        return decided

    # -- one webhook ----------------------------------------------------------------------------------

    def _decide(self, uow: UnitOfWork, ledger: AlertLedger, job: _Job, now: datetime) -> _Decided:
        actor, source, matched = job.actor, job.source, job.matched
        outcomes: dict[int, AlertOutcome] = dict(job.ignored)
        touched: dict[int, _Touched] = {}
        state: dict[str, SeenAlert] = ledger.seen(sorted({m.key for m in matched})) if matched else {}
        repeats: Counter[str] = Counter()
        firing: dict[str, list[_Matched]] = {}  # group key -> new occurrences, in order
        resolving: dict[int | None, list[_Matched]] = {}  # incident -> alerts resolved
        previous: dict[str, SeenAlert | None] = {}
        for m in matched:
            row = state.get(m.key)
            if m.key not in previous:
                previous[m.key] = row
            if _acts(row, m.alert):
                if m.alert.status == FIRING:
                    firing.setdefault(m.group_key, []).append(m)
                else:
                    resolving.setdefault(row.incident_id if row else None, []).append(m)
                state[m.key] = SeenAlert(m.key, m.alert.status, row.incident_id if row else None, m.alert.starts_at, 0)
            else:
                repeats[m.key] += 1
                outcomes[m.index] = AlertOutcome(
                    m.alert.fingerprint, "deduplicated", incident=row.incident_id if row else None, rule=m.rule.id
                )
        writes: dict[str, FingerprintWrite] = {}

        def record(m: _Matched, incident_id: int | None) -> None:
            old = writes.get(m.key)
            writes[m.key] = FingerprintWrite(
                key=m.key,
                source=source,
                rule=m.rule.id,
                group_key=m.group_key,
                incident_id=incident_id if incident_id is not None else (old.incident_id if old else None),
                status=m.alert.status,
                starts_at=m.alert.starts_at,
                ends_at=m.alert.ends_at,
                summary=_clean(m.rule.title_of(m.alert), 500),
                add=(old.add if old else 0) + 1,
                new=previous[m.key] is None,
            )

        groups = ledger.groups(sorted(firing)) if firing else {}
        for group_key, ms in firing.items():
            group = groups.get(group_key)
            target = None
            if group is not None and group.incident_id is not None:
                target = self._still_open(uow, group.incident_id)
            if target is not None:
                self._attach(uow, actor, source, target, ms, outcomes, touched)
                incident_id: int | None = target.id
            else:
                if group is None:  # claimed before opening: a concurrent first alert of the group waits
                    ledger.claim_group(group_key, rule=ms[0].rule.id, labels=ms[0].group_labels, at=now)
                incident_id = self._open(uow, actor, source, ms, outcomes, touched, now)
                if incident_id is None:
                    continue  # rejected: no fingerprint recorded, the next repeat tries again
                ledger.bind_group(group_key, incident_id=incident_id, at=now)
            for m in ms:
                record(m, incident_id)
                state[m.key].incident_id = incident_id
        for incident_id, ms in resolving.items():
            target = self._still_open(uow, incident_id) if incident_id is not None else None
            if target is not None:
                self._resolve(uow, actor, source, target, ms, touched)
            for m in ms:
                reason = None
                if incident_id is None:
                    reason = "not seen firing before: recorded"
                elif target is None:
                    reason = f"incident {incident_id} is closed: recorded"
                outcomes[m.index] = AlertOutcome(
                    m.alert.fingerprint, "resolved", incident=incident_id, rule=m.rule.id, reason=reason
                )
                record(m, incident_id)
        for m in matched:  # a repeat within this webhook of an alert it acted on goes where that went
            found = outcomes.get(m.index)
            if found is not None and found.outcome == "deduplicated" and found.incident is None:
                found.incident = state[m.key].incident_id
        for key, n in list(repeats.items()):
            if key in writes:  # acted on and repeated within this webhook: one write counts both
                w = writes[key]
                writes[key] = replace(w, add=w.add + n)
                del repeats[key]
        if repeats:
            ledger.touch(repeats, at=now)
        if writes:
            ledger.write([writes[k] for k in sorted(writes)], at=now)
        result = [outcomes[i] for i in range(job.size)]
        uow.audit.record(
            action="alert.intake",
            actor=actor.id,
            subject=f"alerts:{source}",
            payload=_audit_payload(source, job.receiver, result),
            at=now,
        )
        return result, list(touched.values())

    def _still_open(self, uow: UnitOfWork, incident_id: int) -> Incident | None:
        incident = uow.incidents.get(incident_id)
        return None if incident.closed else incident

    def _facts(
        self, playbook: Playbook, ms: Sequence[_Matched], outcomes: dict[int, AlertOutcome]
    ) -> dict[str, FactValue]:
        """The facts these alerts give, merged in order, each typed by the playbook; a value that does not
        fit is left out and named in the alert's warnings (the alert is taken in all the same)."""
        merged: dict[str, FactValue] = {}
        for m in ms:
            warnings = outcomes[m.index].warnings
            raw: dict[str, object] = {}
            for name, source in m.rule.facts.items():
                if isinstance(source, Template):
                    text, complete = source.render(m.alert.labels, m.alert.annotations)
                    if not complete or not text.strip():
                        continue  # the alert does not carry it
                    raw[name] = text
                else:
                    raw[name] = source
            raw.update(m.alert.facts)
            for name, value in raw.items():
                fact = playbook.facts.get(name)
                if fact is None:
                    warnings.append(f"fact '{name}': playbook {playbook.id} has no such fact")
                    continue
                if fact.personal:
                    warnings.append(f"fact '{name}' is personal data: alerts may not set it")
                    continue
                try:
                    merged[name] = check_fact_value(fact, value)
                except IrError as exc:
                    warnings.append(exc.message)
        return merged

    def _open(
        self,
        uow: UnitOfWork,
        actor: Actor,
        source: str,
        ms: list[_Matched],
        outcomes: dict[int, AlertOutcome],
        touched: dict[int, _Touched],
        now: datetime,
    ) -> int | None:
        """Open one incident, in triage, for a group's first alerts; None if it cannot be opened."""
        first = ms[0]
        rule = first.rule
        for m in ms:
            outcomes[m.index] = AlertOutcome(m.alert.fingerprint, "attached", rule=rule.id)
        outcomes[first.index].outcome = "opened"
        try:
            authorize(actor, "incident.open")
            playbook = self.playbooks.get(rule.playbook)
            facts = self._facts(playbook, ms, outcomes)
            starts = [m.alert.starts_at for m in ms if m.alert.starts_at is not None]
            detected = min(starts) if starts else None
            if detected is not None and detected > now + FUTURE_TOLERANCE:
                detected = now  # a sender's clock ahead of ours
            events = decisions.open_incident(
                playbook=playbook,
                title=rule.title_of(first.alert),
                mode=Mode(rule.mode),
                facts=seal_facts(playbook, dict[str, object](facts), uow),
                actor=actor.id,
                now=now,
                detected_at=detected,
                summary=rule.summary_of(first.alert),
            )
            probe = Incident(id=0, playbook=playbook)
            for e in events:
                probe.apply(e)
            text = "\n".join([_suggestion(probe), *_alert_lines(ms, FIRING)])
            events += ed.add_log_entry(
                probe, "message", _cap(text), actor=actor.id, now=now, source=_clean(source, 200)
            )
        except IrError as exc:
            if exc.http_status in (401, 403):
                raise
            for m in ms:
                outcomes[m.index] = AlertOutcome(
                    m.alert.fingerprint, "rejected", rule=rule.id, reason=f"cannot open an incident: {exc.message}"
                )
            return None
        incident, stored = uow.incidents.add(Incident(id=0, playbook=playbook), events)
        record_events(uow, actor=actor.id, action="alert.open", stored=stored, at=now)
        touched[incident.id] = _Touched(incident, list(events))
        for m in ms:
            outcomes[m.index].incident = incident.id
        return incident.id

    def _attach(
        self,
        uow: UnitOfWork,
        actor: Actor,
        source: str,
        incident: Incident,
        ms: list[_Matched],
        outcomes: dict[int, AlertOutcome],
        touched: dict[int, _Touched],
    ) -> None:
        """Further alerts of an open incident's group: one log entry naming them, and the facts they change."""
        now = incident.now(self.clock.now())
        for m in ms:
            outcomes[m.index] = AlertOutcome(m.alert.fingerprint, "attached", incident=incident.id, rule=m.rule.id)
        authorize(actor, "log.add")
        facts = self._facts(incident.playbook, ms, outcomes)
        changed = {k: v for k, v in facts.items() if incident.facts.get(k) != typed_fact(incident.playbook, k, v)}
        events: list[Event] = []
        if changed:
            authorize(actor, "fact.set")
            fingerprints = ", ".join(m.alert.fingerprint for m in ms[:5])
            events += decisions.set_facts(
                incident,
                seal_facts(incident.playbook, dict[str, object](changed), uow),
                actor=actor.id,
                now=now,
                reason=_clean(f"alert {fingerprints}", 500),
            )
        text = _cap("\n".join(_alert_lines(ms, FIRING)))
        events += ed.add_log_entry(incident, "message", text, actor=actor.id, now=now, source=_clean(source, 200))
        self._append(uow, actor, "alert.attach", incident, events, touched)

    def _resolve(
        self,
        uow: UnitOfWork,
        actor: Actor,
        source: str,
        incident: Incident,
        ms: list[_Matched],
        touched: dict[int, _Touched],
    ) -> None:
        authorize(actor, "log.add")
        now = incident.now(self.clock.now())
        text = _cap("\n".join(_alert_lines(ms, RESOLVED)))
        events = ed.add_log_entry(incident, "message", text, actor=actor.id, now=now, source=_clean(source, 200))
        self._append(uow, actor, "alert.resolve", incident, events, touched)

    def _append(
        self,
        uow: UnitOfWork,
        actor: Actor,
        action: str,
        incident: Incident,
        events: list[Event],
        touched: dict[int, _Touched],
    ) -> None:
        stored = uow.incidents.append(incident, events)  # StaleIncident: the whole webhook is decided again
        record_events(uow, actor=actor.id, action=action, stored=stored, at=self.clock.now())
        entry = touched.setdefault(incident.id, _Touched(incident))
        entry.incident = incident
        entry.events += events


def _acts(row: SeenAlert | None, alert: Alert) -> bool:
    """Whether an alert is an act (a new occurrence firing, or a firing one resolved) rather than a repeat.

    The idempotency key of an act is (fingerprint, startsAt, status): Alertmanager keeps startsAt for as
    long as an alert fires, so a resend is a repeat, and a later startsAt is the alert firing again.
    A late delivery of an older occurrence is a repeat too."""
    if row is None:
        return True
    later = alert.starts_at is not None and row.starts_at is not None and alert.starts_at > row.starts_at
    earlier = alert.starts_at is not None and row.starts_at is not None and alert.starts_at < row.starts_at
    if alert.status == FIRING:
        if row.status == FIRING:
            return later
        return not earlier and (later or alert.starts_at is None or row.starts_at is None)
    if row.status == FIRING:
        return not earlier
    return False


def _unmatched(alert: Alert, source: str) -> str:
    shown = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())[:6])
    more = ", …" if len(alert.labels) > 6 else ""
    return _clean(f"no alert rule matches this alert from {source} ({shown}{more})", 500)


def _suggestion(incident: Incident) -> str:
    result = decisions.classify(incident)
    if result.suggested is not None:
        level = result.suggested.value
        return (
            f"建议级别 {level}（依据告警事实，待人员宣布）/ suggested level {level} on the alert's facts — "
            f"in triage until a person declares a level"
        )
    missing = f"; facts missing: {', '.join(sorted(result.missing))}" if result.missing else ""
    return f"暂无建议级别 / no level suggested yet{missing} — in triage until a person declares a level"


def _alert_lines(ms: Sequence[_Matched], status: str) -> list[str]:
    word = "告警 firing" if status == FIRING else "恢复 resolved"
    lines = []
    for m in ms[:MAX_LINES]:
        a = m.alert
        labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items())[:8])
        line = f"{word}: {m.rule.title_of(a)} [{a.fingerprint}] ({labels})"
        if a.url:
            line += f" {a.url}"
        lines.append(_clean(line, 600))
    if len(ms) > MAX_LINES:
        lines.append(f"… {len(ms) - MAX_LINES} more / 另有 {len(ms) - MAX_LINES} 条")
    return lines


def _cap(text: str) -> str:
    return text if len(text) <= MAX_LOG_TEXT else text[: MAX_LOG_TEXT - 1] + "…"


def _audit_payload(source: str, receiver: str | None, outcomes: Sequence[AlertOutcome]) -> dict[str, Any]:
    counts = Counter(o.outcome for o in outcomes)
    acts = [
        {"fingerprint": o.fingerprint, "outcome": o.outcome, "incident": o.incident, "rule": o.rule}
        for o in outcomes
        if o.outcome != "deduplicated"
    ]
    return {
        "source": source,
        "receiver": receiver,
        "received": len(outcomes),
        "outcomes": dict(sorted(counts.items())),
        "acts": acts[:200],
        "acts_left_out": max(0, len(acts) - 200),
    }
