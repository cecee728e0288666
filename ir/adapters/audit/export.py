"""Reading the audit log for auditors: records with inclusion proofs, consistency proofs, decryption.

Proofs are answered from an index of the entry hashes by tree level (32 bytes a node: about 64 MB for a
million records), built in one streaming pass and kept in temporary files, not in memory: a proof reads
one node a level, through a small cache of one block a level. An export walks the records in order, so
consecutive proofs read the same blocks; memory stays O(log n) whatever the log's size.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, and_, select

from ir.adapters.audit.keys import DataKeys
from ir.adapters.audit.merkle import EMPTY_ROOT, HASH_SIZE, inclusion_proof_from, node_hash
from ir.adapters.audit.writer import associated_data
from ir.adapters.db.tables import audit_checkpoints, audit_records

_BLOCK = 2048  # nodes a level reads or writes at once (64 KiB)
_NODE = b"\x01"


class TreeIndex:
    """Entry hashes by tree level, for range roots in O(log n) node reads; levels live in temporary files.

    Level 0 holds the leaves (entry hashes), level k the roots of the aligned perfect subtrees of 2^k
    leaves that are complete so far. Each level keeps one block being written and one block read."""

    def __init__(self, folder: str | None = None) -> None:
        self.size = 0
        self._folder = folder
        self._files: list[IO[bytes]] = []
        self._written: list[int] = []  # nodes a level has in its file
        self._tail: list[bytearray] = []  # nodes a level has not written yet
        self._read: list[tuple[int, bytes]] = []  # (first node, bytes) of the block a level last read
        self._left: list[bytes] = []  # a level's last node, when it is a left child (its pair is not complete)
        self._ranges: dict[tuple[int, int], bytes] = {}  # roots of ranges that are not perfect subtrees

    def __enter__(self) -> TreeIndex:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()

    def _level(self) -> None:
        self._files.append(tempfile.TemporaryFile(dir=self._folder))  # noqa: SIM115 (closed by close())
        self._written.append(0)
        self._tail.append(bytearray())
        self._read.append((-1, b""))
        self._left.append(b"")

    def append(self, leaf: bytes) -> None:
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
        self.extend((leaf,))

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add leaf hashes in order (each as `append`, faster)."""
        if not self._files:
            self._level()
        tails = self._tail
        lefts = self._left
        sha = hashlib.sha256
        full = _BLOCK * HASH_SIZE
        size = self.size
        try:
            for leaf in leaves:
                h = bytes(leaf)
                if len(h) != HASH_SIZE:
                    raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
                index = size
                size += 1
                level = 0
                while True:
                    tail = tails[level]
                    tail += h
                    if len(tail) >= full:
                        self._flush(level)
                    if not index & 1:
                        lefts[level] = h  # waits for its right sibling
                        break
                    h = sha(_NODE + lefts[level] + h).digest()  # a completed pair: its parent exists now
                    index >>= 1
                    level += 1
                    if level == len(tails):
                        self._level()
        finally:
            self.size = size

    def _flush(self, level: int) -> None:
        tail = self._tail[level]
        f = self._files[level]
        f.seek(self._written[level] * HASH_SIZE)
        f.write(tail)
        f.flush()
        self._written[level] += len(tail) // HASH_SIZE
        self._tail[level] = bytearray()

    def _node(self, level: int, i: int) -> bytes:
        written = self._written[level]
        if i >= written:
            at = (i - written) * HASH_SIZE
            return bytes(self._tail[level][at : at + HASH_SIZE])
        first, block = self._read[level]
        if not first <= i < first + len(block) // HASH_SIZE:
            first = i - i % _BLOCK
            block = os.pread(self._files[level].fileno(), _BLOCK * HASH_SIZE, first * HASH_SIZE)
            self._read[level] = (first, block)
        at = (i - first) * HASH_SIZE
        return block[at : at + HASH_SIZE]

    def _count(self, level: int) -> int:
        return self._written[level] + len(self._tail[level]) // HASH_SIZE if level < len(self._files) else 0

    def range_root(self, start: int, end: int) -> bytes:
        """MTH of leaves[start:end] (RFC 6962 §2.1)."""
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"leaves {start}..{end} are outside the {self.size} indexed")
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:  # a perfect, aligned subtree: stored once complete
            level = n.bit_length() - 1
            i = start >> level
            if i < self._count(level):
                return self._node(level, i)
        found = self._ranges.get((start, end))
        if found is None:
            k = 1 << ((n - 1).bit_length() - 1)
            found = node_hash(self.range_root(start, start + k), self.range_root(start + k, end))
            if len(self._ranges) > 4096:
                self._ranges.clear()
            self._ranges[(start, end)] = found  # the right edge of a tree: asked for by every proof
        return found

    def proof(self, index: int, size: int) -> list[bytes]:
        return inclusion_proof_from(index, size, self.range_root)

    def prover(self, size: int) -> Callable[[int], list[bytes]]:
        """Inclusion proofs in the tree of the first `size` leaves, fast when leaves are asked in order.

        PATH(i, D[size]) read level by level: at level k the node holding leaf i covers the aligned range
        of 2^k leaves at (i >> k) << k, cut at `size`; its sibling is the range next to it, when that
        range holds any leaf (on the tree's right edge it may not: the node then has no sibling at that
        level). The proof lists those siblings' roots from the bottom, up to the level whose node is the
        whole tree. Each level keeps the sibling it last read: in order, a level's sibling changes once
        every 2^(k+1) leaves, so a proof costs about two reads."""
        if not 0 <= size <= self.size:
            raise ValueError(f"a tree of {size} leaves, but {self.size} are indexed")
        levels = max(size - 1, 0).bit_length()  # 2^levels >= size: the level whose node is the whole tree
        siblings: list[bytes | None] = [None] * levels  # the last proof, a level at a time (None: no sibling)
        last = [-1]
        range_root = self.range_root

        def proof(index: int) -> list[bytes]:
            if not 0 <= index < size:
                raise ValueError(f"leaf index {index} is outside a tree of size {size}")
            before = last[0]
            # the levels whose sibling differs from the last proof's: those below the highest bit that changed
            changed = levels if before < 0 else min(levels, (index ^ before).bit_length())
            for k in range(changed):
                start = ((index >> k) ^ 1) << k
                siblings[k] = range_root(start, min(start + (1 << k), size)) if start < size else None
            last[0] = index
            return [h for h in siblings if h is not None]

        return proof


_SQLITE_ENTRY_HASHES = "SELECT entry_hash FROM audit_records WHERE log_id = ? AND seq IS NOT NULL ORDER BY seq LIMIT ?"


def build_index(conn: Connection, log_id: str, size: int | None = None) -> TreeIndex:
    """The index of the first `size` sealed records (all of them by default), streamed from the database."""
    index = TreeIndex()
    limit = -1 if size is None else size
    if conn.dialect.name == "sqlite":
        from ir.adapters.db.sqlite_fast import driver

        raw = driver(conn)
        assert raw is not None
        cursor = raw.execute(_SQLITE_ENTRY_HASHES, (log_id, limit))
        while rows := cursor.fetchmany(20_000):
            index.extend(h for (h,) in rows)
        return index
    query = (
        select(audit_records.c.entry_hash)
        .where(and_(audit_records.c.log_id == log_id, audit_records.c.seq.is_not(None)))
        .order_by(audit_records.c.seq)
    )
    if size is not None:
        query = query.limit(size)
    result = conn.execute(query, execution_options={"stream_results": True, "yield_per": 20_000})
    for part in result.partitions():
        index.extend(h for (h,) in part)
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
