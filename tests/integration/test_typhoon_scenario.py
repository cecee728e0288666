"""A typhoon end to end on simulated time, against the shipped playbooks/disaster/typhoon-flood.yaml, on
SQLite and PostgreSQL, through the handlers as the command line, the API and the console drive them.

Landfall (L) is 72 hours after the incident opens in an orange warning. Preparation is done in time and
raised to red; generators and repair teams are registered, requested, allocated, dispatched and arrive;
at landfall level II is declared; a power failure and a fibre cut are opened as linked children; command
is handed over at a shift change; situation reports are released every 4 hours; the timer service
finds the damage assessment overdue and escalates it to the leading group; service comes back
(degraded, then full), resources return, the response ends and the incident is closed with a reason.
Every deadline of the incident is compared with a table at several instants; the audit log verifies.

Deadline tables are compared in full and their differences reported together at the end, so one wrong
row does not hide the rest of the scenario. Regulatory-regime obligations (`regime:*` rows) are
covered by their own tests and left out of these tables.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from ir.adapters.audit.checkpoint import Verifier
from ir.adapters.audit.verify import verify
from ir.adapters.clock import SimulatedClock
from ir.adapters.db.timers import SqlTimerStore
from ir.app.timers import TimerService
from ir.app.views import board
from ir.bootstrap import App
from ir.domain import commands as c
from ir.domain.clocks import ClockName
from ir.domain.deadlines import deadlines, due_list
from ir.domain.errors import InvalidInput, InvalidTransition, NotPermitted
from ir.domain.events import CommandHandedOver
from ir.domain.incident import Incident, StepStatus
from tests.conftest import ACTOR, T0

H = timedelta(hours=1)
M = timedelta(minutes=1)
L = T0 + 72 * H  # landfall
DEPUTY = c.Actor(id="local:deputy")  # a second administrator (a step needing two approvals)
CHEN = c.Actor(id="chen.jie", roles=frozenset({"responder"}))  # power
WANG = c.Actor(id="wang.wei", roles=frozenset({"responder"}))  # field repair, day shift
LI = c.Actor(id="li.na", roles=frozenset({"responder"}))  # field repair, night shift

UPCOMING, DUE_SOON, OVERDUE, MET, MISSED, WAITING = "upcoming", "due_soon", "overdue", "met", "missed", "waiting"
Row = tuple[timedelta | None, str]  # (due instant - landfall, state)

PREPARATION = {
    "prep-72h": -72 * H,
    "prep-48h": -48 * H,
    "harden-sites": -24 * H,
    "warning-sms": -24 * H,
    "stage-teams": -24 * H,
    "final-readiness": -6 * H,
}


class Scenario:
    def __init__(self, app: App, clock: SimulatedClock) -> None:
        self.app = app
        self.clock = clock
        self.iid = 0
        self.problems: list[str] = []

    # -- acting ------------------------------------------------------------------------------------------

    def at(self, offset: timedelta) -> datetime:
        """Move the simulated clock to landfall + offset."""
        self.clock.set(L + offset)
        return self.clock.now()

    def do(self, command: c.Command) -> Any:
        return self.app.handlers.handle(command)

    def refused(self, kind: type[Exception], command: c.Command) -> str:
        version = self.incident().version
        with pytest.raises(kind) as caught:
            self.do(command)
        assert type(caught.value) is kind
        assert self.incident().version == version
        return str(caught.value)

    def step(self, step_id: str, *, actor: c.Actor = ACTOR, note: str | None = None) -> None:
        self.do(c.CompleteStep(actor=actor, incident_id=self.iid, step_id=step_id, note=note))

    def notified(self, notification_id: str) -> None:
        self.do(c.MarkNotificationSent(actor=ACTOR, incident_id=self.iid, notification_id=notification_id))

    def move(self, request: str, stage: str, *units: str) -> None:
        self.do(c.MoveResource(actor=ACTOR, incident_id=self.iid, request=request, stage=stage, units=list(units)))

    def sitrep(self, number: int) -> None:
        """Draft, edit and release situation report `number` now."""
        self.do(c.DraftSitrep(actor=ACTOR, incident_id=self.iid))
        draft = self.incident().emergency.sitreps[number - 1]
        assert f"situation report {number}" in draft.text["en"]
        assert f"第{number}期态势报告" in draft.text["zh-CN"]
        self.do(
            c.EditSitrep(
                actor=ACTOR,
                incident_id=self.iid,
                number=number,
                text_zh=draft.text["zh-CN"] + "\n指挥部意见：继续抢修。",
                text_en=draft.text["en"] + "\nCommand: repairs continue.",
            )
        )
        self.do(c.ReleaseSitrep(actor=ACTOR, incident_id=self.iid, number=number))

    # -- looking -----------------------------------------------------------------------------------------

    def incident(self, incident_id: int | None = None) -> Incident:
        with self.app.db.read() as repo:
            return repo.get(incident_id or self.iid)

    def board(self) -> dict[str, Any]:
        inc = self.incident()
        return board(inc, self.clock.now(), lang="en", calendar_for=self.app.handlers.calendar_for)

    def table(self) -> dict[str, Row]:
        inc = self.incident()
        items = due_list(inc, self.clock.now(), calendar_for=self.app.handlers.calendar_for)
        return {
            i.deadline.ref: (i.deadline.due_at - L if i.deadline.due_at else None, i.state.value)
            for i in items
            if not i.deadline.ref.startswith("regime:")
        }

    def state(self, ref: str) -> str:
        return self.table()[ref][1]

    def expect(self, label: str, expected: dict[str, Row]) -> None:
        """Record every difference between the incident's deadlines now and the expected table."""
        found = self.table()
        for ref in sorted(expected.keys() | found.keys()):
            want, got = expected.get(ref), found.get(ref)
            if want != got:
                self.problems.append(f"{label}: {ref}: expected {want}, found {got}")

    def check(self, label: str, ok: bool, detail: str) -> None:
        if not ok:
            self.problems.append(f"{label}: {detail}")


