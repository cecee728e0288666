"""A playbook, compiled: everything an emergency plan says, checked and ready to run.

The YAML file shape and its JSON Schema live in ir.adapters.playbooks; this module is the checked,
framework-free form the runner works with. Nothing here parses text except through
ir.domain.durations and ir.domain.expressions.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import cached_property

from ir.domain.clocks import ClockName
from ir.domain.durations import Duration
from ir.domain.expressions import Expression
from ir.domain.levels import ResponseLevel, WarningLevel
from ir.domain.text import Text


class Category(StrEnum):
    DISASTER = "disaster"
    OUTAGE = "outage"
    ATTACK = "attack"


class ApprovalStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"


class FactKind(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    STRING = "string"
    ENUM = "enum"
    DURATION = "duration"


class StepKind(StrEnum):
    TASK = "task"
    RESTORE = "restore"
    ROLLBACK = "rollback"


class Restoration(StrEnum):
    DEGRADED = "degraded"
    FULL = "full"


class Audience(StrEnum):
    INTERNAL = "internal"
    USERS = "users"
    REGULATOR = "regulator"
    PARTNERS = "partners"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PHONE = "phone"
    WEBHOOK = "webhook"
    DINGTALK = "dingtalk"
    WECOM = "wecom"
    FEISHU = "feishu"
    SLACK = "slack"
    TEAMS = "teams"
    CAP = "cap"
    STATUS_PAGE = "status_page"


REGIME_IDS: frozenset[str] = frozenset({"cn-cac-2025", "cn-miit-2017", "us-fcc-part4", "eu-gdpr", "eu-nis2", "eu-dora"})


@dataclass(frozen=True, slots=True)
class Due:
    """An instant relative to a named clock or to another step's completion.

    `anchor_step` is set when the anchor is `step:<id>`; otherwise `anchor_clock` is.
    """

    anchor_clock: ClockName | None
    anchor_step: str | None
    offset: Duration
    negative: bool = False
    source: str = ""

    def __str__(self) -> str:
        return self.source or _format_due(self)


def _format_due(due: Due) -> str:
    anchor = f"step:{due.anchor_step}" if due.anchor_step else str(due.anchor_clock.value if due.anchor_clock else "")
    if due.offset.is_zero:
        return anchor
    return f"{anchor} {'-' if due.negative else '+'} {due.offset}"


@dataclass(frozen=True, slots=True)
class Reference:
    document: str
    clause: str | None = None
    regime: str | None = None


@dataclass(frozen=True, slots=True)
class Approval:
    status: ApprovalStatus
    approved_by: str | None = None
    approved_on: date | None = None


@dataclass(frozen=True, slots=True)
class Role:
    id: str
    title: Text
    description: Text | None = None


@dataclass(frozen=True, slots=True)
class Fact:
    name: str
    kind: FactKind
    title: Text
    unit: str | None = None
    description: Text | None = None
    values: tuple[str, ...] = ()
    personal: bool = False


@dataclass(frozen=True, slots=True)
class LevelSpec:
    level: ResponseLevel
    criteria: Expression
    declared_by: str
    rto: Duration
    rpo: Duration
    mtpd: Duration
    escalate_to: str | None = None
    description: Text | None = None


@dataclass(frozen=True, slots=True)
class WarningSpec:
    level: WarningLevel
    criteria: Expression
    declared_by: str
    description: Text | None = None


@dataclass(frozen=True, slots=True)
class ResourceKind:
    kind: str
    title: Text
    unit: Text


@dataclass(frozen=True, slots=True)
class ResourceRequest:
    kind: str
    quantity: int
    needed_by: Due | None = None


@dataclass(frozen=True, slots=True)
class HttpAction:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: object = None
    secret: str | None = None
    timeout_seconds: float = 10.0
    retries: int = 2
    confirm: bool = False
    expect_status: tuple[int, ...] = (200, 201, 202, 204)

    @property
    def host(self) -> str:
        rest = self.url.split("://", 1)[1]
        return rest.split("/", 1)[0].split("@")[-1].rsplit(":", 1)[0] if rest else ""


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    title: Text
    instructions: Text
    role: str
    depends_on: tuple[str, ...] = ()
    levels: frozenset[ResponseLevel] = frozenset()
    warnings: frozenset[WarningLevel] = frozenset()
    due: Due | None = None
    checklist: tuple[Text, ...] = ()
    evidence_required: bool = False
    evidence_hint: Text | None = None
    approvals: tuple[str, ...] = ()
    when: Expression | None = None
    action: HttpAction | None = None
    requests: tuple[ResourceRequest, ...] = ()
    kind: StepKind = StepKind.TASK
    restores: Restoration | None = None

    def applies_to_level(self, level: ResponseLevel | None) -> bool:
        if level is None:
            return False
        if not self.levels:
            return not self.warnings
        return level in self.levels

    def applies_to_warning(self, warning: WarningLevel | None) -> bool:
        return warning is not None and warning in self.warnings


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    title: Text
    audience: Audience
    channels: tuple[Channel, ...]
    template: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    levels: frozenset[ResponseLevel] = frozenset()
    warnings: frozenset[WarningLevel] = frozenset()
    due: Mapping[ResponseLevel | WarningLevel | None, Due] = field(default_factory=dict)
    repeat: Duration | None = None
    regime: str | None = None
    critical: bool = False
    when: Expression | None = None

    def due_for(self, level: ResponseLevel | WarningLevel | None) -> Due | None:
        return self.due.get(level, self.due.get(None))

    def applies_to_level(self, level: ResponseLevel | None) -> bool:
        if level is None:
            return False
        if not self.levels:
            return not self.warnings
        return level in self.levels

    def applies_to_warning(self, warning: WarningLevel | None) -> bool:
        return warning is not None and warning in self.warnings


@dataclass(frozen=True, slots=True)
class Calendar:
    """Which official working-day calendar `wd` durations count on, and in which zone."""

    country: str = "CN"
    zone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class Playbook:
    id: str
    version: str
    title: Text
    category: Category
    type: str
    owner: str
    approval: Approval
    review_by: date | None
    references: tuple[Reference, ...]
    regimes: tuple[str, ...]
    roles: Mapping[str, Role]
    facts: Mapping[str, Fact]
    levels: Mapping[ResponseLevel, LevelSpec]
    warnings: Mapping[WarningLevel, WarningSpec]
    steps: Mapping[str, Step]
    resources: Mapping[str, ResourceKind]
    notifications: Mapping[str, Notification]
    restoration: Mapping[Restoration, Text]
    calendar: Calendar
    sitrep_interval: Mapping[ResponseLevel | None, Duration]
    scope: Text | None = None
    content_hash: str = ""
    source: str = field(default="", repr=False, compare=False)  # the YAML it was compiled from

    def steps_in_order(self) -> list[Step]:
        """Steps in a dependency order (a topological order stable with respect to the file)."""
        return self._order

    @cached_property
    def _order(self) -> list[Step]:
        return topological_order(self.steps)

    @cached_property
    def dependants(self) -> dict[str, tuple[str, ...]]:
        """For each step, the steps that depend on it."""
        out: dict[str, list[str]] = {}
        for s in self.steps.values():
            for dep in s.depends_on:
                out.setdefault(dep, []).append(s.id)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def notifications_anchored_to_step(self) -> dict[str, tuple[str, ...]]:
        """For each step, the notifications with a due time counting from its completion."""
        out: dict[str, list[str]] = {}
        for n in self.notifications.values():
            for due in n.due.values():
                if due.anchor_step is not None and n.id not in out.get(due.anchor_step, []):
                    out.setdefault(due.anchor_step, []).append(n.id)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def anchored_to_step(self) -> dict[str, tuple[str, ...]]:
        """For each step, the steps whose due time counts from its completion."""
        out: dict[str, list[str]] = {}
        for s in self.steps.values():
            if s.due is not None and s.due.anchor_step is not None:
                out.setdefault(s.due.anchor_step, []).append(s.id)
        return {k: tuple(v) for k, v in out.items()}

    def sitrep_interval_for(self, level: ResponseLevel | None) -> Duration | None:
        return self.sitrep_interval.get(level, self.sitrep_interval.get(None))


def topological_order(steps: Mapping[str, Step]) -> list[Step]:
    """Kahn's algorithm, taking ready steps in file order so the result reads like the plan."""
    position = {sid: i for i, sid in enumerate(steps)}
    waiting = {sid: len(set(s.depends_on)) for sid, s in steps.items()}
    dependants: dict[str, list[str]] = {sid: [] for sid in steps}
    for sid, s in steps.items():
        for dep in set(s.depends_on):
            dependants[dep].append(sid)
    ready = [(position[sid], sid) for sid, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    out: list[Step] = []
    while ready:
        _, sid = heapq.heappop(ready)
        out.append(steps[sid])
        for nxt in dependants[sid]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, (position[nxt], nxt))
    return out
