"""`ir serve` on SQLite carries out the API's step acts in a process of its own (writer_process): what a
user relies on holds across it — answers, refusals and conflicts, reads that see each change at once, an
evidence upload by the server's own process right after, automated actions, the audit chain, stopping in
order with nothing left behind, and going on when that process dies."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ir.bootstrap import build
from ir.config import Settings
from ir.domain import commands as c
from tests.action_receiver import Receiver, receiving
from tests.builders import MINIMAL_PLAYBOOK
from tests.e2e.served import Served, serve

LOCAL = c.Actor(id="local:tester", roles=frozenset({"admin"}))


def open_incident(settings: Settings, playbook: str = "ddos", **facts: Any) -> int:
    with build(settings) as app:
        opened = app.handlers.handle(
            c.OpenIncident(actor=LOCAL, playbook=playbook, title="DDoS on the DNS resolvers", level="IV", facts=facts)
        )
    return opened.incident_id


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]


def act(served: Served, incident: int, step: str, what: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{served.url}/api/incidents/{incident}/steps/{step}/{what}",
        headers={**served.headers("cmd"), **headers},
        timeout=30,
    )


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the writer process is SQLite's (on PostgreSQL the server's changes run side by side)."""
    return f"sqlite:///{tmp_path / 'ir.db'}"


def test_step_acts_go_through_the_writer_process_and_the_server_stays_coherent(
    migrated: Settings, tmp_path: Path
) -> None:
    incident = open_incident(migrated)
    with serve(migrated, tmp_path) as served:
        writers = children(served.proc.pid)
        assert len(writers) == 1, f"ir serve should have one child, its writer: {writers}"
        read = httpx.get(f"{served.url}/api/incidents/{incident}", headers=served.headers("obs"), timeout=30)
        assert read.status_code == 200, read.text
        version = int(read.headers["etag"].strip('"'))  # the server's process has it cached at this version

        started = act(served, incident, "confirm", "start", **{"If-Match": f'"{version}"'})
        assert started.status_code == 200, started.text
        assert started.json()["version"] == version + 1
        assert [e["kind"] for e in started.json()["events"]] == ["step_started"]

        # a refusal and a conflict come back from the other process as the same problem documents
        again = act(served, incident, "confirm", "start")
        assert again.status_code == 409, again.text
        assert again.headers["content-type"].startswith("application/problem+json")
        assert "confirm" in again.json()["detail"]
        stale = act(served, incident, "confirm", "complete", **{"If-Match": f'"{version}"'})
        assert stale.status_code == 409, stale.text
        assert "changed" in stale.json()["detail"]

        # the server's own process writes and reads the changed incident at once, without a false conflict
        uploaded = httpx.post(
            f"{served.url}/api/incidents/{incident}/steps/confirm/evidence",
            headers={**served.headers("cmd"), "If-Match": f'"{version + 1}"'},
            files={"file": ("capture.txt", b"peak 80 Gbit/s", "text/plain")},
            timeout=30,
        )
        assert uploaded.status_code in (200, 201), uploaded.text
        read = httpx.get(f"{served.url}/api/incidents/{incident}", headers=served.headers("obs"), timeout=30)
        assert read.headers["etag"] == f'"{version + 2}"'
        done = act(served, incident, "confirm", "complete", **{"If-Match": f'"{version + 2}"'})
        assert done.status_code == 200, done.text
        assert done.json()["version"] == version + 3
        # a judgement of reportability reads the incident in its own write transaction (no If-Match here)
        judged = httpx.post(
            f"{served.url}/api/incidents/{incident}/reportability/cn-miit-2017",
            json={"reason": "a province is hit"},
            headers=served.headers("cmd"),
            timeout=30,
        )
        assert judged.status_code in (200, 201), judged.text
        assert judged.json()["version"] == version + 4

        assert served.stop() == 0, served.output()
        assert not any(alive(pid) for pid in writers), "the writer process outlived the server"
    assert "Traceback" not in served.output()

    timeline = served.ir("timeline", str(incident), "--json")
    assert timeline.code == 0, timeline.err
    kinds = [e["kind"] for e in json.loads(timeline.out)]
    assert kinds[-4:] == ["step_started", "evidence_attached", "step_completed", "reportability_judged"]
    verified = served.ir("audit", "verify")
    assert verified.code == 0, verified.out + verified.err


def test_when_the_writer_process_dies_the_server_carries_on_without_it(migrated: Settings, tmp_path: Path) -> None:
    incident = open_incident(migrated)
    with serve(migrated, tmp_path) as served:
        (writer,) = children(served.proc.pid)
        os.kill(writer, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while alive(writer):
            assert time.monotonic() < deadline
            time.sleep(0.05)

        lost = act(served, incident, "confirm", "start")
        assert lost.status_code == 503, lost.text
        assert "may have been stored" in lost.json()["detail"]
        started = act(served, incident, "confirm", "start")  # carried out by the server's own thread now
        assert started.status_code == 200, started.text
        done = act(served, incident, "confirm", "complete")
        assert done.status_code == 200, done.text
        assert done.json()["version"] == started.json()["version"] + 1
        assert served.stop() == 0, served.output()
    assert "the writer process ended" in served.output()
    assert served.ir("audit", "verify").code == 0


def test_ctrl_c_stops_the_server_and_its_writer_in_order(migrated: Settings, tmp_path: Path) -> None:
    incident = open_incident(migrated)
    with serve(migrated, tmp_path) as served:
        writers = children(served.proc.pid)
        assert act(served, incident, "confirm", "start").status_code == 200
        # Ctrl-C in a terminal reaches the whole foreground process group: the server and its writer
        for pid in (served.proc.pid, *writers):
            os.kill(pid, signal.SIGINT)
        assert served.proc.wait(timeout=60) == 0, served.output()
        assert not any(alive(pid) for pid in writers)
    assert "Traceback" not in served.output()


@pytest.fixture
def receiver() -> Iterator[str]:
    with receiving() as url:
        yield url


def test_a_step_started_through_the_writer_process_runs_its_automated_action(
    migrated: Settings, tmp_path: Path, receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    action = f"    action:\n      url: {receiver}/divert\n      body: {{target: 'x'}}\n      timeout: 2s\n"
    books = tmp_path / "books"
    books.mkdir()
    (books / "mini.yaml").write_text(
        MINIMAL_PLAYBOOK.replace("    due: detection + 15m\n", "    due: detection + 15m\n" + action, 1),
        encoding="utf-8",
    )
    settings = migrated.model_copy(update={"playbooks_dir": str(books)})
    monkeypatch.setenv("IR_ACTION_ALLOW_HOSTS", '["127.0.0.1"]')
    incident = open_incident(settings, "mini", scope="province")
    with serve(settings, tmp_path) as served:
        started = act(served, incident, "confirm", "start")
        assert started.status_code == 200, started.text
        deadline = time.monotonic() + 30
        while True:  # the action runs after the commit, and its answer is recorded
            timeline = httpx.get(
                f"{served.url}/api/incidents/{incident}/timeline", headers=served.headers("obs"), timeout=30
            )
            kinds = [e["kind"] for e in timeline.json()["items"]]
            if "action_succeeded" in kinds:
                break
            assert time.monotonic() < deadline, f"the action's answer was not recorded: {kinds}"
            time.sleep(0.1)
        assert [call["path"] for call in Receiver.calls] == ["/divert"]
        assert served.stop() == 0, served.output()
