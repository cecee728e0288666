"""The dispatcher killed mid-batch (a real `ir notify dispatch --loop` process, SIGKILL) and started again:
every message is delivered, and none twice to a receiver that deduplicates by Message-ID (only the
messages in flight when it died are sent again, with the same Message-ID). On SQLite and PostgreSQL; the
incident's notifications then read as delivered through `ir notifications ID --json` and `ir validate`
reports a template that uses an unknown variable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from ir.adapters.db.tables import outbox_messages
from ir.bootstrap import App
from ir.config import Settings
from ir.domain import commands as c
from tests.conftest import ACTOR, AppFactory
from tests.e2e.cli import ir
from tests.integration.notify_support import (
    ROOT,
    SmtpServer,
    import_contacts,
    notify_folder,
    playbook_folder,
    wait_for,
)

PEOPLE = 200
BATCH = 20


def _dispatcher(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ir", "notify", "dispatch", "--loop"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=out,
        )


def _delivered(app: App) -> int:
    with app.db.connection() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(outbox_messages).where(outbox_messages.c.status == "delivered")
            ).scalar_one()
        )


def test_a_dispatcher_killed_mid_batch_and_restarted_delivers_everything_once(
    make_app: AppFactory, migrated: Settings, tmp_path: Path
) -> None:
    smtp = SmtpServer(delay=0.01).start()  # a little slow, so the kill lands inside a batch
    folder = notify_folder(tmp_path, smtp_port=smtp.port, http=None, dispatch={"batch": BATCH, "lease": 1})
    books = playbook_folder(tmp_path)
    app = make_app(playbooks_dir=str(books), notifications_dir=str(folder))
    rows = "\n".join(f"p{i:03},人{i},,p{i:03}@example.org,,zh-CN,everyone" for i in range(PEOPLE))
    import_contacts(app, "id,name,phone,email,address,lang,groups\n" + rows + "\n")
    incident = app.handlers.handle(c.OpenIncident(actor=ACTOR, playbook="mail-test", title="光缆中断", level="II"))
    with app.db.connection() as conn:
        keys = {str(k) for k in conn.execute(select(outbox_messages.c.key)).scalars()}
    assert len(keys) == PEOPLE
    env = {
        "IR_DATABASE_URL": migrated.database_url,
        "IR_DATA_DIR": migrated.data_dir,  # the same key-encryption key: addresses open in the dispatcher
        "IR_PLAYBOOKS_DIR": str(books),
        "IR_NOTIFICATIONS_DIR": str(folder),
        "IR_LANG": "en",
    }
    log = tmp_path / "dispatcher.log"
    try:
        first = _dispatcher(env, log)
        wait_for(lambda: len(smtp.mails) >= BATCH + 5, what="the first dispatcher to be mid-way")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        got_before_restart = len(smtp.mails)
        assert got_before_restart < PEOPLE, "the dispatcher finished before it could be killed"
        second = _dispatcher(env, log)
        try:
            wait_for(lambda: len(set(smtp.handler.message_ids())) >= PEOPLE, timeout=120, what="every message")
            wait_for(lambda: _delivered(app) == PEOPLE, timeout=60, what="every delivery recorded")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    finally:
        smtp.stop()
    ids = smtp.handler.message_ids()
    distinct = {i.strip("<>").split("@")[0] for i in ids}
    assert distinct == keys, "every message delivered"
    resent = len(ids) - len(distinct)
    assert resent <= BATCH, f"only the batch in flight is sent again ({resent} repeated)"
    assert "Traceback" not in log.read_text(errors="replace")
    run = ir("notifications", str(incident.incident_id), "--json", env=env)
    assert run.code == 0, run.err
    (notice,) = json.loads(run.out)
    assert notice["counts"] == {"delivered": PEOPLE} and notice["recorded_at"] is not None


def test_ir_validate_reports_an_unknown_template_variable(tmp_path: Path) -> None:
    folder = notify_folder(tmp_path, smtp_port=25, http=None)
    (folder / "templates" / "partner-notice.yaml").write_text(
        "zh-CN: {subject: '通报：{{ incident.title }}', text: '{{ incident.titel }}'}\n"
        "en: {subject: 'Notice: {{ incidnet.title }}', text: 'x'}\n",
        encoding="utf-8",
    )
    (folder / "channels.yaml").write_text("smtp: {host: mail.example.org, password: hunter2}\n", encoding="utf-8")
    run = ir("validate", str(folder), str(ROOT / "playbooks"))
    assert run.code == 1
    assert "partner-notice.yaml: error: en.subject: unknown variable(s) incidnet" in run.out
    assert "zh-CN.text" in run.out and "titel" in run.out, "an attribute that does not exist is found too"
    assert "smtp.password" in run.out and "${IR_" in run.out, "a literal secret is refused"
    assert "template 'partner-notice' is not in" in run.out, "a template the playbooks name must exist"
    shipped = ir("validate", str(ROOT / "notifications"), str(ROOT / "playbooks"))
    assert shipped.code == 0, shipped.out + shipped.err
