"""Writing audit records: encrypted with AES-256-GCM in the command's own transaction (fail closed).

The associated data binds the log id, the record id, the key id and the subject reference, so a body
moved to another record, another log or another key does not decrypt. Sequence numbers and hashes are
given later by the sealer; the group-commit appender, whose transactions hold nothing but audit records,
has them sealed as it writes them (`Sealer.write_sealed`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, bindparam, insert

from ir.adapters.audit.keys import DataKeys
from ir.adapters.audit.record_format import NO_DIGEST, event_digest, fixed_fields, micros
from ir.adapters.db import sqlite_fast
from ir.adapters.db.tables import audit_records

_INSERT = insert(audit_records)
_SQLITE_INSERT = sqlite_fast.compiled(
    insert(audit_records).values(
        {n: bindparam(n) for n in ("id", "log_id", "created_at", "key_id", "subject_ref", "ref", "digest", "body")}
    )
)
_CIPHERS: dict[bytes, AESGCM] = {}


def _cipher(key: bytes) -> AESGCM:
    found = _CIPHERS.get(key)
    if found is None:
        found = _CIPHERS[key] = AESGCM(key)
    return found


def associated_data(log_id: str, record_id: str, key_id: str, subject_ref: str) -> bytes:
    return b"\x00".join(part.encode() for part in ("ir-audit-v1", log_id, record_id, key_id, subject_ref))


@dataclass(frozen=True, slots=True)
class NewRecord:
    """One encrypted record, not yet written: what the audit_records row holds before it is sealed."""

    id: str
    created_at: datetime
    created_us: int  # created_at in microseconds since the epoch, as the header has it
    key_id: str
    subject_ref: str
    ref: str
    digest: bytes
    body: bytes
    fixed: bytes  # the header's part known before sealing (record_format.fixed_part)

    def row(self, log_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "log_id": log_id,
            "created_at": self.created_at,
            "key_id": self.key_id,
            "subject_ref": self.subject_ref,
            "ref": self.ref,
            "digest": self.digest,
            "body": self.body,
        }


class RecordMaker:
    """Encrypts records under a given data key (no database needed: usable in any thread)."""

    def __init__(self, *, log_id: str, keys: DataKeys) -> None:
        self._local = threading.local()
        self.log_id = log_id
        self.keys = keys
        self._subject_key = keys.subject_key
        self._at: tuple[datetime, int] | None = None  # the last instant and its microseconds (batches share one)
        self._aad_head = associated_data(log_id, "", "", "").rsplit(b"\x00", 3)[0] + b"\x00"
        # the few subjects and keys a process records under, each computed once: the HMAC of the subject,
        # and the header's bytes for (key id, subject ref, ref) (bounded: cleared when full)
        self._refs: dict[str, str] = {}
        self._fields: dict[tuple[str, str, str], bytes] = {}

    def _random28(self) -> bytes:
        """28 fresh random bytes (a record id and a nonce), cut from a block of os.urandom this thread drew:
        each call of os.urandom releases the GIL and waits to get it back, which a busy writer paid once a
        record. Never reused: each slice is handed out once, and a forked child draws its own block."""
        local = self._local
        block: bytes = getattr(local, "block", b"")
        at: int = getattr(local, "at", 0)
        if at + 28 > len(block) or getattr(local, "pid", 0) != os.getpid():
            block, at = os.urandom(28 * 64), 0
            local.block, local.pid = block, os.getpid()
        local.at = at + 28
        return block[at : at + 28]

    def subject_ref(self, subject: str) -> str:
        found = self._refs.get(subject)
        if found is None:
            if len(self._refs) >= 4096:
                self._refs.clear()
            found = self._refs[subject] = hmac.digest(self._subject_key, subject.encode(), hashlib.sha256).hex()[:32]
        return found

    def make(
        self,
        key: tuple[str, bytes],
        *,
        action: str,
        actor: str,
        subject: str,
        payload: dict[str, Any],
        at: datetime,
        ref: str = "",
        digest: bytes = NO_DIGEST,
    ) -> NewRecord:
        key_id, data_key = key
        random = self._random28()
        # the id: the millisecond, then 10 random bytes. Ids that grow with time are inserted at the end of
        # the primary key's B-tree; wholly random ones landed anywhere in it, and as the log grew every
        # commit rewrote pages all over the index (batches of 100: 34,000 -> 24,000 records/s at 50,000)
        ident = (time.time_ns() // 1_000_000).to_bytes(6, "big") + random[6:16]
        record_id, nonce = ident.hex(), random[16:]
        subject_ref = self.subject_ref(subject)
        plaintext = json.dumps(
            {"action": action, "actor": actor, "subject": subject, "at": at.isoformat(), "payload": payload},
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        ).encode()
        aad = b"\x00".join((self._aad_head + record_id.encode(), key_id.encode(), subject_ref.encode()))
        body = nonce + _cipher(data_key).encrypt(nonce, plaintext, aad)
        last = self._at
        if last is None or last[0] != at:
            last = self._at = (at, micros(at))
        fields = self._fields.get((key_id, subject_ref, ref))
        if fields is None:
            if len(self._fields) >= 4096:
                self._fields.clear()
            fields = self._fields[(key_id, subject_ref, ref)] = fixed_fields(key_id, subject_ref, ref)
        if len(digest) != 32:
            raise ValueError("prev_hash and digest are 32 bytes")
        fixed = b"".join((ident, fields, digest))
        return NewRecord(record_id, at, last[1], key_id, subject_ref, ref, digest, body, fixed)


class SqlAuditTrail:
    def __init__(
        self,
        conn: Connection,
        *,
        log_id: str,
        keys: DataKeys,
        maker: RecordMaker | None = None,
        held: list[NewRecord] | None = None,
    ) -> None:
        self.conn = conn
        self.log_id = log_id
        self.keys = keys
        self.maker = maker or RecordMaker(log_id=log_id, keys=keys)
        # records kept back rather than inserted: a unit of work in a batch, whose records are inserted
        # already sealed when the batch ends (Database.batch)
        self.held = held

    def event_digest(self, incident_id: int, seq: int, kind: str, payload: str) -> bytes:
        return event_digest(incident_id, seq, kind, payload)

    def subject_ref(self, subject: str) -> str:
        return self.maker.subject_ref(subject)

    def record(
        self,
        *,
        action: str,
        actor: str,
        subject: str,
        payload: dict[str, Any],
        at: datetime,
        ref: str = "",
        digest: bytes = NO_DIGEST,
    ) -> None:
        self.insert(
            self.make(action=action, actor=actor, subject=subject, payload=payload, at=at, ref=ref, digest=digest)
        )

    def insert(self, new: NewRecord) -> None:
        """Write one record, unsealed (or keep it back, if this trail holds its records)."""
        if self.held is not None:
            self.held.append(new)
            return
        row = new.row(self.log_id)
        raw = sqlite_fast.driver(self.conn)
        if raw is not None:
            raw.execute(_SQLITE_INSERT, sqlite_fast.bind(row))
        else:
            self.conn.execute(_INSERT, row)

    def make(
        self,
        *,
        action: str,
        actor: str,
        subject: str,
        payload: dict[str, Any],
        at: datetime,
        ref: str = "",
        digest: bytes = NO_DIGEST,
    ) -> NewRecord:
        """Encrypt one record (a new data key, if this month has none yet, is stored on this connection)."""
        key = self.keys.current(self.conn, at)
        return self.maker.make(
            key, action=action, actor=actor, subject=subject, payload=payload, at=at, ref=ref, digest=digest
        )
