"""Fact values as people type them (`affected_users=1,200,000`, `outage_duration=90m`), checked by type."""

from __future__ import annotations

import difflib
import math
import re

from ir.domain.durations import DurationError, parse_duration
from ir.domain.errors import InvalidInput
from ir.domain.events import FactValue
from ir.domain.playbook import Fact, FactKind, Playbook
from ir.domain.standard_facts import STANDARD_FACTS

_TRUE = {"true", "yes", "y", "1", "是", "真"}
_FALSE = {"false", "no", "n", "0", "否", "假"}
_INT = re.compile(r"^[+-]?\d{1,3}(?:[,_]\d{3})+$|^[+-]?\d+$")


def fact_named(playbook: Playbook, name: str) -> Fact:
    fact = playbook.facts.get(name)
    if fact is None:
        close = difflib.get_close_matches(name, list(playbook.facts), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        standard = {f.name: f for f in STANDARD_FACTS}
        own = [n for n, f in playbook.facts.items() if standard.get(n) != f]
        known = ", ".join(own) or "none"
        raise InvalidInput(
            f"unknown fact '{name}'{hint} (facts of {playbook.id}: {known}; and the standard facts: "
            f"{', '.join(n for n in standard if n not in own)})",
            field=name,
        )
    return fact


def parse_fact(fact: Fact, text: str) -> FactValue:
    """The stored value of a fact from its text; empty text clears the fact."""
    raw = text.strip()
    if raw == "":
        return None
    kind = fact.kind
    if kind is FactKind.INTEGER:
        if not _INT.match(raw):
            raise InvalidInput(f"fact '{fact.name}' is an integer; got '{text}'", field=fact.name)
        return int(raw.replace(",", "").replace("_", ""))
    if kind is FactKind.NUMBER:
        try:
            value = float(raw.replace(",", "").replace("_", ""))
        except ValueError:
            raise InvalidInput(f"fact '{fact.name}' is a number; got '{text}'", field=fact.name) from None
        if not math.isfinite(value):
            raise InvalidInput(f"fact '{fact.name}' must be a finite number", field=fact.name)
        return int(value) if value.is_integer() and "." not in raw else value
    if kind is FactKind.BOOLEAN:
        low = raw.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise InvalidInput(f"fact '{fact.name}' is true or false; got '{text}'", field=fact.name)
    if kind is FactKind.ENUM:
        if raw not in fact.values:
            close = difflib.get_close_matches(raw, list(fact.values), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InvalidInput(
                f"fact '{fact.name}' is one of {', '.join(fact.values)}; got '{text}'{hint}", field=fact.name
            )
        return raw
    if kind is FactKind.DURATION:
        try:
            duration = parse_duration(raw)
        except DurationError as exc:
            raise InvalidInput(
                f"fact '{fact.name}' is a duration (e.g. 90m, 2h): {exc.message}", field=fact.name
            ) from None
        if duration.is_working:
            raise InvalidInput(f"fact '{fact.name}' is elapsed time, not working days", field=fact.name)
        return str(duration)
    if len(raw) > 2000:
        raise InvalidInput(f"fact '{fact.name}' is at most 2,000 characters", field=fact.name)
    return raw


def check_fact_value(fact: Fact, value: object) -> FactValue:
    """A value given as JSON (the API) checked against the fact's type."""
    if value is None:
        return None
    if isinstance(value, str):
        return parse_fact(fact, value)
    kind = fact.kind
    if kind is FactKind.INTEGER and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is FactKind.NUMBER and isinstance(value, int | float) and not isinstance(value, bool):
        return parse_fact(fact, repr(value))
    if kind is FactKind.BOOLEAN and isinstance(value, bool):
        return value
    raise InvalidInput(f"fact '{fact.name}' is {kind.value}; got {type(value).__name__}", field=fact.name)


def parse_assignments(playbook: Playbook, pairs: list[str]) -> dict[str, FactValue]:
    """`k=v` pairs from the command line."""
    out: dict[str, FactValue] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InvalidInput(f"a fact is written name=value; got '{pair}'")
        name, _, text = pair.partition("=")
        out[name.strip()] = parse_fact(fact_named(playbook, name.strip()), text)
    return out
