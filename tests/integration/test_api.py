"""The JSON API, endpoint by endpoint, on SQLite and PostgreSQL: what the command line can do, over HTTP.

Callers sign in with a password (session cookie + CSRF header) or with API tokens. Every refusal is
problem+json with the status of DESIGN.md's table (401, 403, 404, 409, 422 with the field at fault);
reads of an incident carry its version as ETag and changes honour If-Match; lists that can grow page.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ir.domain import commands as c
from ir.domain.personal import MASK
from tests.conftest import PLAYBOOKS, decrypt_audit
from tests.integration.api_support import DATABASES, LOCAL, PASSWORD, PROBLEM, Api, problem, served

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module", params=DATABASES)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    yield from served(request, tmp_path_factory)


def ok(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


def kinds(answer: Any, status: int = 200) -> list[str]:
    return [e["kind"] for e in ok(answer, status)["events"]]


def session_client(api: Api, user: str, password: str = PASSWORD) -> tuple[TestClient, str]:
    """A browser of its own: a cookie jar signed in as `user`, and the session's CSRF token."""
    browser = TestClient(api.client.app)
    return browser, api.login(browser, user, password)


# -- signing in and the shapes of refusals ------------------------------------------------------------------


def test_a_session_signs_in_reads_and_changes_with_its_csrf_token(api: Api) -> None:
    browser, csrf = session_client(api, "commander")
    me = ok(browser.get("/api/me"))
    assert me["user"] == "commander"
    assert me["roles"] == ["commander"]
    assert me["csrf"] == csrf
    assert me["must_change_password"] is False
    opened = browser.post(
        "/api/incidents", json={"playbook": "ddos", "title": "DDoS on IDC-3"}, headers={"x-csrf-token": csrf}
    )
    assert ok(opened, 201)["incident"] >= 1
    assert opened.headers["Location"] == f"/api/incidents/{opened.json()['incident']}"
    problem(browser.post("/api/incidents", json={"playbook": "ddos", "title": "x"}), 403, detail="CSRF")
    problem(
        browser.post("/api/incidents", json={"playbook": "ddos", "title": "x"}, headers={"x-csrf-token": "forged"}),
        403,
        detail="CSRF",
    )


def test_a_token_acts_without_csrf_and_a_read_only_token_only_reads(api: Api) -> None:
    opened = api.client.post("/api/incidents", json={"playbook": "ddos", "title": "t"}, headers=api.bearer("commander"))
    iid = ok(opened, 201)["incident"]
    _id, secret = api.token("commander", scopes=["read"])
    reader = {"Authorization": f"Bearer {secret}"}
    assert ok(api.client.get(f"/api/incidents/{iid}", headers=reader))["id"] == iid
    problem(api.client.post(f"/api/incidents/{iid}/level", json={"level": "IV"}, headers=reader), 403, detail="read")
    assert api.version(iid) == opened.json()["version"]


def test_refusals_are_problems_with_the_status_of_their_kind(api: Api) -> None:
    iid = api.open()
    body = problem(api.client.get(f"/api/incidents/{iid}"), 401)
    assert "sign in" in body["detail"]
    assert api.client.get(f"/api/incidents/{iid}").headers["WWW-Authenticate"].startswith("Bearer")
    problem(api.client.post(f"/api/incidents/{iid}/level", json={"level": "II"}), 401)
    problem(api.client.get("/api/incidents/1", headers={"Authorization": "Bearer ir_nope_nope"}), 401)
    # a role that may not
    problem(
        api.client.post(f"/api/incidents/{iid}/level", json={"level": "II"}, headers=api.bearer("observer")),
        403,
        detail="may not",
    )
    # not found: an incident, a step, a route
    problem(api.client.get("/api/incidents/999999", headers=api.bearer("observer")), 404, detail="no incident")
    problem(api.client.post(f"/api/incidents/{iid}/steps/no-such-step/start", headers=api.bearer("commander")), 404)
    problem(api.client.get("/api/no-such-thing", headers=api.bearer("observer")), 404)
    # an invalid transition
    ok(api.client.post(f"/api/incidents/{iid}/steps/confirm/start", headers=api.bearer("commander")))
    problem(api.client.post(f"/api/incidents/{iid}/steps/confirm/start", headers=api.bearer("commander")), 409)
    # invalid input: from the schema and from the domain, each naming its field
    problem(
        api.client.post(f"/api/incidents/{iid}/level", json={"level": "V"}, headers=api.bearer("commander")),
        422,
        field="level",
    )
    problem(
        api.client.post(f"/api/incidents/{iid}/clocks/lunch", json={}, headers=api.bearer("commander")),
        422,
        field="clock",
    )
    problem(
        api.client.post(
            f"/api/incidents/{iid}/facts", json={"facts": {"peak_gbps": "lots"}}, headers=api.bearer("commander")
        ),
        422,
    )
    problem(api.client.get("/api/incidents/0/classify", headers=api.bearer("observer")), 422, field="incident_id")
    # what no database keeps and no emergency has: refused at the door, never a 500
    problem(
        api.client.post("/api/incidents", json={"playbook": "ddos", "title": "a\x00"}, headers=api.bearer("admin")),
        422,
        field="title",
    )
    problem(
        api.client.post(
            f"/api/incidents/{iid}/clocks/awareness",
            json={"instant": "0001-01-01T00:00:00+14:00", "reason": "r"},
            headers=api.bearer("commander"),
        ),
        422,
        field="instant",
    )
    problem(
        api.client.post(f"/api/incidents/{iid}/cancel", json={"reason": None}, headers=api.bearer("commander")),
        422,
        field="reason",
    )


