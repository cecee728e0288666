"""Notifications end to end on SQLite and PostgreSQL: a declared level writes the outbox in the command's
transaction (addresses sealed), the dispatcher delivers to a real SMTP server (aiosmtpd) and a real HTTP
server (webhook signed, each IM robot's format, the SMS gateway), acknowledgement links work without a
sign-in, critical messages unacknowledged escalate along the group's order, the SMTP server down then back
loses nothing and sends nothing twice, and a delivered notification meets its deadline."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ir.adapters.clock import SimulatedClock
from ir.adapters.db.tables import outbox_messages, outbox_notices
from ir.bootstrap import App
from ir.domain import commands as c
from ir.domain.deadlines import DeadlineState, due_list
from ir.domain.errors import NotFound
from ir.entrypoints.http.app import create_app
from tests.conftest import ACTOR, AppFactory, decrypt_audit, table_rows
from tests.integration.notify_support import (
    TITLE,
    Rig,
    SmtpServer,
    import_contacts,
    notify_folder,
    playbook_folder,
    signature_ok,
    wait_for,
)


def test_a_declared_level_writes_one_message_per_recipient_and_channel_with_the_event(rig: Rig) -> None:
    incident = rig.open()
    rows = rig.messages()
    by = {(r["contact_id"] or r["endpoint"], r["channel"]) for r in rows}
    # roles with nobody on duty reach the first contact of their group; groups reach everyone (cab: the first)
    people = {"li.lei", "wang.wu", "han.meimei"}
    assert by == (
        {(p, ch) for p in people for ch in ("email", "sms", "phone")}
        | {(f"ops-{k}", k) for k in ("dingtalk", "wecom", "feishu", "slack", "teams", "webhook")}
        | {("cab1", "email")}
    ), "cap is published by the communications role, never by the dispatcher"
    assert len({r["key"] for r in rows}) == len(rows)
    assert {r["status"] for r in rows if r["channel"] == "phone"} == {"person"}
    for r in rows:  # the address is the contact's own sealed field: no plaintext in the outbox
        if r["address"] is not None:
            assert "example.org" not in r["address"] and "1380000" not in r["address"]
    notices = table_rows(rig.app, outbox_notices)
    assert {(n["notification"], n["cause"]) for n in notices} == {
        ("callout", "level:II"),
        ("tell-regulator", "level:II"),
    }
    assert all(n["incident_id"] == incident for n in notices)
    # a new level is told (the callout applies to every level); a level reached again is not told twice
    rig.app.handlers.handle(c.DeclareLevel(actor=ACTOR, incident_id=incident, level="III", reason="lower"))
    assert len(rig.messages()) == len(rows) + 15
    rig.app.handlers.handle(c.DeclareLevel(actor=ACTOR, incident_id=incident, level="II", reason="again"))
    assert len(rig.messages()) == len(rows) + 15


def test_a_command_that_makes_nothing_due_writes_nothing(rig: Rig) -> None:
    incident = rig.open(level="IV")  # tell-regulator is for I and II only; callout for every level
    before = len(rig.messages())
    rig.app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=incident, text="a note"))
    rig.app.handlers.handle(c.StartStep(actor=ACTOR, incident_id=incident, step_id="confirm"))
    assert len(rig.messages()) == before


def test_mail_arrives_with_its_headers_chinese_subject_parts_and_message_id(rig: Rig) -> None:
    incident = rig.open()
    done = rig.dispatch()
    assert done.failed == 0
    mails = {m.envelope_to[0]: m for m in rig.smtp.mails}
    assert set(mails) == {"li.lei@example.org", "wang.wu@example.org", "han.meimei@example.org", "cab1@example.org"}
    keys = {(r["contact_id"], r["channel"]): r["key"] for r in rig.messages()}
    zh = mails["li.lei@example.org"]
    raw_subject = next(line for line in zh.raw.split(b"\r\n") if line.lower().startswith(b"subject:"))
    assert b"=?utf-8?" in raw_subject.lower(), raw_subject  # RFC 2047 encoded-words, not raw UTF-8
    assert str(zh.message["Subject"]) == f"启动重大应急响应：{TITLE}"
    assert str(zh.message["Message-ID"]) == f"<{keys[('li.lei', 'email')]}@example.org>"
    assert "应急平台" in str(zh.message["From"]) and "ir@example.org" in str(zh.message["From"])
    assert zh.message["Auto-Submitted"] == "auto-generated"
    assert zh.message.get_content_type() == "multipart/alternative"
    text = zh.message.get_body(preferencelist=("plain",))
    html = zh.message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "示例通信公司已启动重大应急响应" in text.get_content()
    assert f"https://ir.example.org/incidents/{incident}" in text.get_content()
    assert "https://ir.example.org/ack/" in text.get_content()
    assert "<h2>骨干网中断</h2>" in html.get_content() and "/ack/" in html.get_content()
    en = mails["han.meimei@example.org"]
    assert str(en.message["Subject"]).startswith("Level II") or "response declared" in str(en.message["Subject"])
    assert "Acknowledge" in en.message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    # nothing more to send: a second pass sends nothing twice
    assert rig.dispatch().claimed == 0
    assert len(rig.smtp.mails) == 4


def test_html_escapes_what_the_incident_says(rig: Rig) -> None:
    rig.app.handlers.handle(
        c.OpenIncident(actor=ACTOR, playbook="notify-test", title="<script>x</script> & co", level="II")
    )
    rig.dispatch()
    mail = rig.smtp.mails[0].message
    html = mail.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<h2>&lt;script&gt;x&lt;/script&gt; &amp; co</h2>" in html
    assert str(mail["Subject"]).endswith("<script>x</script> & co"), "the subject and text are not HTML"


def test_webhooks_are_signed_and_each_robot_gets_its_format(rig: Rig) -> None:
    rig.open()
    rig.dispatch()
    keys = {r["endpoint"]: r["key"] for r in rig.messages() if r["endpoint"]}
    (hook,) = rig.http.on("/hook")
    assert signature_ok(hook), "X-IR-Signature is sha256=<HMAC-SHA256 of the body>"
    body = hook.json()
    assert hook.headers["idempotency-key"] == body["id"] == keys["ops-webhook"]
    assert body["critical"] is True and body["notification"] == "callout" and TITLE in body["subject"]
    assert body["ack_url"].startswith("https://ir.example.org/ack/")
    (ding,) = rig.http.on("/dingtalk")
    assert ding.json()["msgtype"] == "markdown" and TITLE in ding.json()["markdown"]["title"]
    (wecom,) = rig.http.on("/wecom")
    assert wecom.json()["msgtype"] == "markdown" and TITLE in wecom.json()["markdown"]["content"]
    (feishu,) = rig.http.on("/feishu")
    assert feishu.json()["msg_type"] == "text" and TITLE in feishu.json()["content"]["text"]
    (slack,) = rig.http.on("/slack")
    assert TITLE in slack.json()["text"]
    (teams,) = rig.http.on("/teams")
    card = teams.json()["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert TITLE in card["content"]["body"][0]["text"]
    for post in (ding, wecom, feishu, slack, teams):
        assert post.headers["idempotency-key"] == keys[f"ops-{post.path.strip('/')}"]
    sms = rig.http.on("/sms")
    assert sorted(p.json()["phone"] for p in sms) == ["13800000001", "13800000002", "13800000003"]
    assert all(TITLE in p.json()["content"] for p in sms)


def test_a_delivered_notification_meets_its_deadline_once(rig: Rig) -> None:
    incident = rig.open()
    rig.dispatch()
    with rig.app.db.read() as repo:
        inc = repo.get(incident, fresh=True)
    # every message of tell-regulator is delivered: recorded as sent by the dispatcher, once
    assert len(inc.notifications_sent["tell-regulator"]) == 1
    state = {i.deadline.ref: i.state for i in due_list(inc, rig.clock.now())}
    assert state["notification:tell-regulator"] is DeadlineState.MET
    # callout includes phone calls (a person makes them): not met by the machine
    assert "callout" not in inc.notifications_sent
    assert state["notification:callout"] is not DeadlineState.MET
    rig.dispatch()
    with rig.app.db.read() as repo:
        assert len(repo.get(incident, fresh=True).notifications_sent["tell-regulator"]) == 1
    with rig.app.db.read() as repo:
        sent = [e.event for e in repo.events(incident) if e.event.kind == "notification_sent"]
    assert [e.actor for e in sent] == ["system:dispatcher"]


def test_every_attempt_is_audited(rig: Rig) -> None:
    rig.open()
    rig.dispatch()
    records = decrypt_audit(rig.app)
    delivered = [r for r in records if r.get("action") == "notification.deliver"]
    sendable = [r for r in rig.messages() if r["status"] == "delivered"]
    assert len(delivered) == len(sendable)
    assert {r["actor"] for r in delivered} == {"system:dispatcher"}


def test_the_smtp_server_down_then_back_every_message_once(rig: Rig) -> None:
    rig.smtp.stop()
    rig.app.handlers.handle(c.OpenIncident(actor=ACTOR, playbook="mail-test", title=TITLE, level="III"))
    # 120 people in one group
    rows = "\n".join(f"p{i:03},人{i},,p{i:03}@example.org,,zh-CN,everyone" for i in range(120))
    import_contacts(rig.app, "id,name,phone,email,address,lang,groups\n" + rows + "\n")
    incident = rig.app.handlers.handle(
        c.OpenIncident(actor=ACTOR, playbook="mail-test", title=TITLE, level="II")
    ).incident_id
    wanted = {r["key"] for r in rig.messages() if r["incident_id"] == incident}
    assert len(wanted) == 120
    for _ in range(3):  # down: every pass fails, every message stays pending with a later attempt
        done = rig.dispatch()
        assert done.delivered == 0 and done.failed == 0
        rig.clock.advance(timedelta(seconds=1))
    rows_now = [r for r in rig.messages() if r["incident_id"] == incident]
    assert {r["status"] for r in rows_now} == {"pending"}
    assert all(r["attempts"] >= 1 and "unreachable" in (r["error"] or "") for r in rows_now)
    rig.smtp.start()  # back
    while rig.dispatch().claimed:
        rig.clock.advance(timedelta(seconds=1))
    received = [m.message["Message-ID"] for m in rig.smtp.mails]
    assert len(received) == len(set(received)) == 120, "every message delivered, none twice"
    assert {str(i).strip("<>").split("@")[0] for i in received} == wanted
    assert {r["status"] for r in rig.messages() if r["incident_id"] == incident} == {"delivered"}


def test_a_critical_message_unacknowledged_escalates_to_the_next_contact(rig: Rig) -> None:
    incident = rig.open()
    rig.dispatch()
    ids = {(r["contact_id"], r["channel"]): r["id"] for r in rig.messages()}
    # han.meimei acknowledges on the console: nothing escalates for her
    rig.notify.acknowledge(
        c.Actor(id="han.meimei", roles=frozenset({"responder"})), incident, ids[("han.meimei", "sms")]
    )
    rig.clock.advance(timedelta(minutes=11))
    assert rig.dispatch().escalated == 1
    after = rig.messages()
    escalated = [r for r in after if r["step"] == 2]
    # li.lei was reached for the commander role: the next in duty-commanders is zhao.liu, on the same channels
    assert {(r["contact_id"], r["channel"], r["via"]) for r in escalated} == {
        ("zhao.liu", ch, "role:commander") for ch in ("email", "sms", "phone")
    }
    assert all(r["escalated_at"] is not None for r in after if r["contact_id"] == "li.lei")
    assert all(r["acked_at"] is not None for r in after if r["contact_id"] == "han.meimei")
    assert any(m.envelope_to == ["zhao.liu@example.org"] for m in rig.smtp.mails)
    records = [r for r in decrypt_audit(rig.app) if r.get("action") == "notification.escalate"]
    assert records


def test_an_acknowledgement_link_needs_no_sign_in_and_is_idempotent(rig: Rig) -> None:
    incident = rig.open()
    rig.dispatch()
    row = next(r for r in rig.messages() if r["contact_id"] == "li.lei" and r["channel"] == "email")
    token = rig.notify.signer.sign(row["id"])
    with TestClient(create_app(app=rig.app, background=False)) as client:
        page = client.get(f"/ack/{token}")
        assert page.status_code == 200 and "<form" in page.text and TITLE in page.text
        assert all(r["acked_at"] is None for r in rig.messages()), "opening the link acknowledges nothing"
        first = client.post(f"/ack/{token}", headers={"Accept": "application/json"})
        again = client.post(f"/ack/{token}", headers={"Accept": "application/json"})
        assert first.status_code == again.status_code == 200
        assert first.json()["acknowledged_now"] is True and again.json()["acknowledged_now"] is False
        assert client.get(f"/ack/{token[:-2]}xx").status_code == 404
        assert client.get(f"/ack/{row['id'] + 1000}.{token.split('.')[1]}").status_code == 404
    acked = [r for r in rig.messages() if r["acked_at"] is not None]
    assert {r["contact_id"] for r in acked} == {"li.lei"} and {r["channel"] for r in acked} == {"email", "sms", "phone"}
    assert [r["acked_by"] for r in acked] == ["link"] * 3
    acks = [r for r in decrypt_audit(rig.app) if r.get("action") == "notification.ack"]
    assert sorted(a["payload"]["first"] for a in acks) == [False, True]
    listing = rig.notify.listing(ACTOR, incident)
    assert sum(n["acknowledged"] for n in listing) == 3
    with pytest.raises(NotFound):
        rig.notify.listing(ACTOR, incident + 99)


def test_a_drill_says_so_in_the_subject(rig: Rig) -> None:
    rig.open(mode="drill")
    rig.dispatch()
    subjects = {str(m.message["Subject"]) for m in rig.smtp.mails}
    assert all(s.startswith(("【演练】", "[DRILL]")) for s in subjects), subjects


def test_an_erased_contact_is_not_sent_to(rig: Rig) -> None:
    rig.app.personal.shred(ACTOR, "contact:wang.wu", reason="left the company")
    rig.open()
    rig.dispatch()
    assert all("wang.wu@example.org" not in m.envelope_to for m in rig.smtp.mails)
    wang = [r for r in rig.messages() if r["contact_id"] == "wang.wu" and r["channel"] == "email"]
    assert wang and wang[0]["status"] == "failed" and "erased" in wang[0]["error"]


def test_the_listing_shows_delivery_failures_and_acks(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    incident = rig.open()
    rig.dispatch()
    listing = rig.notify.listing(ACTOR, incident)
    callout = next(n for n in listing if n["notification"] == "callout")
    assert callout["counts"]["person"] == 3 and callout["counts"]["delivered"] == 12
    assert callout["critical"] is True and callout["recorded_at"] is None
    regulator = next(n for n in listing if n["notification"] == "tell-regulator")
    assert regulator["recorded_at"] is not None
    for n in listing:
        for m in n["messages"]:
            assert "example.org" not in str(m) and "1380000" not in str(m)
    with rig.app.db.connection() as conn:
        assert conn.execute(select(outbox_messages.c.id)).first() is not None


def test_ir_serve_runs_the_dispatcher_beside_the_timers(rig: Rig) -> None:
    with TestClient(create_app(app=rig.app, background=True)):
        rig.open()  # the dispatcher thread is woken by the command
        wait_for(lambda: len(rig.smtp.mails) == 4, what="the embedded dispatcher to deliver")
    assert {m.envelope_to[0] for m in rig.smtp.mails} >= {"li.lei@example.org", "cab1@example.org"}


def test_the_migration_creates_exactly_the_outbox_tables(app: App) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from ir.adapters.db.tables import metadata

    with app.db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = [d for d in diff if "outbox" in repr(d)]
    assert not ours, ours


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_authentication_is_used_and_a_wrong_password_fails_visibly(
    make_app: AppFactory, tmp_path: Path, clock: SimulatedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp = SmtpServer(login=("ir-mailer", "s3cret-from-env")).start()
    try:
        folder = notify_folder(tmp_path, smtp_port=smtp.port, http=None)
        channels = json.loads((folder / "channels.yaml").read_text(encoding="utf-8"))
        channels["smtp"].update(username="ir-mailer", password="${TEST_SMTP_PASSWORD}")
        (folder / "channels.yaml").write_text(json.dumps(channels), encoding="utf-8")
        books = playbook_folder(tmp_path)
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
        app = make_app(playbooks_dir=str(books), notifications_dir=str(folder))
        assert app.notify is not None
        import_contacts(app, "id,name,phone,email,address,lang,groups\np1,人,,p1@example.org,,zh-CN,everyone\n")
        app.handlers.handle(c.OpenIncident(actor=ACTOR, playbook="mail-test", title=TITLE, level="II"))
        assert app.notify.dispatcher().run_once().retrying == 1
        assert not smtp.mails
        (row,) = table_rows(app, outbox_messages)
        assert row["status"] == "pending" and "authentication failed" in row["error"]
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret-from-env")  # the operator fixes the environment
        fresh = make_app(playbooks_dir=str(books), notifications_dir=str(folder))
        assert fresh.notify is not None
        clock.advance(timedelta(seconds=1))
        assert fresh.notify.dispatcher().run(stop=threading.Event(), once=True).delivered == 1
        assert [m.envelope_to for m in smtp.mails] == [["p1@example.org"]]
    finally:
        smtp.stop()


def test_the_console_board_shows_delivery_failures_and_acknowledgements(rig: Rig) -> None:
    from tests.integration.test_console import Console, add_user, visible_text

    add_user(rig.app, "chief", ["commander"], lang="en")
    incident = rig.open()
    rig.smtp.stop()  # e-mail down: the board says so
    rig.dispatch()
    with TestClient(create_app(app=rig.app, background=False)) as client:
        console = Console(client)
        console.sign_in("chief", then=f"/incidents/{incident}")
        page = console.get(f"/incidents/{incident}?lang=en")
        assert page.status_code == 200
        text = visible_text(page.text)
    assert "Notifications sent" in text and "callout · level:II · critical" in text
    assert "SMTP server unreachable" in text and "by a person 3" in text
    assert "example.org" not in text and "1380000" not in text, "no address on the board"


def test_a_commander_records_on_the_console_an_acknowledgement_given_by_a_call_back(rig: Rig) -> None:
    from tests.integration.test_console import Console, add_user, flashes

    add_user(rig.app, "chief", ["commander"], lang="en")
    add_user(rig.app, "watcher", ["observer"], lang="en")
    incident = rig.open()
    rig.dispatch()
    with TestClient(create_app(app=rig.app, background=False)) as client:
        console = Console(client)
        console.sign_in("chief", then=f"/incidents/{incident}")
        page = console.get(f"/incidents/{incident}?lang=en")
        forms = re.findall(rf'action="/incidents/{incident}/notifications/(\d+)/ack"', page.text)
        assert forms and "Record an acknowledgement" in page.text
        message = int(forms[0])
        console.post(f"/incidents/{incident}/notifications/{message}/ack")
        assert ("ok", "acknowledgement recorded") in flashes(console.page)
        rows = {r["id"]: r for r in rig.messages()}
        who = rows[message]["contact_id"]
        assert all(r["acked_at"] is not None for r in rows.values() if r["contact_id"] == who)
        assert rows[message]["acked_by"] == "chief"
        assert f"/notifications/{message}/ack" not in console.page, "an acknowledged recipient has no button"
        console.post(f"/incidents/{incident}/notifications/{message}/ack")  # a second click changes nothing
        assert ("ok", "already acknowledged") in flashes(console.page)

        observer = Console(client)
        client.cookies.clear()
        observer.sign_in("watcher", then=f"/incidents/{incident}")
        other = next(m for m, r in rows.items() if r["contact_id"] and r["contact_id"] != who)
        observer.post(f"/incidents/{incident}/notifications/{other}/ack")
        assert {kind for kind, _ in flashes(observer.page)} == {"error"}, flashes(observer.page)
        assert "not permitted" in flashes(observer.page)[0][1].lower(), flashes(observer.page)
    assert next(r for r in rig.messages() if r["id"] == other)["acked_at"] is None
