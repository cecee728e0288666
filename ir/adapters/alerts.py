"""Alert intake's outside world: the rules file (YAML, checked on load against the playbook library, every
problem named with its line) and the deduplication tables (alert_fingerprints, alert_groups)."""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ir.adapters.db.tables import alert_fingerprints, alert_groups
from ir.adapters.db.uow import Database, SqlUnitOfWork
from ir.adapters.playbooks.problems import Problem
from ir.adapters.playbooks.yaml_source import Located, YamlRefused, decode_source, load_located, read_source
from ir.app.alerts import (
    LABEL_NAME,
    AlertGroupRow,
    AlertRace,
    AlertRule,
    AlertRules,
    AlertRulesInvalid,
    FactSource,
    FingerprintWrite,
    Matcher,
    SeenAlert,
    Template,
    TemplateError,
    check_rule_facts,
)
from ir.app.ports import PlaybookSource, UnitOfWork
from ir.domain.errors import IrError

MAX_PATTERN = 1000

# -- the rules file ------------------------------------------------------------------------------------

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
SourceName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleDoc(_Strict):
    id: RuleId = Field(description="the rule's id: a-z, 0-9, _ . -")
    description: str | None = None
    sources: list[SourceName] = Field(default_factory=list, description="only alerts from these sources")
    match: dict[str, str | int] = Field(default_factory=dict, description="labels equal to these values")
    match_re: dict[str, str] = Field(default_factory=dict, description="labels matching these regular expressions")
    playbook: str = Field(min_length=1, max_length=500, description="a playbook id from the library")
    mode: Literal["real", "test"] = "real"
    title: str | None = Field(default=None, max_length=1000)
    summary: str | None = Field(default=None, max_length=10_000)
    group_by: list[str] = Field(default_factory=lambda: ["alertname"])
    facts: dict[str, str | bool | int | float] = Field(default_factory=dict)


class RulesDoc(_Strict):
    version: int = Field(default=1, ge=1, le=1, description="the rules format: 1")
    rules: list[RuleDoc] = Field(default_factory=list)


def _problem(located: Located, filename: str, path: tuple[str | int, ...], message: str) -> str:
    mark = located.mark(path)
    return str(Problem(filename, mark.line, mark.column, "error", message))


def compile_rules(text: str, filename: str, *, playbooks: PlaybookSource) -> AlertRules:
    """The rules of one file, every problem reported at once (AlertRulesInvalid)."""
    try:
        located = load_located(text, filename)
    except YamlRefused as refused:
        problem = refused.problem
        message = problem.message.replace("a playbook is a YAML mapping", "alert rules are a YAML mapping")
        raise AlertRulesInvalid([str(Problem(problem.file, problem.line, problem.column, "error", message))]) from None
    if not isinstance(located.data, dict):
        raise AlertRulesInvalid([_problem(located, filename, (), "alert rules are a mapping with a list of rules")])
    try:
        doc = RulesDoc.model_validate(located.data)
    except ValidationError as exc:
        shape = []
        for error in exc.errors():
            loc = tuple(p for p in error["loc"] if isinstance(p, str | int))
            where = ".".join(str(p) for p in loc)
            shape.append(_problem(located, filename, loc, f"{where}: {error['msg']}" if where else error["msg"]))
        raise AlertRulesInvalid(shape) from None
    problems: list[str] = []
    rules: list[AlertRule] = []
    seen: set[str] = set()
    for i, rdoc in enumerate(doc.rules):
        base: tuple[str | int, ...] = ("rules", i)

        def report(path: tuple[str | int, ...], message: str, base: tuple[str | int, ...] = base) -> None:
            problems.append(_problem(located, filename, (*base, *path), message))

        if rdoc.id in seen:
            report(("id",), f"duplicate rule id '{rdoc.id}'")
        seen.add(rdoc.id)
        matchers: list[Matcher] = []
        for label, value in rdoc.match.items():
            if not LABEL_NAME.match(label):
                report(("match", label), f"'{label}' is not a label name ([A-Za-z_][A-Za-z0-9_]*)")
            matchers.append(Matcher(label, value=str(value)))
        for label, pattern in rdoc.match_re.items():
            if not LABEL_NAME.match(label):
                report(("match_re", label), f"'{label}' is not a label name ([A-Za-z_][A-Za-z0-9_]*)")
            if len(pattern) > MAX_PATTERN:
                report(("match_re", label), f"a pattern has at most {MAX_PATTERN:,} characters")
                continue
            try:
                matchers.append(Matcher(label, pattern=re.compile(pattern)))
            except re.error as exc:
                report(("match_re", label), f"not a regular expression: {exc}")
        if not rdoc.match and not rdoc.match_re:
            report(
                ("id",),
                f"rule '{rdoc.id}' matches nothing in particular: give match or match_re "
                "(match_re: {alertname: '.+'} to take every alert)",
            )
        for j, label in enumerate(rdoc.group_by):
            if not LABEL_NAME.match(label):
                report(("group_by", j), f"'{label}' is not a label name ([A-Za-z_][A-Za-z0-9_]*)")
        templates: dict[str, Template | None] = {}
        for name in ("title", "summary"):
            text_value = getattr(rdoc, name)
            templates[name] = None
            if text_value is not None:
                try:
                    templates[name] = Template.parse(text_value)
                except TemplateError as exc:
                    report((name,), str(exc))
        facts: dict[str, FactSource] = {}
        for name, given in rdoc.facts.items():
            if isinstance(given, str):
                try:
                    facts[name] = Template.parse(given)
                except TemplateError as exc:
                    report(("facts", name), f"fact '{name}': {exc}")
            else:
                facts[name] = given
        try:
            playbook = playbooks.get(rdoc.playbook)
        except IrError as exc:
            report(("playbook",), exc.message)
        else:
            for name, message in check_rule_facts(playbook, facts):
                report(("facts", name), message)
        rules.append(
            AlertRule(
                id=rdoc.id,
                playbook=rdoc.playbook,
                matchers=tuple(matchers),
                mode=rdoc.mode,
                title=templates["title"],
                summary=templates["summary"],
                facts=facts,
                group_by=tuple(rdoc.group_by),
                sources=frozenset(rdoc.sources),
            )
        )
    if problems:
        raise AlertRulesInvalid(problems)
    return AlertRules(tuple(rules), origin=filename)


