"""The change feed on SQLite: a watcher polling `PRAGMA data_version` on a dedicated connection."""

from __future__ import annotations

import logging
import sqlite3
import threading
from urllib.parse import quote

from sqlalchemy import make_url

from ir.adapters.changes import Publish

log = logging.getLogger("ir.changes")

_SINCE = "SELECT incident_id, max(seq), max(rowid) FROM incident_events WHERE rowid > ? GROUP BY incident_id"


class SqliteWatcher:
    """Every `interval` seconds, one `PRAGMA data_version` (it changes when another connection — of this
    process or another — has committed); when it moved, the events appended since the last look, one
    announcement per incident with its latest version. Started in a daemon thread; `stop` ends it."""

    def __init__(self, *, url: str, publish: Publish, interval: float = 0.25) -> None:
        database = make_url(url).database or ""
        self._path = None if database in ("", ":memory:") else database
        self._publish = publish
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._path is None:
            return  # an in-memory database has no other process to watch
        self._thread = threading.Thread(target=self._run, name="ir-change-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _connect(self) -> sqlite3.Connection:
        assert self._path is not None
        # mode=rw: never create an empty file where the database went missing
        uri = f"file:{quote(self._path)}?mode=rw"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        seen = -1  # data_version last looked at
        last = -1  # the highest incident_events rowid announced
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = self._connect()
                    seen = -1
                (version,) = conn.execute("PRAGMA data_version").fetchone()
                if version != seen:
                    seen = version
                    last = self._look(conn, last)
            except sqlite3.Error as exc:
                log.warning("live updates: reading the database for changes failed (%s); trying again", exc)
                if conn is not None:
                    conn.close()
                    conn = None
            self._stop.wait(self._interval)
        if conn is not None:
            conn.close()

    def _look(self, conn: sqlite3.Connection, last: int) -> int:
        """Announce what was appended after rowid `last` (nothing on the first look: the starting point)."""
        (top,) = conn.execute("SELECT coalesce(max(rowid), 0) FROM incident_events").fetchone()
        if last < 0 or top < last:  # the first look, or the file was replaced (a restore): start afresh
            return int(top)
        if top == last:
            return last  # the commit was not an incident's change (sign-ins, the audit sealer, …)
        for incident_id, version, rowid in conn.execute(_SINCE, (last,)).fetchall():
            self._publish(int(incident_id), int(version))
            last = max(last, int(rowid))
        return last
