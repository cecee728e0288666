"""Regulators' deadlines: the due instants of 10,000 open obligations, computed from the incidents' state.

Target: under 100 ms (warm calendars) for 10,000 open obligations with a due instant, i.e. what a deadline
board or the timer recomputes after a restart (deadlines are never stored: DESIGN.md, Time).

The incidents are folded in memory from the product's decisions on a playbook naming all six regimes
(notifications/regimes/*.yaml), their detections spread over 2026 so that the DORA weekend/holiday roll and
the official calendars (Belgium, China, United States) see many different days. Each figure is the median of
several runs, beside ceilings measured in the same run on the same incidents:

- the same number of plain `datetime + timedelta` additions (the arithmetic alone: the floor any
  implementation pays);
- the step deadlines of the same incidents (the runner's own deadlines, `step + offset`);
- the obligations again without calendars (no weekend/holiday roll), to show what the calendars cost.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ir.adapters.playbooks.compiler import compile_source  # noqa: E402
from ir.adapters.regimes import load_regimes  # noqa: E402
from ir.bootstrap import calendar_for  # noqa: E402
from ir.domain import decisions  # noqa: E402
from ir.domain.clocks import ClockName  # noqa: E402
from ir.domain.deadlines import step_deadline  # noqa: E402
from ir.domain.events import Event  # noqa: E402
from ir.domain.incident import Incident, Mode  # noqa: E402
from ir.domain.levels import ResponseLevel  # noqa: E402
from ir.domain.obligations import obligation_states, submit_report  # noqa: E402
from ir.domain.playbook import Playbook  # noqa: E402
from ir.domain.regimes import Regime  # noqa: E402
from tests.builders import MINIMAL_PLAYBOOK  # noqa: E402

TARGET_OPEN = 10_000
TARGET_MS = 100.0
RUNS = 9
REGIME_IDS = ("cn-cac-2025", "cn-miit-2017", "us-fcc-part4", "eu-gdpr", "eu-nis2", "eu-dora")
START = datetime(2026, 1, 2, 1, 0, tzinfo=UTC)


def playbook() -> Playbook:
    extra = (
        "  - name: cii_involved\n    type: boolean\n    title: {zh-CN: 关键信息基础设施, en: CII}\n"
        "  - name: central_state_organ\n    type: boolean\n    title: {zh-CN: 中央和国家机关, en: Central organ}\n"
    )
    source = MINIMAL_PLAYBOOK.replace("facts:\n", f"regimes: [{', '.join(REGIME_IDS)}]\nfacts:\n{extra}", 1)
    compiled = compile_source(source.encode(), "bench-regimes.yaml")
    assert compiled.playbook is not None, [str(p) for p in compiled.problems]
    return compiled.playbook


def build_incident(i: int, pb: Playbook, regimes: dict[str, Regime]) -> Incident:
    """Incident i: detected at a different hour of 2026 than its neighbours, every clock the regimes need."""
    detected = START + timedelta(hours=7 * i + i % 5, minutes=(13 * i) % 60)
    inc = Incident(id=i + 1, playbook=pb)
    inc.regimes = regimes
    now = detected

    def fold(events: list[Event]) -> None:
        for e in events:
            inc.apply(e)

    fold(
        decisions.open_incident(
            playbook=pb,
            title=f"incident {i}",
            mode=Mode.REAL,
            facts={"affected_users": 5_000 + (i * 7_919) % 2_000_000, "cii_involved": i % 3 == 0},
            actor="bench",
            now=now,
            detected_at=detected,
        )
    )
    now = detected + timedelta(hours=1)
    aware = detected + timedelta(minutes=20)
    fold(decisions.record_clock(inc, ClockName.AWARENESS, aware, actor="bench", now=now, reason=None))
    fold(decisions.declare_level(inc, ResponseLevel.III, actor="bench", now=now, reason=None))
    if i % 2 == 0:
        now = detected + timedelta(hours=9)
        fold(decisions.record_clock(inc, ClockName.RESPONSE_END, now, actor="bench", now=now, reason=None))
    if i % 3 == 1:  # chained obligations start running: DORA intermediate, NIS2 final
        for regime, ob in (("eu-dora", "initial"), ("eu-nis2", "notification")):
            state = next(
                s
                for s in obligation_states(inc, regimes, calendar_for=calendar_for)
                if s.ref == f"regime:{regime}:{ob}"
            )
            fold(
                submit_report(
                    inc, state, reference="R", document_sha256="0" * 64, document_name="r.pdf", missing=[],
                    late_reason="bench", partial=False, actor="bench", now=detected + timedelta(hours=2),
                )
            )  # fmt: skip
    return inc


def median_ms(fn: Callable[[], object], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    regimes = load_regimes(str(ROOT / "notifications" / "regimes"))
    pb = playbook()
    incidents: list[Incident] = []
    open_due = 0
    t0 = time.perf_counter()
    while open_due < TARGET_OPEN:
        inc = build_incident(len(incidents), pb, regimes)
        incidents.append(inc)
        open_due += sum(
            1
            for s in obligation_states(inc, regimes, calendar_for=calendar_for)
            if s.submitted_at is None and s.due_at is not None
        )
    built = time.perf_counter() - t0

    def all_obligations() -> list[datetime]:
        return [
            s.due_at
            for inc in incidents
            for s in obligation_states(inc, regimes, calendar_for=calendar_for)
            if s.submitted_at is None and s.due_at is not None
        ]

    def without_calendars() -> int:
        return sum(len(obligation_states(inc, regimes, calendar_for=None)) for inc in incidents)

    dues = all_obligations()
    assert len(dues) == open_due
    states = [s for inc in incidents for s in obligation_states(inc, regimes, calendar_for=calendar_for)]
    waiting = sum(1 for s in states if s.submitted_at is None and s.due_at is None)
    submitted = sum(1 for s in states if s.submitted_at is not None)
    rolled = sum(
        1
        for s in states
        if s.regime.id == "eu-dora"
        and s.due_at is not None
        and s.due_at.astimezone(calendar_for(s.regime.calendar).zone).hour == 12
    )

    anchors = [inc.clock(ClockName.DETECTION) or START for inc in incidents]
    offsets = [timedelta(hours=h) for h in (1, 2, 4, 24, 72, 720)]
    pairs = [(anchors[i % len(anchors)], offsets[i % len(offsets)]) for i in range(open_due)]

    def additions() -> list[datetime]:
        return [a + d for a, d in pairs]

    step_ids = list(pb.steps)

    def step_deadlines() -> int:
        return sum(1 for inc in incidents for sid in step_ids if step_deadline(inc, sid, calendar_for) is not None)

    steps = step_deadlines()

    obligations_ms = median_ms(all_obligations)
    plain_ms = median_ms(additions)
    steps_ms = median_ms(step_deadlines)
    no_cal_ms = median_ms(without_calendars)
    verdict = "meets" if obligations_ms < TARGET_MS else "MISSES"
    print(
        f"built {len(incidents):,} incidents under 6 regimes in {built:.1f} s: {open_due:,} open obligations with a "
        f"due instant ({waiting:,} more waiting for a clock or a submission, {submitted:,} submitted; "
        f"{rolled:,} DORA deadlines at 12:00 Brussels)"
    )
    print(
        f"due instants of {open_due:,} open obligations (obligation_states over all incidents): "
        f"{obligations_ms:.1f} ms median of {RUNS} ({obligations_ms * 1000 / open_due:.2f} µs each; "
        f"target < {TARGET_MS:.0f} ms: {verdict})"
    )
    print(
        f"  ceiling, the arithmetic alone: {open_due:,} datetime + timedelta additions: {plain_ms:.1f} ms "
        f"({obligations_ms / plain_ms:.0f}x)"
    )
    print(
        f"  beside: the {steps:,} step deadlines of the same incidents: {steps_ms:.1f} ms "
        f"({steps_ms * 1000 / max(steps, 1):.2f} µs each); the obligations without calendars (no weekend roll): "
        f"{no_cal_ms:.1f} ms"
    )


if __name__ == "__main__":
    main()
