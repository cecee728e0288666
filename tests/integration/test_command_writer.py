"""The server's command writer (SQLite and PostgreSQL): changes handed over together are carried out in one
transaction, each in its own savepoint (group commit). What callers rely on: each gets its own outcome,
a refused change rolls back alone and leaves nothing, a failed batch stores nothing and leaves no state in
the cache that was not stored, after-commit hooks see committed data (a slow one holds up only its own
caller), and a caller who left before their change began is not acted for."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select

from ir.adapters.audit.checkpoint import Verifier
from ir.adapters.audit.verify import verify
from ir.adapters.db.tables import audit_records, incident_events
from ir.app.handlers import Outcome
from ir.bootstrap import App
from ir.domain import commands as c
from ir.domain.errors import Conflict, InvalidTransition
from ir.entrypoints.http.writer import CommandWriter
from tests.conftest import ACTOR, AppFactory, decrypt_audit


def open_ddos(app: App, title: str = "DNS flood") -> int:
    return app.handlers.handle(c.OpenIncident(actor=ACTOR, playbook="ddos", title=title)).incident_id


def note(incident_id: int, n: int, expected: int | None = None) -> c.AddNote:
    return c.AddNote(actor=ACTOR, incident_id=incident_id, text=f"note {n}", expected_version=expected)


def stored_versions(app: App, incident_id: int) -> list[int]:
    with app.db.connection() as conn:
        rows = conn.execute(
            select(incident_events.c.seq).where(incident_events.c.incident_id == incident_id).order_by("seq")
        )
        return [int(r[0]) for r in rows]


def audit_count(app: App) -> int:
    with app.db.connection() as conn:
        return int(conn.execute(select(func.count()).select_from(audit_records)).scalar_one())


@pytest.fixture
def writer(app: App) -> Iterator[CommandWriter]:
    found = CommandWriter(app)
    yield found
    found.close()


@pytest.fixture
def commits(app: App) -> Iterator[list[int]]:
    """The commits of the app's engine, counted."""
    seen: list[int] = []

    def count(_conn: Any) -> None:
        seen.append(1)

    event.listen(app.db.engine, "commit", count)
    yield seen
    event.remove(app.db.engine, "commit", count)


async def handed_over(writer: CommandWriter, commands: list[c.Command]) -> list[Outcome | BaseException]:
    return await asyncio.gather(*(writer.handle(cmd) for cmd in commands), return_exceptions=True)


def test_changes_handed_over_together_each_get_their_outcome_and_a_refusal_rolls_back_alone(
    app: App, writer: CommandWriter, commits: list[int]
) -> None:
    first, second = open_ddos(app, "DNS flood"), open_ddos(app, "NTP amplification")
    start = {i: stored_versions(app, i)[-1] for i in (first, second)}
    audited = audit_count(app)
    commands: list[c.Command] = []
    for n in range(20):
        commands.append(note(first if n % 2 else second, n))
        if n == 7:  # refused: a step that was never started cannot be completed
            commands.append(c.CompleteStep(actor=ACTOR, incident_id=first, step_id="confirm"))
        if n == 13:  # refused: a version the incident has left
            commands.append(note(second, 99, expected=1))

    async def run() -> list[Outcome | BaseException]:
        # the writer is held up by the write lock while everything queues: one batch carries the rest
        app.db.write_lock.__enter__()
        try:
            tasks = asyncio.ensure_future(handed_over(writer, commands))
            await asyncio.sleep(0.3)
        finally:
            app.db.write_lock.__exit__(None, None, None)
        return await tasks

    commits.clear()
    results = asyncio.run(run())

    refused = [r for r in results if isinstance(r, BaseException)]
    assert [type(r) for r in refused] == [InvalidTransition, Conflict]
    outcomes = [r for r in results if isinstance(r, Outcome)]
    assert len(outcomes) == 20
    for incident_id in (first, second):
        mine = sorted(o.version for o in outcomes if o.incident_id == incident_id)
        assert mine == list(range(start[incident_id] + 1, start[incident_id] + 11))  # one version each, in order
        assert stored_versions(app, incident_id) == list(range(1, start[incident_id] + 11))
    # the notes are stored, each with its audit record; the refusals left nothing
    with app.db.read() as repo:
        notes = {
            (f"incident:{i}", e.seq) for i in (first, second) for e in repo.events(i) if e.event.kind == "note_added"
        }
    assert len(notes) == 20
    assert audit_count(app) == audited + 20
    audited_notes = {
        (r["subject"], r["payload"]["seq"]) for r in decrypt_audit(app) if r["payload"]["kind"] == "note_added"
    }
    assert audited_notes == notes
    if app.db.engine.dialect.name == "sqlite":
        assert len(commits) <= 3, "the changes that queued were not committed together"
        # their after-commit hooks do not wake the background sealer: nothing is left for it
        assert sum(o.sealed for o in outcomes) >= 18
        # sealed in the batch's own transaction (no background sealer runs here), and the chain verifies
        with app.db.connection() as conn:
            unsealed = conn.execute(
                select(func.count()).select_from(audit_records).where(audit_records.c.seq.is_(None))
            )
            assert unsealed.scalar_one() == 0
            report = verify(conn, log_id=app.settings.audit_log_id, verifiers=[Verifier(app.verifier_key)], events=True)
        assert report.ok, report.errors
        assert report.size == audit_count(app)


