"""The bytes of one sealed audit record, and its entry hash.

    header = "IRA1" || len(log_id) u8 || log_id || seq u64 || created_at µs i64 || record id (16 bytes)
             || len(key_id) u8 || key_id || len(subject_ref) u8 || subject_ref
             || len(ref) u8 || ref || digest (32 bytes) || prev_hash (32 bytes)

`ref` names what the record is about (`incident:42#17`: event 17 of incident 42) and `digest` is the
SHA-256 of that stored event, so `ir audit verify --events` checks every event against its record
without any key.
    body   = nonce (12 bytes) || AES-256-GCM ciphertext and tag
    entry_hash = SHA-256(0x00 || header || body)        (the RFC 6962 leaf hash of header || body)

The hash covers the ciphertext, so an auditor verifies the chain and the Merkle tree without any key,
and erasing a person's key (crypto-shredding) leaves every hash intact.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime

MAGIC = b"IRA1"
GENESIS = bytes(32)  # the previous hash of the first record
NO_DIGEST = bytes(32)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEQ_TS = struct.Struct(">Qq")


def micros(at: datetime) -> int:
    delta = at.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _short(value: str) -> bytes:
    raw = value.encode()
    if len(raw) > 255:
        raise ValueError("audit header field longer than 255 bytes")
    return bytes((len(raw),)) + raw


def header(
    *,
    log_id: str,
    seq: int,
    created_us: int,
    record_id: str,
    key_id: str,
    subject_ref: str,
    ref: str,
    digest: bytes,
    prev_hash: bytes,
) -> bytes:
    if len(prev_hash) != 32:
        raise ValueError("prev_hash and digest are 32 bytes")
    return b"".join(
        (
            log_prefix(log_id),
            _SEQ_TS.pack(seq, created_us),
            fixed_part(record_id=record_id, key_id=key_id, subject_ref=subject_ref, ref=ref, digest=digest),
            prev_hash,
        )
    )


def log_prefix(log_id: str) -> bytes:
    """The header's first part: the same for every record of a log."""
    return MAGIC + _short(log_id)


def fixed_part(*, record_id: str, key_id: str, subject_ref: str, ref: str, digest: bytes) -> bytes:
    """The header's fields between the sequence number and the previous hash: known before sealing, so
    the writer computes them and the sealer only adds the sequence number and the previous hash."""
    if len(digest) != 32:
        raise ValueError("prev_hash and digest are 32 bytes")
    return b"".join((bytes.fromhex(record_id), fixed_fields(key_id, subject_ref, ref), digest))


def fixed_fields(key_id: str, subject_ref: str, ref: str) -> bytes:
    """The fixed part's length-prefixed text fields (between the record id and the digest)."""
    return b"".join((_short(key_id), _short(subject_ref), _short(ref)))


def sealed_entry_hash(prefix: bytes, seq: int, created_us: int, fixed: bytes, prev_hash: bytes, body: bytes) -> bytes:
    """entry_hash(header(...), body) from a log's prefix and a record's fixed part (the same bytes)."""
    return hashlib.sha256(b"".join((b"\x00", prefix, _SEQ_TS.pack(seq, created_us), fixed, prev_hash, body))).digest()


def event_digest(incident_id: int, seq: int, kind: str, payload: str) -> bytes:
    """What an incident event's audit record commits to: its identity and its stored payload."""
    return hashlib.sha256(f"ir-event-v1\n{incident_id}\n{seq}\n{kind}\n".encode() + payload.encode()).digest()


def entry_hash(header_bytes: bytes, body: bytes) -> bytes:
    h = hashlib.sha256(b"\x00")
    h.update(header_bytes)
    h.update(body)
    return h.digest()