def load_rules(path: str, *, playbooks: PlaybookSource) -> AlertRules:
    try:
        text = decode_source(read_source(path), path)
    except YamlRefused as refused:
        raise AlertRulesInvalid([str(refused.problem)]) from None
    return compile_rules(text, path, playbooks=playbooks)


class RulesFile:
    """The rules file, loaded on first use and again whenever it changes on disk (a bad edit is refused:
    webhooks answer 503 naming the problem until it is fixed, so senders retry rather than lose alerts)."""

    def __init__(self, path: str, *, playbooks: PlaybookSource) -> None:
        self.path = path
        self.playbooks = playbooks
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._rules: AlertRules | None = None

    def __call__(self) -> AlertRules:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise AlertRulesInvalid([f"{self.path}: cannot read the alert rules: {exc.strerror or exc}"]) from None
        stamp = (st.st_mtime, st.st_size)
        with self._lock:
            if self._rules is None or stamp != self._stamp:
                self._rules = load_rules(self.path, playbooks=self.playbooks)
                self._stamp = stamp
            return self._rules


# -- the deduplication tables -----------------------------------------------------------------------------

_F = alert_fingerprints
_G = alert_groups
_SEEN = (
    select(_F.c.fingerprint, _F.c.status, _F.c.incident_id, _F.c.starts_at, _F.c.count)
    .where(_F.c.fingerprint.in_(bindparam("keys", expanding=True)))
    .order_by(_F.c.fingerprint)
    .with_for_update()
)
_GROUPS = (
    select(_G.c.group_key, _G.c.incident_id)
    .where(_G.c.group_key.in_(bindparam("keys", expanding=True)))
    .order_by(_G.c.group_key)
    .with_for_update()
)
_TOUCH = (
    update(_F)
    .where(_F.c.fingerprint == bindparam("b_key"))
    .values(last_seen=bindparam("b_at"), count=_F.c.count + bindparam("b_n"))
)
_CHANGE = (
    update(_F)
    .where(_F.c.fingerprint == bindparam("b_key"))
    .values(
        rule=bindparam("b_rule"),
        group_key=bindparam("b_group"),
        incident_id=bindparam("b_incident"),
        status=bindparam("b_status"),
        starts_at=bindparam("b_starts"),
        ends_at=bindparam("b_ends"),
        summary=bindparam("b_summary"),
        last_seen=bindparam("b_at"),
        count=_F.c.count + bindparam("b_n"),
    )
)
_RACES = {"40P01", "40001"}  # PostgreSQL: deadlock detected, serialization failure


