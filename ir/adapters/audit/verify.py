"""`ir audit verify`: check the whole log without any key.

One streaming pass over the sealed records in sequence order recomputes every header and entry hash,
checks the sequence is contiguous from 0, that each record names the previous one's hash, that the log
id is this log's, and grows the Merkle tree (a compact range) to compare its root with every checkpoint
at its size. Checkpoints are trusted only when signed by a known key for this log's origin; those the
auditor kept elsewhere (files) catch truncation, rollback and a chain recomputed without the signing key.
With `events`, every incident event is checked against the fingerprint in its audit record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from ir.adapters.audit import record_format
from ir.adapters.audit.checkpoint import Checkpoint, CheckpointError, Verifier, verify_checkpoint
from ir.adapters.audit.checkpoints import origin_for
from ir.adapters.audit.merkle import EMPTY_ROOT
from ir.adapters.db.tables import audit_checkpoints, audit_heads, audit_records, incident_events

Progress = Callable[[int, int], None]


@dataclass
class Report:
    size: int = 0
    root: bytes = record_format.GENESIS
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checkpoints: list[int] = field(default_factory=list)  # sizes verified
    events_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def _parse_time(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


_COLUMNS = (
    audit_records.c.seq,
    audit_records.c.id,
    audit_records.c.created_at,
    audit_records.c.key_id,
    audit_records.c.subject_ref,
    audit_records.c.ref,
    audit_records.c.digest,
    audit_records.c.body,
    audit_records.c.prev_hash,
    audit_records.c.entry_hash,
)
# (log_id is not read: the query names it, and the header is rebuilt with this log's id, so a record
# copied from another log breaks its hash)
_SQLITE_ROWS = (
    "SELECT seq, id, created_at, key_id, subject_ref, ref, digest, body, prev_hash, entry_hash FROM audit_records "
    "WHERE log_id = ? AND seq IS NOT NULL ORDER BY seq"
)


def _chunks(conn: Connection, log_id: str, batch: int = 2_000) -> Iterator[Sequence[tuple[Any, ...]]]:
    """Sealed records in sequence order, streamed in chunks: the raw driver cursor on SQLite (several times
    faster than the ORM's rows, and created_at stays the text it is stored as); elsewhere the blobs come
    as bytes. (Chunks of 2,000: 20,000 were no faster and held about 40 MB more at the peak.)"""
    if conn.dialect.name == "sqlite":
        from ir.adapters.db.sqlite_fast import driver

        raw = driver(conn)
        assert raw is not None
        cursor = raw.execute(_SQLITE_ROWS, (log_id,))
        while chunk := cursor.fetchmany(batch):
            yield chunk
        return
    query = (
        select(*_COLUMNS)
        .where(and_(audit_records.c.log_id == log_id, audit_records.c.seq.is_not(None)))
        .order_by(audit_records.c.seq)
    )
    result = conn.execute(query, execution_options={"stream_results": True, "yield_per": batch})
    for part in result.partitions():
        yield [
            (
                seq,
                rid,
                created,
                key_id,
                subject_ref,
                ref,
                _bytes(digest),
                _bytes(body),
                _bytes(prev),
                _bytes(stored),
            )
            for seq, rid, created, key_id, subject_ref, ref, digest, body, prev, stored in part
        ]


def _bytes(value: Any) -> Any:
    return value if value is None or type(value) is bytes else bytes(value)


class _Shorts(dict[str, bytes]):
    """A header's short field (length byte, UTF-8) by its text: key ids and subject references repeat."""

    def __missing__(self, value: str) -> bytes:
        raw = value.encode()
        if len(raw) > 255:
            raise ValueError("a header field is longer than 255 bytes")
        if len(self) > 4096:
            self.clear()
        found = self[value] = _LENGTH[len(raw)] + raw
        return found


_LENGTH = [bytes((n,)) for n in range(256)]


def load_checkpoints(
    texts: Sequence[tuple[str, str]], verifiers: Sequence[Verifier], log_id: str, report: Report
) -> dict[int, Checkpoint]:
    """Checkpoints (source, text) that verify; the others are errors naming their source."""
    out: dict[int, Checkpoint] = {}
    for source, text in texts:
        try:
            cp = verify_checkpoint(text, verifiers, origin=origin_for(log_id))
        except CheckpointError as exc:
            report.errors.append(f"checkpoint {source}: {exc}")
            continue
        seen = out.get(cp.size)
        if seen is not None and seen.root != cp.root:
            report.errors.append(
                f"checkpoint {source}: two different roots for size {cp.size}: the log was forked (equivocation)"
            )
            continue
        out[cp.size] = cp
    return out


def verify(
    conn: Connection,
    *,
    log_id: str,
    verifiers: Sequence[Verifier],
    checkpoint_texts: Sequence[tuple[str, str]] = (),
    use_stored_checkpoints: bool = True,
    events: bool = False,
    progress: Progress | None = None,
) -> Report:
    report = Report()
    texts = list(checkpoint_texts)
    if use_stored_checkpoints:
        stored = conn.execute(
            select(audit_checkpoints.c.size, audit_checkpoints.c.note).where(audit_checkpoints.c.log_id == log_id)
        ).all()
        texts += [(f"stored #{int(size)}", str(note)) for size, note in stored]
    checkpoints = load_checkpoints(texts, verifiers, log_id, report)
    total = int(
        conn.execute(
            select(func.count()).select_from(audit_records).where(audit_records.c.log_id == log_id)
        ).scalar_one()
    )
    verified, first_bad, size, root = _walk(conn, log_id, checkpoints, total, report, progress)
    report.checkpoints = verified
    report.size = size
    report.root = root
    if report.ok:
        beyond = [size for size in checkpoints if size > report.size]
        if beyond:
            report.errors.append(
                f"a signed checkpoint covers {max(beyond)} records but the log holds {report.size}: "
                "records were removed from the end, or the database was rolled back to an older copy"
            )
        head = conn.execute(select(audit_heads.c.size).where(audit_heads.c.log_id == log_id)).scalar()
        if head is not None and int(head) != report.size and report.ok:
            report.errors.append(f"the chain head says {int(head)} records are sealed, but {report.size} were found")
        anchored = max((s for s in checkpoints if s <= report.size), default=0)
        if report.size > anchored:
            report.warnings.append(
                f"{report.size - anchored} record(s) after the last checkpoint (size {anchored}) are not yet anchored"
            )
        unsealed = total - report.size
        if unsealed > 0:
            report.warnings.append(f"{unsealed} record(s) are not sealed yet")
    if events and report.ok:
        check_events(conn, log_id, report)
    if progress is not None:
        progress(first_bad if first_bad is not None else size, total)
    return report


def _walk(
    conn: Connection,
    log_id: str,
    checkpoints: dict[int, Checkpoint],
    total: int,
    report: Report,
    progress: Progress | None,
) -> tuple[list[int], int | None, int, bytes]:
    """The one pass over the records: (checkpoint sizes verified, where it stopped on an error, the number
    of records that verified, their Merkle root). The first problem is added to the report's errors.

    This loop is the cost of `ir audit verify`, so it is written flat: the header is joined from the
    stored fields in one go, the entry hash is one SHA-256 call, and the compact range (the roots of the
    perfect subtrees so far, as `merkle.CompactRange` keeps them) is kept inline; checkpoints and progress
    are looked at only when the next one is due."""
    sha = hashlib.sha256
    node = b"\x01"
    leaf_prefix = b"\x00" + record_format.MAGIC + bytes((len(log_id.encode()),)) + log_id.encode()
    pack = record_format._SEQ_TS.pack
    fromhex = bytes.fromhex
    length = _LENGTH
    shorts = _Shorts()
    # SQLite stores created_at as the text `YYYY-MM-DD HH:MM:SS.ffffff` (UTC): the seconds are parsed once
    # per distinct second, and only a value in exactly that form takes the short way (anything else is
    # parsed in full, and refused if it is not a time)
    seconds: dict[str, int] = {}
    stack: list[bytes] = []  # the compact range
    push = stack.append
    pop = stack.pop
    due = sorted((s for s in checkpoints if s > 0), reverse=True)  # popped from the end, smallest first
    every = 50_000
    next_cp = due.pop() if due else -1
    next_progress = every if progress is not None else -1
    verified: list[int] = []
    prev = record_format.GENESIS
    size = 0

    def root_of(hashes: list[bytes]) -> bytes:
        if not hashes:
            return EMPTY_ROOT
        h = hashes[-1]
        for left in reversed(hashes[:-1]):
            h = sha(node + left + h).digest()
        return h

    def fail(problem: str) -> tuple[list[int], int | None, int, bytes]:
        report.errors.append(problem)
        return verified, size, size, root_of(stack)

    def slow_micros(value: Any) -> int:
        if type(value) is str and len(value) == 26 and value[19] == "." and value[20:].isdigit():
            head = value[:19]
            if len(seconds) > 65_536:
                seconds.clear()
            seconds[head] = record_format.micros(_parse_time(head + ".000000"))
        return record_format.micros(_parse_time(value))

    for chunk in _chunks(conn, log_id):
        for seq, record_id, created, key_id, subject_ref, ref, digest, body, prev_hash, stored in chunk:
            if seq != size:
                what = "a record is missing" if seq > size else "duplicated or renumbered"
                return fail(f"record {record_id} (#{seq}): sequence {seq} where {size} was expected ({what})")
            try:
                base = seconds.get(created[:19]) if type(created) is str else None
                tail = created[20:] if base is not None and len(created) == 26 and created[19] == "." else ""
                us = base + int(tail) if tail.isdigit() and tail.isascii() else slow_micros(created)  # type: ignore[operator]
                r = ref.encode()
                entry = sha(
                    b"".join(
                        (
                            leaf_prefix,
                            pack(seq, us),
                            fromhex(record_id),
                            shorts[key_id],
                            shorts[subject_ref],
                            length[len(r)],
                            r,
                            digest,
                            prev_hash if prev_hash is not None else b"",
                            body,
                        )
                    )
                ).digest()
            except IndexError:
                return fail(f"record {record_id!r} (#{seq}): a field is malformed (its ref is longer than 255 bytes)")
            except (ValueError, TypeError, OverflowError, AssertionError, AttributeError) as exc:
                return fail(f"record {record_id!r} (#{seq}): a field is malformed ({exc})")
            if prev_hash != prev:
                return fail(f"record {record_id} (#{seq}): its previous hash does not match record #{seq - 1}")
            if stored != entry:
                return fail(
                    f"record {record_id} (#{seq}): its content does not match its entry hash "
                    "(a field or the encrypted body was changed)"
                )
            prev = entry
            n = size
            while n & 1:
                entry = sha(node + pop() + entry).digest()
                n >>= 1
            push(entry)
            size += 1
            if size == next_cp:
                cp = checkpoints[size]
                if cp.root != root_of(stack):
                    report.errors.append(
                        f"the log's root at size {size} differs from its signed checkpoint: records up to "
                        f"#{size - 1} were changed and their hashes recomputed "
                        "(or the checkpoint is from another log)"
                    )
                    return verified, size, size, root_of(stack)
                verified.append(size)
                next_cp = due.pop() if due else -1
            if size == next_progress:
                assert progress is not None
                progress(size, total)
                next_progress += every
    return verified, None, size, root_of(stack)


def check_events(conn: Connection, log_id: str, report: Report) -> None:
    """Every incident event against the fingerprint its audit record carries (keyless)."""
    fingerprints: dict[str, bytes] = {}
    for ref, digest in conn.execute(
        select(audit_records.c.ref, audit_records.c.digest).where(
            and_(audit_records.c.log_id == log_id, audit_records.c.ref.like("incident:%"))
        )
    ):
        fingerprints[str(ref)] = bytes(digest)
    rows = conn.execute(
        select(
            incident_events.c.incident_id, incident_events.c.seq, incident_events.c.kind, incident_events.c.payload
        ).order_by(incident_events.c.incident_id, incident_events.c.seq),
        execution_options={"stream_results": True, "yield_per": 5000},
    )
    for incident_id, seq, kind, payload in rows:
        ref = f"incident:{incident_id}#{seq}"
        digest = fingerprints.pop(ref, None)
        if digest is None:
            report.errors.append(f"event {seq} of incident {incident_id} has no audit record")
            return
        if digest != record_format.event_digest(int(incident_id), int(seq), str(kind), str(payload)):
            report.errors.append(f"event {seq} of incident {incident_id} was changed after it was recorded")
            return
        report.events_checked += 1
    if fingerprints:
        missing = sorted(fingerprints)[0]
        report.errors.append(f"the audit log records {missing}, but that event is no longer in the database")
