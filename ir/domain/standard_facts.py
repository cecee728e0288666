"""Facts every incident can record, whatever its playbook: what regulators' reports and reviews ask for.

A playbook may declare any of them itself (its own declaration wins); the rest are added when it is
compiled, so `ir fact ID cause="…"` works on every incident and reports fill their fields from the record.
"""

from __future__ import annotations

from ir.domain.playbook import Fact, FactKind
from ir.domain.text import Text

STANDARD_FACTS: tuple[Fact, ...] = (
    Fact("affected_users", FactKind.INTEGER, Text("受影响用户数", "Users affected"), "users"),
    Fact(
        "cii_involved", FactKind.BOOLEAN, Text("涉及关键信息基础设施", "Critical information infrastructure involved")
    ),
    Fact("central_state_organ", FactKind.BOOLEAN, Text("中央和国家机关", "A central state organ")),
    Fact("cause", FactKind.STRING, Text("事件原因", "Cause")),
    Fact("accountability", FactKind.STRING, Text("责任处理情况", "Accountability")),
    Fact("remediation", FactKind.STRING, Text("整改情况", "Remediation")),
    Fact("recommendations", FactKind.STRING, Text("有关建议", "Recommendations")),
    Fact("consequences", FactKind.STRING, Text("可能后果", "Likely consequences")),
    Fact("data_subjects", FactKind.STRING, Text("数据主体类别及大致人数", "Categories and number of data subjects")),
    Fact("records_affected", FactKind.STRING, Text("个人数据记录类别及大致数量", "Categories and number of records")),
    Fact("malicious", FactKind.BOOLEAN, Text("疑似非法或恶意行为所致", "Suspected unlawful or malicious act")),
    Fact("cross_border", FactKind.BOOLEAN, Text("可能有跨境影响", "Possible cross-border impact")),
    Fact("iocs", FactKind.STRING, Text("失陷指标", "Indicators of compromise")),
    Fact("best_practices", FactKind.STRING, Text("适用的最佳实践", "Best practices applicable")),
    Fact("bcp_activated", FactKind.BOOLEAN, Text("启动业务连续性计划", "Business continuity plan activated")),
)


def with_standard_facts(facts: dict[str, Fact]) -> dict[str, Fact]:
    out = dict(facts)
    for fact in STANDARD_FACTS:
        out.setdefault(fact.name, fact)
    return out