def test_a_stale_if_match_is_a_conflict_and_a_current_one_passes(api: Api) -> None:
    iid = api.open()
    board = api.client.get(f"/api/incidents/{iid}", headers=api.bearer("observer"))
    seen = ok(board)["version"]
    assert board.headers["ETag"] == f'"{seen}"'
    moved = api.client.post(
        f"/api/incidents/{iid}/facts",
        json={"facts": {"peak_gbps": 120}},
        headers={**api.bearer("responder"), "If-Match": f'"{seen}"'},
    )
    assert ok(moved)["version"] == seen + 1
    assert moved.headers["ETag"] == f'"{seen + 1}"'
    stale = api.client.post(
        f"/api/incidents/{iid}/facts",
        json={"facts": {"peak_gbps": 130}},
        headers={**api.bearer("responder"), "If-Match": f'"{seen}"'},
    )
    problem(stale, 409, detail="reload")
    assert api.version(iid) == seen + 1
    problem(
        api.client.post(
            f"/api/incidents/{iid}/facts",
            json={"facts": {"peak_gbps": 130}},
            headers={**api.bearer("responder"), "If-Match": "yesterday"},
        ),
        422,
        field="If-Match",
    )
    # the services that take no expected version are checked up front: evidence, judgements, filings
    problem(
        api.client.post(
            f"/api/incidents/{iid}/steps/scrubbing/evidence",
            files={"file": ("graph.png", b"\x89PNG...", "image/png")},
            headers={**api.bearer("responder"), "If-Match": f'"{seen}"'},
        ),
        409,
    )
    problem(
        api.client.post(
            f"/api/incidents/{iid}/reportability/cn-miit-2017",
            json={"reason": "big"},
            headers={**api.bearer("commander"), "If-Match": f'"{seen}"'},
        ),
        409,
    )
    assert api.version(iid) == seen + 1
    # every read of an incident carries its version
    for path in ("classify", "deadlines", "notes", "log", "sitreps", "assignments", "resources", "obligations"):
        read = api.client.get(f"/api/incidents/{iid}/{path}", headers=api.bearer("auditor"))
        assert read.status_code == 200, (path, read.text)
        assert read.headers["ETag"] == f'"{seen + 1}"', path


def test_lists_page(api: Api) -> None:
    for n in range(3):
        api.open(title=f"page {n}")
    seen: list[int] = []
    offset: int | None = 0
    total_pages = 0
    while offset is not None:
        page = ok(api.client.get(f"/api/incidents?limit=2&offset={offset}", headers=api.bearer("observer")))
        assert len(page["items"]) <= 2
        seen += [i["id"] for i in page["items"]]
        offset = page["next_offset"]
        total_pages += 1
    assert len(seen) == len(set(seen)) >= 3
    assert total_pages >= 2
    iid = api.open()
    for n in range(5):
        api.do(c.AddNote(actor=LOCAL, incident_id=iid, text=f"note {n}"))
    first = ok(api.client.get(f"/api/incidents/{iid}/notes?limit=2", headers=api.bearer("observer")))
    assert [n["text"] for n in first["items"]] == ["note 0", "note 1"]
    assert (first["total"], first["next_offset"]) == (5, 2)
    last = ok(api.client.get(f"/api/incidents/{iid}/notes?limit=2&offset=4", headers=api.bearer("observer")))
    assert ([n["number"] for n in last["items"]], last["next_offset"]) == ([5], None)
    problem(api.client.get(f"/api/incidents/{iid}/notes?limit=0", headers=api.bearer("observer")), 422, field="limit")
    problem(api.client.get("/api/incidents?limit=100000", headers=api.bearer("observer")), 422, field="limit")


# -- incidents, facts, clocks, levels, warnings -------------------------------------------------------------


def test_open_list_board_timeline(api: Api) -> None:
    h = api.bearer("commander")
    opened = ok(
        api.client.post(
            "/api/incidents",
            json={
                "playbook": "ddos",
                "title": "DDoS on IDC-3",
                "mode": "drill",
                "facts": {"peak_gbps": 80, "cities_affected": 1},
                "level": "IV",
                "detected_at": "2026-10-01T08:50:00+08:00",
            },
            headers=h,
        ),
        201,
    )
    iid = opened["incident"]
    assert [e["kind"] for e in opened["events"]] == ["incident_opened", "level_declared"]
    listed = ok(api.client.get("/api/incidents?open=true&limit=500", headers=h))
    assert iid in [i["id"] for i in listed["items"]]
    board = ok(api.client.get(f"/api/incidents/{iid}?lang=en", headers=api.bearer("observer")))
    assert (board["level"], board["mode"], board["facts"]["peak_gbps"]) == ("IV", "drill", 80)
    timeline = ok(api.client.get(f"/api/incidents/{iid}/timeline", headers=api.bearer("auditor")))
    assert [e["kind"] for e in timeline["items"]] == ["incident_opened", "level_declared"]
    # a playbook is named by its id in the library, never by a path on the server
    problem(
        api.client.post("/api/incidents", json={"playbook": "/etc/passwd", "title": "x"}, headers=h),
        422,
        field="playbook",
    )
    problem(api.client.post("/api/incidents", json={"playbook": "no-such", "title": "x"}, headers=h), 404)
    problem(
        api.client.post(
            "/api/incidents",
            json={"playbook": "ddos", "title": "x", "detected_at": "2026-10-01T08:50:00"},
            headers=h,
        ),
        422,
        field="detected_at",
    )


