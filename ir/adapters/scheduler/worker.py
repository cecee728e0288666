"""`ir worker`: the timer service's loop. It sleeps until the next deadline threshold (or at most
`POLL` seconds, to notice work other processes added), and stops cleanly on SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
import threading
from datetime import timedelta

import click

from ir.adapters.db.timers import SqlTimerStore
from ir.adapters.db.uow import Database
from ir.app.timers import TimerService
from ir.domain.clocks import Clock

POLL = 30.0


def run_worker(
    db: Database,
    clock: Clock,
    *,
    soon: timedelta,
    once: bool = False,
    stop: threading.Event | None = None,
    quiet: bool = False,
) -> None:
    service = TimerService(SqlTimerStore(db), soon=soon)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if not quiet:
        click.echo("ir worker: timer service running" if not once else "ir worker: one pass", err=True)
    while True:
        now = clock.now()
        marks, wake = service.tick(now)
        for m in [] if quiet else marks:
            target = f" -> {m.target}" if m.target else ""
            click.echo(f"incident {m.incident_id}: {m.ref} {m.mark}{target}", err=True)
        if once:
            return
        delay = POLL if wake is None else min(POLL, max(0.05, (wake - clock.now()).total_seconds()))
        try:
            if stop.wait(delay):
                return
        except KeyboardInterrupt:
            return
