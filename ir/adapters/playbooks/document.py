"""The playbook file, as its author writes it: pydantic models that check shape and generate the JSON Schema.

Semantic checks (references, cycles, durations, expressions) and the translation into the domain's
Playbook happen in ir.adapters.playbooks.compiler; docs/playbooks.md documents every field.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Ident = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,63}$"),
    Field(description="lower-case id: a-z, 0-9, _ and -"),
]
FactName = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$"), Field(description="lower_snake_case fact name")
]
DurationText = Annotated[
    str,
    Field(
        description="elapsed time (90s, 30m, 2h, 3d, 1h30m; 1d = 24h) or working days (3wd)",
        pattern=r"^\s*\d",
    ),
]
DueText = Annotated[
    str,
    Field(
        description="a clock or step:<id>, optionally plus or minus a duration: "
        "'declaration + 30m', 'expected_impact - 24h', 'step:confirm + 1h'",
    ),
]
ExpressionText = Annotated[
    str,
    Field(description="an expression over facts: 'affected_users >= 1_000_000 or provinces_affected >= 2'"),
]
LevelKey = Literal["I", "II", "III", "IV"]
WarningKey = Literal["red", "orange", "yellow", "blue"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, str_strip_whitespace=False)


class TextDoc(Strict):
    """Text a person reads, in both languages."""

    zh_cn: str = Field(alias="zh-CN", min_length=1)
    en: str = Field(min_length=1)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class ReferenceDoc(Strict):
    document: str = Field(min_length=1, description="the regulation, standard or plan this playbook implements")
    clause: str | None = Field(default=None, description="the clause or article, e.g. '4.2' or 'Art. 23'")
    regime: str | None = Field(default=None, description="the regulatory regime id, when the reference is one")


class ApprovalDoc(Strict):
    status: Literal["draft", "approved"]
    by: str | None = Field(default=None, description="who approved it (a body or a role, never a phone number)")
    on: dt.date | None = Field(default=None, description="the date of approval")


class RoleDoc(Strict):
    id: Ident
    title: TextDoc
    description: TextDoc | None = None


class FactDoc(Strict):
    name: FactName
    type: Literal["integer", "number", "boolean", "string", "enum", "duration"]
    title: TextDoc
    unit: str | None = Field(default=None, description="the unit, e.g. users, sites, km, %")
    description: TextDoc | None = None
    values: list[Annotated[str, StringConstraints(min_length=1)]] | None = Field(
        default=None, description="the allowed values of an enum fact"
    )
    personal: bool = Field(
        default=False,
        description="personal data (a caller number, a customer id): sealed per person, masked, never in criteria",
    )


class LevelDoc(Strict):
    criteria: ExpressionText
    declared_by: Ident = Field(description="the role allowed to declare this level")
    rto: DurationText = Field(description="recovery time objective, from detection")
    rpo: DurationText = Field(description="recovery point objective: the data loss tolerated")
    mtpd: DurationText = Field(description="maximum tolerable period of disruption")
    escalate_to: Ident | None = Field(default=None, description="the role to escalate to (never a person)")
    description: TextDoc | None = None


class LevelsDoc(Strict):
    I: LevelDoc  # noqa: E741 - the level is called I
    II: LevelDoc
    III: LevelDoc
    IV: LevelDoc


class WarningDoc(Strict):
    criteria: ExpressionText
    declared_by: Ident
    description: TextDoc | None = None


class WarningsDoc(Strict):
    red: WarningDoc | None = None
    orange: WarningDoc | None = None
    yellow: WarningDoc | None = None
    blue: WarningDoc | None = None


class EvidenceDoc(Strict):
    required: bool = True
    description: TextDoc | None = None


class ResourceRequestDoc(Strict):
    kind: Ident
    quantity: int = Field(ge=1)
    needed_by: DueText | None = None


class ActionDoc(Strict):
    type: Literal["http"] = "http"
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str = Field(pattern=r"^https?://[^\s/]+", description="http(s) URL; the host must be on the allow-list")
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    secret: str | None = Field(
        default=None,
        pattern=r"^[A-Z][A-Z0-9_]{0,63}$",
        description="name of a bearer token given at run time as IR_SECRET_<NAME>; never the token itself",
    )
    timeout: DurationText = "10s"
    retries: int = Field(default=2, ge=0, le=10)
    confirm: bool = Field(default=False, description="the commander confirms before the call is made")
    expect_status: list[int] = Field(default_factory=lambda: [200, 201, 202, 204])


class StepDoc(Strict):
    id: Ident
    title: TextDoc
    instructions: TextDoc
    role: Ident
    depends_on: list[Ident] = Field(default_factory=list)
    levels: list[LevelKey] | None = Field(default=None, description="levels it applies to; default all")
    warnings: list[WarningKey] | None = Field(default=None, description="warning levels it prepares for")
    due: DueText | None = None
    checklist: list[TextDoc] = Field(default_factory=list)
    evidence: EvidenceDoc | None = None
    approvals: list[Ident] = Field(default_factory=list, description="one approval per entry, by role")
    when: ExpressionText | None = Field(default=None, description="the step applies only when this holds")
    action: ActionDoc | None = None
    requests: list[ResourceRequestDoc] = Field(default_factory=list)
    kind: Literal["task", "restore", "rollback"] = "task"
    restores: Literal["degraded", "full"] | None = Field(
        default=None, description="completing this restore step records the restoration"
    )


class ResourceDoc(Strict):
    kind: Ident
    title: TextDoc
    unit: TextDoc


class NotificationDoc(Strict):
    id: Ident
    title: TextDoc
    audience: Literal["internal", "users", "regulator", "partners"]
    roles: list[Ident] = Field(default_factory=list, description="playbook roles to notify")
    groups: list[Ident] = Field(default_factory=list, description="contact groups kept in the database")
    channels: list[
        Literal[
            "email",
            "sms",
            "phone",
            "webhook",
            "dingtalk",
            "wecom",
            "feishu",
            "slack",
            "teams",
            "cap",
            "status_page",
        ]
    ] = Field(min_length=1)
    template: Ident
    levels: list[LevelKey] | None = None
    warnings: list[WarningKey] | None = None
    due: DueText | dict[LevelKey | WarningKey, DueText] = Field(
        description="one due time, or one per level / warning level"
    )
    repeat: DurationText | None = Field(default=None, description="progress updates at this interval")
    regime: str | None = Field(default=None, description="the regulatory regime this notification satisfies")
    critical: bool = Field(default=False, description="escalate when not delivered or not acknowledged in time")
    when: ExpressionText | None = None


class RestorationDoc(Strict):
    degraded: TextDoc
    full: TextDoc


class CalendarDoc(Strict):
    country: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    zone: str | None = None


class PlaybookDoc(Strict):
    """An emergency plan for one kind of incident."""

    id: Ident
    version: str = Field(min_length=1, max_length=32)
    title: TextDoc
    category: Literal["disaster", "outage", "attack"]
    type: str = Field(description="the GB/T 20986-2023 incident class (see docs/playbooks.md)")
    owner: str = Field(min_length=1, description="the owning department or body, never a person's contact")
    approval: ApprovalDoc
    review_by: dt.date | None = Field(default=None, description="the next review date; overdue is a warning")
    scope: TextDoc | None = None
    references: list[ReferenceDoc] = Field(default_factory=list)
    regimes: list[str] = Field(default_factory=list, description="regulatory regimes that apply, by id")
    calendar: CalendarDoc = Field(default_factory=CalendarDoc)
    roles: list[RoleDoc] = Field(min_length=1)
    facts: list[FactDoc] = Field(default_factory=list)
    levels: LevelsDoc
    warnings: WarningsDoc | None = None
    resources: list[ResourceDoc] = Field(default_factory=list)
    steps: list[StepDoc] = Field(min_length=1)
    notifications: list[NotificationDoc] = Field(default_factory=list)
    restoration: RestorationDoc
    sitrep: DurationText | dict[LevelKey, DurationText] | None = Field(
        default=None, description="situation reports at this interval (one, or one per level)"
    )