def test_facts_clocks_classify_level_warning(api: Api) -> None:
    iid = api.open(level=None)
    h = api.bearer("commander")
    assert kinds(
        api.client.post(
            f"/api/incidents/{iid}/facts",
            json={"facts": {"provinces_affected": 3, "peak_gbps": 250.5}, "reason": "NetFlow"},
            headers=api.bearer("responder"),
        )
    ) == ["facts_set"]
    assert kinds(
        api.client.post(
            f"/api/incidents/{iid}/clocks/awareness",
            json={"instant": "2026-10-01T08:55:00+08:00"},
            headers=api.bearer("responder"),
        )
    ) == ["clock_recorded"]
    classified = ok(api.client.get(f"/api/incidents/{iid}/classify", headers=api.bearer("observer")))
    assert classified["suggested"] == "II"
    assert classified["current"] is None
    assert {v["level"] for v in classified["levels"]} == {"I", "II", "III", "IV"}
    assert kinds(api.client.post(f"/api/incidents/{iid}/level", json={"level": "II"}, headers=h)) == ["level_declared"]
    problem(api.client.post(f"/api/incidents/{iid}/level", json={"level": "I"}, headers=h), 422, field="reason")
    assert "warning_issued" in kinds(
        api.client.post(
            f"/api/incidents/{iid}/warning",
            json={"level": "orange", "expected_impact": "2026-10-02T09:00:00+08:00"},
            headers=h,
        )
    )
    problem(api.client.post(f"/api/incidents/{iid}/warning", json={"level": "red"}, headers=h), 422, field="reason")
    assert kinds(
        api.client.post(f"/api/incidents/{iid}/warning", json={"level": "red", "reason": "500G"}, headers=h)
    ) == ["warning_issued"]
    problem(api.client.post(f"/api/incidents/{iid}/warning/lift", json={}, headers=h), 422, field="reason")
    assert kinds(api.client.post(f"/api/incidents/{iid}/warning/lift", json={"reason": "over"}, headers=h)) == [
        "warning_lifted"
    ]
    problem(api.client.post(f"/api/incidents/{iid}/warning/lift", json={"reason": "again"}, headers=h), 409)


# -- steps --------------------------------------------------------------------------------------------------


def test_step_acts(api: Api) -> None:
    iid = api.open()
    h = api.bearer("commander")
    base = f"/api/incidents/{iid}/steps"
    assert kinds(api.client.post(f"{base}/confirm/start", json={"assignee": "wang.wei"}, headers=h)) == ["step_started"]
    assert kinds(api.client.post(f"{base}/confirm/checklist/2/check", headers=h)) == ["checklist_item_checked"]
    problem(api.client.post(f"{base}/confirm/checklist/2/check", headers=h), 409)
    assert kinds(api.client.post(f"{base}/confirm/checklist/2/uncheck", headers=h)) == ["checklist_item_checked"]
    problem(api.client.post(f"{base}/confirm/checklist/9/check", headers=h), 422, field="item")
    assert "step_completed" in kinds(api.client.post(f"{base}/confirm/complete", json={"note": "confirmed"}, headers=h))
    assert kinds(api.client.post(f"{base}/upstream-help/start", headers=h)) == ["step_started"]
    assert kinds(api.client.post(f"{base}/upstream-help/fail", json={"note": "no answer"}, headers=h)) == [
        "step_failed"
    ]
    assert kinds(api.client.post(f"{base}/upstream-help/retry", headers=h)) == ["step_retried"]
    assert kinds(api.client.post(f"{base}/customer-notice/skip", json={"note": "no customers hit"}, headers=h)) == [
        "step_skipped"
    ]
    assert kinds(api.client.post(f"{base}/lift-mitigation/approve", json={"note": "go"}, headers=h)) == [
        "step_approved"
    ]
    problem(api.client.post(f"{base}/lift-mitigation/approve", headers=h), 409)
    problem(api.client.post(f"{base}/scrubbing/confirm", headers=h), 409, detail="no automated action")
    board = ok(api.client.get(f"/api/incidents/{iid}?lang=en", headers=h))
    status = {s["id"]: s["status"] for s in board["steps"]}
    assert (status["confirm"], status["customer-notice"]) == ("done", "skipped")


def test_confirming_an_automated_action(api: Api) -> None:
    iid = api.open("mini")
    h = api.bearer("commander")
    ok(api.client.post(f"/api/incidents/{iid}/steps/confirm/start", headers=h))
    assert kinds(api.client.post(f"/api/incidents/{iid}/steps/confirm/confirm", headers=h)) == ["action_confirmed"]
    board = ok(api.client.get(f"/api/incidents/{iid}", headers=h))
    confirm = next(s for s in board["steps"] if s["id"] == "confirm")
    assert confirm["status"] == "failed"  # its host is not on the allow-list
    assert "allow-list" in confirm["reason"]


