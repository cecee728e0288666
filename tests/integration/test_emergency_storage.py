"""Running a real emergency on SQLite and PostgreSQL, through the handlers with the real commands: the
resource inventory across incidents, sealed contacts and their erasure, links written to both incidents,
a joined playbook through a fresh process, a snapshot and a rebuild, responders gated by the roles they
hold in the incident, and the sitrep and resource rows of the projections equal to a rebuild."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from ir.adapters.clock import SimulatedClock
from ir.adapters.db.contacts import import_csv, list_contacts
from ir.adapters.db.incidents import SNAPSHOT_EVERY
from ir.adapters.db.rebuild import rebuild
from ir.adapters.db.tables import incident_events, incident_snapshots, resource_units, work_items
from ir.bootstrap import App
from ir.domain import commands as c
from ir.domain.errors import InvalidInput, InvalidTransition, NotFound, NotPermitted
from ir.domain.events import IncidentLinked, IncidentUnlinked, PlaybookAdded
from ir.domain.incident import Incident, StepStatus, fold
from ir.domain.personal import ERASED, MASK
from ir.domain.snapshot import to_snapshot
from tests.conftest import ACTOR, T0, AppFactory, decrypt_audit, table_rows

H = timedelta(hours=1)
M = timedelta(minutes=1)
RESPONDER = c.Actor(id="wang.wei", roles=frozenset({"responder"}))


def handle(app: App, command: c.Command) -> Any:
    return app.handlers.handle(command)


def open_incident(app: App, playbook: str, *, level: str | None = "II", title: str = "台风摩羯") -> int:
    return int(handle(app, c.OpenIncident(actor=ACTOR, playbook=playbook, title=title, level=level)).incident_id)


def loaded(app: App, incident_id: int) -> Incident:
    with app.db.read() as repo:
        return repo.get(incident_id)


def register(app: App, *units: tuple[str, str, int]) -> None:
    with app.db.uow() as uow:
        for unit_id, kind, capacity in units:
            uow.inventory.register(
                unit_id=unit_id, kind=kind, name=f"{kind} {unit_id}", base="海口仓库", capacity=capacity
            )
        uow.commit()


def inventory(app: App) -> dict[str, tuple[str, int | None, str | None]]:
    with app.db.uow() as uow:
        return {u["id"]: (u["status"], u["incident_id"], u["request_id"]) for u in uow.inventory.units()}


def refused(app: App, kind: type[Exception], command: c.Command) -> str:
    with pytest.raises(kind) as caught:
        handle(app, command)
    assert type(caught.value) is kind
    return str(caught.value)


def stream(app: App, incident_id: int) -> list[Any]:
    with app.db.read() as repo:
        return [s.event for s in repo.events(incident_id)]


def items(app: App, incident_id: int, *refs: str) -> dict[str, tuple[Any, ...]]:
    return {
        r["ref"]: (r["status"], r["due_at"], r["done_at"])
        for r in table_rows(app, work_items)
        if r["incident_id"] == incident_id and (not refs or r["ref"] in refs)
    }


# -- the inventory -----------------------------------------------------------------------------------------


def test_a_unit_is_committed_to_one_incident_at_a_time(app: App, clock: SimulatedClock) -> None:
    register(app, ("gen-01", "generator", 1), ("gen-02", "generator", 1), ("team-01", "repair_team", 5))
    with app.db.uow() as uow:
        with pytest.raises(InvalidTransition, match="a unit 'gen-01' is already registered"):
            uow.inventory.register(unit_id="gen-01", kind="generator", name="x", base="y")
        with pytest.raises(InvalidInput, match="a unit's capacity is at least 1"):
            uow.inventory.register(unit_id="gen-09", kind="generator", name="x", base="y", capacity=0)
    a = open_incident(app, "typhoon-flood", title="文昌")
    b = open_incident(app, "typhoon-flood", title="琼海")
    handle(app, c.RequestResource(actor=ACTOR, incident_id=a, resource="generator", quantity=2, destination="文昌"))
    handle(app, c.RequestResource(actor=ACTOR, incident_id=b, resource="generator", quantity=1, destination="琼海"))

    out = handle(app, c.AllocateResource(actor=ACTOR, incident_id=a, request="r1", units=["gen-01"]))
    assert out.events[0].units == {"gen-01": 1}
    assert inventory(app)["gen-01"] == ("committed", a, "r1")
    assert refused(
        app, InvalidTransition, c.AllocateResource(actor=ACTOR, incident_id=b, request="r1", units=["gen-01"])
    ) == (f"unit gen-01 is committed (incident {a})")
    assert refused(
        app, InvalidInput, c.AllocateResource(actor=ACTOR, incident_id=b, request="r1", units=["team-01"])
    ) == ("unit team-01 is a repair_team, not a generator")
    assert refused(app, NotFound, c.AllocateResource(actor=ACTOR, incident_id=b, request="r1", units=["gen-77"])) == (
        "no unit 'gen-77' in the inventory"
    )
    out = handle(app, c.AllocateResource(actor=ACTOR, incident_id=b, request="r1"))  # any available one
    assert out.events[0].units == {"gen-02": 1}
    assert refused(app, InvalidTransition, c.AllocateResource(actor=ACTOR, incident_id=a, request="r1")) == (
        "no generator is available in the inventory"
    )
    assert loaded(app, a).emergency.requests["r1"].units.keys() == {"gen-01"}

    clock.advance(H)
    handle(app, c.MoveResource(actor=ACTOR, incident_id=a, request="r1", stage="dispatched"))
    handle(app, c.MoveResource(actor=ACTOR, incident_id=a, request="r1", stage="returned"))
    assert inventory(app)["gen-01"] == ("available", None, None)
    assert inventory(app)["gen-02"] == ("committed", b, "r1")

    # a unit back from request r1 cannot join r1 again: refused by the incident after the inventory
    # committed it, so the whole transaction is undone and the unit stays available
    assert refused(
        app, InvalidTransition, c.AllocateResource(actor=ACTOR, incident_id=a, request="r1", units=["gen-01"])
    ) == ("unit gen-01 is already allocated to request r1")
    assert inventory(app)["gen-01"] == ("available", None, None)

    handle(app, c.RequestResource(actor=ACTOR, incident_id=b, resource="generator", quantity=1, destination="万宁"))
    handle(app, c.AllocateResource(actor=ACTOR, incident_id=b, request="r2", units=["gen-01"]))
    assert inventory(app) == {
        "gen-01": ("committed", b, "r2"),
        "gen-02": ("committed", b, "r1"),
        "team-01": ("available", None, None),
    }
    # a fresh process sees the same commitments
    assert {u["id"]: u["status"] for u in _units(app)} == {
        "gen-01": "committed",
        "gen-02": "committed",
        "team-01": "available",
    }


def _units(app: App) -> list[dict[str, Any]]:
    return table_rows(app, resource_units)


# -- contacts -----------------------------------------------------------------------------------------------

CONTACTS_CSV = """\
id,name,phone,email,address,lang,groups
c-wang,王小明,13800138000,wang.xiaoming@example.cn,海口市龙华区滨海大道88号,zh-CN,provincial-cab;china-tower
c-li,Li Na,13900139000,,,en,provincial-cab
"""
PLAINTEXT = ("王小明", "13800138000", "wang.xiaoming@example.cn", "滨海大道", "Li Na", "13900139000")


def _raw_bytes(app: App, database_url: str) -> bytes:
    """What the database holds of the contacts: the SQLite file and its WAL, or PostgreSQL's rows as text."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    with app.db.connection() as conn:
        rows = conn.execute(text("SELECT c::text FROM contacts c UNION ALL SELECT g::text FROM contact_groups g"))
        return "\n".join(r[0] for r in rows).encode()


