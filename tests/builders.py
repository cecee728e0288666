"""Builders for test data: a small valid playbook, as text, with known line numbers."""

from __future__ import annotations

MINIMAL_PLAYBOOK = """\
id: mini
version: "1.0"
title: {zh-CN: 最小预案, en: Minimal plan}
category: outage
type: equipment-failure/hardware
owner: NOC
approval: {status: approved, by: leading group, on: 2026-01-01}
review_by: 2099-01-01
roles:
  - id: commander
    title: {zh-CN: 指挥长, en: Commander}
  - id: noc
    title: {zh-CN: 网管, en: NOC}
facts:
  - name: affected_users
    type: integer
    title: {zh-CN: 受影响用户, en: Users affected}
  - name: scope
    type: enum
    values: [city, province, national]
    title: {zh-CN: 范围, en: Scope}
levels:
  I:
    criteria: affected_users >= 1_000_000
    declared_by: commander
    rto: 2h
    rpo: 0s
    mtpd: 6h
  II:
    criteria: affected_users >= 100_000
    declared_by: commander
    rto: 4h
    rpo: 0s
    mtpd: 12h
  III:
    criteria: affected_users >= 10_000
    declared_by: commander
    rto: 8h
    rpo: 0s
    mtpd: 24h
  IV:
    criteria: affected_users >= 1
    declared_by: commander
    rto: 12h
    rpo: 0s
    mtpd: 48h
steps:
  - id: confirm
    title: {zh-CN: 确认, en: Confirm}
    instructions: {zh-CN: 确认故障, en: Confirm the fault}
    role: noc
    due: detection + 15m
  - id: fix
    title: {zh-CN: 修复, en: Fix}
    instructions: {zh-CN: 修复故障, en: Fix the fault}
    role: noc
    depends_on: [confirm]
    kind: restore
    restores: full
notifications:
  - id: tell-regulator
    title: {zh-CN: 报告, en: Report}
    audience: regulator
    roles: [commander]
    channels: [email]
    template: regulator-initial
    due: detection + 30m
restoration:
  degraded: {zh-CN: 部分恢复, en: Partly back}
  full: {zh-CN: 全部恢复, en: All back}
"""


def line_of(text: str, needle: str) -> int:
    """The 1-based line on which `needle` first appears in `text`."""
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in text")


# -- the runner's playbook (tests of incidents and deadlines) ---------------------------------------

import functools  # noqa: E402

from ir.domain.playbook import Playbook  # noqa: E402


def runner_playbook_source() -> str:
    """MINIMAL_PLAYBOOK grown into a plan that exercises the runner: parallel branches, approvals,
    evidence, a checklist, a condition on a fact, level-limited steps, degraded and full restoration,
    a repeating notification, due times anchored to a step, negative and in working days.

    The DAG (levels I-IV unless said):

        confirm ──┬── isolate ── mitigate ── reroute ──┬── restore-full
                  ├── inform-users ────────────────────┘
                  ├── vendor-escalation  (when peak_gbps >= 50)
                  └── war-room           (levels I, II)
        prepare          (due expected_impact - 24h)
        regulator-filing (due detection + 2wd)
    """
    header = MINIMAL_PLAYBOOK.split("facts:\n", 1)[0].replace("id: mini\n", "id: runner\n", 1)
    return header + _RUNNER_BODY


