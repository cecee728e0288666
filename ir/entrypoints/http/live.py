"""Live updates: each committed change is announced to the consoles watching (Server-Sent Events).

A broadcaster fans each announcement out to every subscriber's queue. Announcements come from two
places: this process's own commits (an after-commit hook, at once) and the change feed, which sees the
commits of every process on the same database (the command line, other `ir serve` processes; see
ir/adapters/changes). Each incident's version is announced once: an announcement of a version already
announced (this process's own commit, seen again by the feed) is dropped. The queues are bounded, and a
subscriber that falls behind only misses intermediate versions (it reloads the latest). Closing the
broadcaster (when the server stops) ends every stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Change:
    incident_id: int
    version: int


class Broadcaster:
    def __init__(self) -> None:
        # subscribers by event loop: one wake-up of each loop per change, however many streams it serves
        self._subscribers: dict[asyncio.AbstractEventLoop, set[asyncio.Queue[Change | None]]] = {}
        self._announced: dict[int, int] = {}  # incident -> the latest version announced
        self._lock = threading.Lock()
        self._closed = False

    def subscribe(self) -> asyncio.Queue[Change | None]:
        """A queue of changes; None in it means the server is stopping (the stream ends)."""
        queue: asyncio.Queue[Change | None] = asyncio.Queue(maxsize=64)
        with self._lock:
            if self._closed:
                queue.put_nowait(None)
            else:
                self._subscribers.setdefault(asyncio.get_running_loop(), set()).add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change | None]) -> None:
        with self._lock:
            for loop, queues in list(self._subscribers.items()):
                queues.discard(queue)
                if not queues:
                    del self._subscribers[loop]

    @property
    def count(self) -> int:
        return sum(len(queues) for queues in self._subscribers.values())

    def publish(self, change: Change) -> None:
        """Thread-safe: called after a commit, from whatever thread committed or the change feed's.
        A version already announced (or announced later) is dropped."""
        with self._lock:
            if self._closed or change.version <= self._announced.get(change.incident_id, 0):
                return
            self._announced[change.incident_id] = change.version
            targets = [(loop, tuple(queues)) for loop, queues in self._subscribers.items()]
        self._send(targets, change)

    def open(self) -> None:
        """Accept subscribers again (the application started anew after a stop)."""
        with self._lock:
            self._closed = False

    def close(self) -> None:
        """End every stream (the server is stopping); later subscribers' streams end at once."""
        with self._lock:
            self._closed = True
            targets = [(loop, tuple(queues)) for loop, queues in self._subscribers.items()]
            self._subscribers.clear()
        self._send(targets, None)

    @staticmethod
    def _send(
        targets: list[tuple[asyncio.AbstractEventLoop, tuple[asyncio.Queue[Change | None], ...]]],
        change: Change | None,
    ) -> None:
        for loop, queues in targets:
            with contextlib.suppress(RuntimeError):  # that loop is closed: its subscribers are gone
                loop.call_soon_threadsafe(_offer_all, queues, change)


def _offer_all(queues: tuple[asyncio.Queue[Change | None], ...], change: Change | None) -> None:
    for queue in queues:
        if queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()  # drop the oldest: the newest version is what a console needs
        queue.put_nowait(change)
