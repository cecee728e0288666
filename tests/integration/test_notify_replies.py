"""Acknowledging by reply, on SQLite and PostgreSQL: a mail answering ours (as the real SMTP server received
it) is handed over by the mail server's pipe (`ir notify reply`) or posted over HTTP; an SMS gateway and
an IM bridge post the texts they receive. A reply acknowledges the message it answers only when it comes
from where that message went; automatic answers and strangers acknowledge nothing, and say why."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.adapters.notify.config import read_config
from ir.adapters.notify.replies import parse_mail, same_number
from ir.domain.errors import InvalidInput
from ir.entrypoints.cli.main import cli
from ir.entrypoints.http.app import create_app
from tests.conftest import ACTOR, decrypt_audit
from tests.integration.notify_support import Mail, Rig, notify_folder


@pytest.fixture
def notify_channels() -> dict[str, Any]:
    # the gateway posts {"mobile": …, "content": …}; the DingTalk bridge posts the outgoing robot's JSON
    return {
        "sms": {"replies": {"from": "mobile", "text": "content"}},
        "endpoints": {
            "ops-dingtalk": {"replies": {"from": "senderNick", "text": "text.content"}},
            "ops-slack": {"lang": "en"},  # an English-speaking partner's channel
        },
    }


def _mail_to(rig: Rig, address: str) -> Mail:
    return next(m for m in rig.smtp.mails if m.envelope_to == [address])


def _reply(original: Mail, *, sender: str, body: str = "收到，马上到岗。", **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"李雷 <{sender}>"
    msg["To"] = str(original.message["From"])
    msg["Subject"] = f"Re: {original.message['Subject']}"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg["In-Reply-To"] = str(original.message["Message-ID"])
    msg["References"] = str(original.message["Message-ID"])
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(body)
    return msg.as_bytes()


def _acked(rig: Rig, contact: str) -> dict[str, str | None]:
    return {r["channel"]: r["acked_by"] for r in rig.messages() if r["contact_id"] == contact and r["step"] == 1}


@pytest.fixture
def client(rig: Rig) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The API, and bearer tokens of a machine user (responder: the gateway's) and of an observer."""
    from tests.integration.test_console import add_user

    add_user(rig.app, "sms-gateway", ["responder"])
    add_user(rig.app, "watcher", ["observer"])
    tokens = {}
    with rig.app.db.uow() as uow:
        for user in ("sms-gateway", "watcher"):
            _id, secret = uow.users.issue_token(user, name="replies", scopes=["read", "write"], ttl=None)
            tokens[user] = f"Bearer {secret}"
        uow.commit()
    with TestClient(create_app(app=rig.app, background=False)) as http:
        yield http, tokens


def test_a_reply_to_the_mail_acknowledges_it_through_the_mail_servers_pipe(rig: Rig) -> None:
    incident = rig.open()
    rig.dispatch()
    original = _mail_to(rig, "li.lei@example.org")
    assert "或回复" in original.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    raw = _reply(original, sender="LI.LEI@example.org")
    result = CliRunner().invoke(cli, ["notify", "reply"], input=raw, env=_env(rig))
    assert result.exit_code == 0, result.output
    assert f"of incident {incident}: acknowledged" in result.output
    # the recipient's other messages of the same notification are acknowledged with it
    assert _acked(rig, "li.lei") == {"email": "reply:email", "sms": "reply:email", "phone": "reply:email"}
    assert all(r["acked_at"] is None for r in rig.messages() if r["contact_id"] != "li.lei")
    again = CliRunner().invoke(cli, ["notify", "reply"], input=raw, env=_env(rig))
    assert again.exit_code == 0 and "already acknowledged" in again.output
    acks = [r for r in decrypt_audit(rig.app) if r.get("action") == "notification.ack"]
    assert [a["payload"]["by"] for a in acks] == ["reply:email", "reply:email"]
    assert not any("li.lei@" in json.dumps(a, ensure_ascii=False).lower() for a in acks), "no address kept"