def test_contacts_are_sealed_masked_and_erased_with_their_person(app: App, database_url: str) -> None:
    with app.db.uow() as uow:
        assert import_csv(uow.conn, app.db.vault, CONTACTS_CSV, at=T0) == (2, 3)
        uow.commit()
    raw = _raw_bytes(app, database_url)
    assert b"c-wang" in raw  # the rows are there …
    for plain in PLAINTEXT:  # … but not what they say
        assert plain.encode() not in raw, plain

    with app.db.connection() as conn:
        masked = list_contacts(conn)
        opened = list_contacts(conn, app.db.vault)
        tower = [r["id"] for r in list_contacts(conn, group="china-tower")]
    assert masked == [
        {
            "id": "c-li",
            "lang": "en",
            "groups": ["provincial-cab"],
            "name": MASK,
            "phone": MASK,
            "email": None,
            "address": None,
        },
        {
            "id": "c-wang",
            "lang": "zh-CN",
            "groups": ["china-tower", "provincial-cab"],
            "name": MASK,
            "phone": MASK,
            "email": MASK,
            "address": MASK,
        },
    ]
    assert tower == ["c-wang"]
    assert opened[1]["name"] == "王小明"
    assert opened[1]["address"] == "海口市龙华区滨海大道88号"
    assert opened[0]["phone"] == "13900139000"

    app.personal.shred(ACTOR, "contact:c-wang", reason="left the company")
    with app.db.connection() as conn:
        after = {r["id"]: r for r in list_contacts(conn, app.db.vault)}
    assert [after["c-wang"][f] for f in ("name", "phone", "email", "address")] == [ERASED] * 4
    assert (after["c-li"]["name"], after["c-li"]["phone"]) == ("Li Na", "13900139000")
    with pytest.raises(InvalidInput, match="already erased"):
        app.personal.shred(ACTOR, "contact:c-wang", reason=None)
    with pytest.raises(NotFound):
        app.personal.shred(ACTOR, "contact:c-nobody", reason=None)
    with pytest.raises(NotPermitted):
        app.personal.shred(RESPONDER, "contact:c-li", reason=None)
    assert any(r["action"] == "personal.shred" for r in decrypt_audit(app))


