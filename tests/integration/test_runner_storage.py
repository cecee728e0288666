"""Incident storage on SQLite and PostgreSQL: event streams, the per-process cache, optimistic
concurrency, projections equal to a rebuild, snapshots, evidence, migrations and the audit trail."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from ir.adapters.clock import SimulatedClock
from ir.adapters.db.incidents import SNAPSHOT_EVERY
from ir.adapters.db.rebuild import rebuild
from ir.adapters.db.tables import (
    audit_keys,
    audit_records,
    evidence_blobs,
    incident_events,
    incident_snapshots,
    incidents,
    work_items,
)
from ir.bootstrap import App, build
from ir.config import Settings
from ir.domain import commands as c
from ir.domain import decisions
from ir.domain.errors import Conflict, InvalidTransition, IrError, NotMigrated
from ir.domain.events import ChecklistItemChecked, event_from_dict
from ir.domain.incident import Incident, StepStatus, fold
from ir.domain.snapshot import to_snapshot
from tests.conftest import ACTOR, AppFactory, decrypt_audit, table_rows

TITLE = "Botnet flood on DNS resolvers ZQXJ-7731"
EVIDENCE = b"before/after traffic graphs, 2026-10-01 09:20\n" * 50


def open_ddos(app: App, *, title: str = TITLE, level: str | None = None) -> int:
    outcome = app.handlers.handle(
        c.OpenIncident(actor=ACTOR, playbook="ddos", title=title, facts={"affected_users": "1,200,000"}, level=level)
    )
    return outcome.incident_id


def loaded(app: App, incident_id: int) -> Incident:
    with app.db.read() as repo:
        return repo.get(incident_id)


def state(app: App, incident_id: int) -> dict[str, Any]:
    return to_snapshot(loaded(app, incident_id))


def folded_from_events(app: App, incident_id: int) -> Incident:
    """The incident folded from scratch from its stored events (no cache, no snapshot)."""
    with app.db.read() as repo:
        playbook = repo.get(incident_id).playbook
        events = [s.event for s in repo.events(incident_id)]
    return fold(incident_id, playbook, events)


def count(app: App, table: Any) -> int:
    with app.db.connection() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def versions(app: App, incident_id: int) -> list[int]:
    with app.db.connection() as conn:
        return [
            int(r[0])
            for r in conn.execute(
                select(incident_events.c.seq)
                .where(incident_events.c.incident_id == incident_id)
                .order_by(incident_events.c.seq)
            )
        ]


def drive(app: App, clock: SimulatedClock) -> int:
    """A DDoS incident taken through most of what a commander does, one command at a time."""
    h = app.handlers.handle
    iid = open_ddos(app)

    def act(command: c.Command) -> None:
        clock.advance(timedelta(minutes=3))
        h(command)

    base: dict[str, Any] = {"actor": ACTOR, "incident_id": iid}
    act(c.DeclareLevel(**base, level="II"))
    act(c.StartStep(**base, step_id="confirm"))
    act(c.CheckItem(**base, step_id="confirm", item=1))
    act(c.CheckItem(**base, step_id="confirm", item=2))
    act(c.CheckItem(**base, step_id="confirm", item=2, checked=False))
    act(c.CompleteStep(**base, step_id="confirm", note="SYN flood, 180 Gbit/s"))
    act(c.MarkNotificationSent(**base, notification_id="internal-callout", reference="sms batch 17"))
    act(c.StartStep(**base, step_id="scrubbing", assignee="soc-duty"))
    act(c.AttachEvidence(**base, step_id="scrubbing", filename="graphs.txt", content=EVIDENCE, media_type="text/plain"))
    act(c.CompleteStep(**base, step_id="scrubbing"))
    act(c.StartStep(**base, step_id="upstream-help"))
    act(c.FailStep(**base, step_id="upstream-help", note="carrier NOC not answering"))
    act(c.RetryStep(**base, step_id="upstream-help"))
    act(c.SkipStep(**base, step_id="report-regulator", note="reported by phone by the CISO"))
    act(c.SetFacts(**base, facts={"provinces_affected": "3", "peak_gbps": "180"}))
    act(c.AddNote(**base, text="scrubbing centre B at 80% capacity", step_id="scrubbing"))
    act(c.RecordClock(**base, clock="awareness", instant=clock.now() - timedelta(minutes=50)))
    act(c.DeclareLevel(**base, level="I", reason="ten provinces now affected"))
    act(c.Restore(**base, degraded=True))
    act(c.CompleteStep(**base, step_id="upstream-help"))
    act(c.ApproveStep(**base, step_id="lift-mitigation", role="commander"))
    act(c.StartStep(**base, step_id="lift-mitigation"))
    return iid


# -- the stream, the cache and a fresh process ------------------------------------------------------------


def test_commands_through_the_handlers_and_a_fresh_process_sees_the_same(
    app: App, clock: SimulatedClock, make_app: AppFactory
) -> None:
    iid = drive(app, clock)
    inc = loaded(app, iid)
    assert inc.level is not None and inc.level.value == "I"
    assert inc.step_status("confirm") is StepStatus.DONE
    assert inc.step_status("scrubbing") is StepStatus.DONE
    assert inc.step_status("report-regulator") is StepStatus.SKIPPED
    assert inc.step_status("lift-mitigation") is StepStatus.IN_PROGRESS
    assert inc.steps["confirm"].checked == {0}
    assert inc.facts["provinces_affected"] == 3
    assert inc.restored_at is not None
    assert versions(app, iid) == list(range(1, inc.version + 1))

    other = make_app()  # another process: its own engine, caches and keys
    cold = loaded(other, iid)
    assert to_snapshot(cold) == to_snapshot(inc)
    assert cold.playbook.content_hash == inc.playbook.content_hash
    assert to_snapshot(folded_from_events(other, iid)) == to_snapshot(inc)


def test_a_stale_cache_is_re_read_and_a_stale_expected_version_is_a_conflict(app: App, make_app: AppFactory) -> None:
    first, second = app, make_app()
    iid = open_ddos(first, level="II")
    assert loaded(second, iid).version == 2  # the second process caches version 2

    first.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="from the first process"))
    # the second process's cache is stale; without an expected version it re-reads and succeeds
    out = second.handlers.handle(c.StartStep(actor=ACTOR, incident_id=iid, step_id="confirm"))
    assert out.version == 4
    assert versions(first, iid) == [1, 2, 3, 4]
    assert [n.text for n in loaded(second, iid).notes] == ["from the first process"]

    # the first process still has version 3 cached; a command made against version 3 is refused …
    before_rows = table_rows(first, incidents), table_rows(first, work_items), count(first, audit_records)
    with pytest.raises(Conflict):
        first.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="too late", expected_version=3))
    with pytest.raises(Conflict):
        second.handlers.handle(c.CompleteStep(actor=ACTOR, incident_id=iid, step_id="confirm", expected_version=2))
    # … and changes nothing
    assert versions(first, iid) == [1, 2, 3, 4]
    assert (table_rows(first, incidents), table_rows(first, work_items), count(first, audit_records)) == before_rows
    for process in (first, second, make_app()):
        inc = loaded(process, iid)
        assert inc.version == 4
        assert [n.text for n in inc.notes] == ["from the first process"]
        assert inc.step_status("confirm") is StepStatus.IN_PROGRESS

    # the right expected version is accepted
    out = first.handlers.handle(c.CompleteStep(actor=ACTOR, incident_id=iid, step_id="confirm", expected_version=4))
    assert out.version == 5


def test_a_process_that_does_not_trust_its_cache_reads_the_stored_version_in_a_write_transaction(
    app: App, make_app: AppFactory
) -> None:
    """`ir serve` beside its writer process: a report or a status update reads the incident in a write
    transaction, and must see what the other process stored, not what this one cached."""
    server, writer = app, make_app()
    iid = open_ddos(server, level="II")
    assert loaded(server, iid).version == 2  # the server caches version 2
    writer.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="from the writer"))

    with server.db.uow() as uow:  # trusted, the cache is taken as it is (an append would catch it)
        assert uow.incidents.get(iid).version == 2
    server.db.trust_cache = False
    with server.db.uow() as uow:
        incident = uow.incidents.get(iid)
        assert incident.version == 3
        assert [n.text for n in incident.notes] == ["from the writer"]


def test_concurrent_writers_never_lose_an_update(app: App, make_app: AppFactory) -> None:
    """Threads of two processes add notes to one incident at once: every acknowledged note is stored
    exactly once at its own version; a writer may be refused (Conflict), never silently dropped."""
    iid = open_ddos(app, level="II")
    processes = [app, make_app()]
    acked: list[tuple[int, str]] = []
    refused: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def writer(n: int) -> None:
        process = processes[n % 2]
        start.wait()
        for k in range(6):
            text_ = f"writer {n} note {k}"
            try:
                out = process.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=text_))
            except Conflict:
                with lock:
                    refused.append(text_)
            except BaseException as exc:  # reported below
                with lock:
                    errors.append(exc)
            else:
                with lock:
                    acked.append((out.version, text_))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(acked) + len(refused) == 36
    acked_versions = [v for v, _ in acked]
    assert len(set(acked_versions)) == len(acked_versions), "two commands acknowledged at the same version"
    assert versions(app, iid) == list(range(1, 3 + len(acked)))
    with app.db.read() as repo:
        stored = {s.seq: s.event for s in repo.events(iid)}
    for version, text_ in acked:
        assert getattr(stored[version], "text", None) == text_
    cold = loaded(make_app(), iid)
    assert sorted(str(n.text) for n in cold.notes) == sorted(t for _, t in acked)
    for process in processes:
        assert to_snapshot(loaded(process, iid)) == to_snapshot(cold)


def test_concurrent_toggles_in_one_process_keep_the_stream_valid(app: App) -> None:
    """Threads of one process check and uncheck the same checklist item: each stored event must be a
    valid act on the state before it (no two 'checked' in a row), however the cache is shared."""
    iid = open_ddos(app, level="II")
    app.handlers.handle(c.StartStep(actor=ACTOR, incident_id=iid, step_id="confirm"))
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def toggler() -> None:
        start.wait()
        for _ in range(10):
            inc = loaded(app, iid)
            checked = 0 not in inc.steps["confirm"].checked
            try:
                app.handlers.handle(
                    c.CheckItem(actor=ACTOR, incident_id=iid, step_id="confirm", item=1, checked=checked)
                )
            except InvalidTransition:  # someone toggled it first (Conflict is one too)
                pass
            except BaseException as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=toggler) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    with app.db.read() as repo:
        flags = [s.event.checked for s in repo.events(iid) if isinstance(s.event, ChecklistItemChecked)]
    assert flags, "no toggle succeeded"
    assert all(a != b for a, b in itertools.pairwise(flags)), f"an invalid transition was stored: {flags}"
    assert flags[0] is True
    assert to_snapshot(loaded(app, iid)) == to_snapshot(folded_from_events(app, iid))


# -- projections -----------------------------------------------------------------------------------------


def test_projections_equal_a_rebuild_from_the_events(app: App, clock: SimulatedClock) -> None:
    iid = drive(app, clock)
    second = open_ddos(app, title="second attack")
    app.handlers.handle(c.CloseIncident(actor=ACTOR, incident_id=second, reason="false alarm"))
    third = open_ddos(app, title="third attack", level="IV")
    app.handlers.handle(c.SetFacts(actor=ACTOR, incident_id=third, facts={"affected_users": "50"}))

    live_items, live_incidents = table_rows(app, work_items), table_rows(app, incidents)
    assert {r["incident_id"] for r in live_items} == {iid, second, third}
    steps = {r["ref"]: r for r in live_items if r["incident_id"] == iid and r["kind"] == "step"}
    assert steps["step:confirm"]["status"] == "done"
    assert steps["step:scrubbing"]["assignee"] == "soc-duty"
    assert steps["step:report-regulator"]["status"] == "skipped"
    assert steps["step:lift-mitigation"]["status"] == "in_progress"

    assert rebuild(app.db) == (3, sum(len(versions(app, i)) for i in (iid, second, third)))
    assert table_rows(app, work_items) == live_items
    assert table_rows(app, incidents) == live_incidents
    # and what a process reads after the rebuild is still the fold of the events
    assert to_snapshot(loaded(app, iid)) == to_snapshot(folded_from_events(app, iid))


def test_every_step_act_keeps_the_projection_equal_to_a_rebuild(app: App, clock: SimulatedClock) -> None:
    """After each single command, not only at the end: an incremental update that misses a row shows."""
    iid = open_ddos(app)
    base: dict[str, Any] = {"actor": ACTOR, "incident_id": iid}
    commands: list[c.Command] = [
        c.DeclareLevel(**base, level="III"),
        c.SkipStep(**base, step_id="confirm", note="obvious from the graphs"),
        c.StartStep(**base, step_id="customer-notice"),
        c.CompleteStep(**base, step_id="customer-notice"),
        c.MarkNotificationSent(**base, notification_id="miit-report"),
        c.MarkNotificationSent(**base, notification_id="miit-report"),
        c.StartStep(**base, step_id="scrubbing"),
        c.FailStep(**base, step_id="scrubbing", note="scrubbing centre down"),
        c.SkipStep(**base, step_id="scrubbing", note="black-holed instead"),
        c.SkipStep(**base, step_id="upstream-help", note="not needed"),
        c.StartStep(**base, step_id="preserve-evidence"),
        c.ApproveStep(**base, step_id="lift-mitigation", role="commander"),
        c.CompleteStep(**base, step_id="lift-mitigation"),
        c.CloseIncident(**base, reason="evidence still being preserved"),
    ]
    for command in commands:
        clock.advance(timedelta(minutes=7))
        app.handlers.handle(command)
        live_items, live_incidents = table_rows(app, work_items), table_rows(app, incidents)
        rebuild(app.db)
        assert table_rows(app, work_items) == live_items, f"after {type(command).__name__}"
        assert table_rows(app, incidents) == live_incidents, f"after {type(command).__name__}"
    assert table_rows(app, incidents)[0]["status"] == "closed"


def test_work_items_written_by_two_processes_in_turn_and_after_a_rollback_equal_a_rebuild(
    app: App, clock: SimulatedClock, make_app: AppFactory
) -> None:
    """A process writes only the work-item columns that changed since the rows it knows it wrote: when
    another process wrote since, or its own transaction was rolled back, it must not trust what it knew."""
    first, second = app, make_app()
    iid = open_ddos(first, level="II")
    base: dict[str, Any] = {"actor": ACTOR, "incident_id": iid}

    def act(process: App, command: c.Command) -> None:
        clock.advance(timedelta(minutes=4))
        process.handlers.handle(command)

    def check(phase: str) -> None:
        live = table_rows(first, work_items) + table_rows(first, incidents)
        rebuild(first.db)
        rebuilt = table_rows(first, work_items) + table_rows(first, incidents)
        assert rebuilt == live, f"{phase}: {[(a, b) for a, b in zip(live, rebuilt, strict=False) if a != b]}"

    act(first, c.StartStep(**base, step_id="confirm"))
    act(second, c.CompleteStep(**base, step_id="confirm"))  # rows the first process wrote and knows
    act(first, c.StartStep(**base, step_id="scrubbing", assignee="soc-duty"))
    act(first, c.StartStep(**base, step_id="upstream-help"))
    check("two processes in turn")

    act(first, c.FailStep(**base, step_id="upstream-help", note="carrier NOC not answering"))
    with first.db.uow() as uow:  # a command whose projection was written, then rolled back
        inc = uow.incidents.get(iid)
        now = inc.now(clock.now())
        uow.incidents.append(inc, decisions.retry_step(inc, "upstream-help", actor=ACTOR.id, now=now, note=None))
        uow.incidents.append(inc, decisions.restore(inc, degraded=True, actor=ACTOR.id, now=now, at=None, reason=None))
    act(first, c.RetryStep(**base, step_id="upstream-help"))  # the same change, now stored
    check("after a rollback")

    act(second, c.CompleteStep(**base, step_id="upstream-help"))
    act(first, c.MarkNotificationSent(**base, notification_id="internal-callout", reference="sms batch 17"))
    check("after the other process again")
    act(second, c.Restore(**base, degraded=True))  # the incident list's row changes
    loaded(first, iid)
    act(first, c.AddNote(**base, text="traffic back to normal", step_id="scrubbing"))
    act(first, c.Restore(**base))
    check("after the incident's row changed")
    assert {r["ref"]: r["status"] for r in table_rows(first, work_items) if r["kind"] == "step"}[
        "step:upstream-help"
    ] == ("done")


def test_a_command_refused_on_a_stale_cached_state_is_decided_again_on_the_stored_one(
    app: App, clock: SimulatedClock, make_app: AppFactory
) -> None:
    """The first process caches the incident; the second completes 'confirm'. Starting 'scrubbing' (which
    waits on 'confirm') in the first process must succeed on the stored state, not be refused on its cache."""
    first, second = app, make_app()
    iid = open_ddos(first, level="II")
    base: dict[str, Any] = {"actor": ACTOR, "incident_id": iid}
    first.handlers.handle(c.StartStep(**base, step_id="confirm"))
    second.handlers.handle(c.CompleteStep(**base, step_id="confirm"))
    first.handlers.handle(c.StartStep(**base, step_id="scrubbing", assignee="soc-duty"))
    assert loaded(first, iid).step_status("scrubbing") is StepStatus.IN_PROGRESS
    with pytest.raises(InvalidTransition, match="already"):  # a refusal on the stored state stands
        second.handlers.handle(c.StartStep(**base, step_id="scrubbing"))


# -- snapshots -------------------------------------------------------------------------------------------


def test_a_long_stream_is_snapshotted_and_a_cold_load_equals_the_warm_state(
    app: App, clock: SimulatedClock, make_app: AppFactory
) -> None:
    iid = open_ddos(app, level="II")
    app.handlers.handle(c.StartStep(actor=ACTOR, incident_id=iid, step_id="confirm"))
    for n in range(SNAPSHOT_EVERY + 7):
        clock.advance(timedelta(seconds=5))
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=f"sitrep {n}"))
    app.handlers.handle(c.CheckItem(actor=ACTOR, incident_id=iid, step_id="confirm", item=3))
    warm = loaded(app, iid)
    assert warm.version == SNAPSHOT_EVERY + 11

    with app.db.connection() as conn:
        snaps = conn.execute(select(incident_snapshots.c.version).where(incident_snapshots.c.incident_id == iid)).all()
    assert [int(v) for (v,) in snaps] == [SNAPSHOT_EVERY]

    cold = loaded(make_app(), iid)
    assert to_snapshot(cold) == to_snapshot(warm)
    assert to_snapshot(folded_from_events(app, iid)) == to_snapshot(warm)


def test_a_snapshot_is_what_the_events_fold_to(app: App, clock: SimulatedClock) -> None:
    iid = open_ddos(app, level="II")
    for n in range(SNAPSHOT_EVERY):
        clock.advance(timedelta(seconds=1))
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text=f"n{n}"))
    with app.db.connection() as conn:
        version, raw = conn.execute(
            select(incident_snapshots.c.version, incident_snapshots.c.state).where(
                incident_snapshots.c.incident_id == iid
            )
        ).one()
        rows = conn.execute(
            select(incident_events.c.kind, incident_events.c.payload)
            .where(incident_events.c.incident_id == iid)
            .where(incident_events.c.seq <= version)
            .order_by(incident_events.c.seq)
        ).all()
    playbook = loaded(app, iid).playbook
    expected = fold(iid, playbook, [event_from_dict(k, json.loads(p)) for k, p in rows])
    assert json.loads(raw) == json.loads(json.dumps(to_snapshot(expected)))


# -- evidence --------------------------------------------------------------------------------------------


def test_evidence_is_stored_once_by_its_sha256(app: App) -> None:
    first = open_ddos(app, level="II")
    second = open_ddos(app, title="the same botnet, again", level="II")
    digest = hashlib.sha256(EVIDENCE).hexdigest()
    for iid, step in ((first, "scrubbing"), (first, "confirm"), (second, "scrubbing")):
        app.handlers.handle(
            c.AttachEvidence(actor=ACTOR, incident_id=iid, step_id=step, filename="g.txt", content=EVIDENCE)
        )
    with pytest.raises(InvalidTransition, match="already evidence"):
        app.handlers.handle(
            c.AttachEvidence(actor=ACTOR, incident_id=first, step_id="confirm", filename="h", content=EVIDENCE)
        )
    app.handlers.handle(
        c.AttachEvidence(actor=ACTOR, incident_id=second, step_id="confirm", filename="o", content=b"other")
    )

    blobs = table_rows(app, evidence_blobs)
    assert sorted(b["sha256"] for b in blobs) == sorted([digest, hashlib.sha256(b"other").hexdigest()])
    blob = next(b for b in blobs if b["sha256"] == digest)
    assert bytes(blob["content"]) == EVIDENCE
    assert blob["size"] == len(EVIDENCE)
    inc = loaded(app, first)
    assert [e.sha256 for e in inc.steps["scrubbing"].evidence] == [digest]
    assert [e.sha256 for e in inc.steps["confirm"].evidence] == [digest]
    with app.db.uow() as uow:
        assert uow.evidence.get(digest) == EVIDENCE


def test_evidence_in_a_folder_is_written_once(make_app: AppFactory, tmp_path: Path) -> None:
    folder = tmp_path / "evidence"
    app = make_app(evidence_dir=str(folder))
    first = open_ddos(app, level="II")
    second = open_ddos(app, title="again", level="II")
    digest = hashlib.sha256(EVIDENCE).hexdigest()
    app.handlers.handle(
        c.AttachEvidence(actor=ACTOR, incident_id=first, step_id="confirm", filename="g", content=EVIDENCE)
    )
    path = folder / digest[:2] / digest
    assert path.read_bytes() == EVIDENCE
    inode = path.stat().st_ino
    app.handlers.handle(
        c.AttachEvidence(actor=ACTOR, incident_id=second, step_id="confirm", filename="g", content=EVIDENCE)
    )
    assert path.stat().st_ino == inode
    assert [p.name for p in folder.rglob("*") if p.is_file()] == [digest]
    blobs = table_rows(app, evidence_blobs)
    assert [(b["sha256"], b["content"]) for b in blobs] == [(digest, None)]
    with app.db.uow() as uow:
        assert uow.evidence.get(digest) == EVIDENCE


# -- migrations ------------------------------------------------------------------------------------------


def test_an_unmigrated_database_is_refused(settings: Settings, clock: SimulatedClock) -> None:
    with pytest.raises(NotMigrated) as refused:
        build(settings, clock=clock)
    assert refused.value.exit_code == 7
    assert "ir db upgrade" in refused.value.message
    assert "\n" not in refused.value.message


# -- the audit trail -------------------------------------------------------------------------------------


def test_one_encrypted_audit_record_per_event(app: App, clock: SimulatedClock) -> None:
    iid = drive(app, clock)
    other = open_ddos(app, title="second", level="IV")
    with app.db.connection() as conn:
        events = conn.execute(
            select(incident_events.c.incident_id, incident_events.c.seq, incident_events.c.kind)
        ).all()
        rows = conn.execute(select(audit_records)).all()
    assert len(rows) == len(events)
    for row in rows:
        stored = b"".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row)
        assert TITLE.encode() not in stored
        assert b"ZQXJ" not in stored
        assert b"incident_opened" not in stored
    refs = {row.subject_ref for row in rows}
    assert not any("incident" in r for r in refs)
    assert len(refs) == 2  # one reference per incident, and not the id itself

    records = decrypt_audit(app)
    assert Counter((r["subject"], r["payload"]["seq"], r["payload"]["kind"]) for r in records) == Counter(
        (f"incident:{i}", seq, kind) for i, seq, kind in events
    )
    opened = [r for r in records if r["payload"]["kind"] == "incident_opened" and r["subject"] == f"incident:{iid}"]
    assert TITLE in json.dumps(opened[0], ensure_ascii=False)
    assert opened[0]["actor"] == ACTOR.id
    assert {r["subject"] for r in records} == {f"incident:{iid}", f"incident:{other}"}


def test_the_audit_log_fails_closed(app: App, clock: SimulatedClock, make_app: AppFactory) -> None:
    iid = drive(app, clock)
    before = (
        versions(app, iid),
        table_rows(app, incidents),
        table_rows(app, work_items),
        to_snapshot(loaded(app, iid)),
    )
    with app.db.engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_records"))

    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises, the command must fail
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid, text="must not be stored"))
    with pytest.raises(Exception):  # noqa: B017
        app.handlers.handle(c.CompleteStep(actor=ACTOR, incident_id=iid, step_id="lift-mitigation"))
    with pytest.raises(Exception):  # noqa: B017
        open_ddos(app, title="must not be opened")

    after = (
        versions(app, iid),
        table_rows(app, incidents),
        table_rows(app, work_items),
        to_snapshot(loaded(app, iid)),  # the same process: its cache did not keep the failed change
    )
    assert after == before
    assert to_snapshot(loaded(make_app(), iid)) == before[3]


def test_audit_records_stay_readable_after_a_failed_first_command(
    app: App, settings: Settings, make_app: AppFactory
) -> None:
    """The first command of a period creates that period's data key. If its transaction fails, the key
    is rolled back with it: a record written later must not be encrypted under a key that was never
    stored (it could never be decrypted by anyone)."""
    with app.db.engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_records"))
    with pytest.raises(Exception):  # noqa: B017
        open_ddos(app, title="fails")
    audit_records.create(app.db.engine)
    assert count(app, incidents) == 0

    iid = open_ddos(app, title="after the audit table is back", level="II")
    with app.db.connection() as conn:
        used = {k for (k,) in conn.execute(select(audit_records.c.key_id))}
        stored = {k for (k,) in conn.execute(select(audit_keys.c.key_id))}
    assert used <= stored, f"audit records encrypted under keys never stored: {sorted(used - stored)}"
    records = decrypt_audit(make_app())
    assert [r["payload"]["kind"] for r in records] == ["incident_opened", "level_declared"]
    assert {r["subject"] for r in records} == {f"incident:{iid}"}


def test_errors_are_ir_errors_with_exit_codes(app: App) -> None:
    iid = open_ddos(app, level="II")
    with pytest.raises(IrError) as waits:
        app.handlers.handle(c.StartStep(actor=ACTOR, incident_id=iid, step_id="scrubbing"))
    assert waits.value.exit_code == 4
    assert waits.value.message == "step 'scrubbing' waits on 'confirm'"
    with pytest.raises(IrError) as missing:
        app.handlers.handle(c.AddNote(actor=ACTOR, incident_id=iid + 100, text="x"))
    assert missing.value.exit_code == 3
    assert versions(app, iid) == [1, 2]