class SqlAlertLedger:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _run(self, statement: Any, params: Any = None) -> Any:
        try:
            return self.conn.execute(statement, params)
        except IntegrityError:
            raise AlertRace() from None
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) in _RACES:
                raise AlertRace() from None
            raise

    def seen(self, keys: Sequence[str]) -> dict[str, SeenAlert]:
        if not keys:
            return {}
        rows = self._run(_SEEN, {"keys": list(keys)})
        return {r[0]: SeenAlert(r[0], r[1], r[2], r[3], int(r[4])) for r in rows}

    def groups(self, keys: Sequence[str]) -> dict[str, AlertGroupRow]:
        if not keys:
            return {}
        rows = self._run(_GROUPS, {"keys": list(keys)})
        return {r[0]: AlertGroupRow(r[0], None if r[1] is None else int(r[1])) for r in rows}

    def touch(self, counts: Mapping[str, int], *, at: datetime) -> None:
        params = [{"b_key": key, "b_at": at, "b_n": n} for key, n in sorted(counts.items())]
        if params:
            self._run(_TOUCH, params)

    def write(self, rows: Sequence[FingerprintWrite], *, at: datetime) -> None:
        new = [
            {
                "fingerprint": w.key,
                "source": w.source,
                "rule": w.rule,
                "group_key": w.group_key,
                "incident_id": w.incident_id,
                "status": w.status,
                "starts_at": w.starts_at,
                "ends_at": w.ends_at,
                "summary": w.summary,
                "first_seen": at,
                "last_seen": at,
                "count": w.add,
            }
            for w in rows
            if w.new
        ]
        changed = [
            {
                "b_key": w.key,
                "b_rule": w.rule,
                "b_group": w.group_key,
                "b_incident": w.incident_id,
                "b_status": w.status,
                "b_starts": w.starts_at,
                "b_ends": w.ends_at,
                "b_summary": w.summary,
                "b_at": at,
                "b_n": w.add,
            }
            for w in rows
            if not w.new
        ]
        if new:
            self._run(insert(_F), new)
        if changed:
            self._run(_CHANGE, changed)

    def claim_group(self, key: str, *, rule: str, labels: Mapping[str, str], at: datetime) -> None:
        self._run(
            insert(_G).values(
                group_key=key,
                rule=rule,
                labels=json.dumps(dict(labels), ensure_ascii=False, sort_keys=True),
                incident_id=None,
                opened_at=at,
                updated_at=at,
            )
        )

    def bind_group(self, key: str, *, incident_id: int, at: datetime) -> None:
        self._run(update(_G).where(_G.c.group_key == key).values(incident_id=incident_id, updated_at=at))


def is_race(exc: Exception) -> bool:
    """Whether a database error means another transaction wrote the same row first (decide again)."""
    if isinstance(exc, IntegrityError):
        return True
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _RACES


def release_thread_connection(db: Database) -> None:
    """Close the calling thread's write connection (a thread that stops for good holds it no longer)."""
    local = getattr(db, "_local", None)  # Database keeps one write connection per thread
    conn = getattr(local, "conn", None)
    if conn is not None:
        conn.close()
        local.conn = None  # type: ignore[union-attr]


def ledger_of(uow: UnitOfWork) -> SqlAlertLedger:
    """The ledger on a unit of work's transaction."""
    assert isinstance(uow, SqlUnitOfWork), "alert intake runs on the SQL unit of work"
    return SqlAlertLedger(uow.conn)


def list_alerts(
    conn: Connection, *, incident_id: int | None = None, status: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Fingerprint rows, most recently seen first, and how many there are in all."""
    query = select(_F)
    counted = select(func.count()).select_from(_F)
    if incident_id is not None:
        query = query.where(_F.c.incident_id == incident_id)
        counted = counted.where(_F.c.incident_id == incident_id)
    if status is not None:
        query = query.where(_F.c.status == status)
        counted = counted.where(_F.c.status == status)
    rows = conn.execute(query.order_by(_F.c.last_seen.desc(), _F.c.fingerprint).limit(limit).offset(offset))
    total = int(conn.execute(counted).scalar_one())
    return [dict(r) for r in rows.mappings()], total