def test_a_group_lists_its_contacts_in_escalation_order(app: App) -> None:
    """docs/emergency.md: a contact's position in a group (its order in the file) is its escalation order."""
    csv_text = "id,name,groups\nz-duty,Zhou,provincial-cab\na-deputy,An,provincial-cab\nm-chief,Ma,provincial-cab\n"
    with app.db.uow() as uow:
        import_csv(uow.conn, app.db.vault, csv_text, at=T0)
        uow.commit()
    with app.db.connection() as conn:
        assert [r["id"] for r in list_contacts(conn, group="provincial-cab")] == ["z-duty", "a-deputy", "m-chief"]


def test_a_bad_contacts_file_is_refused_whole(app: App) -> None:
    with app.db.uow() as uow:
        with pytest.raises(InvalidInput, match="unknown CSV columns: mobile"):
            import_csv(uow.conn, app.db.vault, "id,name,mobile\nx,y,z\n", at=T0)
        with pytest.raises(InvalidInput, match="line 3: id and name are required"):
            import_csv(uow.conn, app.db.vault, "id,name\na,A\n,B\n", at=T0)
    with app.db.connection() as conn:
        assert list_contacts(conn) == []


# -- links ---------------------------------------------------------------------------------------------------


def test_a_link_is_written_to_both_incidents_in_one_transaction(app: App, make_app: AppFactory) -> None:
    typhoon = open_incident(app, "typhoon-flood")
    power = open_incident(app, "power-grid-failure", level="III", title="文昌停电")
    other = open_incident(app, "typhoon-flood", title="another storm")
    handle(app, c.LinkIncidents(actor=ACTOR, incident_id=typhoon, child=power))
    parent_last, child_last = stream(app, typhoon)[-1], stream(app, power)[-1]
    assert isinstance(parent_last, IncidentLinked)
    assert (parent_last.other, parent_last.relation) == (power, "child")
    assert isinstance(child_last, IncidentLinked)
    assert (child_last.other, child_last.relation) == (typhoon, "parent")
    fresh = make_app()
    assert loaded(fresh, typhoon).emergency.children == [power]
    assert loaded(fresh, power).emergency.parent == typhoon
    links = [r for r in decrypt_audit(app) if r["action"] == "incident.link"]
    assert sorted(r["subject"] for r in links) == sorted([f"incident:{typhoon}", f"incident:{power}"])

    versions = {i: loaded(app, i).version for i in (typhoon, power, other)}
    assert refused(app, InvalidTransition, c.LinkIncidents(actor=ACTOR, incident_id=typhoon, child=power)) == (
        f"incident {power} is already a child of incident {typhoon}"
    )
    # the child refuses a second parent: the other storm records nothing either
    assert refused(app, InvalidTransition, c.LinkIncidents(actor=ACTOR, incident_id=other, child=power)) == (
        f"incident {power} already has a parent (incident {typhoon})"
    )
    assert refused(app, NotFound, c.LinkIncidents(actor=ACTOR, incident_id=typhoon, child=999)) == "no incident 999"
    assert refused(app, InvalidInput, c.LinkIncidents(actor=ACTOR, incident_id=typhoon, child=typhoon)) == (
        "an incident cannot be linked to itself"
    )
    assert refused(app, NotPermitted, c.LinkIncidents(actor=RESPONDER, incident_id=other, child=power)) == (
        "wang.wei may not incident link"
    )
    assert {i: loaded(make_app(), i).version for i in versions} == versions
    assert loaded(app, other).emergency.children == []

    handle(app, c.UnlinkIncidents(actor=ACTOR, incident_id=typhoon, child=power))
    assert isinstance(stream(app, typhoon)[-1], IncidentUnlinked)
    assert isinstance(stream(app, power)[-1], IncidentUnlinked)
    assert loaded(make_app(), power).emergency.parent is None


