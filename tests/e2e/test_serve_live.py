"""Live updates across processes: a change committed by another process on the same database — another
application instance, the real command line — reaches a console watching a running `ir serve`
(GET /api/stream), on SQLite (the server's watcher) and on PostgreSQL (NOTIFY/LISTEN). Each version is
announced once, even when the server made the change itself and then saw it again in the feed."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from ir.adapters.changes.postgres import APPLICATION_NAME
from ir.bootstrap import build
from ir.config import Settings
from ir.domain import commands as c
from tests.e2e.served import listening, serve

LOCAL = c.Actor(id="local:tester", roles=frozenset({"admin"}))


def open_incident(settings: Settings) -> int:
    with build(settings) as app:
        opened = app.handlers.handle(
            c.OpenIncident(actor=LOCAL, playbook="ddos", title="DDoS on the DNS resolvers", level="IV")
        )
    return opened.incident_id


def test_changes_by_other_processes_reach_a_console(migrated: Settings, tmp_path: Path) -> None:
    incident = open_incident(migrated)
    with serve(migrated, tmp_path) as served, listening(served) as stream:
        # another application instance, in this process (its own engine: as another server would be)
        with build(migrated) as other:
            started = other.handlers.handle(c.StartStep(actor=LOCAL, incident_id=incident, step_id="confirm"))
        assert stream.wait_for(incident, started.version) == {"incident": incident, "version": started.version}

        # the real command line, in its own process
        run = served.ir("step", str(incident), "confirm", "done", "--json")
        assert run.code == 0, run.err
        done = json.loads(run.out)["version"]
        assert done == started.version + 1
        assert stream.wait_for(incident, done) == {"incident": incident, "version": done}

        # the server's own change: announced once, though the feed sees it too
        answer = httpx.post(
            f"{served.url}/api/incidents/{incident}/notes",
            json={"text": "scrubbing centre called"},
            headers=served.headers("cmd"),
            timeout=30,
        )
        assert answer.status_code == 201, answer.text
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
        noted = answer.json()["version"]
        assert stream.wait_for(incident, noted) == {"incident": incident, "version": noted}
        run = served.ir("note", str(incident), "upstream filtering on")
        assert run.code == 0, run.err
        after = stream.wait_for(incident, noted + 1)
        assert after == {"incident": incident, "version": noted + 1}  # nothing in between: no repeat of `noted`

        assert served.stop(signal.SIGTERM) == 0
        assert stream.ended.wait(30), "the stream did not end when the server stopped"


@pytest.mark.postgres
def test_a_change_through_one_server_reaches_the_consoles_of_another(pg_database: str, tmp_path: Path) -> None:
    """PostgreSQL, two `ir serve` processes on one database: a console of the second sees the first's change."""
    settings = migrated_pg(pg_database, tmp_path)
    incident = open_incident(settings)
    with serve(settings, tmp_path) as first, serve(settings, tmp_path, tokens=first.tokens) as second:
        with listening(second) as stream:
            answer = httpx.post(
                f"{first.url}/api/incidents/{incident}/steps/confirm/start", headers=first.headers("cmd"), timeout=30
            )
            assert answer.status_code == 200, answer.text
            version = answer.json()["version"]
            assert stream.wait_for(incident, version) == {"incident": incident, "version": version}
            assert second.stop(signal.SIGTERM) == 0
        assert first.stop(signal.SIGTERM) == 0


def migrated_pg(url: str, folder: Path) -> Settings:
    from ir.adapters.db.engine import make_engine
    from ir.adapters.db.schema import upgrade
    from tests.conftest import PLAYBOOKS

    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return Settings(database_url=url, data_dir=str(folder), playbooks_dir=str(PLAYBOOKS))


@pytest.mark.postgres
def test_the_listener_reconnects_and_catches_up(pg_database: str, tmp_path: Path) -> None:
    """PostgreSQL: when the LISTEN connection is cut, the server reconnects and announces what changed."""
    from ir.adapters.db.engine import make_engine

    settings = migrated_pg(pg_database, tmp_path)
    engine = make_engine(pg_database)
    incident = open_incident(settings)
    with serve(settings, tmp_path) as served, listening(served) as stream:
        with engine.connect() as conn:
            cut = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = :name"
                ),
                {"name": APPLICATION_NAME},
            ).all()
        assert cut == [(True,)]
        with build(settings) as other:
            started = other.handlers.handle(c.StartStep(actor=LOCAL, incident_id=incident, step_id="confirm"))
        assert stream.wait_for(incident, started.version) == {"incident": incident, "version": started.version}
        assert served.stop(signal.SIGTERM) == 0
    engine.dispose()
