"""Response levels I-IV and warning levels red/orange/yellow/blue, most severe first."""

from __future__ import annotations

from enum import StrEnum

from ir.domain.text import Text


class ResponseLevel(StrEnum):
    I = "I"  # noqa: E741 - the level is called I
    II = "II"
    III = "III"
    IV = "IV"

    @property
    def rank(self) -> int:
        """1 for the most severe (I), 4 for the least (IV)."""
        return _LEVEL_ORDER.index(self) + 1

    @property
    def label(self) -> Text:
        return _LEVEL_LABELS[self]

    def more_severe_than(self, other: ResponseLevel) -> bool:
        return self.rank < other.rank


_LEVEL_ORDER = [ResponseLevel.I, ResponseLevel.II, ResponseLevel.III, ResponseLevel.IV]
_LEVEL_LABELS = {
    ResponseLevel.I: Text("特别重大", "particularly severe"),
    ResponseLevel.II: Text("重大", "severe"),
    ResponseLevel.III: Text("较大", "major"),
    ResponseLevel.IV: Text("一般", "general"),
}


class WarningLevel(StrEnum):
    RED = "red"
    ORANGE = "orange"
    YELLOW = "yellow"
    BLUE = "blue"

    @property
    def rank(self) -> int:
        """1 for red (most severe) to 4 for blue."""
        return _WARNING_ORDER.index(self) + 1

    @property
    def label(self) -> Text:
        return _WARNING_LABELS[self]

    def more_severe_than(self, other: WarningLevel) -> bool:
        return self.rank < other.rank


_WARNING_ORDER = [WarningLevel.RED, WarningLevel.ORANGE, WarningLevel.YELLOW, WarningLevel.BLUE]
_WARNING_LABELS = {
    WarningLevel.RED: Text("红色预警", "red warning"),
    WarningLevel.ORANGE: Text("橙色预警", "orange warning"),
    WarningLevel.YELLOW: Text("黄色预警", "yellow warning"),
    WarningLevel.BLUE: Text("蓝色预警", "blue warning"),
}

LEVEL_ORDER: tuple[ResponseLevel, ...] = tuple(_LEVEL_ORDER)
WARNING_ORDER: tuple[WarningLevel, ...] = tuple(_WARNING_ORDER)
