"""Every command the command line can send to a server has its route in the API, with the method the
API declares: a renamed or removed endpoint fails here, not at an operator's terminal."""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

import pytest
from fastapi.routing import APIRoute

from ir.config import Settings
from ir.domain import commands as c
from ir.entrypoints.cli.remote import ROUTES, route
from ir.entrypoints.http.app import create_app

SAMPLE: dict[str, Any] = {
    "actor": c.Actor("tester"),
    "incident_id": 7,
    "child": 8,
    "item": 2,
    "content": b"evidence",
    "facts": {"peak_gbps": "40"},
    "services": ["idc"],
    "checked": True,
    "step_id": "scrub bing/1",  # quoted into one path segment
}


def _sample(cls: type[c.Command]) -> c.Command:
    fields = dataclasses.fields(cls)
    values: dict[str, Any] = {
        f.name: SAMPLE.get(f.name, "x")
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    if any(f.name == "expected_version" for f in fields):
        values["expected_version"] = 3
    return cls(**values)


@functools.cache
def _api() -> list[tuple[str, re.Pattern[str]]]:
    """The routes the server answers, as the application holds them."""
    found = []
    for r in create_app(Settings(database_url="sqlite:///:memory:")).router.routes:
        if isinstance(r, APIRoute) and r.path.startswith("/api/"):
            pattern = re.sub(r"\{[^}]+\}", "[^/]+", r.path_format)
            found += [(m, re.compile(f"^{pattern}$")) for m in r.methods or ()]
    return found


SENT = sorted(ROUTES, key=lambda k: k.__name__)


@pytest.mark.parametrize("cls", SENT, ids=[k.__name__ for k in SENT])
def test_each_command_goes_to_an_api_route(cls: type[c.Command]) -> None:
    call = route(_sample(cls))
    assert any(method == call.method and pattern.match(call.path) for method, pattern in _api()), call
    if isinstance(_sample(cls), c.IncidentCommand):
        assert call.headers["If-Match"] == '"3"'  # --if-version travels as If-Match
        assert call.path.startswith("/api/incidents/7")


def test_a_command_the_api_does_not_take_is_refused() -> None:
    from ir.domain.errors import InvalidInput

    with pytest.raises(InvalidInput, match="not available against a server"):
        route(_sample(c.DraftSitrep))
