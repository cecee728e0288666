"""From a located YAML document to a checked domain Playbook, or the list of every problem in it."""

from __future__ import annotations

import difflib
import gc
import hashlib
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import BaseModel, ValidationError

from ir.adapters.playbooks.document import (
    ActionDoc,
    LevelDoc,
    NotificationDoc,
    PlaybookDoc,
    StepDoc,
    TextDoc,
    WarningDoc,
)
from ir.adapters.playbooks.problems import Problem, Severity
from ir.adapters.playbooks.yaml_source import Located, Path, YamlRefused, decode_source, load_located
from ir.domain.clocks import CLOCK_NAMES, ClockName
from ir.domain.durations import Duration, DurationError, parse_duration
from ir.domain.expressions import (
    Expression,
    ExpressionError,
    FactSignature,
    FactType,
    check,
    parse_expression,
)
from ir.domain.incident_types import INCIDENT_TYPES
from ir.domain.levels import LEVEL_ORDER, WARNING_ORDER, ResponseLevel, WarningLevel
from ir.domain.playbook import (
    REGIME_IDS,
    Approval,
    ApprovalStatus,
    Audience,
    Calendar,
    Category,
    Channel,
    Due,
    Fact,
    FactKind,
    HttpAction,
    LevelSpec,
    Notification,
    Playbook,
    Reference,
    ResourceKind,
    ResourceRequest,
    Restoration,
    Role,
    Step,
    StepKind,
    WarningSpec,
)
from ir.domain.standard_facts import with_standard_facts
from ir.domain.text import Text

_DUE = re.compile(r"^\s*(?P<anchor>step:[A-Za-z0-9_-]+|[A-Za-z_]+)\s*(?:(?P<sign>[+-])\s*(?P<dur>\S.*?))?\s*$")
_DEFAULT_ZONES = {"CN": "Asia/Shanghai"}


@dataclass(slots=True)
class Compiled:
    """The outcome of compiling one file: a playbook when there are no errors, and every problem found."""

    file: str
    playbook: Playbook | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return self.playbook is not None and not self.errors


