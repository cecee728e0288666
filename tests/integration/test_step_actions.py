"""Automated step actions against a real HTTP server: allow-list, timeout, retries, evidence, failure."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ir.adapters.clock import SystemClock
from ir.adapters.db.engine import make_engine
from ir.adapters.db.schema import upgrade
from ir.adapters.http_actions import HttpActionClient
from ir.bootstrap import App, build
from ir.config import Settings
from ir.domain import commands as c
from ir.domain.incident import StepStatus
from tests.action_receiver import Receiver, receiving
from tests.builders import MINIMAL_PLAYBOOK

ACTOR = c.Actor(id="tester", roles=frozenset({"admin"}))


@pytest.fixture
def server() -> Iterator[str]:
    with receiving() as url:
        yield url


def playbook_with_action(url: str, *, confirm: bool) -> str:
    action = (
        "    action:\n"
        f"      url: {url}/divert\n"
        "      body: {target: '{{ facts.scope }}', incident: '{{ incident.id }}'}\n"
        "      secret: SCRUBBER\n"
        "      timeout: 2s\n"
        "      retries: 2\n"
        f"      confirm: {'true' if confirm else 'false'}\n"
    )
    return MINIMAL_PLAYBOOK.replace("    due: detection + 15m\n", "    due: detection + 15m\n" + action, 1)


def make_app(tmp_path: Path, playbook: str, allow: list[str]) -> App:
    books = tmp_path / "books"
    books.mkdir()
    (books / "mini.yaml").write_text(playbook, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'ir.db'}"
    upgrade(make_engine(url))
    settings = Settings(database_url=url, data_dir=str(tmp_path), playbooks_dir=str(books), action_allow_hosts=allow)
    return build(settings, clock=SystemClock(), action_client=HttpActionClient(backoff=0.01))


def open_and_start(app: App) -> int:
    out = app.handlers.handle(
        c.OpenIncident(actor=ACTOR, playbook="mini", title="t", level="I", facts={"scope": "province"})
    )
    app.handlers.handle(c.StartStep(actor=ACTOR, incident_id=out.incident_id, step_id="confirm"))
    return out.incident_id


def state(app: App, incident_id: int) -> Any:
    with app.db.read() as repo:
        return repo.get(incident_id)


def test_action_runs_on_start_and_its_answer_is_evidence(tmp_path: Path, server: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("IR_SECRET_SCRUBBER", "s3cret")
    app = make_app(tmp_path, playbook_with_action(server, confirm=False), ["127.0.0.1"])
    try:
        iid = open_and_start(app)
        assert len(Receiver.calls) == 1
        call = Receiver.calls[0]
        assert call["path"] == "/divert"
        assert call["headers"]["Authorization"] == "Bearer s3cret"
        assert call["body"] == {"target": "province", "incident": str(iid)}
        inc = state(app, iid)
        prog = inc.steps["confirm"]
        assert prog.action_status == 200
        assert [e.source for e in prog.evidence] == ["action"]
        app.handlers.handle(c.CompleteStep(actor=ACTOR, incident_id=iid, step_id="confirm"))
        assert state(app, iid).step_status("confirm") is StepStatus.DONE
    finally:
        app.close()


def test_failure_after_retries_fails_the_step(tmp_path: Path, server: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("IR_SECRET_SCRUBBER", "s3cret")
    Receiver.answers = [503, 503, 503]
    app = make_app(tmp_path, playbook_with_action(server, confirm=False), ["127.0.0.1"])
    try:
        iid = open_and_start(app)
        assert len(Receiver.calls) == 3  # one try and two retries
        inc = state(app, iid)
        assert inc.step_status("confirm") is StepStatus.FAILED
        assert inc.steps["confirm"].reason == "automated action failed: HTTP 503"
        # a retry runs the action again; now it succeeds
        app.handlers.handle(c.RetryStep(actor=ACTOR, incident_id=iid, step_id="confirm"))
        assert len(Receiver.calls) == 4
        assert state(app, iid).steps["confirm"].action_status == 200
    finally:
        app.close()


def test_host_not_on_the_allow_list_is_never_called(tmp_path: Path, server: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("IR_SECRET_SCRUBBER", "s3cret")
    app = make_app(tmp_path, playbook_with_action(server, confirm=False), ["scrubber.example.net"])
    try:
        iid = open_and_start(app)
        assert Receiver.calls == []
        inc = state(app, iid)
        assert inc.step_status("confirm") is StepStatus.FAILED
        assert "not on the action allow-list" in (inc.steps["confirm"].reason or "")
    finally:
        app.close()


def test_confirmation_is_awaited_when_the_playbook_asks(tmp_path: Path, server: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("IR_SECRET_SCRUBBER", "s3cret")
    app = make_app(tmp_path, playbook_with_action(server, confirm=True), ["127.0.0.1"])
    try:
        iid = open_and_start(app)
        assert Receiver.calls == []  # started, but the commander has not confirmed
        assert state(app, iid).step_status("confirm") is StepStatus.IN_PROGRESS
        app.handlers.handle(c.ConfirmAction(actor=ACTOR, incident_id=iid, step_id="confirm"))
        assert len(Receiver.calls) == 1
        assert state(app, iid).steps["confirm"].action_status == 200
    finally:
        app.close()


def test_missing_secret_fails_the_step_without_a_call(tmp_path: Path, server: str, monkeypatch: Any) -> None:
    monkeypatch.delenv("IR_SECRET_SCRUBBER", raising=False)
    app = make_app(tmp_path, playbook_with_action(server, confirm=False), ["127.0.0.1"])
    try:
        iid = open_and_start(app)
        assert Receiver.calls == []
        assert "IR_SECRET_SCRUBBER" in (state(app, iid).steps["confirm"].reason or "")
    finally:
        app.close()