def test_a_failed_batch_stores_nothing_and_forgets_what_it_cached(app: App, make_app: AppFactory) -> None:
    incident_id = open_ddos(app)
    before = stored_versions(app, incident_id)
    audited = audit_count(app)
    with pytest.raises(RuntimeError, match="the disk went away"), app.db.batch():
        app.handlers.carry_out(note(incident_id, 1))
        outcome = app.handlers.carry_out(note(incident_id, 2))
        assert outcome.version == before[-1] + 2  # the cached state ran ahead, inside the transaction
        raise RuntimeError("the disk went away")
    assert stored_versions(app, incident_id) == before
    assert audit_count(app) == audited
    # the next change acts on the stored state, not on the cached state of the lost batch
    again = app.handlers.handle(note(incident_id, 3))
    assert again.version == before[-1] + 1
    assert stored_versions(app, incident_id) == [*before, before[-1] + 1]
    with make_app().db.read() as repo:  # another process folds the same
        assert repo.get(incident_id).version == before[-1] + 1


def test_a_batch_whose_records_were_not_sealed_stores_them_unsealed_and_a_refused_change_leaves_none(
    app: App,
) -> None:
    """The units of work of a batch keep their audit records back for the batch's end; when whoever runs it
    does not seal them there, the batch stores them unsealed, for the sealer; a refused one leaves none."""
    incident_id = open_ddos(app)
    app.audit.sealer.seal()
    audited = audit_count(app)
    with app.db.batch() as batch:
        app.handlers.carry_out(note(incident_id, 1))
        with pytest.raises(Conflict):
            app.handlers.carry_out(note(incident_id, 2, expected=1))
        app.handlers.carry_out(note(incident_id, 3))
        assert len(batch.records) == 2 and audit_count(app) == audited  # kept back, not yet inserted
    assert audit_count(app) == audited + 2
    with app.db.connection() as conn:
        unsealed = select(func.count()).select_from(audit_records).where(audit_records.c.seq.is_(None))
        assert conn.execute(unsealed).scalar_one() == 2
    app.audit.sealer.seal()
    with app.db.connection() as conn:
        assert conn.execute(unsealed).scalar_one() == 0
        report = verify(conn, log_id=app.settings.audit_log_id, verifiers=[Verifier(app.verifier_key)], events=True)
    assert report.ok, report.errors
    texts = [r["payload"].get("seq") for r in decrypt_audit(app) if r["payload"].get("kind") == "note_added"]
    assert len(texts) == 2


def test_after_commit_hooks_see_the_change_committed(app: App, make_app: AppFactory, writer: CommandWriter) -> None:
    incident_id = open_ddos(app)
    other = make_app()  # another process: it reads only what is committed
    seen: list[tuple[int, int]] = []

    def hook(outcome: Outcome) -> None:
        with other.db.read() as repo:
            seen.append((outcome.version, repo.get(outcome.incident_id).version))

    app.handlers.after_commit.append(hook)

    async def run() -> list[Outcome | BaseException]:
        app.db.write_lock.__enter__()
        try:
            tasks = asyncio.ensure_future(handed_over(writer, [note(incident_id, n) for n in range(6)]))
            await asyncio.sleep(0.3)
        finally:
            app.db.write_lock.__exit__(None, None, None)
        return await tasks

    results = asyncio.run(run())
    assert all(isinstance(r, Outcome) for r in results)
    assert len(seen) == 6
    assert all(stored >= announced for announced, stored in seen)


def test_a_change_whose_caller_left_before_it_began_is_not_carried_out(app: App, writer: CommandWriter) -> None:
    if app.db.engine.dialect.name != "sqlite":
        pytest.skip("on PostgreSQL changes run side by side at once: none waits in a queue to be left")
    incident_id = open_ddos(app)
    before = stored_versions(app, incident_id)

    async def run() -> None:
        app.db.write_lock.__enter__()
        try:
            kept = asyncio.ensure_future(writer.handle(note(incident_id, 1)))
            await asyncio.sleep(0.2)  # the writer has taken it and waits for the lock
            left = asyncio.ensure_future(writer.handle(note(incident_id, 2)))
            await asyncio.sleep(0.1)
            left.cancel()  # the client hung up while its change was queued
        finally:
            app.db.write_lock.__exit__(None, None, None)
        outcome = await kept
        assert outcome.version == before[-1] + 1
        with pytest.raises(asyncio.CancelledError):
            await left

    asyncio.run(run())
    writer.close()  # what was handed over is done
    assert stored_versions(app, incident_id) == [*before, before[-1] + 1]


def test_a_slow_after_commit_hook_holds_up_only_its_own_caller(app: App, writer: CommandWriter) -> None:
    """An automated action calls a web service after its step's commit (with retries, for seconds): the
    other changes go on meanwhile, and the caller is answered once its own hooks have run."""
    slow, other = open_ddos(app, "DNS flood"), open_ddos(app, "NTP amplification")
    release = threading.Event()

    def hook(outcome: Outcome) -> None:
        if outcome.incident_id == slow:
            release.wait(timeout=30)

    app.handlers.after_commit.append(hook)

    async def run() -> None:
        waiting = asyncio.ensure_future(writer.handle(note(slow, 1)))
        await asyncio.sleep(0.2)
        quick = await asyncio.wait_for(writer.handle(note(other, 2)), timeout=10)
        assert quick.incident_id == other
        assert not waiting.done()  # its hook is still running
        release.set()
        assert (await asyncio.wait_for(waiting, timeout=10)).incident_id == slow

    try:
        asyncio.run(run())
    finally:
        release.set()
