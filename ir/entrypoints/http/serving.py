"""Running the application under uvicorn, and stopping it in order.

On SIGTERM or SIGINT (Ctrl-C): the listening socket closes; live streams (Server-Sent Events) end at once,
since they would otherwise hold the server open until the grace period ran out; requests in flight
finish and get their whole answer (up to `grace` seconds); then the application stops — the timers
thread is joined, the audit records this process wrote are sealed and published, the database is
released — and the process exits 0: a stop that was asked for is a success. A second Ctrl-C quits at once.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_stop = on_stop

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._on_stop()  # before uvicorn waits for the connections: an open stream would never finish
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own re-raises the signal after a graceful stop, so the process would die of it (143)
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


# How long a thread holding the GIL runs before one waiting for it is let in (Python's default is 5 ms).
# The server's threads mostly wait on the disk and the network; when one comes back from a commit while
# another computes, it waited up to the whole interval: the audit appender's 8-writer benchmark rose
# from about 4,300 to 5,900 records/s, batches from 23,500 to 26,000, at 0.5 ms (bench/bench_audit.py).
SWITCH_INTERVAL = 0.0005


def serve(api: FastAPI, *, host: str, port: int, grace: float = 20.0) -> bool:
    """Serve until told to stop; False if the server could not start (the port taken, …)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    config = uvicorn.Config(
        api,
        host=host,
        port=port,
        http="httptools",  # llhttp, in C: h11, in pure Python, cost about a third of a step act's CPU
        log_level="warning",
        timeout_graceful_shutdown=int(grace),
        lifespan="on",
    )
    server = GracefulServer(config, on_stop=api.state.broadcaster.close)
    try:
        server.run()
    except SystemExit:  # uvicorn's way of saying it could not start (exit 3, which ir means as "not found")
        if server.started:
            raise
        return False
    return server.started
