"""E-mail over TLS on SQLite and PostgreSQL, against a real aiosmtpd server with a throwaway CA made here:
STARTTLS required and implicit TLS each deliver when `ca_file` trusts the CA, the login happens only on
TLS, and with the system's CAs (no `ca_file`) the message is never sent — in clear or otherwise — but
kept pending with a certificate error and retried. `ir validate` refuses a missing or non-PEM ca_file."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ir.adapters.clock import SimulatedClock
from ir.adapters.db.tables import outbox_messages
from ir.bootstrap import App
from ir.domain import commands as c
from ir.entrypoints.cli.main import cli
from tests.conftest import ACTOR, AppFactory, table_rows
from tests.integration.notify_support import (
    SmtpServer,
    import_contacts,
    make_certificates,
    notify_folder,
    playbook_folder,
)

TITLE = "骨干网中断"
LOGIN = ("ir-mailer", "s3cret-from-env")
PEOPLE = "id,name,phone,email,address,lang,groups\np1,人一,,p1@example.org,,zh-CN,everyone\n"


def _folder(tmp_path: Path, port: int, smtp: dict[str, Any]) -> Path:
    folder = notify_folder(tmp_path, smtp_port=port, http=None)
    channels = json.loads((folder / "channels.yaml").read_text(encoding="utf-8"))
    channels["smtp"].update(smtp)
    (folder / "channels.yaml").write_text(json.dumps(channels, ensure_ascii=False), encoding="utf-8")
    return folder


def _app(make_app: AppFactory, tmp_path: Path, folder: Path) -> App:
    app = make_app(playbooks_dir=str(playbook_folder(tmp_path)), notifications_dir=str(folder))
    assert app.notify is not None
    import_contacts(app, PEOPLE)
    app.handlers.handle(c.OpenIncident(actor=ACTOR, playbook="mail-test", title=TITLE, level="II"))
    return app


def _dispatch(app: App) -> Any:
    assert app.notify is not None
    return app.notify.dispatcher().run(stop=threading.Event(), once=True)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # implicit TLS: see SmtpServer
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_mail_is_delivered_over_tls_to_a_server_the_ca_file_trusts_and_logs_in_only_on_tls(
    security: str,
    make_app: AppFactory,
    tmp_path: Path,
    clock: SimulatedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca, chain, key = make_certificates(tmp_path / "pki")
    smtp = SmtpServer(login=LOGIN, tls=security, certificate=(chain, key)).start()
    try:
        monkeypatch.setenv("TEST_SMTP_PASSWORD", LOGIN[1])
        monkeypatch.setenv("TEST_SMTP_CA", str(ca))  # ${IR_…}-style: the path comes from the environment
        folder = _folder(
            tmp_path,
            smtp.port,
            {
                "security": security,
                "username": LOGIN[0],
                "password": "${TEST_SMTP_PASSWORD}",
                "ca_file": "${TEST_SMTP_CA}",
            },
        )
        app = _app(make_app, tmp_path, folder)
        assert _dispatch(app).delivered == 1
        (mail,) = smtp.mails
        assert mail.envelope_to == ["p1@example.org"] and mail.tls, "the message travelled over TLS"
        assert smtp.logins == [(LOGIN[0].encode(), True)], "one login, and only once TLS was up"
        (row,) = table_rows(app, outbox_messages)
        assert row["status"] == "delivered"
    finally:
        smtp.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # implicit TLS: see SmtpServer
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_certificate_the_system_cas_do_not_trust_is_refused_recorded_and_retried_never_sent(
    security: str,
    make_app: AppFactory,
    tmp_path: Path,
    clock: SimulatedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _ca, chain, key = make_certificates(tmp_path / "pki")
    smtp = SmtpServer(login=LOGIN, tls=security, certificate=(chain, key)).start()
    try:
        monkeypatch.setenv("TEST_SMTP_PASSWORD", LOGIN[1])
        folder = _folder(
            tmp_path,
            smtp.port,
            {"security": security, "username": LOGIN[0], "password": "${TEST_SMTP_PASSWORD}"},
        )
        app = _app(make_app, tmp_path, folder)
        for attempt in (1, 2):  # refused each pass, kept for the next one
            done = _dispatch(app)
            assert done.delivered == 0 and done.failed == 0 and done.retrying == 1
            (row,) = table_rows(app, outbox_messages)
            assert row["status"] == "pending" and row["attempts"] == attempt
            assert "SMTP server certificate not trusted" in row["error"], row["error"]
            clock.advance(timedelta(seconds=5))
        assert not smtp.mails, "nothing delivered, in clear or otherwise"
        assert smtp.logins == [], "the password never left before the certificate was trusted"
    finally:
        smtp.stop()


def test_a_server_certificate_for_another_name_is_refused_even_with_its_ca_trusted(
    make_app: AppFactory, tmp_path: Path, clock: SimulatedClock
) -> None:
    """ca_file changes whom to trust, not whether the name is checked: the host is 127.0.0.1, the
    certificate (from the trusted CA) names mail.example.org only."""
    ca, chain, key = make_certificates(tmp_path / "pki", names=("mail.example.org",), ip=False)
    smtp = SmtpServer(tls="tls", certificate=(chain, key)).start()
    try:
        app = _app(make_app, tmp_path, _folder(tmp_path, smtp.port, {"security": "tls", "ca_file": str(ca)}))
        done = _dispatch(app)
        assert done.delivered == 0 and done.retrying == 1
        (row,) = table_rows(app, outbox_messages)
        assert row["status"] == "pending" and "certificate not trusted" in row["error"], row["error"]
        assert "127.0.0.1" in row["error"], "the error says which name did not match"
        assert not smtp.mails
    finally:
        smtp.stop()


def test_ir_validate_refuses_a_missing_or_non_pem_ca_file_and_accepts_a_pem_bundle(tmp_path: Path) -> None:
    ca, _chain, _key = make_certificates(tmp_path / "pki")
    folder = _folder(tmp_path, 2525, {"security": "starttls", "ca_file": str(ca)})
    ok = CliRunner().invoke(cli, ["validate", str(folder)], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    relative = tmp_path / "notifications" / "internal-ca.pem"  # relative to the notifications folder
    relative.write_bytes(ca.read_bytes())
    _folder(tmp_path, 2525, {"security": "starttls", "ca_file": "internal-ca.pem"})
    ok = CliRunner().invoke(cli, ["validate", str(folder)], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    for value, expected in (
        (str(tmp_path / "nowhere.pem"), "no such file"),
        (str(tmp_path / "notifications" / "routing.yaml"), "does not load as PEM"),
    ):
        _folder(tmp_path, 2525, {"security": "starttls", "ca_file": value})
        bad = CliRunner().invoke(cli, ["validate", str(folder)], catch_exceptions=False)
        assert bad.exit_code == 1
        assert "smtp.ca_file" in bad.output and expected in bad.output, bad.output
