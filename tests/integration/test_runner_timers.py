"""The timer service on SQLite and PostgreSQL: due-soon, overdue, escalation and RTO-breach marks,
recorded once across ticks and restarts, never for closed incidents, without loading incidents."""

from __future__ import annotations

import tracemalloc
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, select

from ir.adapters.clock import SimulatedClock
from ir.adapters.db.queries import marks_of
from ir.adapters.db.tables import audit_records, timer_marks, work_items
from ir.adapters.db.timers import SqlTimerStore
from ir.app.timers import TimerMark, TimerService
from ir.bootstrap import App
from ir.config import Settings
from ir.domain import commands as c
from tests.conftest import ACTOR, T0, AppFactory, decrypt_audit, table_rows

M = timedelta(minutes=1)

Key = tuple[int, str, str, timedelta, str | None]  # incident, ref, mark, due after T0, target


def open_ddos(app: App, *, level: str | None = "II", **extra: Any) -> int:
    # the regulators' obligations are deadlines too; these tests are about steps, notifications and RTO
    # (test_a_regulator_obligation_is_marked_like_any_deadline covers them)
    app.db.regimes = {}
    return app.handlers.handle(
        c.OpenIncident(
            actor=ACTOR, playbook="ddos", title="DDoS", facts={"affected_users": "1,200,000"}, level=level, **extra
        )
    ).incident_id


def keys(marks: list[TimerMark]) -> set[Key]:
    return {(m.incident_id, m.ref, m.mark, m.due_at - T0, m.target) for m in marks}


def stored(app: App) -> set[Key]:
    return {
        (r["incident_id"], r["ref"], r["mark"], r["due_at"] - T0, r["target"]) for r in table_rows(app, timer_marks)
    }


def tick(app: App, at: datetime) -> tuple[list[TimerMark], datetime | None]:
    return TimerService(SqlTimerStore(app.db)).tick(at)


def test_due_soon_then_overdue_escalated_and_breached(app: App, clock: SimulatedClock) -> None:
    iid = open_ddos(app)  # level II: escalates to the leading group; RTO 4h
    service = TimerService(SqlTimerStore(app.db))

    marks, wake = service.tick(clock.advance(M))
    assert keys(marks) == {
        (iid, "notification:internal-callout", "due_soon", 5 * M, None),
        (iid, "step:confirm", "due_soon", 15 * M, None),
    }
    assert wake == T0 + 5 * M  # internal call-out falls due

    again, wake_again = service.tick(clock.now())
    assert again == []
    assert wake_again == wake

    marks, wake = service.tick(clock.advance(19 * M))  # T0 + 20m
    assert keys(marks) == {
        (iid, "notification:internal-callout", "overdue", 5 * M, None),
        (iid, "notification:internal-callout", "escalated", 5 * M, "leading_group"),
        (iid, "step:confirm", "overdue", 15 * M, None),
        (iid, "step:confirm", "escalated", 15 * M, "leading_group"),
        (iid, "step:scrubbing", "due_soon", 30 * M, None),
        (iid, "step:report-regulator", "due_soon", 30 * M, None),
        (iid, "notification:miit-report", "due_soon", 30 * M, None),
    }
    assert wake == T0 + 30 * M

    clock.set(T0 + 4 * 60 * M + M)  # past the RTO
    marks, wake = service.tick(clock.now())
    assert {(k[1], k[2], k[4]) for k in keys(marks) if k[1] == "rto"} == {
        ("rto", "breached", None),
        ("rto", "escalated", "leading_group"),
    }
    assert wake == T0 + 12 * 60 * M - 15 * M  # MTPD (12h) due soon
    assert service.tick(clock.now())[0] == []
    assert len(table_rows(app, timer_marks)) == len(stored(app))  # no duplicates in the table


def test_marks_are_audited(app: App, clock: SimulatedClock, settings: Settings) -> None:
    iid = open_ddos(app)
    audited_before = len(table_rows(app, audit_records))
    marks, _ = tick(app, clock.advance(20 * M))
    records = decrypt_audit(app)
    assert len(records) == audited_before + len(marks)
    timer_records = [r for r in records if r["action"].startswith("timer.")]
    assert {(r["subject"], r["action"], r["payload"]["ref"]) for r in timer_records} == {
        (f"incident:{iid}", f"timer.{m.mark}", m.ref) for m in marks
    }
    assert {r["actor"] for r in timer_records} == {"system:timer"}


