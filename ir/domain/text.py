"""Text a person reads, always in both languages ir speaks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Lang = Literal["zh-CN", "en"]
LANGS: tuple[Lang, ...] = ("zh-CN", "en")


@dataclass(frozen=True, slots=True)
class Text:
    zh_cn: str
    en: str

    def get(self, lang: Lang) -> str:
        return self.en if lang == "en" else self.zh_cn

    @staticmethod
    def same(value: str) -> Text:
        return Text(zh_cn=value, en=value)