def test_evidence_is_uploaded_as_a_form_and_downloaded_by_its_hash(api: Api) -> None:
    iid = api.open()
    content = b"\x89PNG\r\n\x1a\n traffic before and after diversion"
    digest = hashlib.sha256(content).hexdigest()
    browser, csrf = session_client(api, "commander")
    attached = browser.post(
        f"/api/incidents/{iid}/steps/scrubbing/evidence",
        files={"file": ("../../etc/流量.png", content, "image/png")},
        data={"csrf": csrf},  # a console form carries its CSRF token as a field
    )
    event = ok(attached)["events"][0]
    assert (event["kind"], event["sha256"], event["filename"], event["media_type"]) == (
        "evidence_attached",
        digest,
        "流量.png",
        "image/png",
    )
    problem(
        browser.post(f"/api/incidents/{iid}/steps/scrubbing/evidence", files={"file": ("x.txt", b"x", "text/plain")}),
        403,
        detail="CSRF",
    )
    problem(
        api.client.post(
            f"/api/incidents/{iid}/steps/scrubbing/evidence",
            files={"file": ("graph.png", content, "image/png")},
            headers=api.bearer("commander"),
        ),
        409,
        detail="already evidence",
    )
    down = api.client.get(f"/api/incidents/{iid}/evidence/{digest}", headers=api.bearer("observer"))
    assert down.status_code == 200
    assert down.content == content
    assert down.headers["content-type"] == "image/png"
    assert down.headers["content-disposition"].startswith("attachment;")
    assert down.headers["ETag"] == f'"{digest}"'
    problem(api.client.get(f"/api/incidents/{iid}/evidence/{digest}"), 401)
    other = api.open()
    problem(api.client.get(f"/api/incidents/{other}/evidence/{digest}", headers=api.bearer("observer")), 404)
    problem(api.client.get(f"/api/incidents/{iid}/evidence/{'0' * 64}", headers=api.bearer("observer")), 404)
    problem(api.client.get(f"/api/incidents/{iid}/evidence/not-a-hash", headers=api.bearer("observer")), 422)
    problem(
        api.client.post(f"/api/incidents/{iid}/steps/scrubbing/evidence", headers=api.bearer("commander")),
        422,
        field="file",
    )
    downloads = [r for r in decrypt_audit(api.app) if r.get("action") == "evidence.download"]
    assert any(r["payload"]["sha256"] == digest and r["actor"] == "observer" for r in downloads)


# -- notes, personal data, notifications, deadlines ------------------------------------------------------


def test_notes_about_a_person_are_masked_and_revealed_only_for_a_reason(api: Api) -> None:
    iid = api.open()
    h = api.bearer("responder")
    added = ok(api.client.post(f"/api/incidents/{iid}/notes", json={"text": "scrubbing fine"}, headers=h), 201)
    assert added["events"][0]["text"] == "scrubbing fine"
    personal = ok(
        api.client.post(
            f"/api/incidents/{iid}/notes",
            json={"text": "张三 13800000000 reports no service", "about": "13800000000"},
            headers=h,
        ),
        201,
    )
    assert personal["events"][0]["text"] == MASK
    notes = ok(api.client.get(f"/api/incidents/{iid}/notes", headers=api.bearer("observer")))["items"]
    assert [(n["number"], n["text"], n["personal"]) for n in notes] == [
        (1, "scrubbing fine", False),
        (2, MASK, True),
    ]
    problem(
        api.client.post(
            f"/api/incidents/{iid}/reveal", json={"note": 2, "reason": "call back"}, headers=api.bearer("observer")
        ),
        403,
    )
    problem(
        api.client.post(f"/api/incidents/{iid}/reveal", json={"note": 2}, headers=api.bearer("auditor")),
        422,
        field="reason",
    )
    problem(
        api.client.post(
            f"/api/incidents/{iid}/reveal", json={"note": 1, "reason": "why not"}, headers=api.bearer("auditor")
        ),
        422,
    )
    revealed = api.client.post(
        f"/api/incidents/{iid}/reveal", json={"note": 2, "reason": "the customer asks"}, headers=api.bearer("auditor")
    )
    assert ok(revealed)["value"] == "张三 13800000000 reports no service"
    assert revealed.headers["Cache-Control"] == "no-store"
    reveals = [r for r in decrypt_audit(api.app) if r.get("action") == "personal.reveal"]
    assert any(r["actor"] == "auditor" and r["payload"]["reason"] == "the customer asks" for r in reveals)


def test_notifications_marked_sent_and_the_due_list(api: Api) -> None:
    iid = api.open()
    due = ok(api.client.get(f"/api/incidents/{iid}/deadlines?lang=en", headers=api.bearer("observer")))
    refs = {d["ref"]: d for d in due["items"]}
    assert refs["notification:internal-callout"]["state"] in ("upcoming", "due_soon")
    assert "step:confirm" in refs
    assert kinds(
        api.client.post(
            f"/api/incidents/{iid}/notifications/internal-callout/sent",
            json={"reference": "SMS batch 7"},
            headers=api.bearer("communications"),
        )
    ) == ["notification_sent"]
    after = ok(api.client.get(f"/api/incidents/{iid}/deadlines", headers=api.bearer("observer")))["items"]
    callout = next(d for d in after if d["ref"] == "notification:internal-callout")
    assert callout["state"] == "met"
    problem(
        api.client.post(f"/api/incidents/{iid}/notifications/no-such/sent", headers=api.bearer("communications")),
        404,
    )


# -- people, the log, situation reports, shape --------------------------------------------------------------