def test_a_restart_records_only_new_marks_and_misses_none(
    app: App, clock: SimulatedClock, make_app: AppFactory
) -> None:
    iid = open_ddos(app)
    tick(app, clock.advance(M))
    tick(app, clock.advance(19 * M))
    before = stored(app)

    restarted = make_app()  # a new process after a while down: 20m -> 5h
    clock.set(T0 + 5 * 60 * M)
    marks, wake = tick(restarted, clock.now())
    assert not keys(marks) & before
    assert stored(restarted) == before | keys(marks)

    # every open item due by now is marked overdue (or breached), and escalated
    with restarted.db.connection() as conn:
        due = conn.execute(
            select(work_items.c.ref, work_items.c.kind, work_items.c.due_at).where(
                work_items.c.incident_id == iid,
                work_items.c.done_at.is_(None),
                work_items.c.due_at <= clock.now(),
                work_items.c.status.notin_(("done", "skipped", "not_applicable")),
            )
        ).all()
    assert {r.ref for r in due} >= {"step:confirm", "step:scrubbing", "notification:internal-callout", "rto"}
    all_marks = stored(restarted)
    for ref, kind, due_at in due:
        mark = "breached" if kind in ("rto", "mtpd") else "overdue"
        assert (iid, ref, mark, due_at - T0, None) in all_marks, ref
        assert (iid, ref, "escalated", due_at - T0, "leading_group") in all_marks, ref
    assert wake == T0 + 12 * 60 * M - 15 * M

    # a second restart at the same instant records nothing at all
    assert tick(make_app(), clock.now())[0] == []
    assert stored(restarted) == all_marks


def test_two_workers_ticking_at_once_record_each_mark_once(
    app: App, clock: SimulatedClock, make_app: AppFactory
) -> None:
    open_ddos(app)
    open_ddos(app)
    other = make_app()
    clock.advance(70 * M)
    first, _ = tick(app, clock.now())
    second, _ = tick(other, clock.now())
    assert first and not second
    assert stored(app) == keys(first)


def test_the_level_decides_the_escalation_target(app: App, clock: SimulatedClock) -> None:
    iid = open_ddos(app, level="IV")  # IV escalates to the commander
    marks, _ = tick(app, clock.advance(20 * M))
    assert {m.target for m in marks if m.mark == "escalated"} == {"commander"}
    assert {m.ref for m in marks if m.mark == "overdue"} == {"step:confirm", "notification:internal-callout"}
    assert all(m.incident_id == iid for m in marks)


def test_closed_incidents_and_done_work_get_no_marks(app: App, clock: SimulatedClock) -> None:
    closed = open_ddos(app)
    app.handlers.handle(c.CloseIncident(actor=ACTOR, incident_id=closed, reason="false alarm"))
    live = open_ddos(app)
    app.handlers.handle(c.StartStep(actor=ACTOR, incident_id=live, step_id="confirm"))
    app.handlers.handle(c.CompleteStep(actor=ACTOR, incident_id=live, step_id="confirm"))
    app.handlers.handle(c.MarkNotificationSent(actor=ACTOR, incident_id=live, notification_id="internal-callout"))

    marks, _ = tick(app, clock.advance(20 * M))
    assert {m.incident_id for m in marks} == {live}
    refs = {m.ref for m in marks}
    assert "step:confirm" not in refs
    assert "notification:internal-callout" not in refs
    with app.db.connection() as conn:
        assert marks_of(conn, closed) == []

    # closing the live one stops its marks too, even long after every deadline
    app.handlers.handle(c.CloseIncident(actor=ACTOR, incident_id=live, reason="done"))
    marks, wake = tick(app, clock.advance(48 * 60 * M))
    assert marks == []
    assert wake is None


