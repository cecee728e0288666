"""The API fuzzed from its own OpenAPI description, on SQLite and PostgreSQL, as an administrator: whatever
a client sends to any operation, valid or not, the answer is never a 500.

- schemathesis (stateless, `not_a_server_error`): a few examples per operation after its coverage
  cases, no deadline, derandomized. Two incidents exist, so generated ids reach past "not found" into
  the domain's checks. The live-update stream is left out (it never ends, by design).
- what its generators rarely reach, sent on purpose: numbers past the databases' integers in every
  integer parameter, and NUL characters in every string of every JSON body (PostgreSQL keeps no NUL in
  text).

The description is read from an application that builds nothing (no lifespan, no database); the calls
go, in-process, to one served on the test's database.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi

from ir.domain import commands as c
from ir.entrypoints.http.app import create_app
from tests.integration.api_support import DATABASES, LOCAL, PASSWORD, Api, served

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SPEC: dict[str, Any] = create_app().openapi()
schema = schemathesis.openapi.from_dict(SPEC).exclude(path="/api/stream")
schema.config.phases.coverage.unexpected_methods = set()  # a method a path lacks is the router's 405
schemathesis.serializer.alias("message/rfc822", "text/plain")  # a mail reply: a string sent as it is


@dataclass
class Target:
    database: str
    app: FastAPI  # for schemathesis, which runs its lifespan itself
    client: TestClient  # for the hostile values: answers 500 instead of raising
    headers: dict[str, str]


@pytest.fixture(scope="module", params=DATABASES)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    for api in served(request, tmp_path_factory):
        yield _target(str(request.param), api)
        asgi.shutdown_lifespans()  # schemathesis keeps the lifespans it started until told


def _target(database: str, api: Api) -> Target:
    user = f"fuzz-admin-{secrets.token_hex(8)}"  # a name generated requests will not hit (to disable it)
    with api.app.db.uow() as uow:
        uow.users.add(user, display_name="fuzz", password=PASSWORD, roles=["admin"])
        _id, secret = uow.users.issue_token(user, name="fuzz", scopes=["read", "write"], ttl=None)
        uow.commit()
    for playbook in ("ddos", "typhoon-flood"):
        api.do(c.OpenIncident(actor=LOCAL, playbook=playbook, title="fuzzed", level="III"))
    return Target(
        database,
        create_app(app=api.app, background=False),
        TestClient(api.client.app, raise_server_exceptions=False),
        {"Authorization": f"Bearer {secret}"},
    )


@schema.parametrize()
@settings(max_examples=4, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_no_answer_is_a_server_error(case: Any, target: Target) -> None:
    case.call_and_validate(app=target.app, headers=target.headers, checks=[not_a_server_error])


# -- what generators rarely reach ----------------------------------------------------------------------------

# Known server errors outside the API's command modules, reported; they turn into expected failures here
# (and pass unremarked once fixed).
KNOWN = {
    ("GET", "/api/incidents"): "routes.list_incidents: offset is unbounded (overflows the database's integer)",
    ("GET", "/api/incidents/{incident_id}"): "routes.board: incident_id is unbounded",
    ("GET", "/api/incidents/{incident_id}/timeline"): "routes.timeline: incident_id and after are unbounded",
    ("POST", "/api/auth/login"): "routes.login: a NUL in the user name reaches PostgreSQL",
    ("GET", "/api/alerts"): "alerts: incident and offset are unbounded",
}
HUGE = (2**31, 2**63, 10**30, -(2**63) - 1)


def _params(operation: dict[str, Any]) -> list[dict[str, Any]]:
    return list(operation.get("parameters", []))


def _is_integer(param: dict[str, Any]) -> bool:
    found = param.get("schema", {})
    return found.get("type") == "integer" or any(s.get("type") == "integer" for s in found.get("anyOf", []))


INTEGER_CASES = [
    pytest.param(method.upper(), path, p["name"], id=f"{method.upper()} {path} {p['name']}")
    for path, operations in SPEC["paths"].items()
    if path != "/api/stream"
    for method, operation in operations.items()
    for p in _params(operation)
    if _is_integer(p)
]


@pytest.mark.parametrize(("method", "template", "name"), INTEGER_CASES)
def test_numbers_past_the_databases_integers_are_refused(target: Target, method: str, template: str, name: str) -> None:
    operation = SPEC["paths"][template][method.lower()]
    for value in HUGE:
        path, query = template, dict[str, Any]()
        for p in _params(operation):
            chosen: Any = value if p["name"] == name else (1 if _is_integer(p) else "x")
            if p["in"] == "path":
                path = path.replace("{" + p["name"] + "}", str(chosen))
            elif p["name"] == name:
                query[p["name"]] = chosen
        body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
        answer = target.client.request(method, path, params=query, json=body, headers=target.headers)
        if answer.status_code >= 500 and (method, template) in KNOWN:
            pytest.xfail(KNOWN[(method, template)])
        assert answer.status_code < 500, f"{method} {path} {query}: {answer.status_code} {answer.text}"


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = SPEC["components"]["schemas"][name]
    return node


def _hostile(node: dict[str, Any]) -> Any:
    """A value of this schema whose every string has a NUL in it."""
    node = _resolve(node)
    if "anyOf" in node:
        options = [_resolve(o) for o in node["anyOf"] if _resolve(o).get("type") != "null"]
        return _hostile(options[0]) if options else None
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "object":
        return {name: _hostile(prop) for name, prop in node.get("properties", {}).items()} or {"k\x00": "v\x00"}
    if kind == "array":
        return [_hostile(node.get("items", {"type": "string"}))]
    if kind == "integer":
        return max(1, int(node.get("minimum", 1)))
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if node.get("format") == "date-time":
        return "2026-10-01T09:00:00+08:00"
    return "a\x00b"


BODY_CASES = [
    pytest.param(method.upper(), path, id=f"{method.upper()} {path}")
    for path, operations in SPEC["paths"].items()
    for method, operation in operations.items()
    if "application/json" in operation.get("requestBody", {}).get("content", {})
]


@pytest.mark.parametrize(("method", "template"), BODY_CASES)
def test_nul_characters_in_bodies_are_refused(target: Target, method: str, template: str) -> None:
    operation = SPEC["paths"][template][method.lower()]
    path = template
    for p in _params(operation):
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", "1" if _is_integer(p) else "x")
    body = _hostile(operation["requestBody"]["content"]["application/json"]["schema"])
    answer = target.client.request(method, path, json=body, headers=target.headers)
    if answer.status_code >= 500 and (method, template) in KNOWN:
        pytest.xfail(KNOWN[(method, template)])
    assert answer.status_code < 500, f"{method} {path} {body!r}: {answer.status_code} {answer.text}"
