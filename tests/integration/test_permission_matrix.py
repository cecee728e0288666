"""The permission matrix over the API: every system role against every action endpoint, on SQLite and
PostgreSQL, as ir/app/permissions.MATRIX says (admin may do everything; user and token administration and
the inventory's registration are the administrator's alone, MATRIX naming no other role for them).

Each case prepares what the act needs, as the command line would (so an allowed act succeeds: 2xx), then
calls it with the role's API token. An allowed act must succeed; a refused one must be a 403 problem that
changed nothing. Responders and communications staff act on a step only while on duty for its playbook
role in that incident: the `…/off-duty` acts call the same endpoints without that assignment.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ir.app.permissions import MATRIX
from ir.domain import commands as c
from tests.integration.api_support import DATABASES, LOCAL, PASSWORD, ROLES, Api, problem, served

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ADMIN_ONLY = "admin-only"  # MATRIX names no role: authorize() lets administrators alone through
ANYONE = "anyone signed in"
DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"
_serial = itertools.count(1)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    kwargs: dict[str, Any]
    incident: int | None = None  # whose version a refused call must leave as it was


@dataclass(frozen=True)
class Act:
    permission: str  # a MATRIX action, ADMIN_ONLY or ANYONE
    prepare: Callable[[Api], Call]
    on_duty: bool = True  # False: responders and communications staff are not assigned to the step's role


def fresh(api: Api, *, playbook: str = "ddos", level: str | None = "III", on_duty: bool = True) -> int:
    """An incident; the responder and communications users on duty for the steps' role (soc, noc in mini)."""
    iid = api.open(playbook, level=level)
    if on_duty:
        role = "noc" if playbook == "mini" else "soc"
        for user in ("responder", "communications"):
            api.do(c.AssignRole(actor=LOCAL, incident_id=iid, role=role, user=user))
    return iid


def on(iid: int, method: str, tail: str, **kwargs: Any) -> Call:
    return Call(method, f"/api/incidents/{iid}{tail}", kwargs, incident=iid)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}"


# -- what each act needs first ----------------------------------------------------------------------------


def _started(api: Api, step: str = "confirm", **kwargs: Any) -> int:
    iid = fresh(api, **kwargs)
    api.do(c.StartStep(actor=LOCAL, incident_id=iid, step_id=step))
    return iid


def _failed(api: Api) -> int:
    iid = _started(api)
    api.do(c.FailStep(actor=LOCAL, incident_id=iid, step_id="confirm", note="broken"))
    return iid


def _checked(api: Api) -> int:
    iid = fresh(api)
    api.do(c.CheckItem(actor=LOCAL, incident_id=iid, step_id="confirm", item=1))
    return iid


def _evidence(api: Api) -> Call:
    content = unique("traffic graph ").encode()
    iid = fresh(api)
    api.do(c.AttachEvidence(actor=LOCAL, incident_id=iid, step_id="scrubbing", filename="g.png", content=content))
    return on(iid, "GET", f"/evidence/{hashlib.sha256(content).hexdigest()}")


def _upload(api: Api, *, on_duty: bool = True) -> Call:
    iid = fresh(api, on_duty=on_duty)
    files = {"file": ("graph.png", unique("PNG ").encode(), "image/png")}
    return on(iid, "POST", "/steps/scrubbing/evidence", files=files)


def _drafted(api: Api) -> int:
    iid = fresh(api)
    api.do(c.DraftSitrep(actor=LOCAL, incident_id=iid))
    return iid


def _edit_sitrep(api: Api) -> Call:
    iid = _drafted(api)
    with api.app.db.read() as repo:
        text = repo.get(iid).emergency.sitreps[0].text
    body = {"text_zh": text["zh-CN"] + "\n补充。", "text_en": text["en"] + "\nMore."}
    return on(iid, "PUT", "/sitreps/1", json=body)


def _linked(api: Api) -> Call:
    iid, child = fresh(api), fresh(api)
    api.do(c.LinkIncidents(actor=LOCAL, incident_id=iid, child=child))
    return on(iid, "DELETE", f"/links/{child}")