def compile_source(raw: bytes, filename: str, *, today: date | None = None) -> Compiled:
    """Compile the bytes of one playbook file. Never raises for anything in the file.

    The cyclic garbage collector is paused meanwhile: compiling allocates many small acyclic objects,
    and collections triggered by them cost a third of the time of a large playbook. The input size is
    bounded, so the memory held meanwhile is too.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _compile(raw, filename, today)
    finally:
        if paused:
            gc.enable()


def _compile(raw: bytes, filename: str, today: date | None) -> Compiled:
    try:
        text = decode_source(raw, filename)
        located = load_located(text, filename)
    except YamlRefused as refused:
        return Compiled(filename, None, [refused.problem])
    compiler = _Compiler(located, filename, today)
    playbook = compiler.run()
    if playbook is not None:
        playbook = _with_hash(playbook, hashlib.sha256(text.encode()).hexdigest(), text)
    problems = sorted(located.problems + compiler.problems, key=lambda p: (p.line, p.column))
    has_errors = any(p.severity == "error" for p in problems)
    return Compiled(filename, None if has_errors else playbook, problems)


def _with_hash(playbook: Playbook, digest: str, source: str) -> Playbook:
    import dataclasses

    return dataclasses.replace(playbook, content_hash=digest, source=source)


class _Compiler:
    def __init__(self, located: Located, filename: str, today: date | None) -> None:
        self.located = located
        self.file = filename
        self.today = today
        self.problems: list[Problem] = []

    # -- reporting ---------------------------------------------------------------------------------

    def report(
        self, path: Path, message: str, *, severity: Severity = "error", key: bool = False, offset: int = 0
    ) -> None:
        mark = self.located.key_mark(path) if key else self.located.mark(path)
        column = mark.column
        if offset and path in self.located.values:
            # the offset is into the scalar's text: step over an opening quote
            column += offset + (1 if mark.style in ("'", '"') else 0)
        self.problems.append(Problem(self.file, mark.line, column, severity, message))

    # -- the run -----------------------------------------------------------------------------------

    def run(self) -> Playbook | None:
        data = self.located.data
        if not isinstance(data, dict):
            self.report((), "a playbook is a YAML mapping of keys such as id, title, levels and steps")
            return None
        try:
            doc = PlaybookDoc.model_validate(data)
        except ValidationError as exc:
            self._shape_problems(exc)
            self._semantics_despite(exc, data)
            return None
        if self.located.problems:
            return None
        return self._semantics(doc)

    def _semantics_despite(self, exc: ValidationError, data: dict[str, Any]) -> None:
        """When only identity fields are malformed, references, cycles and expressions are still checked
        (with stand-ins for those fields), so one run lists those problems too."""
        broken = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        if not broken or not broken <= set(_STAND_INS):
            return
        patched = {k: v for k, v in data.items() if k not in broken}
        patched.update({k: _STAND_INS[k] for k in broken if _STAND_INS[k] is not None})
        try:
            doc = PlaybookDoc.model_validate(patched)
        except ValidationError:
            return
        before = len(self.problems)
        self._semantics(doc)
        self.problems[before:] = [
            p for p in self.problems[before:] if p.severity == "error" and not _on_keys(self.located, p, broken)
        ]

    # -- shape: what pydantic found ----------------------------------------------------------------

    def _shape_problems(self, exc: ValidationError) -> None:
        seen: set[tuple[Path, str]] = set()
        for err in _prefer_matching_union_branch(exc.errors(include_url=False), self.located.data):
            path, model = _data_path(err["loc"], self.located.data)
            kind = err["type"]
            if kind == "extra_forbidden":
                name = str(path[-1])
                allowed = _fields_of(model)
                hint = _did_you_mean(name, allowed)
                message = f"unknown key '{name}'{hint}"
                where, on_key = path, True
            elif kind == "missing":
                name = str(err["loc"][-1])
                message = f"missing field '{name}'"
                where, on_key = path[:-1], True
            else:
                message = _value_message(err, path)
                where, on_key = path, False
            if (where, message) in seen:
                continue
            seen.add((where, message))
            if kind == "missing" and not where:
                self.problems.append(Problem(self.file, 1, 1, "error", message))
            else:
                self.report(where, message, key=on_key)

    # -- meaning: references, cycles, durations, expressions -----------------------------------------

    def _semantics(self, doc: PlaybookDoc) -> Playbook | None:
        before = len(self.problems)
        roles = self._unique([r.id for r in doc.roles], ("roles",), "role")
        role_ids = set(roles)
        facts = with_standard_facts(self._facts(doc))
        signatures = {f.name: _signature(f) for f in facts.values() if not f.personal}  # never in expressions
        step_ids = set(self._unique([s.id for s in doc.steps], ("steps",), "step"))
        resource_kinds = set(self._unique([r.kind for r in doc.resources], ("resources",), "resource"))
        self._unique([n.id for n in doc.notifications], ("notifications",), "notification")
        uses_working_days = False

        def role_ref(role: str | None, path: Path) -> None:
            if role is not None and role not in role_ids:
                self.report(path, f"unknown role '{role}'{_did_you_mean(role, role_ids)}")

        def duration(text: str, path: Path) -> Duration:
            nonlocal uses_working_days
            try:
                d = parse_duration(text)
            except DurationError as e:
                self.report(path, f"invalid duration '{text.strip()}': {e.message}", offset=e.column)
                return Duration()
            uses_working_days = uses_working_days or d.is_working
            return d

        def due(text: str, path: Path) -> Due | None:
            nonlocal uses_working_days
            parsed = self._due(text, path, step_ids)
            if parsed is not None and parsed.offset.is_working:
                uses_working_days = True
            return parsed

        def expression(text: str, path: Path) -> Expression | None:
            try:
                expr = parse_expression(text)
                check(expr, signatures, want_boolean=True)
            except ExpressionError as e:
                self.report(path, f"invalid expression: {e.message}", offset=e.column)
                return None
            return expr

        # identity
        if doc.type not in INCIDENT_TYPES:
            self.report(("type",), f"unknown incident type '{doc.type}'{_did_you_mean(doc.type, INCIDENT_TYPES)}")
        if doc.approval.status == "approved" and (doc.approval.by is None or doc.approval.on is None):
            self.report(("approval",), "an approved playbook says who approved it and when ('by' and 'on')")
        if doc.approval.status == "draft":
            self.report(("approval", "status"), "this playbook is a draft, not approved", severity="warning")
        if doc.review_by is not None and self.today is not None and doc.review_by < self.today:
            self.report(("review_by",), f"review overdue since {doc.review_by.isoformat()}", severity="warning")
        for i, regime in enumerate(doc.regimes):
            if regime not in REGIME_IDS:
                self.report(("regimes", i), f"unknown regime '{regime}'{_did_you_mean(regime, REGIME_IDS)}")
        for i, ref in enumerate(doc.references):
            if ref.regime is not None and ref.regime not in REGIME_IDS:
                self.report(
                    ("references", i, "regime"),
                    f"unknown regime '{ref.regime}'{_did_you_mean(ref.regime, REGIME_IDS)}",
                )

        # levels and warnings
        self._order(("levels",), [lv.value for lv in LEVEL_ORDER], "levels")
        levels: dict[ResponseLevel, LevelSpec] = {}
        for lv in LEVEL_ORDER:
            ldoc: LevelDoc = getattr(doc.levels, lv.value)
            base: Path = ("levels", lv.value)
            role_ref(ldoc.declared_by, (*base, "declared_by"))
            role_ref(ldoc.escalate_to, (*base, "escalate_to"))
            crit = expression(ldoc.criteria, (*base, "criteria"))
            rto = duration(ldoc.rto, (*base, "rto"))
            rpo = duration(ldoc.rpo, (*base, "rpo"))
            mtpd = duration(ldoc.mtpd, (*base, "mtpd"))
            for name, d in (("rto", rto), ("rpo", rpo), ("mtpd", mtpd)):
                if d.is_working:
                    self.report((*base, name), f"{name} is elapsed time (h, m, d), not working days")
            if not rto.is_working and not mtpd.is_working and mtpd.seconds and rto.seconds > mtpd.seconds:
                self.report((*base, "rto"), f"rto {rto} exceeds the maximum tolerable outage (mtpd {mtpd})")
            if crit is not None:
                levels[lv] = LevelSpec(
                    level=lv,
                    criteria=crit,
                    declared_by=ldoc.declared_by,
                    rto=rto,
                    rpo=rpo,
                    mtpd=mtpd,
                    escalate_to=ldoc.escalate_to,
                    description=_text(ldoc.description),
                )
        warnings: dict[WarningLevel, WarningSpec] = {}
        if doc.warnings is not None:
            self._order(("warnings",), [w.value for w in WARNING_ORDER], "warning levels")
            for wl in WARNING_ORDER:
                wdoc: WarningDoc | None = getattr(doc.warnings, wl.value)
                if wdoc is None:
                    continue
                base = ("warnings", wl.value)
                role_ref(wdoc.declared_by, (*base, "declared_by"))
                wcrit = expression(wdoc.criteria, (*base, "criteria"))
                if wcrit is not None:
                    warnings[wl] = WarningSpec(wl, wcrit, wdoc.declared_by, _text(wdoc.description))

        # steps
        steps: dict[str, Step] = {}
        for i, sdoc in enumerate(doc.steps):
            base = ("steps", i)
            role_ref(sdoc.role, (*base, "role"))
            for j, dep in enumerate(sdoc.depends_on):
                if dep not in step_ids:
                    self.report((*base, "depends_on", j), f"unknown step '{dep}'{_did_you_mean(dep, step_ids)}")
            for j, approver in enumerate(sdoc.approvals):
                role_ref(approver, (*base, "approvals", j))
            for j, wkey in enumerate(sdoc.warnings or []):
                if WarningLevel(wkey) not in warnings and doc.warnings is not None:
                    self.report((*base, "warnings", j), f"warning level '{wkey}' is not defined under warnings")
                elif doc.warnings is None:
                    self.report((*base, "warnings", j), "this playbook defines no warning levels")
            requests = []
            for j, req in enumerate(sdoc.requests):
                if req.kind not in resource_kinds:
                    self.report(
                        (*base, "requests", j, "kind"),
                        f"unknown resource kind '{req.kind}'{_did_you_mean(req.kind, resource_kinds)}",
                    )
                needed = due(req.needed_by, (*base, "requests", j, "needed_by")) if req.needed_by else None
                requests.append(ResourceRequest(req.kind, req.quantity, needed))
            if sdoc.restores is not None and sdoc.kind != "restore":
                self.report((*base, "restores"), "only a step of kind 'restore' restores service")
            step_due = due(sdoc.due, (*base, "due")) if sdoc.due else None
            if step_due is not None and step_due.anchor_step == sdoc.id:
                self.report((*base, "due"), "a step's due time cannot be anchored to its own completion")
            when = expression(sdoc.when, (*base, "when")) if sdoc.when else None
            action = self._action(sdoc.action, (*base, "action")) if sdoc.action else None
            steps[sdoc.id] = Step(
                id=sdoc.id,
                title=_text_required(sdoc.title),
                instructions=_text_required(sdoc.instructions),
                role=sdoc.role,
                depends_on=tuple(sdoc.depends_on),
                levels=frozenset(ResponseLevel(v) for v in sdoc.levels or []),
                warnings=frozenset(WarningLevel(v) for v in sdoc.warnings or []),
                due=step_due,
                checklist=tuple(_text_required(t) for t in sdoc.checklist),
                evidence_required=bool(sdoc.evidence and sdoc.evidence.required),
                evidence_hint=_text(sdoc.evidence.description) if sdoc.evidence else None,
                approvals=tuple(sdoc.approvals),
                when=when,
                action=action,
                requests=tuple(requests),
                kind=StepKind(sdoc.kind),
                restores=Restoration(sdoc.restores) if sdoc.restores else None,
            )
        self._cycles(doc.steps)
        if not any(s.restores is Restoration.FULL for s in steps.values()):
            self.report(
                ("steps",),
                "no step restores service fully (a step with kind: restore and restores: full)",
                severity="warning",
                key=True,
            )

        # notifications
        notifications: dict[str, Notification] = {}
        for i, ndoc in enumerate(doc.notifications):
            base = ("notifications", i)
            for j, r in enumerate(ndoc.roles):
                role_ref(r, (*base, "roles", j))
            if not ndoc.roles and not ndoc.groups:
                self.report(base, "a notification names its recipients: roles, groups or both")
            if ndoc.regime is not None:
                if ndoc.regime not in REGIME_IDS:
                    self.report(
                        (*base, "regime"),
                        f"unknown regime '{ndoc.regime}'{_did_you_mean(ndoc.regime, REGIME_IDS)}",
                    )
                elif ndoc.regime not in doc.regimes:
                    self.report(
                        (*base, "regime"),
                        f"regime '{ndoc.regime}' is not listed under the playbook's regimes",
                        severity="warning",
                    )
            for j, wkey in enumerate(ndoc.warnings or []):
                if WarningLevel(wkey) not in warnings:
                    self.report((*base, "warnings", j), f"warning level '{wkey}' is not defined under warnings")
            dues = self._notification_dues(ndoc, base, due)
            repeat = duration(ndoc.repeat, (*base, "repeat")) if ndoc.repeat else None
            when = expression(ndoc.when, (*base, "when")) if ndoc.when else None
            notifications[ndoc.id] = Notification(
                id=ndoc.id,
                title=_text_required(ndoc.title),
                audience=Audience(ndoc.audience),
                channels=tuple(Channel(c) for c in ndoc.channels),
                template=ndoc.template,
                roles=tuple(ndoc.roles),
                groups=tuple(ndoc.groups),
                levels=frozenset(ResponseLevel(v) for v in ndoc.levels or []),
                warnings=frozenset(WarningLevel(v) for v in ndoc.warnings or []),
                due=dues,
                repeat=repeat,
                regime=ndoc.regime,
                critical=ndoc.critical,
                when=when,
            )

        # situation reports
        sitrep: dict[ResponseLevel | None, Duration] = {}
        if isinstance(doc.sitrep, str):
            sitrep[None] = duration(doc.sitrep, ("sitrep",))
        elif isinstance(doc.sitrep, dict):
            for key, value in doc.sitrep.items():
                sitrep[ResponseLevel(key)] = duration(value, ("sitrep", key))

        # the calendar working days count on
        zone = doc.calendar.zone or _DEFAULT_ZONES.get(doc.calendar.country)
        if uses_working_days:
            from ir.adapters.calendars import known_calendar

            if not known_calendar(doc.calendar.country):
                self.report(("calendar", "country"), f"no official holiday calendar for '{doc.calendar.country}'")
            if zone is None:
                self.report(("calendar",), f"give the calendar's time zone (zone:) for '{doc.calendar.country}'")
        zone = zone or "UTC"
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(zone)
        except (ValueError, KeyError, OSError):
            self.report(("calendar", "zone"), f"unknown time zone '{zone}'")

        if len(self.problems) > before and any(p.severity == "error" for p in self.problems[before:]):
            return None
        return Playbook(
            id=doc.id,
            version=doc.version,
            title=_text_required(doc.title),
            category=Category(doc.category),
            type=doc.type,
            owner=doc.owner,
            approval=Approval(ApprovalStatus(doc.approval.status), doc.approval.by, doc.approval.on),
            review_by=doc.review_by,
            references=tuple(Reference(r.document, r.clause, r.regime) for r in doc.references),
            regimes=tuple(doc.regimes),
            roles={r.id: Role(r.id, _text_required(r.title), _text(r.description)) for r in doc.roles},
            facts=facts,
            levels=levels,
            warnings=warnings,
            steps=steps,
            resources={
                r.kind: ResourceKind(r.kind, _text_required(r.title), _text_required(r.unit)) for r in doc.resources
            },
            notifications=notifications,
            restoration={
                Restoration.DEGRADED: _text_required(doc.restoration.degraded),
                Restoration.FULL: _text_required(doc.restoration.full),
            },
            calendar=Calendar(doc.calendar.country, zone),
            sitrep_interval=sitrep,
            scope=_text(doc.scope),
        )

    def _unique(self, ids: list[str], base: Path, what: str) -> list[str]:
        seen: dict[str, int] = {}
        for i, ident in enumerate(ids):
            if ident in seen:
                self.report((*base, i), f"duplicate {what} id '{ident}' (also entry {seen[ident] + 1})")
            else:
                seen[ident] = i
        return list(seen)

    def _facts(self, doc: PlaybookDoc) -> dict[str, Fact]:
        facts: dict[str, Fact] = {}
        for i, fdoc in enumerate(doc.facts):
            base: Path = ("facts", i)
            if fdoc.name in facts:
                self.report((*base, "name"), f"duplicate fact '{fdoc.name}'")
                continue
            if fdoc.type == "enum" and not fdoc.values:
                self.report((*base, "type"), "an enum fact lists its values")
            if fdoc.type != "enum" and fdoc.values is not None:
                self.report((*base, "values"), "only an enum fact has values")
            if fdoc.values is not None and len(set(fdoc.values)) != len(fdoc.values):
                self.report((*base, "values"), "duplicate enum values")
            facts[fdoc.name] = Fact(
                name=fdoc.name,
                kind=FactKind(fdoc.type),
                title=_text_required(fdoc.title),
                unit=fdoc.unit,
                description=_text(fdoc.description),
                values=tuple(fdoc.values or ()),
                personal=fdoc.personal,
            )
            if fdoc.personal and fdoc.type != "string":
                self.report((*base, "personal"), "personal data is text: a personal fact has type string")
        return facts

    def _order(self, path: Path, expected: list[str], what: str) -> None:
        node = self.located.data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return
        present = [k for k in node if k in expected]
        wanted = [k for k in expected if k in present]
        if present != wanted:
            for got, want in zip(present, wanted, strict=True):
                if got != want:
                    self.report(
                        (*path, got),
                        f"{what} out of order: '{got}' where '{want}' belongs (most severe first: {', '.join(wanted)})",
                        key=True,
                    )
                    break

    def _due(self, text: str, path: Path, step_ids: set[str]) -> Due | None:
        m = _DUE.match(text)
        if m is None:
            self.report(path, f"invalid due time '{text}': write a clock or step:<id>, then + or - a duration")
            return None
        anchor = m.group("anchor")
        clock: ClockName | None = None
        step: str | None = None
        if anchor.startswith("step:"):
            step = anchor[5:]
            if step not in step_ids:
                self.report(path, f"unknown step '{step}'{_did_you_mean(step, step_ids)}")
                return None
        elif anchor in CLOCK_NAMES:
            clock = ClockName(anchor)
        else:
            self.report(
                path,
                f"unknown clock '{anchor}'{_did_you_mean(anchor, CLOCK_NAMES)}; "
                f"clocks: {', '.join(c.value for c in ClockName)}, or step:<id>",
            )
            return None
        offset = Duration()
        if m.group("dur") is not None:
            try:
                offset = parse_duration(m.group("dur"))
            except DurationError as e:
                self.report(
                    path,
                    f"invalid duration '{m.group('dur')}': {e.message}",
                    offset=m.start("dur") + e.column,
                )
                return None
        return Due(clock, step, offset, m.group("sign") == "-", source=" ".join(text.split()))

    def _notification_dues(
        self, ndoc: NotificationDoc, base: Path, due: typing.Callable[[str, Path], Due | None]
    ) -> dict[ResponseLevel | WarningLevel | None, Due]:
        out: dict[ResponseLevel | WarningLevel | None, Due] = {}
        if isinstance(ndoc.due, str):
            parsed = due(ndoc.due, (*base, "due"))
            if parsed is not None:
                out[None] = parsed
            return out
        applies: set[str] = set(ndoc.levels or ([] if ndoc.warnings else [lv.value for lv in LEVEL_ORDER]))
        applies |= set(ndoc.warnings or [])
        for key, text in ndoc.due.items():
            if key not in applies:
                self.report(
                    (*base, "due", key),
                    f"'{key}' is not among the levels this notification applies to",
                    key=True,
                )
            parsed = due(text, (*base, "due", key))
            if parsed is not None:
                out[ResponseLevel(key) if key in ResponseLevel.__members__ else WarningLevel(key)] = parsed
        return out

    def _action(self, adoc: ActionDoc, path: Path) -> HttpAction | None:
        try:
            timeout = parse_duration(adoc.timeout)
        except DurationError as e:
            self.report((*path, "timeout"), f"invalid duration '{adoc.timeout}': {e.message}", offset=e.column)
            return None
        if timeout.is_working or not 0 < timeout.seconds <= 300:
            self.report((*path, "timeout"), "an action's timeout is between 1s and 5m")
            return None
        for name in adoc.headers:
            if name.lower() in ("authorization", "cookie", "x-api-key"):
                self.report(
                    (*path, "headers", name),
                    f"no credentials in a playbook: use 'secret: NAME' instead of the '{name}' header",
                    key=True,
                )
        return HttpAction(
            method=adoc.method,
            url=adoc.url,
            headers=dict(adoc.headers),
            body=adoc.body,
            secret=adoc.secret,
            timeout_seconds=float(timeout.seconds),
            retries=adoc.retries,
            confirm=adoc.confirm,
            expect_status=tuple(adoc.expect_status),
        )

    def _cycles(self, steps: list[StepDoc]) -> None:
        graph = {s.id: [d for d in s.depends_on] for s in steps}
        index = {s.id: i for i, s in enumerate(steps)}
        state: dict[str, int] = {}  # 1 = on the path, 2 = done
        reported: set[frozenset[str]] = set()
        for start, first_deps in graph.items():
            if state.get(start):
                continue
            path: list[str] = []
            stack: list[tuple[str, Iterator[str]]] = [(start, iter(first_deps))]
            state[start] = 1
            path.append(start)
            while stack:
                node, children = stack[-1]
                nxt = next(children, None)
                if nxt is None:
                    stack.pop()
                    path.pop()
                    state[node] = 2
                    continue
                if nxt not in graph:
                    continue
                if state.get(nxt) == 1:
                    cycle = [*path[path.index(nxt) :], nxt]
                    members = frozenset(cycle)
                    if members not in reported:
                        reported.add(members)
                        first = cycle[0]
                        dep_index = graph[first].index(cycle[1]) if cycle[1] in graph[first] else 0
                        self.report(
                            ("steps", index[first], "depends_on", dep_index),
                            "dependency cycle: " + " -> ".join(cycle),
                        )
                elif not state.get(nxt):
                    state[nxt] = 1
                    path.append(nxt)
                    stack.append((nxt, iter(graph[nxt])))


# Stand-ins for malformed identity fields, so the rest of a playbook can still be checked.
_STAND_INS: dict[str, Any] = {
    "id": "x",
    "version": "0",
    "title": {"zh-CN": "-", "en": "-"},
    "category": "outage",
    "type": "other/other",
    "owner": "-",
    "approval": {"status": "draft"},
    "review_by": None,
    "scope": None,
    "references": [],
    "regimes": [],
    "calendar": {},
    "sitrep": None,
    "restoration": {"degraded": {"zh-CN": "-", "en": "-"}, "full": {"zh-CN": "-", "en": "-"}},
}


def _on_keys(located: Located, problem: Problem, keys: set[Any]) -> bool:
    """Whether a problem sits on one of these top-level keys (a stand-in's own problem)."""
    for key in keys:
        mark = located.keys.get((key,))
        if mark is not None and mark.line == problem.line:
            return True
    return False


def _text(doc: TextDoc | None) -> Text | None:
    return None if doc is None else Text(doc.zh_cn, doc.en)


def _text_required(doc: TextDoc) -> Text:
    return Text(doc.zh_cn, doc.en)


def _signature(fact: Fact) -> FactSignature:
    return FactSignature(FactType[fact.kind.name], fact.values)


def _did_you_mean(name: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


# -- mapping pydantic errors onto the file ---------------------------------------------------------


def _prefer_matching_union_branch(errors: list[Any], data: Any) -> list[Any]:
    """A value checked against `str | dict` fails twice; keep the branch that matches the input's type."""
    out = []
    for err in errors:
        node = data
        drop = False
        for part in err["loc"]:
            if (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and part < len(node)
            ):
                node = node[part]
            elif isinstance(part, str) and (part == "str" or part.startswith(("dict[", "list["))):
                is_dict = part.startswith("dict[")
                is_list = part.startswith("list[")
                if (is_dict and not isinstance(node, dict)) or (is_list and not isinstance(node, list)):
                    drop = True
                if part == "str" and isinstance(node, dict | list):
                    drop = True
        if not drop:
            out.append(err)
    return out or errors


def _data_path(loc: tuple[Any, ...], data: Any) -> tuple[Path, type[BaseModel] | None]:
    """Keep the parts of a pydantic location that exist in the data (dropping union tags)."""
    path: list[str | int] = []
    node = data
    model: type[BaseModel] | None = PlaybookDoc
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
            if not last:
                model = _field_model(model, part) if model else None
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(part)
            node = node[part]
        elif last:
            path.append(part)
        elif (
            isinstance(node, dict)
            and isinstance(part, str)
            and not part.startswith(("dict[", "list["))
            and part != "str"
        ):
            # a key that is missing on the way (should not happen before the last part)
            path.append(part)
            node = None
    return tuple(path), model


def _field_model(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    for fname, info in model.model_fields.items():
        if name in (fname, info.alias):
            return _find_model(info.annotation)
    return None


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _find_model(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, dict):
        for arg in typing.get_args(annotation):
            found = _find_model(arg)
            if found is not None:
                return found
    return None


def _fields_of(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _value_message(err: Mapping[str, Any], path: Path) -> str:
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    name = str(path[-1]) if path and isinstance(path[-1], str) else "value"
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        options = re.findall(r"'([^']*)'", str(expected))
        hint = _did_you_mean(str(value), options) if isinstance(value, str) else ""
        return f"invalid {name} {value!r}: expected {expected}{hint}"
    if kind == "string_pattern_mismatch":
        if name in ("id", "role", "declared_by", "escalate_to", "kind", "template") or isinstance(path[-1], int):
            return f"invalid id {value!r}: use lower-case letters, digits, '_' and '-', starting with a letter"
        if name == "name":
            return f"invalid fact name {value!r}: use lower_snake_case"
        if name == "url":
            return f"invalid url {value!r}: an http:// or https:// URL"
        if name == "secret":
            return f"invalid secret name {value!r}: use UPPER_SNAKE_CASE"
        if name == "country":
            return f"invalid country code {value!r}: two capital letters such as CN or US"
        return f"invalid {name} {value!r}: unparsable duration (e.g. 90s, 30m, 2h, 3d, 3wd)"
    if kind in (
        "string_type",
        "int_type",
        "int_parsing",
        "bool_type",
        "bool_parsing",
        "date_type",
        "date_from_datetime_parsing",
        "date_parsing",
        "list_type",
        "dict_type",
        "model_type",
        "model_attributes_type",
        "float_type",
    ):
        want = {
            "string_type": "text",
            "int_type": "an integer",
            "int_parsing": "an integer",
            "bool_type": "true or false",
            "bool_parsing": "true or false",
            "date_type": "a date (YYYY-MM-DD)",
            "date_parsing": "a date (YYYY-MM-DD)",
            "date_from_datetime_parsing": "a date (YYYY-MM-DD)",
            "list_type": "a list",
            "dict_type": "a mapping",
            "model_type": "a mapping",
            "model_attributes_type": "a mapping",
            "float_type": "a number",
        }[kind]
        return f"wrong type for {name}: expected {want}, got {_yaml_type(value)}"
    if kind in ("too_short", "string_too_short"):
        return f"{name} must not be empty"
    if kind in ("string_too_long", "too_long"):
        return f"{name} is too long"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"invalid {name} {value!r}: {err['msg'].lower()}"
    return f"invalid {name}: {err['msg']}"


def _yaml_type(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, date):
        return f"a date ({value})"
    return type(value).__name__


__all__ = ["Compiled", "compile_source"]
