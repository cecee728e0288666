"""Audit record ids and nonces: never repeated, from any thread or a forked child, and ids that grow with
time (so the log's primary key is appended to, not rewritten all over as the log grows)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from ir.bootstrap import App
from ir.domain.commands import Actor

KEY = ("bench-key", bytes(range(32)))
ACTOR = Actor(id="local:tester")


def made(app: App, n: int) -> list[tuple[str, bytes]]:
    """(record id, nonce) of n records made in this thread."""
    out = []
    for i in range(n):
        record = app.db.records.make(
            KEY, action="test.record", actor=ACTOR.id, subject="user:someone", payload={"i": i}, at=app.clock.now()
        )
        out.append((record.id, record.body[:12]))
    return out


def test_ids_and_nonces_are_unique_across_threads_and_grow_with_time(app: App) -> None:
    before = time.time_ns() // 1_000_000
    results: dict[int, list[tuple[str, bytes]]] = {}
    threads = [threading.Thread(target=lambda t=t: results.__setitem__(t, made(app, 500))) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    after = time.time_ns() // 1_000_000
    everything = [pair for mine in results.values() for pair in mine]
    assert len(everything) == 2000
    assert len({record_id for record_id, _ in everything}) == 2000
    assert len({nonce for _, nonce in everything}) == 2000
    for mine in results.values():
        stamps = [int(record_id[:12], 16) for record_id, _ in mine]
        assert stamps == sorted(stamps)  # each thread's ids grow with time
        assert before <= stamps[0] and stamps[-1] <= after


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_never_repeats_its_parents_ids(app: App) -> None:
    made(app, 1)  # the parent has drawn a block of randomness
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next record, through the pipe
        try:
            record_id, nonce = made(app, 1)[0]
            os.write(write, record_id.encode() + b" " + nonce.hex().encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_id, child_nonce = os.read(read, 200).decode().split()
    os.close(read)
    parent_id, parent_nonce = made(app, 1)[0]
    assert child_id != parent_id
    assert child_nonce != parent_nonce.hex()
