"""The named instants of an incident (DESIGN.md, Time) and the Clock port."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from ir.domain.text import Text


class ClockName(StrEnum):
    DETECTION = "detection"
    AWARENESS = "awareness"
    DECLARATION = "declaration"
    CLASSIFICATION = "classification"
    REPORTABILITY = "reportability"
    EXPECTED_IMPACT = "expected_impact"
    MITIGATION = "mitigation"
    RESTORATION_DEGRADED = "restoration_degraded"
    RESTORATION_FULL = "restoration_full"
    RESPONSE_END = "response_end"
    CLOSURE = "closure"
    LAST_GOOD_DATA = "last_good_data"  # the last point to which data is known good (for RPO)

    @property
    def label(self) -> Text:
        return CLOCK_LABELS[self]


CLOCK_LABELS: dict[ClockName, Text] = {
    ClockName.DETECTION: Text("发现", "detection"),
    ClockName.AWARENESS: Text("知悉", "awareness"),
    ClockName.DECLARATION: Text("启动响应", "declaration"),
    ClockName.CLASSIFICATION: Text("定级", "classification"),
    ClockName.REPORTABILITY: Text("达到报告标准", "reportability"),
    ClockName.EXPECTED_IMPACT: Text("预计影响", "expected impact"),
    ClockName.MITIGATION: Text("缓解", "mitigation"),
    ClockName.RESTORATION_DEGRADED: Text("降级恢复", "degraded restoration"),
    ClockName.RESTORATION_FULL: Text("完全恢复", "full restoration"),
    ClockName.RESPONSE_END: Text("响应结束", "response end"),
    ClockName.CLOSURE: Text("关闭", "closure"),
    ClockName.LAST_GOOD_DATA: Text("最后有效数据点", "last good data point"),
}

CLOCK_NAMES: frozenset[str] = frozenset(c.value for c in ClockName)


class Clock(Protocol):
    """The only way any code reads the time: timezone-aware UTC instants."""

    def now(self) -> datetime: ...
