"""The change feed on PostgreSQL: NOTIFY after each commit, one LISTEN connection per server."""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg
from sqlalchemy import Engine, make_url, text

from ir.adapters.changes import CHANNEL, Publish

log = logging.getLogger("ir.changes")

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
APPLICATION_NAME = "ir live updates"  # how the LISTEN connection shows in pg_stat_activity
_LATEST = "SELECT incident_id, max(seq) FROM incident_events GROUP BY incident_id"


def libpq_url(url: str) -> str:
    """SQLAlchemy's `postgresql+psycopg://…` as libpq takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgNotifier:
    """After-commit hook: `NOTIFY ir_changes, '<incident>:<version>'` (on a pooled connection, in
    autocommit: delivered at once). A failure is retried once, then logged: the change itself is committed, and a
    console that misses an announcement still shows the latest version on its next reload."""

    def __init__(self, *, engine: Engine) -> None:
        self._engine = engine

    def __call__(self, outcome: Any) -> None:
        self.notify(int(outcome.incident_id), int(outcome.version))

    def notify(self, incident_id: int, version: int) -> None:
        payload = f"{incident_id}:{version}"
        for attempt in (1, 2):
            try:
                with self._engine.connect() as conn:  # autocommit: one round trip, no BEGIN/COMMIT
                    conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                        _NOTIFY, {"channel": CHANNEL, "payload": payload}
                    )
                return
            except Exception as exc:
                if attempt == 2:
                    log.error("live updates: NOTIFY %s for incident %s failed: %s", CHANNEL, incident_id, exc)


def parse(payload: str) -> tuple[int, int] | None:
    incident, _, version = payload.partition(":")
    try:
        return int(incident), int(version)
    except ValueError:
        return None


class PgListener:
    """One `LISTEN ir_changes` connection in a daemon thread, handing each notification to `publish`.
    Each time it connects (the first time too: the server may already be answering) it announces the
    latest version of every incident, so nothing committed before or while it was away is missed
    (versions already announced are dropped by the consumer); it backs off up to `max_backoff` seconds
    between attempts."""

    def __init__(self, *, url: str, publish: Publish, max_backoff: float = 5.0) -> None:
        self._dsn = libpq_url(url)
        self._publish = publish
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connections = 0  # how many times it has connected (1 + reconnections)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ir-change-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.25
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._dsn, autocommit=True, connect_timeout=5, application_name=APPLICATION_NAME
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._catch_up(conn)
                    self.connections += 1
                    backoff = 0.25
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            found = parse(note.payload)
                            if found is not None:
                                self._publish(*found)
            except psycopg.Error as exc:
                if self._stop.is_set():
                    return
                log.warning("live updates: the LISTEN connection failed (%s); reconnecting in %.1f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)

    def _catch_up(self, conn: psycopg.Connection[Any]) -> None:
        """Each incident's latest version (listening already: a commit racing this read is announced by
        its notification too)."""
        for incident_id, version in conn.execute(_LATEST).fetchall():
            self._publish(int(incident_id), int(version))