def _env(rig: Rig) -> dict[str, str]:
    """The command line on the rig's database and folders, as the mail server's pipe would run it."""
    return {f"IR_{k.upper()}": v for k, v in rig.app.settings.model_dump().items() if isinstance(v, str)}


def test_a_reply_from_another_address_or_an_automatic_answer_acknowledges_nothing(rig: Rig) -> None:
    rig.open()
    rig.dispatch()
    original = _mail_to(rig, "li.lei@example.org")
    cases = {
        "stranger": _reply(original, sender="mallory@example.net"),
        "away": _reply(original, sender="li.lei@example.org", body="I am away", Auto_Submitted="auto-replied"),
        "bulk": _reply(original, sender="li.lei@example.org", Precedence="bulk"),
        # a new mail, not a reply to ours: no header names one of our messages
        "unrelated": _reply(original, sender="li.lei@example.org").replace(
            str(original.message["Message-ID"]).encode(), b"<gone@elsewhere.example>"
        ),
    }
    answers = {name: rig.notify.reply(ACTOR, parse_mail(raw, domain="example.org")) for name, raw in cases.items()}
    assert all(not a["acknowledged"] for a in answers.values()), answers
    assert "another address" in answers["stranger"]["reason"]
    assert "Auto-Submitted" in answers["away"]["reason"] and "Precedence" in answers["bulk"]["reason"]
    assert "no In-Reply-To or References" in answers["unrelated"]["reason"]
    assert all(r["acked_at"] is None for r in rig.messages())
    refused = [r for r in decrypt_audit(rig.app) if r.get("action") == "notification.reply_refused"]
    assert len(refused) == 4 and all("@" not in json.dumps(r["payload"]) for r in refused)
    # at the pipe: a person's unmatched reply exits 1 (the mail server returns it); an automatic one exits 0
    stranger = CliRunner().invoke(cli, ["notify", "reply"], input=cases["stranger"], env=_env(rig))
    away = CliRunner().invoke(cli, ["notify", "reply"], input=cases["away"], env=_env(rig))
    assert stranger.exit_code == 1 and "another address" in stranger.output
    assert away.exit_code == 0 and "not acknowledged" in away.output


def test_a_forwarded_mail_quoting_the_acknowledgement_link_acknowledges_like_the_link(rig: Rig) -> None:
    rig.open()
    rig.dispatch()
    original = _mail_to(rig, "wang.wu@example.org")
    text = original.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    link = re.search(r"https://ir\.example\.org/ack/\S+", text)
    assert link is not None
    msg = EmailMessage()
    msg["From"] = "deputy@example.net"
    msg["Subject"] = "Fwd: 收到"
    msg.set_content(f"王五转给我了，我来处理。\n\n> 确认收到：{link.group()}\n")
    answer = rig.notify.reply(ACTOR, parse_mail(msg.as_bytes(), domain="example.org"))
    assert answer["acknowledged"] and answer["acknowledged_now"]
    assert _acked(rig, "wang.wu")["email"] == "reply:email"


def test_the_mail_server_may_post_the_reply_over_http(rig: Rig, client: tuple[TestClient, dict[str, str]]) -> None:
    http, tokens = client
    rig.open()
    rig.dispatch()
    raw = _reply(_mail_to(rig, "han.meimei@example.org"), sender="han.meimei@example.org")
    headers = {"Authorization": tokens["sms-gateway"], "Content-Type": "message/rfc822"}
    answer = http.post("/api/notifications/replies/mail", content=raw, headers=headers)
    assert answer.status_code == 200 and answer.json()["acknowledged"] is True, answer.text
    assert _acked(rig, "han.meimei")["email"] == "reply:email"
    assert http.post("/api/notifications/replies/mail", content=raw).status_code == 401
    watcher = {**headers, "Authorization": tokens["watcher"]}
    assert http.post("/api/notifications/replies/mail", content=raw, headers=watcher).status_code == 403
    empty = http.post("/api/notifications/replies/mail", content=b"", headers=headers)
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    huge = http.post("/api/notifications/replies/mail", content=b"x" * (3 << 20), headers=headers)
    assert huge.status_code == 422 and "larger than" in huge.json()["detail"]