# -- a joined playbook -------------------------------------------------------------------------------------


def test_a_joined_playbook_survives_a_fresh_process_a_snapshot_and_a_rebuild(
    app: App, make_app: AppFactory, clock: SimulatedClock
) -> None:
    iid = open_incident(app, "dns-failure", title="DNS 解析失败")
    clock.advance(5 * M)
    handle(app, c.CompleteStep(actor=ACTOR, incident_id=iid, step_id="confirm"))
    handle(app, c.StartStep(actor=ACTOR, incident_id=iid, step_id="serve-stale"))
    before = {k: v for k, v in loaded(app, iid).statuses().items()}
    clock.advance(5 * M)
    out = handle(
        app,
        c.AddPlaybook(actor=ACTOR, incident_id=iid, playbook="ddos", reason="the outage is a DDoS on the resolvers"),
    )
    [added] = out.events
    assert isinstance(added, PlaybookAdded)
    assert added.playbook_id == "ddos"
    inc = loaded(app, iid)
    statuses = inc.statuses()
    assert {k: v for k, v in statuses.items() if k in before} == before  # nothing done is lost
    joined = {k for k in statuses if k.startswith("ddos.")}
    assert joined == {f"ddos.{s}" for s in app.library.get("ddos").steps}
    assert statuses["ddos.confirm"] is StepStatus.READY
    assert statuses["ddos.scrubbing"] is StepStatus.PENDING
    assert inc.playbook.steps["ddos.scrubbing"].depends_on == ("ddos.confirm",)
    assert refused(
        app, InvalidTransition, c.AddPlaybook(actor=ACTOR, incident_id=iid, playbook="ddos", reason="x")
    ) == (f"playbook ddos is already part of incident {iid}")
    assert refused(
        app, InvalidInput, c.AddPlaybook(actor=ACTOR, incident_id=iid, playbook="fibre-cut", reason=None)
    ) == ("adding a playbook needs a reason (--reason)")
    handle(app, c.CompleteStep(actor=ACTOR, incident_id=iid, step_id="ddos.confirm"))
    assert items(app, iid, "step:ddos.confirm", "step:ddos.scrubbing") == {
        "step:ddos.confirm": ("done", T0 + 15 * M, T0 + 10 * M),
        "step:ddos.scrubbing": ("ready", T0 + 30 * M, None),
    }

    # a fresh process: its own caches, the joined playbook's frozen text from the database
    fresh = make_app()
    assert to_snapshot(loaded(fresh, iid)) == to_snapshot(loaded(app, iid))
    assert loaded(fresh, iid).statuses()["ddos.scrubbing"] is StepStatus.READY

    # past a snapshot: pad with log entries
    for n in range(SNAPSHOT_EVERY + 10):
        handle(app, c.AddLogEntry(actor=ACTOR, incident_id=iid, category="observation", text=f"query rate sample {n}"))
    with app.db.connection() as conn:
        snap = conn.execute(
            select(incident_snapshots.c.version, incident_snapshots.c.state).where(
                incident_snapshots.c.incident_id == iid
            )
        ).one()
    assert snap[0] >= SNAPSHOT_EVERY
    assert [j[0] for j in json.loads(snap[1])["emergency"]["joined"]] == ["ddos"]
    handle(app, c.StartStep(actor=ACTOR, incident_id=iid, step_id="ddos.scrubbing"))
    handle(app, c.CompleteStep(actor=ACTOR, incident_id=iid, step_id="ddos.upstream-help"))
    warm = to_snapshot(loaded(app, iid))
    cold = make_app()
    assert to_snapshot(loaded(cold, iid)) == warm  # from the snapshot, merged again, then the events after it
    with cold.db.read() as repo:
        primary = repo.playbooks.get(repo.conn, repo.get(iid).playbook.content_hash)
        events = [s.event for s in repo.events(iid)]
        assert to_snapshot(fold(iid, primary, events, repo.resolver())) == warm  # and from no snapshot at all
    assert loaded(cold, iid).emergency.log[-1].text == f"query rate sample {SNAPSHOT_EVERY + 9}"

    projected = [r for r in table_rows(app, work_items) if r["incident_id"] == iid]
    assert rebuild(cold.db) == (1, warm["version"])
    assert to_snapshot(loaded(make_app(), iid)) == warm
    rebuilt = [r for r in table_rows(cold, work_items) if r["incident_id"] == iid]
    assert {r["ref"] for r in projected} - {r["ref"] for r in rebuilt} == set()  # nothing lost by a rebuild
    assert rebuilt == projected


