"""Writing audit records: encrypted with AES-256-GCM in the command's own transaction (fail closed).

The associated data binds the log id, the record id, the key id and the subject reference, so a body
moved to another record, another log or another key does not decrypt. Sequence numbers and hashes are
given later by the sealer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, bindparam, insert

from ir.adapters.audit.keys import DataKeys
from ir.adapters.audit.record_format import NO_DIGEST, event_digest
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


class SqlAuditTrail:
    def __init__(self, conn: Connection, *, log_id: str, keys: DataKeys) -> None:
        self.conn = conn
        self.log_id = log_id
        self.keys = keys
        self._subject_key = keys.subject_key

    def event_digest(self, incident_id: int, seq: int, kind: str, payload: str) -> bytes:
        return event_digest(incident_id, seq, kind, payload)

    def subject_ref(self, subject: str) -> str:
        return hmac.new(self._subject_key, subject.encode(), hashlib.sha256).hexdigest()[:32]

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
        key_id, key = self.keys.current(self.conn, at)
        record_id = os.urandom(16).hex()
        subject_ref = self.subject_ref(subject)
        plaintext = json.dumps(
            {"action": action, "actor": actor, "subject": subject, "at": at.isoformat(), "payload": payload},
            ensure_ascii=False,
            separators=(",", ":"),
            default=str,
        ).encode()
        nonce = os.urandom(12)
        body = nonce + _cipher(key).encrypt(
            nonce, plaintext, associated_data(self.log_id, record_id, key_id, subject_ref)
        )
        row = {
            "id": record_id,
            "log_id": self.log_id,
            "created_at": at,
            "key_id": key_id,
            "subject_ref": subject_ref,
            "ref": ref,
            "digest": digest,
            "body": body,
        }
        raw = sqlite_fast.driver(self.conn)
        if raw is not None:
            raw.execute(_SQLITE_INSERT, sqlite_fast.bind(row))
        else:
            self.conn.execute(_INSERT, row)