def test_an_sms_reply_with_its_code_from_the_recipients_number(
    rig: Rig, client: tuple[TestClient, dict[str, str]]
) -> None:
    http, tokens = client
    rig.open()
    rig.dispatch()
    sent = {p.json()["phone"]: p.json()["content"] for p in rig.http.on("/sms")}
    code = re.search(r"或回复 (\d+)", sent["13800000001"])
    assert code is not None, sent["13800000001"]
    en = re.search(r"or reply (\d+)", sent["13800000002"])
    assert en is not None, "han.meimei reads English"
    auth = {"Authorization": tokens["sms-gateway"]}

    # li.lei's code from another number: nothing (and that number has nothing open)
    stray = http.post(
        "/api/notifications/replies/sms", json={"mobile": "13900000000", "content": code[1]}, headers=auth
    )
    assert stray.status_code == 200 and stray.json()["acknowledged"] is False
    assert "no message sent to this number" in stray.json()["reason"]
    # from li.lei's own number, written the international way, the code among other numbers
    text = f"收到 {code[1]}，10分钟到"
    ok = http.post(
        "/api/notifications/replies/sms", json={"mobile": "+86 138-0000-0001", "content": text}, headers=auth
    )
    assert ok.status_code == 200 and ok.json()["acknowledged"] is True, ok.text
    assert ok.json()["message"] == int(code[1])
    assert set(_acked(rig, "li.lei").values()) == {"reply:sms"}
    # no code: the latest message to that number not yet acknowledged; a form, as many gateways post
    form = http.post("/api/notifications/replies/sms", data={"mobile": "13800000003", "content": "收到"}, headers=auth)
    assert form.status_code == 200 and form.json()["acknowledged"] is True, form.text
    assert set(_acked(rig, "wang.wu").values()) == {"reply:sms"}
    assert _acked(rig, "han.meimei") == {"email": None, "sms": None, "phone": None}

    # bad requests are refused by name and change nothing
    missing = http.post("/api/notifications/replies/sms", json={"from": "13800000002", "text": "ok"}, headers=auth)
    assert missing.status_code == 422 and "'mobile'" in missing.json()["detail"]
    unknown = http.post("/api/notifications/replies/telex", json={"mobile": "1", "content": "ok"}, headers=auth)
    assert unknown.status_code == 404 and "telex" in unknown.json()["detail"]
    garbled = http.post("/api/notifications/replies/sms", content=b"\xff{", headers=auth)
    assert garbled.status_code == 422
    assert http.post("/api/notifications/replies/sms", json={"mobile": "1", "content": "ok"}).status_code == 401
    assert _acked(rig, "han.meimei") == {"email": None, "sms": None, "phone": None}


def test_a_reply_in_the_robots_group_chat_through_a_bridge(rig: Rig, client: tuple[TestClient, dict[str, str]]) -> None:
    http, tokens = client
    rig.open()
    rig.dispatch()
    robot = next(r for r in rig.messages() if r["endpoint"] == "ops-dingtalk")
    posted = rig.http.on("/dingtalk")[0].json()["markdown"]["text"]
    assert f"或回复 {robot['id']}" in posted
    body = {"msgtype": "text", "text": {"content": f" 收到 {robot['id']}"}, "senderNick": "张三"}
    answer = http.post(
        "/api/notifications/replies/ops-dingtalk", json=body, headers={"Authorization": tokens["sms-gateway"]}
    )
    assert answer.status_code == 200 and answer.json()["acknowledged"] is True, answer.text
    rows = {r["endpoint"]: r["acked_by"] for r in rig.messages() if r["endpoint"]}
    assert rows["ops-dingtalk"] == "reply:ops-dingtalk" and rows["ops-slack"] is None
    # each robot gets the language its endpoint is configured for (zh-CN unless said)
    slack = rig.http.on("/slack")[0].json()["text"]
    assert "or reply" in slack and "或回复" not in slack and "或回复" in posted
    assert "张三" not in json.dumps(decrypt_audit(rig.app), ensure_ascii=False), "the name in the chat is not kept"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("13800138000", "+86 138 0013 8000", True),
        ("008613800138000", "13800138000", True),
        ("13800138000", "13800138001", False),
        ("138", "+86 138", False),
        ("", "13800138000", False),
        ("+1 202 555 0100", "2025550100", True),
    ],
)
def test_phone_numbers_compare_across_the_ways_people_write_them(a: str, b: str, same: bool) -> None:
    assert same_number(a, b) is same


