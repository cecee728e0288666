"""Reading the audit log for auditors: records with inclusion proofs, consistency proofs, decryption.

Proofs are answered from an in-memory index of the entry hashes (32 bytes each, in one bytearray per
tree level: about 64 MB for a million records), built in one streaming pass.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, and_, select

from ir.adapters.audit.keys import DataKeys
from ir.adapters.audit.merkle import EMPTY_ROOT, inclusion_proof_from, node_hash
from ir.adapters.audit.writer import associated_data
from ir.adapters.db.tables import audit_checkpoints, audit_records


class TreeIndex:
    """Entry hashes by tree level, for range roots in O(log n)."""

    def __init__(self) -> None:
        self.levels: list[bytearray] = [bytearray()]
        self.size = 0

    def append(self, leaf: bytes) -> None:
        self.levels[0] += leaf
        self.size += 1
        index, level = self.size - 1, 0
        while index % 2 == 1:  # a completed pair: its parent exists now
            if level + 1 == len(self.levels):
                self.levels.append(bytearray())
            row = self.levels[level]
            left = bytes(row[(index - 1) * 32 : index * 32])
            right = bytes(row[index * 32 : (index + 1) * 32])
            self.levels[level + 1] += node_hash(left, right)
            index //= 2
            level += 1

    def range_root(self, start: int, end: int) -> bytes:
        """MTH of leaves[start:end] (RFC 6962 §2.1)."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:  # a perfect, aligned subtree: stored
            level = n.bit_length() - 1
            row = self.levels[level] if level < len(self.levels) else None
            i = start >> level
            if row is not None and (i + 1) * 32 <= len(row):
                return bytes(row[i * 32 : (i + 1) * 32])
        if n == 1:
            return bytes(self.levels[0][start * 32 : (start + 1) * 32])
        k = 1 << ((n - 1).bit_length() - 1)
        return node_hash(self.range_root(start, start + k), self.range_root(start + k, end))

    def proof(self, index: int, size: int) -> list[bytes]:
        return inclusion_proof_from(index, size, self.range_root)


def build_index(conn: Connection, log_id: str, size: int | None = None) -> TreeIndex:
    index = TreeIndex()
    query = (
        select(audit_records.c.entry_hash)
        .where(and_(audit_records.c.log_id == log_id, audit_records.c.seq.is_not(None)))
        .order_by(audit_records.c.seq)
    )
    if size is not None:
        query = query.limit(size)
    for (entry,) in conn.execute(query, execution_options={"stream_results": True, "yield_per": 10_000}):
        index.append(bytes(entry))
    return index


def latest_checkpoint(conn: Connection, log_id: str) -> tuple[int, bytes, str] | None:
    row = conn.execute(
        select(audit_checkpoints.c.size, audit_checkpoints.c.root, audit_checkpoints.c.note)
        .where(audit_checkpoints.c.log_id == log_id)
        .order_by(audit_checkpoints.c.size.desc())
        .limit(1)
    ).first()
    return (int(row[0]), bytes(row[1]), str(row[2])) if row else None


@dataclass(frozen=True, slots=True)
class Decrypted:
    ok: bool
    content: dict[str, Any] | None
    problem: str | None = None


def decrypt(conn: Connection, keys: DataKeys, log_id: str, row: Any) -> Decrypted:
    try:
        key = keys.get(conn, row.key_id)
    except Exception as exc:
        return Decrypted(False, None, f"no key: {exc}")
    body = bytes(row.body)
    aad = associated_data(log_id, row.id, row.key_id, row.subject_ref)
    try:
        plain = AESGCM(key).decrypt(body[:12], body[12:], aad)
    except InvalidTag:
        return Decrypted(False, None, "does not decrypt: the body was moved or changed")
    return Decrypted(True, json.loads(plain))


def records(
    conn: Connection,
    log_id: str,
    *,
    first: int = 0,
    last: int | None = None,
    after_time: Any = None,
    before_time: Any = None,
) -> Iterator[Any]:
    query = select(audit_records).where(and_(audit_records.c.log_id == log_id, audit_records.c.seq >= first))
    if last is not None:
        query = query.where(audit_records.c.seq <= last)
    if after_time is not None:
        query = query.where(audit_records.c.created_at >= after_time)
    if before_time is not None:
        query = query.where(audit_records.c.created_at < before_time)
    yield from conn.execute(
        query.order_by(audit_records.c.seq), execution_options={"stream_results": True, "yield_per": 5000}
    )


def record_json(row: Any, *, proof: list[bytes] | None, tree_size: int | None) -> dict[str, Any]:
    b64 = base64.b64encode
    out: dict[str, Any] = {
        "seq": row.seq,
        "id": row.id,
        "created_at": row.created_at.isoformat(),
        "key_id": row.key_id,
        "subject_ref": row.subject_ref,
        "ref": row.ref,
        "digest": bytes(row.digest).hex(),
        "prev_hash": bytes(row.prev_hash).hex() if row.prev_hash is not None else None,
        "entry_hash": bytes(row.entry_hash).hex() if row.entry_hash is not None else None,
        "body": b64(bytes(row.body)).decode(),
    }
    if proof is not None:
        out["inclusion"] = {"tree_size": tree_size, "proof": [p.hex() for p in proof]}
    return out