def test_assignments_and_handover(api: Api) -> None:
    iid = api.open()
    h = api.bearer("commander")
    assert kinds(
        api.client.post(
            f"/api/incidents/{iid}/assignments",
            json={"role": "soc", "user": "wang.wei", "shift_start": "2026-10-01T08:00:00+08:00"},
            headers=h,
        ),
        201,
    ) == ["role_assigned"]
    listed = ok(api.client.get(f"/api/incidents/{iid}/assignments", headers=api.bearer("observer")))["items"]
    assert [(a["role"], a["user"], a["ended"]) for a in listed] == [("soc", "wang.wei", None)]
    problem(api.client.post(f"/api/incidents/{iid}/assignments", json={"role": "chef", "user": "x"}, headers=h), 404)
    assert kinds(
        api.client.post(
            f"/api/incidents/{iid}/assignments/end",
            json={"role": "soc", "user": "wang.wei", "reason": "shift over"},
            headers=h,
        )
    ) == ["role_unassigned"]
    assert kinds(
        api.client.post(f"/api/incidents/{iid}/handover", json={"to": "li.na", "note": "scrubbing holds"}, headers=h)
    ) == ["command_handed_over"]
    board = ok(api.client.get(f"/api/incidents/{iid}", headers=h))
    assert board["commander"] == "li.na"


def test_the_incident_log(api: Api) -> None:
    iid = api.open()
    h = api.bearer("responder")
    for n in range(3):
        ok(
            api.client.post(
                f"/api/incidents/{iid}/log", json={"category": "observation", "text": f"traffic {n}"}, headers=h
            ),
            201,
        )
    ok(
        api.client.post(
            f"/api/incidents/{iid}/log",
            json={"category": "message", "text": "客户李四来电", "source": "hotline", "about": "li.si"},
            headers=h,
        ),
        201,
    )
    problem(
        api.client.post(f"/api/incidents/{iid}/log", json={"category": "gossip", "text": "x"}, headers=h),
        422,
        field="category",
    )
    page = ok(api.client.get(f"/api/incidents/{iid}/log?limit=2", headers=api.bearer("observer")))
    assert (page["total"], page["next_offset"], [e["text"] for e in page["items"]]) == (
        4,
        2,
        ["traffic 0", "traffic 1"],
    )
    messages = ok(api.client.get(f"/api/incidents/{iid}/log?category=message", headers=api.bearer("observer")))
    assert [(e["text"], e["source"], e["personal"]) for e in messages["items"]] == [(MASK, "hotline", True)]


def test_situation_reports(api: Api) -> None:
    iid = api.open()
    h = api.bearer("communications")
    assert kinds(api.client.post(f"/api/incidents/{iid}/sitreps", headers=h), 201) == ["sitrep_drafted"]
    problem(api.client.post(f"/api/incidents/{iid}/sitreps", headers=h), 409, detail="still a draft")
    one = ok(api.client.get(f"/api/incidents/{iid}/sitreps/1", headers=api.bearer("observer")))
    assert set(one["text"]) == {"zh-CN", "en"}
    assert one["released_at"] is None
    edited = {"text_zh": one["text"]["zh-CN"] + "\n继续清洗。", "text_en": one["text"]["en"] + "\nScrubbing continues."}
    assert kinds(api.client.put(f"/api/incidents/{iid}/sitreps/1", json=edited, headers=h)) == ["sitrep_edited"]
    problem(api.client.post(f"/api/incidents/{iid}/sitreps/1/release", headers=h), 403)
    assert kinds(api.client.post(f"/api/incidents/{iid}/sitreps/1/release", headers=api.bearer("commander"))) == [
        "sitrep_released"
    ]
    problem(api.client.post(f"/api/incidents/{iid}/sitreps/1/release", headers=api.bearer("commander")), 409)
    listed = ok(api.client.get(f"/api/incidents/{iid}/sitreps", headers=api.bearer("observer")))["items"]
    assert [(r["number"], r["edits"], r["released_at"] is not None) for r in listed] == [(1, 1, True)]
    assert "Scrubbing continues." in listed[0]["text"]["en"]
    problem(api.client.get(f"/api/incidents/{iid}/sitreps/9", headers=api.bearer("observer")), 404)


def test_impact_links_and_joined_playbooks(api: Api) -> None:
    parent, child = api.open(), api.open("fibre-cut")
    h = api.bearer("commander")
    assert kinds(
        api.client.put(f"/api/incidents/{parent}/impact", json={"services": ["idc"], "areas": ["海口"]}, headers=h)
    ) == ["impact_set"]
    problem(api.client.put(f"/api/incidents/{parent}/impact", json={"services": ["teleport"]}, headers=h), 404)
    assert kinds(api.client.post(f"/api/incidents/{parent}/links", json={"child": child}, headers=h), 201) == [
        "incident_linked"
    ]
    assert ok(api.client.get(f"/api/incidents/{child}", headers=h))["parent"] == parent
    problem(api.client.post(f"/api/incidents/{parent}/links", json={"child": child}, headers=h), 409)
    assert kinds(api.client.delete(f"/api/incidents/{parent}/links/{child}", headers=h)) == ["incident_unlinked"]
    assert ok(api.client.get(f"/api/incidents/{child}", headers=h))["parent"] is None
    assert kinds(
        api.client.post(
            f"/api/incidents/{parent}/playbooks", json={"playbook": "intrusion", "reason": "a breach too"}, headers=h
        ),
        201,
    ) == ["playbook_added"]
    assert "intrusion" in ok(api.client.get(f"/api/incidents/{parent}", headers=h))["joined_playbooks"]
    problem(
        api.client.post(f"/api/incidents/{parent}/playbooks", json={"playbook": "../x", "reason": "r"}, headers=h),
        422,
        field="playbook",
    )


