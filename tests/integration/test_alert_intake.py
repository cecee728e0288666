"""Alert intake over HTTP, on SQLite and PostgreSQL: Alertmanager's webhook and the generic form open
incidents in triage, deduplicate repeats in their own table, attach a group's further alerts, record
resolutions; unmatched alerts are ignored with a reason; bad payloads and callers are refused cleanly."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ir.adapters.alerts import is_race, ledger_of, load_rules
from ir.adapters.db.tables import alert_fingerprints, alert_groups, incidents
from ir.adapters.playbooks.library import PlaybookLibrary
from ir.app.alerts import Alert, AlertIntake, AlertRulesInvalid
from ir.bootstrap import App
from ir.domain import commands as c
from ir.entrypoints.http.app import create_app
from tests.conftest import ACTOR, PLAYBOOKS, ROOT, T0, AppFactory, decrypt_audit, table_rows

RULES = """\
version: 1
rules:
  - id: ddos
    match:
      alertname: DDoSAttackDetected
    match_re:
      severity: critical|page
    playbook: ddos
    title: "DDoS on {labels.target|our network}: {annotations.summary}"
    group_by: [alertname, target]
    facts:
      peak_gbps: "{annotations.peak_gbps}"
      affected_users: "{annotations.affected_users}"
      cities_affected: "{labels.cities|}"
      cii_involved: false
  - id: dns-check
    sources: [zabbix]
    match:
      check: dns
    playbook: dns-failure
    mode: test
    group_by: [site]