# -- responders and the roles they hold -------------------------------------------------------------------


def test_a_responder_acts_only_on_steps_of_roles_they_are_on_duty_for(app: App, clock: SimulatedClock) -> None:
    iid = open_incident(app, "ddos")
    assert refused(app, NotPermitted, c.StartStep(actor=RESPONDER, incident_id=iid, step_id="confirm")) == (
        f"wang.wei is not on duty as 'soc' in incident {iid} (ir assign assigns roles)"
    )
    assert refused(app, NotPermitted, c.AssignRole(actor=RESPONDER, incident_id=iid, role="soc", user="wang.wei")) == (
        "wang.wei may not people assign"
    )
    # a shift that starts in an hour does not let them act yet
    handle(
        app,
        c.AssignRole(
            actor=ACTOR, incident_id=iid, role="soc", user="wang.wei", shift_start=T0 + H, shift_end=T0 + 13 * H
        ),
    )
    refused(app, NotPermitted, c.StartStep(actor=RESPONDER, incident_id=iid, step_id="confirm"))
    clock.advance(H)
    handle(app, c.StartStep(actor=RESPONDER, incident_id=iid, step_id="confirm"))
    handle(app, c.CompleteStep(actor=RESPONDER, incident_id=iid, step_id="confirm", note="flood confirmed"))
    assert loaded(app, iid).steps["confirm"].assignee == "wang.wei"
    # a step of another role stays closed to them
    assert refused(app, NotPermitted, c.StartStep(actor=RESPONDER, incident_id=iid, step_id="upstream-help")) == (
        f"wang.wei is not on duty as 'noc' in incident {iid} (ir assign assigns roles)"
    )
    clock.advance(12 * H)  # the shift ended
    refused(app, NotPermitted, c.StartStep(actor=RESPONDER, incident_id=iid, step_id="scrubbing"))
    handle(app, c.AssignRole(actor=ACTOR, incident_id=iid, role="soc", user="wang.wei"))
    handle(app, c.StartStep(actor=RESPONDER, incident_id=iid, step_id="scrubbing"))
    handle(app, c.UnassignRole(actor=ACTOR, incident_id=iid, role="soc", user="wang.wei", reason="off shift"))
    refused(app, NotPermitted, c.CompleteStep(actor=RESPONDER, incident_id=iid, step_id="scrubbing"))
    # what the responder may do without a step: log what they see
    handle(app, c.AddLogEntry(actor=RESPONDER, incident_id=iid, category="observation", text="traffic falling"))


# -- projections: situation reports and resources ------------------------------------------------------------