def test_resources_from_the_inventory_to_the_site_and_back(api: Api) -> None:
    iid = api.open()
    api.do(c.AssignRole(actor=LOCAL, incident_id=iid, role="soc", user="responder"))
    admin, h = api.bearer("admin"), api.bearer("commander")
    unit = {"id": "scrub-hk-1", "kind": "scrubbing_capacity", "name": "海口清洗中心", "base": "海口", "capacity": 400}
    problem(api.client.post("/api/resources", json=unit, headers=h), 403)
    registered = ok(api.client.post("/api/resources", json=unit, headers=admin), 201)
    assert (registered["status"], registered["capacity"]) == ("available", 400)
    problem(api.client.post("/api/resources", json=unit, headers=admin), 409)
    problem(
        api.client.post("/api/resources", json={**unit, "id": "two", "capacity": 0}, headers=admin),
        422,
        field="capacity",
    )
    listed = ok(api.client.get("/api/resources?kind=scrubbing_capacity", headers=api.bearer("observer")))["items"]
    assert [u["id"] for u in listed] == ["scrub-hk-1"]
    requested = ok(
        api.client.post(
            f"/api/incidents/{iid}/resources",
            json={"resource": "scrubbing_capacity", "quantity": 200, "destination": "IDC-3", "step": "scrubbing"},
            headers=api.bearer("responder"),
        ),
        201,
    )
    request = requested["events"][0]["request"]
    base = f"/api/incidents/{iid}/resources/{request}"
    problem(api.client.post(f"{base}/allocate", json={"units": ["scrub-hk-1"]}, headers=api.bearer("responder")), 403)
    assert kinds(api.client.post(f"{base}/allocate", json={"units": ["scrub-hk-1"]}, headers=h)) == [
        "resource_allocated"
    ]
    problem(api.client.post(f"{base}/cancel", json={"reason": "not needed"}, headers=h), 409, detail="return them")
    for act in ("dispatch", "arrive", "return"):
        assert kinds(api.client.post(f"{base}/{act}", headers=api.bearer("responder"))) == ["resource_moved"]
    problem(api.client.post(f"{base}/arrive", headers=h), 409)
    assert kinds(api.client.post(f"{base}/cancel", json={"reason": "attack over"}, headers=h)) == [
        "resource_request_cancelled"
    ]
    requests = ok(api.client.get(f"/api/incidents/{iid}/resources", headers=api.bearer("observer")))["items"]
    assert requests[0]["units"]["scrub-hk-1"]["stage"] == "returned"
    assert requests[0]["cancelled"]
    back = ok(api.client.get("/api/resources?kind=scrubbing_capacity", headers=api.bearer("observer")))["items"]
    assert back[0]["status"] == "available"
    problem(api.client.post(f"/api/incidents/{iid}/resources/r99/dispatch", headers=h), 404)


def test_restore_end_cancel_reopen_close(api: Api) -> None:
    iid = api.open()
    h = api.bearer("commander")
    assert kinds(api.client.post(f"/api/incidents/{iid}/restore", json={"degraded": True}, headers=h)) == [
        "clock_recorded"
    ]
    assert kinds(api.client.post(f"/api/incidents/{iid}/restore", headers=h)) == ["clock_recorded"]
    assert kinds(api.client.post(f"/api/incidents/{iid}/end-response", json={"reason": "calm"}, headers=h)) == [
        "response_ended"
    ]
    problem(api.client.post(f"/api/incidents/{iid}/end-response", headers=h), 409)
    problem(api.client.post(f"/api/incidents/{iid}/close", headers=h), 409, detail="open steps")
    assert kinds(api.client.post(f"/api/incidents/{iid}/close", json={"reason": "handled"}, headers=h)) == [
        "incident_closed"
    ]
    problem(api.client.post(f"/api/incidents/{iid}/level", json={"level": "I", "reason": "r"}, headers=h), 409)
    assert kinds(api.client.post(f"/api/incidents/{iid}/reopen", json={"reason": "rebound"}, headers=h)) == [
        "incident_reopened"
    ]
    problem(api.client.post(f"/api/incidents/{iid}/cancel", json={}, headers=h), 422, field="reason")
    assert kinds(api.client.post(f"/api/incidents/{iid}/cancel", json={"reason": "false alarm"}, headers=h)) == [
        "incident_cancelled"
    ]
    assert ok(api.client.get(f"/api/incidents/{iid}", headers=h))["cancelled"]


# -- regulators ----------------------------------------------------------------------------------------------


