"""The public status page's speed, beside ceilings measured in the same run.

- Reading: GET /status, /status/feed.atom and /status/feed.cap.xml with 50 public incidents of 5 updates
  each (the page's limit), through the application in-process (SQLite file, the full middleware stack),
  against the cheapest route of the same stack, GET /api/health, as the ceiling: rendered afresh (as
  right after a publish) and unchanged since (served from the process's copy after one small query). A
  crowd reading the page during an outage is what this is about (a proxy in front may also cache it:
  Cache-Control max-age=30).
- Writing a CAP alert: `compose` (serialize + validate against the official XSD with xmlschema) against
  serializing the same alert alone as the ceiling: what validating every alert before publishing costs.

Run: .venv/bin/python bench/bench_status_page.py   (IR_BENCH_QUICK=1: fewer rounds)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUICK = os.environ.get("IR_BENCH_QUICK") == "1"
ROUNDS = 20 if QUICK else 60
INCIDENTS = 50
UPDATES = 5


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    from fastapi.testclient import TestClient

    from ir.adapters.clock import SimulatedClock
    from ir.adapters.db.engine import make_engine
    from ir.adapters.db.schema import upgrade
    from ir.adapters.notify.cap import compose, element, to_xml
    from ir.bootstrap import build
    from ir.config import Settings
    from ir.domain import commands as c
    from ir.domain.status_updates import PublishStatusUpdate
    from ir.entrypoints.http.app import create_app
    from ir.entrypoints.status_service import status_page

    folder = Path(tempfile.mkdtemp(prefix="ir-bench-status-"))
    url = f"sqlite:///{folder / 'ir.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    clock = SimulatedClock(datetime(2026, 10, 1, 1, 0, tzinfo=UTC))
    app = build(Settings(database_url=url, data_dir=str(folder)), clock=clock)
    actor = c.Actor(id="local:bench")
    service = status_page(app)
    captured: list[object] = []
    start = time.perf_counter()
    for n in range(INCIDENTS):
        mode = "drill" if n % 10 == 0 else "real"
        iid = app.handlers.handle(c.OpenIncident(actor=actor, playbook="ddos", title=f"b{n}", mode=mode, level="III"))
        for k in range(UPDATES):
            clock.advance(timedelta(minutes=1))
            resolved = k == UPDATES - 1 and n % 2 == 0
            update = service.publish(
                PublishStatusUpdate(
                    actor=actor,
                    incident_id=iid.incident_id,
                    title_zh=f"部分地区宽带访问缓慢 {n}",
                    title_en=f"Slow broadband in some areas {n}",
                    message_zh="我们正在处理，部分用户访问网站缓慢。" * 3,
                    message_en="We are working on it; some users see slow websites. " * 3,
                    eta=None if resolved else clock.now() + timedelta(hours=4),
                    area_zh="海南省海口市",
                    area_en="Haikou, Hainan",
                    resolved=resolved,
                )
            )
            captured.append(update)
    publish_s = time.perf_counter() - start
    published = INCIDENTS * UPDATES
    print(f"setup: {published} updates published (each validated and audited) in {publish_s:.1f} s")

    with TestClient(create_app(app=app, background=False)) as client:

        def get(path: str) -> Callable[[], object]:
            def call() -> object:
                answer = client.get(path)
                assert answer.status_code == 200, answer.text
                return answer

            return call

        ceiling = median_ms(get("/api/health"), ROUNDS)
        print(f"ceiling GET /api/health: median {ceiling:.2f} ms")
        state = client.app.state  # type: ignore[attr-defined]
        for path in ("/status", "/status?lang=en", "/status/feed.atom", "/status/feed.cap.xml"):
            warm = median_ms(get(path), ROUNDS)

            def cold(path: str = path) -> object:
                state.status_cache = {}  # as right after a publish: rendered afresh
                return get(path)()

            fresh = median_ms(cold, ROUNDS)
            size = len(client.get(path).content)
            print(
                f"GET {path:<22} ({size / 1024:3.0f} KiB) rendered afresh: median {fresh:7.2f} ms"
                f" ({fresh / ceiling:5.1f}x); unchanged since: median {warm:6.2f} ms"
                f" ({warm / ceiling:4.1f}x the ceiling)"
            )

    # a CAP alert: serialize and validate, against serializing alone
    from ir.app.status_page import CapAlert, CapInfo

    info = CapInfo(
        language="zh-CN",
        categories=("Security", "Infra"),
        event="网络安全事件影响服务",
        response_type="Monitor",
        urgency="Immediate",
        severity="Severe",
        certainty="Observed",
        headline="部分地区宽带访问缓慢",
        description="我们正在处理，部分用户访问网站缓慢。",
        instruction=None,
        area_desc="海南省海口市",
    )
    alert = CapAlert(
        identifier="ir-n1-2",
        sender="ops@example.com",
        sent="2026-10-01T09:30:00+08:00",
        status="Actual",
        msg_type="Update",
        references=("ops@example.com,ir-n1-1,2026-10-01T09:00:00+08:00",),
        incidents="n1",
        infos=(info, info),
    )
    rounds = ROUNDS * 10
    alone = median_ms(lambda: to_xml(element(alert)), rounds)
    validated = median_ms(lambda: compose(alert), rounds)
    print(f"CAP alert serialized alone (ceiling): median {alone * 1000:.0f} µs")
    print(
        f"CAP alert serialized + validated:     median {validated * 1000:.0f} µs  {validated / alone:.1f}x the ceiling"
    )
    print("note: the machine is shared and noisy (2 cores, other engineers' tests running): compare ratios, not ms")
    app.close()


if __name__ == "__main__":
    main()