def _requested(api: Api, *, allocate: bool = False, dispatch: bool = False) -> tuple[int, str, str]:
    iid = fresh(api)
    unit = unique("scrub-")
    with api.app.db.uow() as uow:
        uow.inventory.register(unit_id=unit, kind="scrubbing_capacity", name=unit, base="海口", capacity=100)
        uow.commit()
    out = api.do(
        c.RequestResource(actor=LOCAL, incident_id=iid, resource="scrubbing_capacity", quantity=10, destination="IDC")
    )
    request = str(out.events[0].request)
    if allocate or dispatch:
        api.do(c.AllocateResource(actor=LOCAL, incident_id=iid, request=request, units=[unit]))
    if dispatch:
        api.do(c.MoveResource(actor=LOCAL, incident_id=iid, request=request, stage="dispatched"))
    return iid, request, unit


def _allocate(api: Api) -> Call:
    iid, request, unit = _requested(api)
    return on(iid, "POST", f"/resources/{request}/allocate", json={"units": [unit]})


def _move(verb: str) -> Callable[[Api], Call]:
    def prepare(api: Api) -> Call:
        iid, request, _unit = _requested(api, allocate=True, dispatch=verb != "dispatch")
        return on(iid, "POST", f"/resources/{request}/{verb}")

    return prepare


def _cancel_request(api: Api) -> Call:
    iid, request, _unit = _requested(api)
    return on(iid, "POST", f"/resources/{request}/cancel", json={"reason": "not needed"})


def _closed(api: Api) -> int:
    iid = fresh(api)
    api.do(c.CloseIncident(actor=LOCAL, incident_id=iid, reason="handled"))
    return iid


def _fileable(api: Api) -> Call:
    iid = fresh(api)
    api.do(c.CompleteStep(actor=LOCAL, incident_id=iid, step_id="confirm"))
    api.do(c.SetImpact(actor=LOCAL, incident_id=iid, services=["idc"]))
    body = {
        "reference": unique("MIIT-"),
        "document_base64": base64.b64encode(unique("%PDF ").encode()).decode(),
        "document_name": "filed.pdf",
        "late_reason": "reported by phone first",
    }
    return on(iid, "POST", "/reports/cn-miit-2017/initial/submit", json=body)


def _personal_note(api: Api) -> Call:
    iid = fresh(api)
    api.do(c.AddNote(actor=LOCAL, incident_id=iid, text="张三 13800000000", about="13800000000"))
    return on(iid, "POST", "/reveal", json={"note": 1, "reason": "the customer asks"})


def _user(api: Api, *, disabled: bool = False) -> str:
    user = unique("person")
    api.add_user(user, ["observer"], token=False)
    if disabled:
        with api.app.db.uow() as uow:
            uow.users.set_disabled(user, True)
            uow.commit()
    return user


def _token(api: Api) -> Call:
    user = _user(api)
    token_id, _secret = api.token(user, scopes=["read"])
    return Call("DELETE", f"/api/tokens/{token_id}", {})


def _password(api: Api) -> Call:
    # each role changes its own password once per database; the matrix calls with tokens, not passwords
    return Call(
        "POST",
        "/api/auth/password",
        {"json": {"current_password": PASSWORD, "new_password": unique("a new passphrase ")}},
    )


def _playbook_file(api: Api) -> Call:
    return Call("POST", "/api/playbooks/validate", {"files": {"file": ("x.yaml", b"id: x\n")}})