def test_sitrep_and_resource_rows_follow_each_act_and_equal_a_rebuild(
    app: App, make_app: AppFactory, clock: SimulatedClock
) -> None:
    register(app, ("gen-01", "generator", 50), ("gen-02", "generator", 50), ("team-01", "repair_team", 5))
    iid = open_incident(app, "typhoon-flood")  # level II: a situation report every 4h
    assert items(app, iid, "sitrep") == {"sitrep": ("open", T0 + 4 * H, None)}

    def mine() -> list[dict[str, Any]]:
        # the rows this test is about (every row is compared to a rebuild in the joined-playbook test)
        return [
            r
            for r in table_rows(app, work_items)
            if r["incident_id"] == iid and r["ref"].startswith(("sitrep", "resource:", "step:", "notification:"))
        ]

    def check() -> None:
        current = mine()
        rebuild(make_app().db)
        assert mine() == current

    handle(
        app,
        c.RequestResource(
            actor=ACTOR,
            incident_id=iid,
            resource="generator",
            quantity=100,
            destination="文昌",
            needed_by=T0 + 6 * H,
            step_id="generator-dispatch",
        ),
    )
    handle(
        app,
        c.RequestResource(
            actor=ACTOR, incident_id=iid, resource="repair_team", quantity=5, destination="琼海", needed_by=T0 + 2 * H
        ),
    )
    assert items(app, iid, "resource:r1", "resource:r2") == {
        "resource:r1": ("open", T0 + 6 * H, None),
        "resource:r2": ("open", T0 + 2 * H, None),
    }
    check()
    handle(app, c.AllocateResource(actor=ACTOR, incident_id=iid, request="r1"))
    clock.advance(30 * M)
    handle(app, c.MoveResource(actor=ACTOR, incident_id=iid, request="r1", stage="dispatched"))
    clock.advance(2 * H)
    handle(app, c.MoveResource(actor=ACTOR, incident_id=iid, request="r1", stage="arrived", units=["gen-01"]))
    assert items(app, iid, "resource:r1") == {"resource:r1": ("open", T0 + 6 * H, None)}  # 50 of 100
    handle(app, c.MoveResource(actor=ACTOR, incident_id=iid, request="r1", stage="arrived", units=["gen-02"]))
    assert items(app, iid, "resource:r1") == {"resource:r1": ("done", T0 + 6 * H, T0 + 150 * M)}
    check()

    handle(app, c.DraftSitrep(actor=ACTOR, incident_id=iid))
    assert items(app, iid, "sitrep") == {"sitrep": ("open", T0 + 4 * H, None)}
    handle(
        app,
        c.EditSitrep(
            actor=ACTOR, incident_id=iid, number=1, text_zh="第1期：油机已到位。", text_en="1: generators on site."
        ),
    )
    clock.advance(30 * M)
    handle(app, c.ReleaseSitrep(actor=ACTOR, incident_id=iid, number=1))
    assert items(app, iid, "sitrep") == {"sitrep": ("open", T0 + 3 * H + 4 * H, None)}
    check()

    handle(
        app,
        c.CancelResourceRequest(actor=ACTOR, incident_id=iid, request="r2", reason="teams came from the next county"),
    )
    assert items(app, iid, "resource:r2") == {}  # no longer due
    check()

    clock.advance(H)
    handle(app, c.EndResponse(actor=ACTOR, incident_id=iid, reason="restored"))
    # report 1 (released at T0 + 3h) answered the first due time (T0 + 4h); none is due after the end
    assert items(app, iid, "sitrep") == {"sitrep": ("done", T0 + 4 * H, T0 + 3 * H)}
    check()
    report = loaded(make_app(), iid).emergency.sitreps[0]
    assert report.text == {"zh-CN": "第1期：油机已到位。", "en": "1: generators on site."}
    assert report.facts["resources_in_field"] == {"generator": {"dispatched": 0, "arrived": 100}}


def test_a_step_request_takes_the_steps_quantity_and_needed_by(app: App) -> None:
    """typhoon-flood's prep-48h requests 200 generators needed by expected_impact - 48h."""
    landfall = T0 + 72 * H
    iid = int(
        handle(
            app,
            c.OpenIncident(
                actor=ACTOR, playbook="typhoon-flood", title="摩羯", warning="orange", expected_impact=landfall
            ),
        ).incident_id
    )
    [requested] = handle(
        app,
        c.RequestResource(actor=ACTOR, incident_id=iid, resource="generator", destination="文昌", step_id="prep-48h"),
    ).events
    assert requested.quantity == 200
    assert requested.needed_by == landfall - 48 * H


def test_refused_commands_write_nothing(app: App) -> None:
    iid = open_incident(app, "typhoon-flood")
    with app.db.connection() as conn:
        before = len(conn.execute(select(incident_events.c.seq).where(incident_events.c.incident_id == iid)).all())
    for kind, command in (
        (NotFound, c.RequestResource(actor=ACTOR, incident_id=iid, resource="generater", quantity=1, destination="x")),
        (InvalidInput, c.RequestResource(actor=ACTOR, incident_id=iid, resource="generator", destination="x")),
        (NotFound, c.SetImpact(actor=ACTOR, incident_id=iid, services=["mobile-voic"])),
        (InvalidInput, c.IssueWarning(actor=ACTOR, incident_id=iid, level="purple")),
        (NotFound, c.ReleaseSitrep(actor=ACTOR, incident_id=iid, number=1)),
        (InvalidTransition, c.ReopenIncident(actor=ACTOR, incident_id=iid, reason="x")),
        (NotPermitted, c.DraftSitrep(actor=RESPONDER, incident_id=iid)),
    ):
        refused(app, kind, command)
    with app.db.connection() as conn:
        after = len(conn.execute(select(incident_events.c.seq).where(incident_events.c.incident_id == iid)).all())
    assert after == before
    handle(app, c.SetImpact(actor=ACTOR, incident_id=iid, services=["mobile-voice", "sms"], areas=["文昌"]))
    assert loaded(app, iid).emergency.services == ["mobile-voice", "sms"]
