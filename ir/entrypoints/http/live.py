"""Live updates: each committed change is announced to the consoles watching (Server-Sent Events).

In one process a broadcaster fans the announcement out to every subscriber's queue; the queues are
bounded, and a subscriber that falls behind only misses intermediate versions (it reloads the latest).
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
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Change]]] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> asyncio.Queue[Change]:
        queue: asyncio.Queue[Change] = asyncio.Queue(maxsize=64)
        with self._lock:
            self._subscribers.add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Change]) -> None:
        with self._lock:
            self._subscribers = {s for s in self._subscribers if s[1] is not queue}

    @property
    def count(self) -> int:
        return len(self._subscribers)

    def publish(self, change: Change) -> None:
        """Thread-safe: called after a commit, from whatever thread committed."""
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, queue in subscribers:
            loop.call_soon_threadsafe(_offer, queue, change)


def _offer(queue: asyncio.Queue[Change], change: Change) -> None:
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()  # drop the oldest: the newest version is what a console needs
    queue.put_nowait(change)