ACTS: dict[str, Act] = {
    # incidents
    "incidents/open": Act(
        "incident.open", lambda api: Call("POST", "/api/incidents", {"json": {"playbook": "ddos", "title": "m"}})
    ),
    "incidents/list": Act("incident.read", lambda api: Call("GET", "/api/incidents", {})),
    "incidents/board": Act("incident.read", lambda api: on(fresh(api), "GET", "")),
    "incidents/timeline": Act("incident.read", lambda api: on(fresh(api), "GET", "/timeline")),
    "facts/set": Act("fact.set", lambda api: on(fresh(api), "POST", "/facts", json={"facts": {"peak_gbps": 60}})),
    "clocks/record": Act("clock.record", lambda api: on(fresh(api), "POST", "/clocks/awareness", json={})),
    "classify": Act("incident.read", lambda api: on(fresh(api), "GET", "/classify")),
    "level/declare": Act(
        "level.declare", lambda api: on(fresh(api, level=None), "POST", "/level", json={"level": "III"})
    ),
    "warning/issue": Act("warning.issue", lambda api: on(fresh(api), "POST", "/warning", json={"level": "yellow"})),
    "warning/lift": Act("warning.lift", lambda api: on(_warned(api), "POST", "/warning/lift", json={"reason": "over"})),
    # steps
    "steps/start": Act("step.start", lambda api: on(fresh(api), "POST", "/steps/confirm/start")),
    "steps/start/off-duty": Act(
        "step.start", lambda api: on(fresh(api, on_duty=False), "POST", "/steps/confirm/start"), on_duty=False
    ),
    "steps/complete": Act("step.complete", lambda api: on(_started(api), "POST", "/steps/confirm/complete")),
    "steps/complete/off-duty": Act(
        "step.complete",
        lambda api: on(_started(api, on_duty=False), "POST", "/steps/confirm/complete"),
        on_duty=False,
    ),
    "steps/skip": Act("step.skip", lambda api: on(fresh(api), "POST", "/steps/confirm/skip", json={"note": "n/a"})),
    "steps/fail": Act("step.fail", lambda api: on(_started(api), "POST", "/steps/confirm/fail", json={"note": "x"})),
    "steps/retry": Act("step.retry", lambda api: on(_failed(api), "POST", "/steps/confirm/retry")),
    "steps/confirm": Act(
        "step.confirm_action", lambda api: on(_started(api, playbook="mini"), "POST", "/steps/confirm/confirm")
    ),
    "steps/approve": Act("step.approve", lambda api: on(fresh(api), "POST", "/steps/lift-mitigation/approve")),
    "steps/check": Act("step.check", lambda api: on(fresh(api), "POST", "/steps/confirm/checklist/1/check")),
    "steps/check/off-duty": Act(
        "step.check",
        lambda api: on(fresh(api, on_duty=False), "POST", "/steps/confirm/checklist/1/check"),
        on_duty=False,
    ),
    "steps/uncheck": Act("step.check", lambda api: on(_checked(api), "POST", "/steps/confirm/checklist/1/uncheck")),
    "steps/evidence": Act("step.evidence", _upload),
    "steps/evidence/off-duty": Act("step.evidence", lambda api: _upload(api, on_duty=False), on_duty=False),
    "evidence/download": Act("incident.read", _evidence),
    # notes, notifications, deadlines
    "notes/add": Act("note.add", lambda api: on(fresh(api), "POST", "/notes", json={"text": "scrubbing holds"})),
    "notes/list": Act("incident.read", lambda api: on(fresh(api), "GET", "/notes")),
    "notifications/sent": Act(
        "notification.mark_sent", lambda api: on(fresh(api), "POST", "/notifications/internal-callout/sent")
    ),
    "deadlines": Act("incident.read", lambda api: on(fresh(api), "GET", "/deadlines")),
    # people
    "assignments/add": Act(
        "people.assign", lambda api: on(fresh(api), "POST", "/assignments", json={"role": "noc", "user": "zhao"})
    ),
    "assignments/end": Act(
        "people.assign",
        lambda api: on(fresh(api), "POST", "/assignments/end", json={"role": "soc", "user": "responder"}),
    ),
    "assignments/list": Act("incident.read", lambda api: on(fresh(api), "GET", "/assignments")),
    "handover": Act("incident.handover", lambda api: on(fresh(api), "POST", "/handover", json={"to": "li.na"})),
    # the log and situation reports
    "log/add": Act(
        "log.add", lambda api: on(fresh(api), "POST", "/log", json={"category": "decision", "text": "divert"})
    ),
    "log/list": Act("incident.read", lambda api: on(fresh(api), "GET", "/log")),
    "sitreps/draft": Act("sitrep.draft", lambda api: on(fresh(api), "POST", "/sitreps")),
    "sitreps/list": Act("incident.read", lambda api: on(_drafted(api), "GET", "/sitreps")),
    "sitreps/get": Act("incident.read", lambda api: on(_drafted(api), "GET", "/sitreps/1")),
    "sitreps/edit": Act("sitrep.edit", _edit_sitrep),
    "sitreps/release": Act("sitrep.release", lambda api: on(_drafted(api), "POST", "/sitreps/1/release")),
    # shape
    "impact": Act("incident.impact", lambda api: on(fresh(api), "PUT", "/impact", json={"services": ["idc"]})),
    "links/add": Act("incident.link", lambda api: on(fresh(api), "POST", "/links", json={"child": fresh(api)})),
    "links/remove": Act("incident.link", _linked),
    "playbooks/join": Act(
        "incident.add_playbook",
        lambda api: on(fresh(api), "POST", "/playbooks", json={"playbook": "intrusion", "reason": "a breach"}),
    ),
    # resources
    "resources/inventory": Act("incident.read", lambda api: Call("GET", "/api/resources", {})),
    "resources/register": Act(
        ADMIN_ONLY,
        lambda api: Call(
            "POST",
            "/api/resources",
            {"json": {"id": unique("gen-"), "kind": "generator", "name": "发电车", "base": "海口"}},
        ),
    ),
    "resources/requests": Act("incident.read", lambda api: on(fresh(api), "GET", "/resources")),
    "resources/request": Act(
        "resource.request",
        lambda api: on(
            fresh(api),
            "POST",
            "/resources",
            json={"resource": "scrubbing_capacity", "quantity": 10, "destination": "IDC"},
        ),
    ),
    "resources/allocate": Act("resource.allocate", _allocate),
    "resources/dispatch": Act("resource.move", _move("dispatch")),
    "resources/arrive": Act("resource.move", _move("arrive")),
    "resources/return": Act("resource.move", _move("return")),
    "resources/cancel": Act("resource.request", _cancel_request),
    # restoration and the end
    "restore": Act("incident.restore", lambda api: on(fresh(api), "POST", "/restore")),
    "end-response": Act("incident.end_response", lambda api: on(fresh(api), "POST", "/end-response")),
    "cancel": Act("incident.cancel", lambda api: on(fresh(api), "POST", "/cancel", json={"reason": "false alarm"})),
    "reopen": Act("incident.reopen", lambda api: on(_closed(api), "POST", "/reopen", json={"reason": "rebound"})),
    "close": Act("incident.close", lambda api: on(fresh(api), "POST", "/close", json={"reason": "handled"})),
    # regulators and personal data
    "obligations": Act("incident.read", lambda api: on(fresh(api), "GET", "/obligations")),
    "reportability": Act(
        "report.judge", lambda api: on(fresh(api), "POST", "/reportability/cn-miit-2017", json={"reason": "big"})
    ),
    "reports/draft": Act("report.draft", lambda api: on(fresh(api), "GET", "/reports/cn-cac-2025/initial")),
    "reports/submit": Act("report.submit", _fileable),
    "reveal": Act("personal.reveal", _personal_note),
    # the public status page
    "status/publish": Act(
        "status.publish",
        lambda api: on(
            fresh(api),
            "POST",
            "/status-updates",
            json={"title_zh": "标题", "title_en": "Title", "message_zh": "说明", "message_en": "Message"},
        ),
    ),
    "status/list": Act("incident.read", lambda api: on(fresh(api), "GET", "/status-updates")),
    # the playbook library
    "playbooks/list": Act("incident.read", lambda api: Call("GET", "/api/playbooks", {})),
    "playbooks/show": Act("incident.read", lambda api: Call("GET", "/api/playbooks/ddos?level=II", {})),
    "playbooks/validate": Act("incident.read", _playbook_file),
    # users and tokens
    "users/list": Act(ADMIN_ONLY, lambda api: Call("GET", "/api/users", {})),
    "users/add": Act(
        ADMIN_ONLY,
        lambda api: Call(
            "POST", "/api/users", {"json": {"id": unique("new"), "roles": ["observer"], "password": PASSWORD}}
        ),
    ),
    "users/disable": Act(ADMIN_ONLY, lambda api: Call("POST", f"/api/users/{_user(api)}/disable", {})),
    "users/enable": Act(ADMIN_ONLY, lambda api: Call("POST", f"/api/users/{_user(api, disabled=True)}/enable", {})),
    "users/reset": Act(ADMIN_ONLY, lambda api: Call("POST", f"/api/users/{_user(api)}/reset", {})),
    "tokens/issue": Act(ADMIN_ONLY, lambda api: Call("POST", f"/api/users/{_user(api)}/tokens", {"json": {}})),
    "tokens/list": Act(ADMIN_ONLY, lambda api: Call("GET", "/api/tokens", {})),
    "tokens/revoke": Act(ADMIN_ONLY, _token),
    "auth/password": Act(ANYONE, _password),
}


