"""The broadcaster behind GET /api/stream: each incident version is announced once, whoever reports it
(the server's own commit, then the change feed seeing it again), from any thread; a console that falls
behind keeps the newest changes; closing it ends every stream, later ones at once."""

from __future__ import annotations

import asyncio
import threading

from ir.entrypoints.http.live import Broadcaster, Change


async def drained(queue: asyncio.Queue[Change | None]) -> list[Change | None]:
    await asyncio.sleep(0)  # let call_soon_threadsafe callbacks run
    await asyncio.sleep(0)
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def test_a_version_is_announced_once_and_never_an_older_one() -> None:
    async def scenario() -> list[Change | None]:
        hub = Broadcaster()
        queue = hub.subscribe()
        hub.publish(Change(7, 3))  # the server's own commit
        hub.publish(Change(7, 3))  # the feed sees it again
        hub.publish(Change(7, 2))  # a late, older report
        hub.publish(Change(8, 1))
        hub.publish(Change(7, 4))
        return await drained(queue)

    assert asyncio.run(scenario()) == [Change(7, 3), Change(8, 1), Change(7, 4)]


def test_announcements_from_other_threads_reach_every_subscriber() -> None:
    async def scenario() -> tuple[list[Change | None], list[Change | None]]:
        hub = Broadcaster()
        one, two = hub.subscribe(), hub.subscribe()
        threads = [threading.Thread(target=hub.publish, args=(Change(n, 1),)) for n in range(1, 11)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return await drained(one), await drained(two)

    one, two = asyncio.run(scenario())
    assert sorted(c.incident_id for c in one if c) == list(range(1, 11))
    assert sorted(c.incident_id for c in two if c) == list(range(1, 11))


def test_a_console_that_falls_behind_keeps_the_newest() -> None:
    async def scenario() -> list[Change | None]:
        hub = Broadcaster()
        queue = hub.subscribe()
        for version in range(1, 101):
            hub.publish(Change(1, version))
        return await drained(queue)

    got = asyncio.run(scenario())
    assert len(got) == 64
    assert got[-1] == Change(1, 100)


def test_closing_ends_every_stream_and_later_ones_at_once() -> None:
    async def scenario() -> tuple[list[Change | None], list[Change | None], int]:
        hub = Broadcaster()
        queue = hub.subscribe()
        hub.publish(Change(1, 1))
        hub.close()
        hub.publish(Change(1, 2))  # after the close: not sent
        late = hub.subscribe()
        return await drained(queue), await drained(late), hub.count

    before, late, count = asyncio.run(scenario())
    assert before == [Change(1, 1), None]
    assert late == [None]
    assert count == 0
