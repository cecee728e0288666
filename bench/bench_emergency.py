"""A real emergency's status board, each figure beside a ceiling measured in the same run.

A typhoon incident at level II with 5 linked child incidents, 200 inventory units committed across 20
resource requests (allocated, some dispatched, some arrived, some returned), 1,000 incident-log entries
and a few situation reports:

- `ir.app.views.board(...)` on it, warm (the incident folded and cached): median of many runs
  (target < 100 ms), beside the same board of a fresh typhoon incident with nothing of the above;
- the same with the read of the incident from the per-process cache included;
- a cold `ir status` of it in a subprocess, beside a cold `ir status` of the fresh incident and the
  ceilings `python -c "import sqlalchemy"` and `ir --help` (the command line's own start).

IR_BENCH_QUICK=1 takes fewer samples.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ir.adapters.clock import SystemClock  # noqa: E402
from ir.adapters.db.engine import make_engine  # noqa: E402
from ir.adapters.db.schema import upgrade  # noqa: E402
from ir.app.views import board  # noqa: E402
from ir.bootstrap import App, build, calendar_for  # noqa: E402
from ir.config import Settings  # noqa: E402
from ir.domain import commands as c  # noqa: E402
from ir.domain.events import ResourceRequested  # noqa: E402

ACTOR = c.Actor(id="bench", roles=frozenset({"admin"}))
QUICK = os.environ.get("IR_BENCH_QUICK") == "1"
CHILDREN = ("power-grid-failure", "fibre-cut", "power-grid-failure", "fibre-cut", "equipment-room-fire")
UNITS = 200
REQUESTS = 20
LOG_ENTRIES = 1_000


def make_app(folder: Path) -> App:
    url = f"sqlite:///{folder / 'ir.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    settings = Settings(
        database_url=url,
        data_dir=str(folder),
        playbooks_dir=str(ROOT / "playbooks"),
        catalogue_file=str(ROOT / "catalogue" / "services.yaml"),
    )
    return build(settings, clock=SystemClock())


def typhoon(app: App, title: str) -> int:
    landfall = datetime.now(UTC) + timedelta(hours=2)
    out = app.handlers.handle(
        c.OpenIncident(
            actor=ACTOR, playbook="typhoon-flood", title=title, warning="red", expected_impact=landfall, level="II"
        )
    )
    return out.incident_id


def build_big(app: App) -> int:
    """The incident with children, resources, log entries and situation reports; returns its id."""
    handle = app.handlers.handle
    iid = typhoon(app, "台风摩羯 (bench)")
    for n, playbook in enumerate(CHILDREN):
        child = handle(c.OpenIncident(actor=ACTOR, playbook=playbook, title=f"child {n}", level="III")).incident_id
        handle(c.LinkIncidents(actor=ACTOR, incident_id=iid, child=child))
    handle(c.SetImpact(actor=ACTOR, incident_id=iid, services=["mobile-voice", "mobile-data"], areas=["文昌", "琼海"]))
    for role, user in (("field_repair", "wang.wei"), ("field_repair", "li.na"), ("power", "chen.jie")):
        handle(c.AssignRole(actor=ACTOR, incident_id=iid, role=role, user=user))

    kinds = ("generator", "repair_team", "satellite_phone", "drainage_pump")
    per_request = UNITS // REQUESTS
    with app.db.uow() as uow:
        for i in range(UNITS):
            kind = kinds[(i // per_request) % len(kinds)]
            uow.inventory.register(unit_id=f"u{i:03d}", kind=kind, name=f"{kind} {i}", base="海口仓库")
        uow.commit()
    for r in range(REQUESTS):
        kind = kinds[r % len(kinds)]
        units = [f"u{i:03d}" for i in range(r * per_request, (r + 1) * per_request)]
        requested = handle(
            c.RequestResource(
                actor=ACTOR,
                incident_id=iid,
                resource=kind,
                quantity=per_request,
                destination=f"site {r}",
                needed_by=datetime.now(UTC) + timedelta(hours=6),
            )
        ).events[0]
        assert isinstance(requested, ResourceRequested)
        request = requested.request
        handle(c.AllocateResource(actor=ACTOR, incident_id=iid, request=request, units=units))
        if r % 4 != 0:
            handle(c.MoveResource(actor=ACTOR, incident_id=iid, request=request, stage="dispatched"))
        if r % 4 == 2:
            handle(c.MoveResource(actor=ACTOR, incident_id=iid, request=request, stage="arrived", units=units[:5]))
        if r % 4 == 3:
            handle(c.MoveResource(actor=ACTOR, incident_id=iid, request=request, stage="returned"))
    for n in range(LOG_ENTRIES):
        category = ("decision", "observation", "message")[n % 3]
        handle(c.AddLogEntry(actor=ACTOR, incident_id=iid, category=category, text=f"entry {n}: 文昌 site report"))
        if n % 250 == 249:
            handle(c.DraftSitrep(actor=ACTOR, incident_id=iid))
            number = n // 250 + 1
            handle(c.ReleaseSitrep(actor=ACTOR, incident_id=iid, number=number))
    return iid


def median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def cold_ms(args: list[str], env: dict[str, str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


def main() -> None:
    runs = 11 if QUICK else 51
    cold_runs = 3 if QUICK else 7
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        app = make_app(folder)
        t0 = time.perf_counter()
        big = build_big(app)
        built = time.perf_counter() - t0
        fresh = typhoon(app, "台风 (fresh)")

        with app.db.read() as repo:
            inc_big = repo.get(big)
            inc_fresh = repo.get(fresh)
        shown = board(inc_big, inc_big.now(app.clock.now()), lang="en", calendar_for=calendar_for)
        print(
            f"incident {big}: {inc_big.version:,} events, {len(shown['children'])} children, "
            f"{sum(len(r['units']) for r in shown['resources'])} units in {len(shown['resources'])} requests, "
            f"{shown['log_entries']:,} log entries, {len(shown['sitreps'])} situation reports "
            f"(built in {built:.1f} s)"
        )
        assert len(shown["children"]) == len(CHILDREN)
        assert sum(len(r["units"]) for r in shown["resources"]) == UNITS
        assert shown["log_entries"] == LOG_ENTRIES

        def board_of(inc_id: int) -> Callable[[], object]:
            inc = inc_big if inc_id == big else inc_fresh
            return lambda: board(inc, inc.now(app.clock.now()), lang="en", calendar_for=calendar_for)

        def read_and_board(inc_id: int) -> Callable[[], object]:
            def run() -> object:
                with app.db.read() as repo:
                    inc = repo.get(inc_id)
                return board(inc, inc.now(app.clock.now()), lang="en", calendar_for=calendar_for)

            return run

        warm_big = median_ms(board_of(big), runs)
        warm_fresh = median_ms(board_of(fresh), runs)
        print(
            f"board, warm: {warm_big:.1f} ms median of {runs} (target < 100 ms); "
            f"ceiling, the same board of a fresh incident: {warm_fresh:.1f} ms ({warm_big / warm_fresh:.1f}x)"
        )
        read_big = median_ms(read_and_board(big), runs)
        read_fresh = median_ms(read_and_board(fresh), runs)
        print(f"read from the cache + board: {read_big:.1f} ms median (fresh incident: {read_fresh:.1f} ms)")

        env = {
            **os.environ,
            "IR_DATABASE_URL": app.settings.database_url,
            "IR_DATA_DIR": str(folder),
            "IR_PLAYBOOKS_DIR": str(ROOT / "playbooks"),
            "IR_CATALOGUE_FILE": str(ROOT / "catalogue" / "services.yaml"),
        }
        cold_big = cold_ms(["-m", "ir", "status", str(big)], env, cold_runs)
        cold_fresh = cold_ms(["-m", "ir", "status", str(fresh)], env, cold_runs)
        bare = cold_ms(["-c", "import sqlalchemy"], env, cold_runs)
        start = cold_ms(["-m", "ir", "--help"], env, cold_runs)
        print(
            f"cold `ir status` of it: {cold_big:.0f} ms median of {cold_runs} (target < 1000 ms); "
            f"of the fresh incident: {cold_fresh:.0f} ms; ceilings `python -c 'import sqlalchemy'`: {bare:.0f} ms, "
            f"`ir --help`: {start:.0f} ms"
        )
        app.close()


if __name__ == "__main__":
    main()
