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
from ir.adapters.audit.merkle import CompactRange
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


def _rows(conn: Connection, log_id: str, batch: int = 5000) -> Iterator[tuple[Any, ...]]:
    """Sealed records in sequence order, streamed (raw driver cursor on SQLite: several times faster)."""
    query = (
        select(
            audit_records.c.seq,
            audit_records.c.id,
            audit_records.c.log_id,
            audit_records.c.created_at,
            audit_records.c.key_id,
            audit_records.c.subject_ref,
            audit_records.c.ref,
            audit_records.c.digest,
            audit_records.c.body,
            audit_records.c.prev_hash,
            audit_records.c.entry_hash,
        )
        .where(and_(audit_records.c.log_id == log_id, audit_records.c.seq.is_not(None)))
        .order_by(audit_records.c.seq)
    )
    if conn.dialect.name == "sqlite":
        from ir.adapters.db.sqlite_fast import compiled, driver

        raw = driver(conn)
        assert raw is not None
        cursor = raw.execute(compiled(query), {"log_id_1": log_id})
        while True:
            chunk = cursor.fetchmany(batch)
            if not chunk:
                return
            yield from chunk
    else:
        result = conn.execute(query, execution_options={"stream_results": True, "yield_per": batch})
        yield from result


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
    prefix = record_format.MAGIC + bytes((len(log_id.encode()),)) + log_id.encode()
    frontier = CompactRange()
    expected_seq = 0
    prev = record_format.GENESIS
    short_cache: dict[str, bytes] = {}

    def short(value: str, *, cache: bool = True) -> bytes:
        found = short_cache.get(value) if cache else None
        if found is None:
            raw = value.encode()
            if len(raw) > 255:
                raise ValueError("a header field is longer than 255 bytes")
            found = bytes((len(raw),)) + raw
            if cache:  # key ids and subject references repeat; refs are unique per record
                if len(short_cache) > 4096:
                    short_cache.clear()
                short_cache[value] = found
        return found

    pack = record_format._SEQ_TS.pack
    sha = hashlib.sha256
    first_error: str | None = None
    for row in _rows(conn, log_id):
        seq, record_id, row_log, created, key_id, subject_ref, ref, digest, body, prev_hash, stored_hash = row
        problem = None
        if seq != expected_seq:
            problem = (
                f"record {record_id}: sequence {seq} where {expected_seq} was expected "
                f"({'a record is missing' if seq > expected_seq else 'duplicated or renumbered'})"
            )
        elif row_log != log_id:
            problem = f"record {record_id} (#{seq}) belongs to log '{row_log}'"
        else:
            try:
                header = b"".join(
                    (
                        prefix,
                        pack(seq, record_format.micros(_parse_time(created))),
                        bytes.fromhex(record_id),
                        short(key_id),
                        short(subject_ref),
                        short(ref, cache=False),
                        bytes(digest),
                        bytes(prev_hash) if prev_hash is not None else b"",
                    )
                )
            except (ValueError, TypeError, OverflowError, AssertionError) as exc:
                report.errors.append(f"record {record_id!r} (#{seq}): a field is malformed ({exc})")
                break
            h = sha(b"\x00")
            h.update(header)
            h.update(body)
            entry = h.digest()
            if prev_hash is None or bytes(prev_hash) != prev:
                problem = f"record {record_id} (#{seq}): its previous hash does not match record #{seq - 1}"
            elif stored_hash is None or bytes(stored_hash) != entry:
                problem = (
                    f"record {record_id} (#{seq}): its content does not match its entry hash "
                    "(a field or the encrypted body was changed)"
                )
            prev = entry if stored_hash is None else bytes(stored_hash)
            frontier.append(prev)
        if problem is not None and first_error is None:
            first_error = problem
            report.errors.append(problem)
            break
        expected_seq += 1
        cp = checkpoints.get(expected_seq)
        if cp is not None:
            if cp.root != frontier.root():
                report.errors.append(
                    f"the log's root at size {expected_seq} differs from its signed checkpoint: records up to "
                    f"#{expected_seq - 1} were changed and their hashes recomputed "
                    "(or the checkpoint is from another log)"
                )
                break
            report.checkpoints.append(expected_seq)
        if progress is not None and expected_seq % 50_000 == 0:
            progress(expected_seq, total)
    report.size = frontier.size
    report.root = frontier.root()
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
        progress(expected_seq, total)
    return report


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