_RUNNER_BODY = """\
facts:
  - name: affected_users
    type: integer
    title: {zh-CN: 受影响用户, en: Users affected}
  - name: scope
    type: enum
    values: [city, province, national]
    title: {zh-CN: 范围, en: Scope}
  - name: peak_gbps
    type: number
    title: {zh-CN: 峰值流量, en: Peak traffic}
  - name: cii_involved
    type: boolean
    title: {zh-CN: 涉及关键信息基础设施, en: CII involved}
  - name: outage_duration
    type: duration
    title: {zh-CN: 中断时长, en: Outage so far}
levels:
  I:
    criteria: affected_users >= 1_000_000 or (cii_involved and scope == "national")
    declared_by: commander
    rto: 2h
    rpo: 15m
    mtpd: 6h
  II:
    criteria: affected_users >= 100_000 or peak_gbps >= 100
    declared_by: commander
    rto: 4h
    rpo: 30m
    mtpd: 12h
  III:
    criteria: affected_users >= 10_000
    declared_by: commander
    rto: 8h
    rpo: 1h
    mtpd: 24h
  IV:
    criteria: affected_users >= 1 or peak_gbps >= 1
    declared_by: commander
    rto: 12h
    rpo: 4h
    mtpd: 48h
steps:
  - id: confirm
    title: {zh-CN: 确认, en: Confirm}
    instructions: {zh-CN: 确认故障, en: Confirm the fault}
    role: noc
    due: detection + 15m
    checklist:
      - {zh-CN: 告警来源, en: Alarm source}
      - {zh-CN: 影响范围, en: Scope}
      - {zh-CN: 更新事实, en: Update the facts}
  - id: isolate
    title: {zh-CN: 隔离, en: Isolate}
    instructions: {zh-CN: 隔离故障点, en: Isolate the fault}
    role: noc
    depends_on: [confirm]
    due: step:confirm + 30m
  - id: inform-users
    title: {zh-CN: 告知用户, en: Inform users}
    instructions: {zh-CN: 发布公告, en: Post a notice}
    role: commander
    depends_on: [confirm]
    due: detection + 1h
  - id: vendor-escalation
    title: {zh-CN: 厂商升级, en: Escalate to the vendor}
    instructions: {zh-CN: 请求厂商支持, en: Ask the vendor for help}
    role: noc
    depends_on: [confirm]
    when: peak_gbps >= 50
  - id: war-room
    title: {zh-CN: 作战室, en: War room}
    instructions: {zh-CN: 召集作战室, en: Convene the war room}
    role: commander
    depends_on: [confirm]
    levels: [I, II]
    due: detection + 30m
  - id: mitigate
    title: {zh-CN: 缓解, en: Mitigate}
    instructions: {zh-CN: 降级恢复业务, en: Bring service back degraded}
    role: noc
    depends_on: [isolate]
    kind: restore
    restores: degraded
    evidence:
      required: true
      description: {zh-CN: 流量截图, en: Traffic graphs}
  - id: reroute
    title: {zh-CN: 切换路由, en: Reroute}
    instructions: {zh-CN: 切换到备用路由, en: Switch to the standby route}
    role: noc
    depends_on: [mitigate]
    approvals: [commander, noc]
  - id: restore-full
    title: {zh-CN: 完全恢复, en: Restore fully}
    instructions: {zh-CN: 恢复全部业务, en: Bring everything back}
    role: noc
    depends_on: [reroute, inform-users]
    kind: restore
    restores: full
  - id: prepare
    title: {zh-CN: 预置, en: Prepare}
    instructions: {zh-CN: 预置资源, en: Pre-position resources}
    role: noc
    due: expected_impact - 24h
  - id: regulator-filing
    title: {zh-CN: 书面报告, en: Written report}
    instructions: {zh-CN: 提交书面报告, en: File the written report}
    role: commander
    due: detection + 2wd
notifications:
  - id: tell-regulator
    title: {zh-CN: 报告, en: Report}
    audience: regulator
    roles: [commander]
    channels: [email]
    template: regulator-initial
    due: {I: detection + 30m, II: detection + 1h, III: detection + 2h, IV: detection + 4h}
    repeat: 2h
  - id: callout
    title: {zh-CN: 集结, en: Call-out}
    audience: internal
    roles: [noc]
    channels: [sms]
    template: incident-declared
    due: declaration + 5m
  - id: press
    title: {zh-CN: 新闻发布, en: Press release}
    audience: users
    groups: [press]
    channels: [status_page]
    template: customer-impact
    levels: [I, II]
    due: step:confirm + 1h
restoration:
  degraded: {zh-CN: 部分恢复, en: Partly back}
  full: {zh-CN: 全部恢复, en: All back}
"""


@functools.cache
def runner_playbook() -> Playbook:
    """The compiled runner_playbook_source()."""
    from ir.adapters.playbooks.compiler import compile_source

    compiled = compile_source(runner_playbook_source().encode(), "runner.yaml")
    assert compiled.playbook is not None, [str(p) for p in compiled.problems]
    return compiled.playbook


from collections.abc import Callable  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

from ir.domain import decisions  # noqa: E402
from ir.domain.errors import IrError  # noqa: E402
from ir.domain.events import Event, FactValue  # noqa: E402
from ir.domain.incident import Incident, Mode  # noqa: E402
from ir.domain.levels import ResponseLevel  # noqa: E402
from ir.domain.snapshot import to_snapshot  # noqa: E402

RUN_START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
"""A Monday, 09:00 in Shanghai: the fixed instant runner tests start at."""

Decision = Callable[..., list[Event]]


class IncidentRun:
    """An incident driven through the decision functions on an explicit clock, keeping every accepted event.

    `do(fn, ...)` calls `fn(incident, ..., actor=, now=)` and folds what it returns; `refuse(fn, ...)` expects
    an IrError and checks that the refusal changed nothing.
    """

    def __init__(
        self,
        *,
        playbook: Playbook | None = None,
        facts: dict[str, FactValue] | None = None,
        level: ResponseLevel | None = None,
        detected_at: datetime | None = None,
        now: datetime = RUN_START,
        incident_id: int = 7,
        actor: str = "alice",
    ) -> None:
        self.playbook = playbook or runner_playbook()
        self.now = now
        self.actor = actor
        self.incident = Incident(id=incident_id, playbook=self.playbook)
        self.events: list[Event] = []
        self.fold(
            decisions.open_incident(
                playbook=self.playbook,
                title="Fibre cut on the ring",
                mode=Mode.REAL,
                facts=facts or {},
                actor=actor,
                now=now,
                detected_at=detected_at,
            )
        )
        if level is not None:
            self.do(decisions.declare_level, level, reason=None)

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def fold(self, events: list[Event]) -> list[Event]:
        for event in events:
            self.incident.apply(event)
        self.events.extend(events)
        return events

    def do(self, fn: Decision, *args: Any, actor: str | None = None, **kwargs: Any) -> list[Event]:
        return self.fold(fn(self.incident, *args, actor=actor or self.actor, now=self.now, **kwargs))

    def refuse(self, fn: Decision, *args: Any, actor: str | None = None, **kwargs: Any) -> IrError:
        before = to_snapshot(self.incident)
        version = self.incident.version
        try:
            fn(self.incident, *args, actor=actor or self.actor, now=self.now, **kwargs)
        except IrError as refused:
            assert self.incident.version == version == len(self.events)
            assert to_snapshot(self.incident) == before
            return refused
        raise AssertionError(f"{fn.__name__}{args} was not refused")