def test_obligations_reportability_reports_and_filings(api: Api) -> None:
    iid = api.open()
    h = api.bearer("commander")
    rows = ok(api.client.get(f"/api/incidents/{iid}/obligations?lang=en", headers=api.bearer("auditor")))
    assert {r["regime"] for r in rows} == {"cn-miit-2017", "cn-cac-2025"}
    assert kinds(
        api.client.post(
            f"/api/incidents/{iid}/reportability/cn-miit-2017", json={"reason": "a province is hit"}, headers=h
        )
    ) == ["reportability_judged"]
    problem(
        api.client.post(f"/api/incidents/{iid}/reportability/cn-miit-2017", json={}, headers=h), 422, field="reason"
    )
    problem(api.client.post(f"/api/incidents/{iid}/reportability/xx-none", json={"reason": "r"}, headers=h), 404)
    report = f"/api/incidents/{iid}/reports/cn-miit-2017/initial"
    drafted = api.client.get(f"{report}?format=json&lang=en", headers=api.bearer("auditor"))
    body = ok(drafted)
    assert (body["regime"], body["stage"], body["lang"]) == ("cn-miit-2017", "initial", "en")
    assert body["missing"]
    assert drafted.headers["X-Missing-Fields"] == str(len(body["missing"]))
    html = api.client.get(f"{report}?format=html", headers=api.bearer("communications"))
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert "<html" in html.text
    problem(api.client.get(f"{report}?format=docx", headers=h), 422, field="format")
    problem(api.client.get(f"/api/incidents/{iid}/reports/cn-miit-2017/final", headers=h), 404)
    problem(api.client.get(report, headers=api.bearer("observer")), 403)
    submit = f"{report}/submit"
    problem(api.client.post(submit, json={"reference": "MIIT-1"}, headers=h), 409, detail="missing")
    api.do(c.CompleteStep(actor=LOCAL, incident_id=iid, step_id="confirm"))
    api.do(c.SetImpact(actor=LOCAL, incident_id=iid, services=["idc"]))
    document = b"%PDF-1.7 the exact document filed"
    problem(
        api.client.post(submit, json={"reference": "MIIT-1", "document_base64": "not base64!"}, headers=h),
        422,
        field="document_base64",
    )
    filed = ok(
        api.client.post(
            submit,
            json={
                "reference": "MIIT-2026-0001",
                "document_base64": base64.b64encode(document).decode(),
                "document_name": "miit-initial.pdf",
                "late_reason": "reported by phone first",
            },
            headers=api.bearer("communications"),
        )
    )
    assert filed["obligation"] == "immediate"
    assert filed["document_sha256"] == hashlib.sha256(document).hexdigest()
    assert [e["kind"] for e in filed["events"]] == ["report_submitted"]
    kept = api.client.get(f"/api/incidents/{iid}/evidence/{filed['document_sha256']}", headers=api.bearer("auditor"))
    assert (kept.status_code, kept.content, kept.headers["content-type"]) == (200, document, "application/pdf")
    problem(api.client.post(submit, json={"reference": "MIIT-again"}, headers=h), 409, detail="already submitted")
    after = ok(api.client.get(f"/api/incidents/{iid}/obligations", headers=h))
    miit = next(r for r in after if r["regime"] == "cn-miit-2017")
    assert miit["obligations"][0]["reference"] == "MIIT-2026-0001"


def test_a_report_drafted_as_pdf(api: Api) -> None:
    iid = api.open()
    pdf = api.client.get(
        f"/api/incidents/{iid}/reports/cn-cac-2025/initial?format=pdf&lang=zh-CN", headers=api.bearer("auditor")
    )
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-disposition"].startswith("attachment;")


# -- playbooks -------------------------------------------------------------------------------------------------


def test_playbooks_listed_shown_and_validated(api: Api) -> None:
    h = api.bearer("observer")
    listed = ok(api.client.get("/api/playbooks?lang=en&limit=500", headers=h))
    ids = {p["id"] for p in listed["items"]}
    assert {"ddos", "typhoon-flood", "mini"} <= ids
    assert all(not p["file"].startswith("/") for p in listed["items"])
    broken = next(p for p in listed["items"] if p["file"] == "broken.yaml")
    assert (broken["id"], broken["valid"]) == ("broken.yaml", False)
    assert str(api.app.settings.playbooks_dir) not in broken["title"]
    shown = api.client.get("/api/playbooks/ddos?level=II&lang=en", headers=h)
    plan = ok(shown)
    assert (plan["id"], plan["level"]) == ("ddos", "II")
    assert "upstream-help" in [s["id"] for s in plan["steps"]]
    assert shown.headers["ETag"] == f'"{plan["content_hash"]}"'
    problem(api.client.get("/api/playbooks/no-such", headers=h), 404)
    problem(api.client.get("/api/playbooks/ddos?level=V", headers=h), 422, field="level")

    def validate(name: str, content: bytes) -> dict[str, Any]:
        answer = api.client.post("/api/playbooks/validate", files={"file": (name, content)}, headers=h)
        return dict(ok(answer))

    good = validate("ddos.yaml", (PLAYBOOKS / "attack" / "ddos.yaml").read_bytes())
    assert (good["valid"], good["id"], [p for p in good["problems"] if p["severity"] == "error"]) == (True, "ddos", [])
    broken = validate("bad.yaml", b"id: Bad Id\nversion: 1\n")
    assert broken["valid"] is False
    assert all(p["line"] >= 1 and p["message"] for p in broken["problems"])
    hostile = {
        "alias bomb": b'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        + b"".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n".encode()
            for i in range(20)
        ),
        "not text": b"\xff\xfe\x00\x00\x80\x81",
        "deep": b"a: " + b"[" * 10_000 + b"]" * 10_000 + b"\n",
        "empty": b"",
        "python tags": b"!!python/object/apply:os.system ['true']\n",
        "too large": b"# " + b"x" * (8 * 1024 * 1024) + b"\n",
    }
    for what, content in hostile.items():
        result = validate(f"{what}.yaml", content)
        assert result["valid"] is False, what
        assert result["problems"], what
    problem(api.client.post("/api/playbooks/validate", headers=h), 422, field="file")


# -- users and tokens; one's own password --------------------------------------------------------------------