def test_ir_validate_names_a_bad_replies_setting_and_an_endpoint_named_like_a_channel(tmp_path: Path) -> None:
    folder = notify_folder(tmp_path, smtp_port=2525, http=None)
    channels = json.loads((folder / "channels.yaml").read_text(encoding="utf-8"))
    channels["sms"]["replies"] = {"from": "mobile number", "txt": "content"}
    channels["endpoints"] = {
        "sms": {"kind": "webhook", "url": "${TEST_HOOK_URL:-}"},
        "ops-x": {"kind": "slack", "url": "${TEST_HOOK_URL:-}", "lang": "fr"},
    }
    (folder / "channels.yaml").write_text(json.dumps(channels), encoding="utf-8")
    _config, problems = read_config(str(folder), env={})
    said = "\n".join(map(str, problems))
    assert "sms.replies: error: unknown setting 'txt'" in said
    assert "sms.replies.from: error: must be a field name" in said
    assert "endpoints.sms: error: 'sms' names a channel" in said
    assert "endpoints.ops-x.lang: error: is one of zh-CN, en; got 'fr'" in said


_HEADER = st.sampled_from(["From", "In-Reply-To", "References", "Subject", "Auto-Submitted", "Content-Type"])


@given(
    headers=st.lists(st.tuples(_HEADER, st.text(max_size=80)), max_size=8),
    body=st.binary(max_size=400),
    noise=st.binary(max_size=200),
)
@settings(max_examples=300, deadline=None)
def test_whatever_a_mail_server_hands_over_is_a_reply_or_a_named_refusal(
    headers: list[tuple[str, str]], body: bytes, noise: bytes
) -> None:
    raw = b"".join(f"{k}: {v}\r\n".encode("utf-8", "surrogatepass") for k, v in headers) + b"\r\n" + body + noise
    try:
        reply = parse_mail(raw, domain="example.org")
    except InvalidInput as exc:
        assert str(exc)
        return
    assert "@" in reply.sender and all(len(k) <= 64 for k in reply.keys)


def test_an_sms_modem_hands_a_text_reply_to_the_command_line(rig: Rig) -> None:
    rig.open()
    rig.dispatch()
    run = CliRunner()
    bad = run.invoke(cli, ["notify", "reply", "--channel", "email", "--from", "a@b.c", "--text", "ok"], env=_env(rig))
    # (ir's own entry point turns these refusals into exit 2 and one line; the group alone raises them)
    assert isinstance(bad.exception, InvalidInput) and "whole mail" in str(bad.exception)
    half = run.invoke(cli, ["notify", "reply", "--channel", "sms", "--from", "13800000003"], env=_env(rig))
    assert isinstance(half.exception, InvalidInput) and "--from and --text" in str(half.exception)
    stranger = run.invoke(cli, ["notify", "reply", "--channel", "sms", "--from", "139", "--text", "ok"], env=_env(rig))
    assert stranger.exit_code == 1 and "no message sent to this number" in stranger.output
    code = next(r["id"] for r in rig.messages() if r["contact_id"] == "wang.wu" and r["channel"] == "sms")
    ok = run.invoke(
        cli, ["notify", "reply", "--channel", "sms", "--from", "13800000003", "--text", f"收到 {code}"], env=_env(rig)
    )
    assert ok.exit_code == 0 and "acknowledged" in ok.output, ok.output
    assert set(_acked(rig, "wang.wu").values()) == {"reply:sms"}
