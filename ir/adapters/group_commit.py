"""Taking what is queued for one group commit: the first item, and whatever else has been handed over
meanwhile, up to a limit. Shared by the audit appender and the server's command writer."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def gather(
    waiting: queue.SimpleQueue[T | None], first: T, *, limit: int, busy: bool, weight: Callable[[T], int] = lambda _: 1
) -> tuple[list[T], bool]:
    """`first` and what is queued after it (up to `limit`, counted by `weight`); and whether the stop mark
    (None) was met, after which nothing more is taken.

    `busy`: the last commit served several callers. They are waking now, and each needs Python's GIL to
    hand over its next item; when the queue looks empty, the GIL is yielded to them once before the commit
    begins. Without this, each commit took about half of them and the rest waited a whole commit more
    (8 threads appending one audit record each: about 6,000 -> 11,000 records/s; the server's step
    transitions about +18 %)."""
    items, total, yielded = [first], weight(first), False
    while total < limit:
        try:
            item = waiting.get_nowait()
        except queue.Empty:
            if yielded or not busy:
                break
            yielded = True
            time.sleep(0)
            continue
        if item is None:
            return items, True
        items.append(item)
        total += weight(item)
    return items, False