def register(app: App, kind: str, capacity: int, *unit_ids: str) -> None:
    with app.db.uow() as uow:
        for unit_id in unit_ids:
            uow.inventory.register(
                unit_id=unit_id, kind=kind, name=f"{kind} {unit_id}", base="海口仓库", capacity=capacity
            )
        uow.commit()


def test_a_typhoon_from_the_warning_to_closure(app: App, clock: SimulatedClock) -> None:
    s = Scenario(app, clock)

    # -- L-72h: an orange warning ---------------------------------------------------------------------
    opened = s.do(
        c.OpenIncident(
            actor=ACTOR, playbook="typhoon-flood", title="台风摩羯 Typhoon Yagi", warning="orange", expected_impact=L
        )
    )
    s.iid = iid = opened.incident_id
    assert [e.kind for e in opened.events] == ["incident_opened", "warning_issued", "clock_recorded"]
    inc = s.incident()
    assert inc.warning is not None and inc.warning.value == "orange"
    assert inc.level is None
    assert inc.clock(ClockName.EXPECTED_IMPACT) == L
    assert inc.clock(ClockName.DETECTION) == L - 72 * H

    # the preparation steps are due exactly landfall - 72h / 48h / 24h / 6h, on the board too
    due = {d.ref: d.due_at for d in deadlines(inc, calendar_for=app.handlers.calendar_for)}
    assert {sid: due[f"step:{sid}"] for sid in PREPARATION} == {sid: L + off for sid, off in PREPARATION.items()}
    shown = {st["id"]: st for st in s.board()["steps"]}
    assert {sid: shown[sid]["due_at"] for sid in PREPARATION} == {
        sid: (L + off).isoformat() for sid, off in PREPARATION.items()
    }
    assert {sid: shown[sid]["status"] for sid in PREPARATION} == {
        "prep-72h": "ready",
        "prep-48h": "pending",
        "harden-sites": "pending",
        "warning-sms": "pending",
        "stage-teams": "pending",
        "final-readiness": "pending",
    }
    assert shown["assess-impact"]["status"] == "not_applicable"  # response steps wait for a level
    assert s.board()["warning"] == "orange"

    warning_phase: dict[str, Row] = {
        "step:prep-72h": (-72 * H, DUE_SOON),
        "step:prep-48h": (-48 * H, UPCOMING),
        "step:harden-sites": (-24 * H, UPCOMING),
        "step:warning-sms": (-24 * H, UPCOMING),
        "step:stage-teams": (-24 * H, UPCOMING),
        "step:final-readiness": (-6 * H, UPCOMING),
        "notification:warning-callout": (-72 * H + 30 * M, UPCOMING),  # orange: detection + 30m
        "notification:warning-partners": (-70 * H, UPCOMING),
        "notification:regulator-warning": (-70 * H, UPCOMING),
        "notification:public-warning": (-24 * H, UPCOMING),
    }
    s.expect("L-72h", warning_phase)

    # people on duty, with shifts
    for role, user, start, end in (
        ("power", "chen.jie", None, None),
        ("field_repair", "wang.wei", L - 72 * H, L + 2 * H),
        ("field_repair", "li.na", L + 2 * H, L + 14 * H),
        ("field_repair", "wang.wei", L + 14 * H, L + 26 * H),
        ("noc", "zhao.lei", None, None),
    ):
        s.do(c.AssignRole(actor=ACTOR, incident_id=iid, role=role, user=user, shift_start=start, shift_end=end))

    s.step("prep-72h", note="24-hour duty started; at-risk site list exported")
    assert s.state("step:prep-72h") == MET
    s.at(-72 * H + 10 * M)
    s.notified("warning-callout")

    # -- L-71h: raised to red --------------------------------------------------------------------------
    s.at(-71 * H)
    assert s.refused(InvalidInput, c.IssueWarning(actor=ACTOR, incident_id=iid, level="red")) == (
        "raising the warning (orange -> red) needs --reason"
    )
    s.do(c.IssueWarning(actor=ACTOR, incident_id=iid, level="red", reason="the meteorological bureau issued red"))
    assert s.board()["warning"] == "red"
    s.notified("warning-partners")
    s.notified("regulator-warning")
    s.expect(
        "L-71h",
        {
            **warning_phase,
            "step:prep-72h": (-72 * H, MET),
            "notification:warning-callout": (-72 * H + 15 * M, MET),  # red: detection + 15m
            "notification:warning-partners": (-70 * H, MET),
            "notification:regulator-warning": (-70 * H, MET),
        },
    )

    # -- L-60h: generators and teams ------------------------------------------------------------------
    s.at(-60 * H)
    register(app, "generator", 50, "gen-01", "gen-02", "gen-03", "gen-04")
    register(app, "repair_team", 5, "team-01", "team-02", "team-03", "team-04")
    gens = s.do(
        c.RequestResource(
            actor=ACTOR,
            incident_id=iid,
            resource="generator",
            destination="文昌县城集结点",
            needed_by=L - 48 * H,
            step_id="prep-48h",
        )
    )
    assert gens.events[0].request == "r1"
    assert gens.events[0].quantity == 200  # what prep-48h requests
    allocated = s.do(c.AllocateResource(actor=ACTOR, incident_id=iid, request="r1"))
    assert allocated.events[0].units == {"gen-01": 50, "gen-02": 50, "gen-03": 50, "gen-04": 50}
    s.move("r1", "dispatched")
    teams = s.do(
        c.RequestResource(
            actor=ACTOR,
            incident_id=iid,
            resource="repair_team",
            destination="文昌、琼海",
            needed_by=L - 24 * H,
            step_id="stage-teams",
        )
    )
    assert teams.events[0].quantity == 20
    s.do(
        c.AllocateResource(
            actor=ACTOR, incident_id=iid, request="r2", units=["team-01", "team-02", "team-03", "team-04"]
        )
    )
    assert s.state("resource:r1") == UPCOMING
    assert [(r["request"], r["allocated"], r["shortfall"]) for r in s.board()["resources"]] == [
        ("r1", 200, 0),
        ("r2", 20, 0),
    ]

    s.at(-50 * H)
    s.move("r1", "arrived")
    assert s.state("resource:r1") == MET
    s.at(-49 * H)
    s.step("prep-48h", actor=CHEN, note="fixed generators filled and test-run")  # on duty as power
    assert s.state("step:prep-48h") == MET
    s.move("r2", "dispatched")
    s.at(-40 * H)
    s.step("harden-sites", actor=WANG)
    assert s.state("step:harden-sites") == MET
    s.at(-32 * H)
    s.move("r2", "arrived")
    assert s.state("resource:r2") == MET

    s.at(-30 * H)
    assert s.refused(InvalidTransition, c.CompleteStep(actor=ACTOR, incident_id=iid, step_id="warning-sms")) == (
        "step 'warning-sms' waits for approval by commander"
    )
    s.do(c.ApproveStep(actor=ACTOR, incident_id=iid, step_id="warning-sms"))
    s.do(
        c.AttachEvidence(
            actor=ACTOR,
            incident_id=iid,
            step_id="warning-sms",
            filename="sms-batches.csv",
            content=b"batch,area,delivered\n1,wenchang,412733\n2,qionghai,389120\n",
            media_type="text/csv",
        )
    )
    s.step("warning-sms")
    assert s.state("step:warning-sms") == MET
    s.notified("public-warning")
    s.at(-26 * H)
    s.step("stage-teams")
    assert s.state("step:stage-teams") == MET

    s.at(-24 * H)
    prepared: dict[str, Row] = {
        **{f"step:{sid}": (off, MET) for sid, off in PREPARATION.items()},
        "step:final-readiness": (-6 * H, UPCOMING),
        "notification:warning-callout": (-72 * H + 15 * M, MET),
        "notification:warning-partners": (-70 * H, MET),
        "notification:regulator-warning": (-70 * H, MET),
        "notification:public-warning": (-24 * H, MET),
        "resource:r1": (-48 * H, MET),
        "resource:r2": (-24 * H, MET),
    }
    s.expect("L-24h", prepared)
    s.at(-8 * H)
    s.step("final-readiness", note="change freeze issued; every point answered the roll call")
    assert s.state("step:final-readiness") == MET
    prepared["step:final-readiness"] = (-6 * H, MET)

    # -- L: landfall, level II ---------------------------------------------------------------------------
    s.at(timedelta(0))
    s.do(c.DeclareLevel(actor=ACTOR, incident_id=iid, level="II"))
    inc = s.incident()
    assert inc.clock(ClockName.DECLARATION) == L
    assert inc.warning is not None and inc.warning.value == "red"
    statuses = inc.statuses()
    assert all(statuses[sid] is StepStatus.DONE for sid in PREPARATION)  # the warning phase's work stays
    assert statuses["assess-impact"] is StepStatus.READY

    power = s.do(c.OpenIncident(actor=ACTOR, playbook="power-grid-failure", title="文昌市电中断", level="III"))
    fibre = s.do(c.OpenIncident(actor=ACTOR, playbook="fibre-cut", title="海文大桥光缆中断", level="IV"))
    for child in (power.incident_id, fibre.incident_id):
        s.do(c.LinkIncidents(actor=ACTOR, incident_id=iid, child=child))
        assert s.incident(child).emergency.parent == iid
    assert s.incident().emergency.children == [power.incident_id, fibre.incident_id]
    s.do(
        c.SetImpact(
            actor=ACTOR,
            incident_id=iid,
            services=["mobile-voice", "mobile-data", "fixed-broadband"],
            areas=["文昌", "琼海"],
        )
    )

    response: dict[str, Row] = {
        **prepared,
        "notification:internal-callout": (5 * M, DUE_SOON),
        "notification:regulator-initial": (30 * M, UPCOMING),
        "notification:government-hq": (H, UPCOMING),
        "notification:customer-impact": (2 * H, UPCOMING),
        "notification:regulator-written": (4 * H, UPCOMING),
        "step:assess-impact": (H, UPCOMING),
        "step:priority-links": (4 * H, UPCOMING),
        "step:generator-dispatch": (6 * H, UPCOMING),
        "step:uav-coverage": (12 * H, UPCOMING),  # its condition (counties_cut_off >= 1) is not known yet
        "step:cross-province-support": (12 * H, UPCOMING),
        "step:customer-care": (12 * H, UPCOMING),
        "step:close-out": (None, WAITING),  # response_end + 30d
        "sitrep": (4 * H, UPCOMING),  # level II: every 4h
        "rto": (12 * H, UPCOMING),  # level II: 12h, from landfall
        "mtpd": (48 * H, UPCOMING),
    }
    s.expect("L", response)

    s.at(3 * M)
    s.notified("internal-callout")
    s.at(20 * M)
    s.notified("regulator-initial")
    s.at(50 * M)
    s.notified("government-hq")  # repeats every 4h

    # -- L+1h30m: the damage assessment is overdue; a shift change ---------------------------------------
    now = s.at(90 * M)
    marks, _wake = TimerService(SqlTimerStore(app.db)).tick(now)
    mine = {(m.ref, m.mark, m.due_at - L, m.target) for m in marks if m.incident_id == iid}
    assert ("step:assess-impact", "overdue", H, None) in mine
    assert ("step:assess-impact", "escalated", H, "leading_group") in mine  # level II escalates to it
    s.check(
        "timer at L+1h30m",
        {m for m in mine if not m[0].startswith("regime:")}
        == {("step:assess-impact", "overdue", H, None), ("step:assess-impact", "escalated", H, "leading_group")},
        f"marks {sorted(mine, key=str)}",
    )
    again, _ = TimerService(SqlTimerStore(app.db)).tick(now)
    assert [m for m in again if m.incident_id == iid and m.ref == "step:assess-impact"] == []  # recorded once

    on_duty = s.board()["on_duty"]
    assert on_duty["field_repair"] == ["wang.wei"]
    assert on_duty["power"] == ["chen.jie"]
    handed = s.do(c.HandOver(actor=ACTOR, incident_id=iid, to="zhou.min", note="夜班：文昌3个站点燃油偏低"))
    [event] = handed.events
    assert isinstance(event, CommandHandedOver)
    assert (event.previous, event.to) == (ACTOR.id, "zhou.min")
    seen = event.situation
    assert (seen["level"], seen["warning"], seen["commander"]) == ("II", "red", ACTOR.id)
    assert seen["services"] == ["fixed-broadband", "mobile-data", "mobile-voice"]
    assert seen["children"] == [power.incident_id, fibre.incident_id]
    assert seen["resources_in_field"] == {
        "generator": {"dispatched": 0, "arrived": 200},
        "repair_team": {"dispatched": 0, "arrived": 20},
    }
    assert "step:assess-impact" in [o["ref"] for o in seen["overdue"]]
    overdue = [o["ref"] for o in seen["overdue"] if not o["ref"].startswith("regime:")]
    s.check("handover", overdue == ["step:assess-impact"], f"overdue {overdue}")
    s.check("handover", seen["rto_breached"] is False, f"rto_breached {seen['rto_breached']}")
    assert s.incident().emergency.commander == "zhou.min"
    assert s.board()["handovers"][0]["to"] == "zhou.min"
    s.expect(
        "L+1h30m",
        {
            **response,
            "notification:internal-callout": (5 * M, MET),
            "notification:regulator-initial": (30 * M, MET),
            "notification:government-hq": (50 * M + 4 * H, UPCOMING),  # the next update
            "step:assess-impact": (H, OVERDUE),
        },
    )

    s.at(100 * M)
    s.do(
        c.SetFacts(
            actor=ACTOR,
            incident_id=iid,
            facts={"counties_cut_off": 1, "cities_affected": 2, "affected_users": 150_000, "base_stations_down": 320},
        )
    )
    s.step("assess-impact")
    assert s.state("step:assess-impact") == MISSED
    s.at(110 * M)
    s.notified("customer-impact")  # repeats every 12h

    # -- generators for the response -----------------------------------------------------------------------
    s.at(2 * H)
    register(app, "generator", 50, "gen-05", "gen-06")
    s.do(
        c.RequestResource(
            actor=ACTOR,
            incident_id=iid,
            resource="generator",
            destination="琼海",
            needed_by=L + 6 * H,
            step_id="generator-dispatch",
        )
    )
    assert s.incident().emergency.requests["r3"].quantity == 100
    allocated = s.do(c.AllocateResource(actor=ACTOR, incident_id=iid, request="r3"))
    assert allocated.events[0].units == {"gen-05": 50, "gen-06": 50}  # gen-01..04 are committed to r1
    s.move("r3", "dispatched")
    assert s.board()["on_duty"]["field_repair"] == ["li.na"]

    s.at(3 * H)
    assert s.refused(NotPermitted, c.CompleteStep(actor=WANG, incident_id=iid, step_id="priority-links")) == (
        f"wang.wei is not on duty as 'field_repair' in incident {iid} (ir assign assigns roles)"
    )
    s.step("priority-links", actor=LI)
    assert s.state("step:priority-links") == MET

    # situation reports every 4h at level II: each next one 4h after the last released
    s.at(3 * H + 30 * M)
    s.sitrep(1)
    assert s.table()["sitrep"] == (3 * H + 30 * M + 4 * H, UPCOMING)
    s.at(3 * H + 50 * M)
    s.notified("regulator-written")  # repeats every 2h
    s.at(4 * H + 40 * M)
    s.notified("government-hq")
    s.at(5 * H)
    s.move("r3", "arrived")
    assert s.state("resource:r3") == MET
    s.at(5 * H + 30 * M)
    s.step("generator-dispatch", actor=CHEN)
    assert s.state("step:generator-dispatch") == MET
    s.at(5 * H + 40 * M)
    s.notified("regulator-written")
    s.at(7 * H)
    s.sitrep(2)
    assert s.table()["sitrep"] == (11 * H, UPCOMING)
    s.at(7 * H + 50 * M)
    s.step("restore-basic", actor=LI, note="basic voice and SMS in every county town")
    assert s.incident().clock(ClockName.RESTORATION_DEGRADED) == L + 7 * H + 50 * M

    s.at(8 * H)
    restored: dict[str, Row] = {
        **response,
        "notification:internal-callout": (5 * M, MET),
        "notification:regulator-initial": (30 * M, MET),
        "notification:government-hq": (4 * H + 40 * M + 4 * H, UPCOMING),
        "notification:customer-impact": (110 * M + 12 * H, UPCOMING),
        "notification:regulator-written": (5 * H + 40 * M + 2 * H, OVERDUE),  # an update is 20 minutes late
        "step:assess-impact": (H, MISSED),
        "step:priority-links": (4 * H, MET),
        "step:generator-dispatch": (6 * H, MET),
        "resource:r3": (6 * H, MET),
        "sitrep": (11 * H, UPCOMING),
        "rto": (12 * H, MET),  # restored (degraded) within the RTO
        "mtpd": (48 * H, MET),
    }
    s.expect("L+8h", restored)

    # -- the rest of the response ------------------------------------------------------------------------------
    s.at(9 * H)
    s.do(c.ApproveStep(actor=ACTOR, incident_id=iid, step_id="cross-province-support", role="leading_group"))
    s.step("cross-province-support")
    s.at(10 * H)
    s.do(c.ApproveStep(actor=ACTOR, incident_id=iid, step_id="customer-care", role="commander"))
    assert s.refused(
        InvalidTransition, c.ApproveStep(actor=ACTOR, incident_id=iid, step_id="customer-care", role="communications")
    ) == (f"{ACTOR.id} has already approved step 'customer-care': another person must give the next approval")
    s.do(c.ApproveStep(actor=DEPUTY, incident_id=iid, step_id="customer-care", role="communications"))
    s.step("customer-care")
    s.at(11 * H)
    s.do(c.ApproveStep(actor=ACTOR, incident_id=iid, step_id="uav-coverage"))
    s.step("uav-coverage", note="2 UAVs over Longlou and Dongjiao townships")
    s.sitrep(3)
    assert s.table()["sitrep"] == (15 * H, UPCOMING)
    s.at(13 * H)
    s.notified("customer-impact")
    s.at(15 * H)
    s.sitrep(4)
    s.at(19 * H)
    s.sitrep(5)
    assert s.table()["sitrep"] == (23 * H, UPCOMING)

    s.at(20 * H)
    s.do(c.ApproveStep(actor=ACTOR, incident_id=iid, step_id="restore-full"))
    s.do(
        c.AttachEvidence(
            actor=ACTOR,
            incident_id=iid,
            step_id="restore-full",
            filename="kpi-comparison.pdf",
            content=b"%PDF-1.4 site restoration list and KPIs before/after\n",
            media_type="application/pdf",
        )
    )
    s.step("restore-full", actor=WANG)  # back on the day shift
    assert s.incident().clock(ClockName.RESTORATION_FULL) == L + 20 * H
    s.at(20 * H + 10 * M)
    for final in ("regulator-written", "government-hq", "customer-impact"):  # the last updates, after restoration
        s.notified(final)

    s.at(21 * H)
    for request in ("r1", "r2", "r3"):
        s.move(request, "returned")
    with app.db.uow() as uow:
        assert {u["id"]: u["status"] for u in uow.inventory.units()} == dict.fromkeys(
            ["gen-01", "gen-02", "gen-03", "gen-04", "gen-05", "gen-06", "team-01", "team-02", "team-03", "team-04"],
            "available",
        )
    assert all(not r["shortfall"] and set(r["units"].values()) == {"returned"} for r in s.board()["resources"])

    s.at(22 * H)
    s.do(c.ApproveStep(actor=ACTOR, incident_id=iid, step_id="stand-down"))
    s.step("stand-down")
    s.at(23 * H)
    s.sitrep(6)

    # -- L+24h: the response ends; L+25h: closure ---------------------------------------------------------------
    s.at(24 * H)
    s.do(c.EndResponse(actor=ACTOR, incident_id=iid, reason="all sites restored; the leading group ends the response"))
    ended: dict[str, Row] = {
        **restored,
        "notification:government-hq": (4 * H + 40 * M + 4 * H, MISSED),  # no update between L+4h40m and L+20h10m
        "notification:customer-impact": (13 * H + 12 * H, MET),  # the final update answers the one at L+13h
        "notification:regulator-written": (5 * H + 40 * M + 2 * H, MISSED),
        "step:uav-coverage": (12 * H, MET),
        "step:cross-province-support": (12 * H, MET),
        "step:customer-care": (12 * H, MET),
        "step:close-out": (24 * H + 30 * 24 * H, UPCOMING),  # the review, within 30 days of the end
        "sitrep": (23 * H, MET),  # report 6 answered the last due time; none is due after the end
    }
    s.expect("L+24h", ended)
    assert s.incident().clock(ClockName.RESPONSE_END) == L + 24 * H

    s.at(25 * H)
    assert s.refused(InvalidTransition, c.CloseIncident(actor=ACTOR, incident_id=iid)) == (
        f"incident {iid} has open steps ('close-out'): finish or skip them, or close with --reason"
    )
    s.do(c.CloseIncident(actor=ACTOR, incident_id=iid, reason="the review is written after closure (30 days)"))
    assert s.incident().closed
    assert s.incident().clock(ClockName.CLOSURE) == L + 25 * H
    s.expect("closed", ended)
    late, _ = TimerService(SqlTimerStore(app.db)).tick(L + 40 * 24 * H)
    assert [m for m in late if m.incident_id == iid] == []  # a closed incident raises nothing

    # -- the audit log verifies, every event against its record -------------------------------------------------
    app.audit.flush()
    with app.db.connection() as conn:
        report = verify(conn, log_id=app.settings.audit_log_id, verifiers=[Verifier(app.verifier_key)], events=True)
    assert report.ok, report.errors
    events = sum(s.incident(i).version for i in (iid, power.incident_id, fibre.incident_id))
    assert report.events_checked == events

    assert not s.problems, "\n".join(s.problems)