def test_administrators_manage_users_and_tokens(api: Api) -> None:
    admin = api.bearer("admin")
    for method, path in (
        ("get", "/api/users"),
        ("post", "/api/users/observer/disable"),
        ("post", "/api/users/observer/tokens"),
        ("get", "/api/tokens"),
    ):
        problem(
            api.client.request(method, path, json={}, headers=api.bearer("commander")), 403, detail="administrators"
        )
    added = ok(
        api.client.post(
            "/api/users",
            json={"id": "zhao.lei", "display_name": "赵磊", "roles": ["responder", "observer"], "password": PASSWORD},
            headers=admin,
        ),
        201,
    )
    assert (added["roles"], added["must_change_password"], added["disabled"]) == (
        ["observer", "responder"],
        True,
        False,
    )
    problem(
        api.client.post(
            "/api/users", json={"id": "zhao.lei", "roles": ["observer"], "password": PASSWORD}, headers=admin
        ),
        409,
    )
    problem(
        api.client.post("/api/users", json={"id": "x", "roles": ["king"], "password": PASSWORD}, headers=admin),
        422,
        field="roles.0",
    )
    problem(
        api.client.post("/api/users", json={"id": "x y", "roles": ["observer"], "password": PASSWORD}, headers=admin),
        422,
        field="user",
    )
    problem(
        api.client.post("/api/users", json={"id": "short", "roles": ["observer"], "password": "short"}, headers=admin),
        422,
        field="password",
    )
    users = ok(api.client.get("/api/users?limit=500", headers=admin))["items"]
    assert {"zhao.lei", "admin", "observer"} <= {u["id"] for u in users}
    issued = api.client.post(
        "/api/users/zhao.lei/tokens", json={"name": "monitoring", "scopes": ["read"], "days": 30}, headers=admin
    )
    token = ok(issued, 201)
    assert issued.headers["Cache-Control"] == "no-store"
    assert (token["scopes"], token["user"]) == (["read"], "zhao.lei")
    machine = {"Authorization": f"Bearer {token['secret']}"}
    assert ok(api.client.get("/api/me", headers=machine))["user"] == "zhao.lei"
    tokens = ok(api.client.get("/api/tokens?user=zhao.lei", headers=admin))["items"]
    assert [(t["id"], t["name"], t["revoked_at"]) for t in tokens] == [(token["id"], "monitoring", None)]
    assert "secret" not in tokens[0]
    assert api.client.delete(f"/api/tokens/{token['id']}", headers=admin).status_code == 204
    problem(api.client.get("/api/me", headers=machine), 401)
    problem(api.client.delete(f"/api/tokens/{token['id']}", headers=admin), 404)
    # disabling ends sessions and tokens at once; enabling lets the user back in
    second = ok(api.client.post("/api/users/zhao.lei/tokens", json={}, headers=admin), 201)
    assert ok(api.client.post("/api/users/zhao.lei/disable", headers=admin))["disabled"] is True
    problem(api.client.get("/api/me", headers={"Authorization": f"Bearer {second['secret']}"}), 401)
    problem(api.client.post("/api/users/admin/disable", headers=admin), 422, field="user")
    assert ok(api.client.post("/api/users/zhao.lei/enable", headers=admin))["disabled"] is False
    reset = ok(api.client.post("/api/users/zhao.lei/reset", headers=admin))
    browser, _csrf = session_client(api, "zhao.lei", reset["password"])
    assert ok(browser.get("/api/me"))["must_change_password"] is True
    problem(api.client.post("/api/users/nobody/disable", headers=admin), 404)
    audit = {r["action"] for r in decrypt_audit(api.app) if r.get("actor") == "admin"}
    assert {"user.add", "token.issue", "token.revoke", "user.disable", "user.enable", "user.reset"} <= audit


def test_a_one_time_password_must_be_changed_before_any_change(api: Api) -> None:
    api.add_user("newbie", ["commander"], must_change=True, token=False)
    browser, csrf = session_client(api, "newbie")
    assert ok(browser.get("/api/me"))["must_change_password"] is True
    h = {"x-csrf-token": csrf}
    iid = api.open()
    assert ok(browser.get(f"/api/incidents/{iid}"))["id"] == iid  # reading is allowed
    for path, body in (
        ("/api/incidents", {"playbook": "ddos", "title": "x"}),
        (f"/api/incidents/{iid}/level", {"level": "II", "reason": "r"}),
        (f"/api/incidents/{iid}/notes", {"text": "hello"}),
    ):
        problem(browser.post(path, json=body, headers=h), 403, detail="change your one-time password first")
    assert api.version(iid) == ok(browser.get(f"/api/incidents/{iid}"))["version"]
    problem(
        browser.post(
            "/api/auth/password",
            json={"current_password": "not it at all", "new_password": "a brand new passphrase"},
            headers=h,
        ),
        403,
        detail="wrong",
    )
    problem(
        browser.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": "short"}, headers=h),
        422,
        field="new_password",
    )
    problem(
        browser.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": PASSWORD}, headers=h),
        422,
        field="new_password",
    )
    problem(
        browser.post("/api/auth/password", json={"current_password": PASSWORD, "new_password": "a brand new one!"}),
        403,
        detail="CSRF",
    )
    changed = ok(
        browser.post(
            "/api/auth/password",
            json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
            headers=h,
        )
    )
    assert changed["must_change_password"] is False
    assert ok(browser.get("/api/me"))["must_change_password"] is False
    ok(browser.post(f"/api/incidents/{iid}/notes", json={"text": "hello"}, headers=h), 201)
    again, _ = session_client(api, "newbie", "a brand new passphrase")
    assert ok(again.get("/api/me"))["user"] == "newbie"
    actions = [r["action"] for r in decrypt_audit(api.app) if r.get("subject") == "user:newbie"]
    assert "user.password" in actions
    assert "user.password_refused" in actions


def test_problem_bodies_are_json_even_for_framework_errors(api: Api) -> None:
    answer = api.client.post(
        "/api/incidents", content=b"{not json", headers={**api.bearer("commander"), "content-type": "application/json"}
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith(PROBLEM)
    wrong_method = api.client.put("/api/incidents", headers=api.bearer("commander"))
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"].startswith(PROBLEM)