"""


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES, encoding="utf-8")
    return path


@pytest.fixture
def app(make_app: AppFactory, rules_file: Path) -> App:
    return make_app(alert_rules=str(rules_file))


@pytest.fixture
def tokens(app: App) -> dict[str, str]:
    """API tokens: a machine commander (read, write), the same user read-only, and a responder."""
    out = {}
    with app.db.uow() as uow:
        uow.users.add("alertmanager", display_name="Alertmanager", password="machine-only-1234", roles=["commander"])
        uow.users.add("duty", display_name="Duty responder", password="responder-pass-1234", roles=["responder"])
        out["machine"] = uow.users.issue_token("alertmanager", name="am", scopes=["read", "write"], ttl=None)[1]
        out["read"] = uow.users.issue_token("alertmanager", name="ro", scopes=["read"], ttl=None)[1]
        out["responder"] = uow.users.issue_token("duty", name="duty", scopes=["read", "write"], ttl=None)[1]
        uow.commit()
    return out


@pytest.fixture
def client(app: App, tokens: dict[str, str]) -> Iterator[TestClient]:
    api = create_app(app=app, background=False)
    with TestClient(api) as test_client:
        test_client.headers["Authorization"] = f"Bearer {tokens['machine']}"
        yield test_client
    intake = getattr(api.state, "alert_intake", None)  # the server stopped: so did the intake's writer
    assert intake is None or intake._writer is None


def am_alert(
    fingerprint: str,
    *,
    status: str = "firing",
    target: str = "idc-east",
    starts: Any = T0 - timedelta(minutes=3),
    **annotations: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "DDoSAttackDetected",
            "severity": "critical",
            "target": target,
            "instance": f"probe-{fingerprint}",
            "cities": "2",
        },
        "annotations": {
            "summary": "inbound traffic far above baseline",
            "peak_gbps": "42.5",
            "affected_users": "1,200,000",
            **annotations,
        },
        "startsAt": starts.isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else (T0 + timedelta(minutes=9)).isoformat(),
        "generatorURL": "http://prometheus:9090/graph?g0.expr=ddos",
        "fingerprint": fingerprint,
    }


def am_payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="DDoSAttackDetected"}',
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": "ir",
        "groupLabels": {"alertname": "DDoSAttackDetected"},
        "commonLabels": {"alertname": "DDoSAttackDetected"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


def fingerprint_row(app: App, fingerprint: str, source: str = "alertmanager") -> dict[str, Any]:
    rows = [r for r in table_rows(app, alert_fingerprints) if r["fingerprint"] == f"{source}:{fingerprint}"]
    assert len(rows) == 1, rows
    return rows[0]


def incident_count(app: App) -> int:
    with app.db.connection() as conn:
        return int(conn.execute(select(func.count()).select_from(incidents)).scalar_one())


def post(client: TestClient, payload: dict[str, Any], path: str = "/api/alerts/alertmanager") -> dict[str, Any]:
    answer = client.post(path, json=payload)
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    return body


# -- the life of an alert group ---------------------------------------------------------------------------


def test_an_alertmanager_alert_opens_an_incident_in_triage_with_facts_and_a_suggested_level(
    client: TestClient, app: App
) -> None:
    body = post(client, am_payload(am_alert("a1")))
    assert body["received"] == 1 and body["opened"] == 1
    outcome = body["alerts"][0]
    assert outcome["outcome"] == "opened" and outcome["rule"] == "ddos" and outcome["warnings"] == []
    iid = outcome["incident"]
    assert body["incidents"] == [iid]

    board = client.get(f"/api/incidents/{iid}").json()
    assert board["title"] == "DDoS on idc-east: inbound traffic far above baseline"
    assert board["playbook"]["id"] == "ddos" and board["mode"] == "real"
    assert board["level"] is None, "an alert never declares a level"
    assert board["facts"]["peak_gbps"] == 42.5
    assert board["facts"]["affected_users"] == 1_200_000
    assert board["facts"]["cities_affected"] == 2
    assert board["facts"]["cii_involved"] is False
    assert board["suggested_level"] == "II"  # affected_users >= 1,000,000
    assert board["clocks"]["detection"] == (T0 - timedelta(minutes=3)).isoformat()
    [entry] = board["log"]
    assert entry["actor"] == "alertmanager" and entry["source"] == "alertmanager" and entry["category"] == "message"
    assert "suggested level II" in entry["text"] and "[a1]" in entry["text"]
    with app.db.connection() as conn:
        status = conn.execute(select(incidents.c.status).where(incidents.c.id == iid)).scalar_one()
    assert status == "triage"

    row = fingerprint_row(app, "a1")
    assert (row["incident_id"], row["status"], row["count"], row["rule"]) == (iid, "firing", 1, "ddos")
    assert row["starts_at"] == T0 - timedelta(minutes=3)
    [group] = table_rows(app, alert_groups)
    assert group["incident_id"] == iid and group["rule"] == "ddos"

    audit = decrypt_audit(app)
    intake = [r for r in audit if r["action"] == "alert.intake"]
    assert len(intake) == 1 and intake[0]["actor"] == "alertmanager"
    assert intake[0]["payload"]["outcomes"] == {"opened": 1}
    opened = [r for r in audit if r["action"] == "alert.open"]
    assert [r["payload"]["kind"] for r in opened] == ["incident_opened", "log_entry_added"]


def test_a_repeat_is_deduplicated_then_the_group_attaches_and_resolves(client: TestClient, app: App) -> None:
    iid = post(client, am_payload(am_alert("a1")))["incidents"][0]
    version = client.get(f"/api/incidents/{iid}").json()["version"]

    # Alertmanager sends the same firing alert again (group_interval, repeat_interval): a repeat
    again = post(client, am_payload(am_alert("a1")))
    assert again["deduplicated"] == 1 and again["opened"] == 0 and again["incidents"] == []
    assert again["alerts"][0] == {
        "fingerprint": "a1",
        "outcome": "deduplicated",
        "incident": iid,
        "rule": "ddos",
        "reason": None,
        "warnings": [],
    }
    post(client, am_payload(am_alert("a1")))
    assert incident_count(app) == 1
    row = fingerprint_row(app, "a1")
    assert row["count"] == 3 and row["last_seen"] >= row["first_seen"]
    assert client.get(f"/api/incidents/{iid}").json()["version"] == version, "repeats never touch the incident"

    # another alert of the same group (alertname and target) attaches, its changed facts set
    attached = post(client, am_payload(am_alert("a1"), am_alert("a2", peak_gbps="80")))
    assert [a["outcome"] for a in attached["alerts"]] == ["deduplicated", "attached"]
    assert attached["alerts"][1]["incident"] == iid and attached["incidents"] == [iid]
    assert incident_count(app) == 1
    board = client.get(f"/api/incidents/{iid}").json()
    assert board["facts"]["peak_gbps"] == 80
    assert board["log"][-1]["text"].startswith("告警 firing: DDoS on idc-east") and "[a2]" in board["log"][-1]["text"]
    kinds = [e["kind"] for e in client.get(f"/api/incidents/{iid}/timeline").json()["items"]]
    assert kinds == ["incident_opened", "log_entry_added", "facts_set", "log_entry_added"]
    assert fingerprint_row(app, "a1")["count"] == 4

    # the same attached alert again changes nothing on the incident
    post(client, am_payload(am_alert("a2", peak_gbps="80")))
    assert client.get(f"/api/incidents/{iid}").json()["version"] == len(kinds)

    # a1 resolves: recorded in the table and in the incident's log, once
    resolved = post(client, am_payload(am_alert("a1", status="resolved")))
    assert resolved["alerts"][0]["outcome"] == "resolved" and resolved["alerts"][0]["incident"] == iid
    row = fingerprint_row(app, "a1")
    assert row["status"] == "resolved" and row["ends_at"] == T0 + timedelta(minutes=9) and row["count"] == 5
    board = client.get(f"/api/incidents/{iid}").json()
    assert board["log"][-1]["text"].startswith("恢复 resolved:") and "[a1]" in board["log"][-1]["text"]
    again = post(client, am_payload(am_alert("a1", status="resolved")))
    assert again["alerts"][0]["outcome"] == "deduplicated"
    assert client.get(f"/api/incidents/{iid}").json()["log_entries"] == 3
    assert board["level"] is None

    # a late resend of the resolved occurrence as firing is a repeat; a new occurrence attaches again
    assert post(client, am_payload(am_alert("a1")))["alerts"][0]["outcome"] == "deduplicated"
    refired = post(client, am_payload(am_alert("a1", starts=T0 + timedelta(minutes=20))))
    assert refired["alerts"][0]["outcome"] == "attached" and refired["alerts"][0]["incident"] == iid
    assert fingerprint_row(app, "a1")["status"] == "firing"

    listed = client.get("/api/alerts", params={"incident": iid}).json()
    assert listed["total"] == 2 and {i["fingerprint"] for i in listed["items"]} == {
        "alertmanager:a1",
        "alertmanager:a2",
    }

    audit = [r["action"] for r in decrypt_audit(app)]
    assert audit.count("alert.intake") == 9
    # one record per event: a2 attached (facts set, log entry), a1 fired again (its peak set back, log entry)
    assert audit.count("alert.attach") == 4 and audit.count("alert.resolve") == 1


def test_a_group_whose_incident_is_closed_opens_a_new_one(client: TestClient, app: App) -> None:
    first = post(client, am_payload(am_alert("a1")))["incidents"][0]
    app.handlers.handle(c.CancelIncident(actor=ACTOR, incident_id=first, reason="a test of the probes"))
    # the firing alert repeated: still a repeat of the occurrence that opened the closed incident
    assert post(client, am_payload(am_alert("a1")))["alerts"][0]["outcome"] == "deduplicated"
    # its resolution is recorded in the table; the closed incident is left alone
    resolved = post(client, am_payload(am_alert("a1", status="resolved")))["alerts"][0]
    assert resolved["outcome"] == "resolved" and "closed" in resolved["reason"]
    # a new alert of the group opens a new incident, and the group follows it
    second = post(client, am_payload(am_alert("a3")))
    assert second["alerts"][0]["outcome"] == "opened" and second["incidents"][0] != first
    assert table_rows(app, alert_groups)[0]["incident_id"] == second["incidents"][0]
    # a different target is a different group: another incident
    other = post(client, am_payload(am_alert("b1", target="idc-west")))
    assert other["alerts"][0]["outcome"] == "opened"
    assert incident_count(app) == 3


def test_alerts_no_rule_matches_are_ignored_with_a_reason(client: TestClient, app: App) -> None:
    quiet = am_alert("n1")
    quiet["labels"] = {"alertname": "DiskAlmostFull", "instance": "db-1"}
    low = am_alert("n2")
    low["labels"]["severity"] = "warning"  # match_re severity critical|page fails
    body = post(client, am_payload(quiet, low, am_alert("a1")))
    assert [a["outcome"] for a in body["alerts"]] == ["ignored", "ignored", "opened"]
    assert (
        "no alert rule matches" in body["alerts"][0]["reason"]
        and "alertname=DiskAlmostFull" in body["alerts"][0]["reason"]
    )
    assert body["ignored"] == 2 and incident_count(app) == 1
    assert {r["fingerprint"] for r in table_rows(app, alert_fingerprints)} == {"alertmanager:a1"}
    only_ignored = post(client, am_payload(quiet))
    assert only_ignored["ignored"] == 1 and only_ignored["incidents"] == []


def test_a_fact_that_does_not_fit_is_left_out_and_named(client: TestClient, app: App) -> None:
    body = post(client, am_payload(am_alert("a1", peak_gbps="very high")))
    outcome = body["alerts"][0]
    assert outcome["outcome"] == "opened"
    assert outcome["warnings"] == ["fact 'peak_gbps' is a number; got 'very high'"]
    board = client.get(f"/api/incidents/{outcome['incident']}").json()
    assert "peak_gbps" not in board["facts"] and board["facts"]["affected_users"] == 1_200_000


def test_the_generic_form_with_explicit_facts_and_test_mode(client: TestClient, app: App) -> None:
    payload = {
        "source": "zabbix",
        "alerts": [
            {
                "fingerprint": "z-100",
                "status": "firing",
                "title": "DNS resolution failing at site sh-1",
                "labels": {"check": "dns", "site": "sh-1"},
                "starts_at": (T0 - timedelta(minutes=1)).isoformat(),
                "facts": {"dns_service": "recursive", "resolution_success_pct": 91.5, "affected_users": "250,000"},
            },
            {"fingerprint": "z-101", "labels": {"check": "dns", "site": "sh-1"}, "facts": {"nonsense": 1}},
        ],
    }
    body = post(client, payload, "/api/alerts")
    assert body["source"] == "zabbix" and [a["outcome"] for a in body["alerts"]] == ["opened", "attached"]
    assert body["alerts"][1]["warnings"] == ["fact 'nonsense': playbook dns-failure has no such fact"]
    iid = body["incidents"][0]
    board = client.get(f"/api/incidents/{iid}").json()
    assert board["mode"] == "test" and board["title"] == "DNS resolution failing at site sh-1"
    assert board["facts"] == {"dns_service": "recursive", "resolution_success_pct": 91.5, "affected_users": 250_000}
    assert board["level"] is None and board["suggested_level"] is not None
    assert fingerprint_row(app, "z-100", "zabbix")["incident_id"] == iid
    # the generic form without a fingerprint: one is made from the labels, so a resend deduplicates
    bare = {"source": "zabbix", "alerts": [{"labels": {"check": "dns", "site": "bj-2"}}]}
    assert post(client, bare, "/api/alerts")["alerts"][0]["outcome"] == "opened"
    assert post(client, bare, "/api/alerts")["alerts"][0]["outcome"] == "deduplicated"
    # a rule limited to a source does not take another source's alerts
    elsewhere = post(client, {**bare, "source": "nagios"}, "/api/alerts")
    assert elsewhere["alerts"][0]["outcome"] == "ignored"


# -- refusals --------------------------------------------------------------------------------------------


def test_malformed_payloads_are_422_problems_naming_the_field(client: TestClient) -> None:
    bad_status = am_payload(am_alert("a1"))
    bad_status["alerts"][0]["status"] = "burning"
    no_start = am_payload(am_alert("a1"))
    del no_start["alerts"][0]["startsAt"]
    naive = am_payload(am_alert("a1"))
    naive["alerts"][0]["startsAt"] = "2026-10-01T09:00:00"
    cases = [
        (bad_status, "alerts.0.status"),
        (no_start, "alerts.0.startsAt"),
        (naive, "alerts.0.startsAt"),
        ({**am_payload(am_alert("a1")), "version": "3"}, "version"),
        ({"version": "4"}, "alerts"),
        ({**am_payload(), "alerts": "many"}, "alerts"),
        ({**am_payload(am_alert("a1")), "alerts": [{**am_alert("a1"), "labels": ["x"]}]}, "alerts.0.labels"),
    ]
    for payload, field in cases:
        answer = client.post("/api/alerts/alertmanager", json=payload)
        assert answer.status_code == 422, (field, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["field"] == field
    for raw in (b"{not json", b"", b"[]", b"null"):
        answer = client.post("/api/alerts/alertmanager", content=raw, headers={"Content-Type": "application/json"})
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    generic = client.post("/api/alerts", json={"source": "Bad Source!", "alerts": []})
    assert generic.status_code == 422 and generic.json()["field"] == "source"
    unknown = client.post("/api/alerts", json={"source": "x", "alerts": [{"labels": {}, "colour": "red"}]})
    assert unknown.status_code == 422 and unknown.json()["field"] == "alerts.0.colour"


def test_callers_need_a_token_with_write_scope_and_the_alert_intake_permission(
    client: TestClient, tokens: dict[str, str], app: App
) -> None:
    payload = am_payload(am_alert("a1"))
    nobody = client.post("/api/alerts/alertmanager", json=payload, headers={"Authorization": ""})
    assert nobody.status_code == 401 and nobody.headers["content-type"] == "application/problem+json"
    forged = client.post("/api/alerts/alertmanager", json=payload, headers={"Authorization": "Bearer ir_nope"})
    assert forged.status_code == 401
    read_only = client.post(
        "/api/alerts/alertmanager", json=payload, headers={"Authorization": f"Bearer {tokens['read']}"}
    )
    assert read_only.status_code == 403 and "only read" in read_only.json()["detail"]
    responder = client.post(
        "/api/alerts", json={"source": "x", "alerts": []}, headers={"Authorization": f"Bearer {tokens['responder']}"}
    )
    assert responder.status_code == 403 and "alert intake" in responder.json()["detail"]
    assert incident_count(app) == 0 and table_rows(app, alert_fingerprints) == []


def test_invalid_rules_refuse_webhooks_with_503_naming_the_problem(
    client: TestClient, rules_file: Path, app: App
) -> None:
    rules_file.write_text(RULES.replace("critical|page", "critical|(page"), encoding="utf-8")
    answer = client.post("/api/alerts/alertmanager", json=am_payload(am_alert("a1")))
    assert answer.status_code == 503 and answer.headers["content-type"] == "application/problem+json"
    assert "rules.yaml:7:" in answer.json()["detail"] and "not a regular expression" in answer.json()["detail"]
    rules_file.write_text(RULES, encoding="utf-8")
    assert post(client, am_payload(am_alert("a1")))["opened"] == 1


# -- rules ------------------------------------------------------------------------------------------------


def test_the_shipped_rules_load_against_the_shipped_playbooks() -> None:
    rules = load_rules(str(ROOT / "alerts" / "rules.yaml"), playbooks=PlaybookLibrary(str(PLAYBOOKS)))
    assert {r.playbook for r in rules.rules} <= {p.id for p in PlaybookLibrary(str(PLAYBOOKS)).playbooks()}
    assert len(rules.rules) >= 3


def test_rules_are_checked_on_load_with_every_problem_and_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        """\
rules:
  - id: one
    match_re: {severity: "crit(ical"}
    playbook: ddos
    title: "{labels.target} {__class__}"
    facts:
      peak_gbs: "{annotations.peak}"
      cii_involved: perhaps
  - id: one
    playbook: no-such-playbook
    group_by: ["bad label"]
  - id: three
    match: {a: b}
    playbook: ddos
    mode: drill
