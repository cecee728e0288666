"""The audit log's moving parts in one process: the sealer, checkpoint publishing, and (in long-running
processes) a background thread that seals shortly after each commit, so no command waits on the chain.
The group-commit appender seals its own batches as it writes them (see appender.py) and wakes the
thread only for what is left: checkpoints to publish, records still pending."""

from __future__ import annotations

import logging
import threading

from ir.adapters.audit.checkpoints import CheckpointPublisher
from ir.adapters.audit.sealer import Sealed, Sealer
from ir.domain.clocks import Clock

log = logging.getLogger("ir.audit")

# After a commit wakes the sealer, it waits this long before sealing, so that one sealing transaction
# covers every command committed meanwhile. Sealing one record at a time cost a write transaction and
# about 1 ms of CPU per command, as much as the command itself, and queued for the same write lock
# (bench/bench_server.py). The seal lag stays far under its 100 ms bound.
GATHER = 0.02


class AuditService:
    def __init__(self, *, sealer: Sealer, publisher: CheckpointPublisher, clock: Clock) -> None:
        self.sealer = sealer
        self.publisher = publisher
        self.clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: Sealed | None = None
        self.failures = 0

    def flush(self) -> Sealed:
        """Seal everything committed, then publish new checkpoints."""
        result = self.sealer.seal()
        self.last = result
        try:
            self.publisher.publish_pending(self.clock.now())
        except Exception as exc:  # the checkpoint stays unpublished and is retried on the next pass
            self.failures += 1
            log.warning("audit checkpoint not published yet: %s", exc)
        return result

    def wake(self) -> None:
        self._wake.set()

    def after_append(self, sealed: Sealed | None) -> None:
        """The appender committed a batch, sealed in its own transaction (or, when sealing failed there,
        unsealed): wake the background sealer only when something is left for it, so that it never
        competes with a busy appender for the write lock."""
        if sealed is None or sealed.more or sealed.checkpointed:
            self._wake.set()
        if sealed is not None:
            self.last = sealed

    def start(self, *, idle: float = 1.0, gather: float = GATHER) -> None:
        if self._thread is not None:
            return

        def run() -> None:
            while not self._stop.is_set():
                if self._wake.wait(idle):
                    self._stop.wait(gather)  # let the commits of the next moment join this batch
                self._wake.clear()
                try:
                    self.flush()
                except Exception as exc:  # retried on the next wake; never silently dropped
                    self.failures += 1
                    log.error("audit sealing failed (will retry): %s", exc)
                    self._stop.wait(0.5)

        self._thread = threading.Thread(target=run, name="ir-audit-sealer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