def _warned(api: Api) -> int:
    iid = fresh(api)
    api.do(c.IssueWarning(actor=LOCAL, incident_id=iid, level="yellow"))
    return iid


def allowed(role: str, act: Act) -> bool:
    """What MATRIX says, with the step gate: off duty, only administrators and commanders act on a step."""
    if act.permission == ANYONE or role == "admin":
        return True
    if act.permission == ADMIN_ONLY:
        return False
    if not act.on_duty and role != "commander":
        return False
    return role in MATRIX[act.permission]


# A responder who is not on duty for a step's role can still attach evidence to it: the AttachEvidence
# handler checks the system role (step.evidence) but never the step's role (Handlers._authorize_step).
_KNOWN: dict[tuple[str, str], str] = {}  # known gaps, as strict expected failures (none now)
CASES = [
    pytest.param(name, role, id=f"{name}-{role}", marks=[pytest.mark.xfail(strict=True, reason=_KNOWN[(name, role)])])
    if (name, role) in _KNOWN
    else pytest.param(name, role, id=f"{name}-{role}")
    for name in ACTS
    for role in ROLES
]


@pytest.fixture(scope="module", params=DATABASES)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from served(request, tmp_path_factory)


@pytest.mark.parametrize(("name", "role"), CASES)
def test_permission_matrix(api: Api, name: str, role: str) -> None:
    act = ACTS[name]
    if allowed(role, act) or (name, role) in _KNOWN:
        call = act.prepare(api)
    else:  # a refusal changes nothing (checked below): what was prepared serves every refused role
        call = api.kept.get(name) or api.kept.setdefault(name, act.prepare(api))
    before = api.version(call.incident) if call.incident is not None else None
    answer = api.client.request(call.method, call.path, headers=api.bearer(role), **call.kwargs)
    if allowed(role, act):
        assert 200 <= answer.status_code < 300, f"{role} {call.method} {call.path}: {answer.text}"
    else:
        problem(answer, 403)
        if call.incident is not None:
            assert api.version(call.incident) == before, "a refused act changed the incident"


# -- docs/permissions.md against MATRIX --------------------------------------------------------------------

# machine acts and administrator-only acts tried elsewhere (alert intake has its own suite)
NOT_HERE = {"step.action_result", "personal.shred", "alert.intake"}


def documented() -> dict[str, set[str]]:
    """The documented table: row -> the roles ticked."""
    lines = [line for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        rows[cells[0]] = {header[i] for i, cell in enumerate(cells) if i and cell == "✓"}
    return rows


def test_the_documented_table_is_the_matrix() -> None:
    """docs/permissions.md is generated from MATRIX: every action, every role, exactly."""
    rows = documented()
    assert set(rows) == {f"`{action}`" for action in MATRIX}
    for action, allowed in MATRIX.items():
        assert rows[f"`{action}`"] == set(allowed) | {"admin"}, action


def test_every_act_of_the_matrix_is_tried() -> None:
    tried = {act.permission for act in ACTS.values()}
    untried = set(MATRIX) - tried - NOT_HERE
    assert not untried, f"MATRIX actions with no case in ACTS: {sorted(untried)}"
    assert not [p for p in tried if p not in MATRIX and p not in (ADMIN_ONLY, ANYONE)]
    assert all(re.fullmatch(r"[a-z/-]+", name) for name in ACTS)