def test_next_wake_follows_the_open_work(app: App, clock: SimulatedClock) -> None:
    assert tick(app, clock.now()) == ([], None)
    iid = open_ddos(app, level=None)  # triage: the steps and notifications wait for a level
    assert tick(app, clock.now()) == ([], None)
    clock.advance(2 * M)
    app.handlers.handle(c.DeclareLevel(actor=ACTOR, incident_id=iid, level="II"))  # declared at T0 + 2m
    marks, wake = tick(app, clock.now())
    assert {(m.ref, m.mark) for m in marks} == {
        ("step:confirm", "due_soon"),  # 15m after detection
        ("notification:internal-callout", "due_soon"),  # 5m after declaration
    }
    assert wake == T0 + 7 * M  # the call-out, 5m after declaration
    marks, wake = tick(app, wake)
    assert {(m.ref, m.mark) for m in marks} == {
        ("notification:internal-callout", "overdue"),
        ("notification:internal-callout", "escalated"),
    }
    assert wake == T0 + 15 * M


def test_a_drill_on_simulated_time_is_marked_in_its_own_time(app: App, clock: SimulatedClock) -> None:
    sim_start = T0 - timedelta(days=30)
    iid = open_ddos(app, mode="drill", simulate_from=sim_start, speed=60.0)  # one real minute = one drill hour
    marks, wake = tick(app, clock.now())
    assert {(m.ref, m.mark) for m in marks} == {
        ("notification:internal-callout", "due_soon"),
        ("step:confirm", "due_soon"),
    }
    assert all(m.due_at < T0 for m in marks)
    assert wake == T0 + timedelta(seconds=5)  # the call-out, 5 drill minutes in
    marks, _ = tick(app, clock.advance(timedelta(seconds=20)))  # 20 drill minutes in
    assert {(m.ref, m.mark) for m in marks} >= {
        ("notification:internal-callout", "overdue"),
        ("step:confirm", "overdue"),
    }
    assert {m.incident_id for m in marks} == {iid}


def test_a_tick_does_not_load_closed_incidents(app: App, clock: SimulatedClock, make_app: AppFactory) -> None:
    ids = []
    for n in range(300):
        iid = app.handlers.handle(
            c.OpenIncident(
                actor=ACTOR, playbook="ddos", title=f"old {n}", facts={"affected_users": "1,200,000"}, level="II"
            )
        ).incident_id
        app.handlers.handle(c.CloseIncident(actor=ACTOR, incident_id=iid, reason="archived"))
        ids.append(iid)
    live = open_ddos(app)
    clock.advance(30 * 24 * 60 * M)  # every deadline of every incident long past

    worker = make_app()  # a fresh process: nothing cached
    statements: list[str] = []

    @event.listens_for(worker.db.engine, "before_cursor_execute")
    def _seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    service = TimerService(SqlTimerStore(worker.db))
    marks, _ = service.tick(clock.now())
    assert marks and {m.incident_id for m in marks} == {live}
    assert not [s for s in statements if "incident_events" in s or "incident_snapshots" in s]
    assert all(worker.db.cache.get(i) is None for i in [*ids, live])

    # and its memory does not grow with the closed incidents (a second tick: the playbook is compiled)
    clock.advance(M)
    tracemalloc.start()
    try:
        again, _ = service.tick(clock.now())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert again == []
    assert peak < 256 * 1024, f"a tick over 300 closed incidents peaked at {peak} bytes"


def test_a_regulator_obligation_is_marked_like_any_deadline(app: App, clock: SimulatedClock) -> None:
    """MIIT's plan asks for an immediate report: overdue from detection, escalated to the level's target."""
    iid = app.handlers.handle(
        c.OpenIncident(actor=ACTOR, playbook="ddos", title="DDoS", facts={"affected_users": "1,200,000"}, level="II")
    ).incident_id
    marks, _wake = tick(app, clock.advance(M))
    assert {k for k in keys(marks) if k[1].startswith("regime:")} == {
        (iid, "regime:cn-miit-2017:immediate", "overdue", timedelta(0), None),
        (iid, "regime:cn-miit-2017:immediate", "escalated", timedelta(0), "leading_group"),
    }
