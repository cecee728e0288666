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