""",
        encoding="utf-8",
    )
    with pytest.raises(AlertRulesInvalid) as caught:
        load_rules(str(bad), playbooks=PlaybookLibrary(str(PLAYBOOKS)))
    # shape first: a mode that is not real or test stops before the rest is checked
    assert caught.value.problems == [f"{bad}:15:11: error: rules.2.mode: Input should be 'real' or 'test'"]
    bad.write_text(bad.read_text().replace("mode: drill", "mode: test"), encoding="utf-8")
    with pytest.raises(AlertRulesInvalid) as caught:
        load_rules(str(bad), playbooks=PlaybookLibrary(str(PLAYBOOKS)))
    found = "\n".join(caught.value.problems)
    assert f"{bad}:3:26: error: not a regular expression" in found
    assert f"{bad}:5:12: error: unknown placeholder '{{__class__}}'" in found
    assert f"{bad}:7:17: error: playbook ddos has no fact 'peak_gbs'; did you mean 'peak_gbps'?" in found
    assert f"{bad}:8:21: error: fact 'cii_involved' is true or false; got 'perhaps'" in found
    assert f"{bad}:9:9: error: duplicate rule id 'one'" in found
    assert "matches nothing in particular" in found
    assert f"{bad}:10:15: error: no playbook 'no-such-playbook'" in found
    assert f"{bad}:11:16: error: 'bad label' is not a label name" in found
    assert len(caught.value.problems) == 8


# -- concurrency ----------------------------------------------------------------------------------------------


def test_concurrent_first_alerts_of_one_group_open_one_incident(app: App, rules_file: Path) -> None:
    """Eight webhooks at once, each the first sight of another alert of the same new group: one opens the
    incident, the others attach to it (on PostgreSQL the loser of the group's insert decides again)."""
    intake = AlertIntake(
        uow=app.db.uow,
        ledger=ledger_of,
        clock=app.clock,
        playbooks=app.library,
        rules=lambda: load_rules(str(rules_file), playbooks=app.library),
        races=is_race,
        group_commit=False,  # each webhook its own transaction, as several server processes would write
    )
    machine = c.Actor("machine", frozenset({"commander"}))
    start = threading.Barrier(8)
    results: list[Any] = []
    errors: list[BaseException] = []

    def send(n: int) -> None:
        alert = Alert(
            fingerprint=f"c{n}",
            status="firing",
            labels={"alertname": "DDoSAttackDetected", "severity": "page", "target": "idc-north"},
            annotations={"summary": f"probe {n}", "peak_gbps": str(10 + n)},
            starts_at=T0,
        )
        start.wait()
        try:
            results.append(intake.receive(actor=machine, source="alertmanager", alerts=[alert, alert]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    outcomes = sorted(o.outcome for r in results for o in r.alerts)
    assert outcomes == ["attached"] * 7 + ["deduplicated"] * 8 + ["opened"]
    assert incident_count(app) == 1
    rows = table_rows(app, alert_fingerprints)
    assert len(rows) == 8 and {r["count"] for r in rows} == {2} and len({r["incident_id"] for r in rows}) == 1
    with app.db.read() as repo:
        incident = repo.get(rows[0]["incident_id"])
    assert len(incident.emergency.log) == 8  # the opening entry and one per attached webhook


def test_a_webhook_failing_in_a_shared_transaction_fails_alone(app: App, rules_file: Path) -> None:
    """Webhooks taken together in one transaction: one that fails is run again on its own and fails
    alone; the others are taken in."""

    class Boom(Exception):
        pass

    def ledger(uow: Any) -> Any:
        real = ledger_of(uow)

        class Exploding:
            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def seen(self, keys: Any) -> Any:
                if "alertmanager:boom" in keys:
                    raise Boom()
                return real.seen(keys)

        return Exploding()

    intake = AlertIntake(
        uow=app.db.uow,
        ledger=ledger,
        clock=app.clock,
        playbooks=app.library,
        rules=lambda: load_rules(str(rules_file), playbooks=app.library),
        linger=0.3,  # long enough for all three to share the first transaction
    )
    machine = c.Actor("machine", frozenset({"commander"}))
    results: dict[str, Any] = {}

    def send(fingerprint: str) -> None:
        alert = Alert(
            fingerprint=fingerprint,
            status="firing",
            labels={"alertname": "DDoSAttackDetected", "severity": "page", "target": f"t-{fingerprint}"},
            starts_at=T0,
        )
        try:
            results[fingerprint] = intake.receive(actor=machine, source="alertmanager", alerts=[alert])
        except Boom as exc:
            results[fingerprint] = exc

    threads = [threading.Thread(target=send, args=(f,)) for f in ("x1", "boom", "x2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(results["boom"], Boom)
    assert results["x1"].alerts[0].outcome == "opened" and results["x2"].alerts[0].outcome == "opened"
    assert incident_count(app) == 2
    assert {r["fingerprint"] for r in table_rows(app, alert_fingerprints)} == {"alertmanager:x1", "alertmanager:x2"}
