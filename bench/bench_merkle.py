"""The audit log's Merkle tree speed, each figure beside a ceiling measured in the same run.

- CompactRange: leaf appends per second over a 1,000,000-leaf log (what the sealer and `ir audit verify`
  do, one pass, O(log n) memory), beside raw hashlib.sha256 of 65-byte inputs (0x01 || left || right) per
  second: an append costs one node hash amortized, so the raw hash rate is the ceiling;
- inclusion proofs for random leaves of the 1,000,000-leaf log through `inclusion_proof_from` with a cached
  range-root function (perfect subtree hashes stored per level, as a database would store them; ranges on
  the tree's right edge memoized), after building that cache in one pass; and cold, through a lazily
  memoized range-root function that has to hash every leaf for the first proof;
- consistency proofs through `consistency_proof_from` with the same cache, and verification of both kinds.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ir.adapters.audit.merkle import (  # noqa: E402
    HASH_SIZE,
    CompactRange,
    consistency_proof_from,
    inclusion_proof_from,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

N = 1_000_000
PROOFS = 10_000


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class SubtreeCache:
    """Every perfect subtree hash, level by level (level k: the hashes of leaves [j*2^k, (j+1)*2^k)), built
    in one pass; other ranges (only on the right edge of a tree) are combined from them and memoized."""

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        sha256 = hashlib.sha256
        level = b"".join(leaf_hashes)
        self.levels = [level]
        while len(level) >= 2 * HASH_SIZE:
            pairs = len(level) // (2 * HASH_SIZE)
            level = b"".join(sha256(b"\x01" + level[i * 64 : i * 64 + 64]).digest() for i in range(pairs))
            self.levels.append(level)
        self.memo: dict[tuple[int, int], bytes] = {}

    def range_root(self, start: int, end: int) -> bytes:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            k = n.bit_length() - 1
            j = start >> k
            return self.levels[k][j * HASH_SIZE : (j + 1) * HASH_SIZE]
        cached = self.memo.get((start, end))
        if cached is None:
            split = 1 << ((n - 1).bit_length() - 1)
            cached = node_hash(self.range_root(start, start + split), self.range_root(start + split, end))
            self.memo[(start, end)] = cached
        return cached


class LazyRangeRoots:
    """A cold cache: range roots computed on demand, those of 256 leaves or more memoized (so each is
    hashed once), smaller ones hashed from the leaves each time."""

    SMALL = 256

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        self.leaves = leaf_hashes
        self.memo: dict[tuple[int, int], bytes] = {}

    def range_root(self, start: int, end: int) -> bytes:
        n = end - start
        if n <= self.SMALL:
            tree = CompactRange()
            tree.extend(self.leaves[start:end])
            return tree.root()
        cached = self.memo.get((start, end))
        if cached is None:
            split = 1 << ((n - 1).bit_length() - 1)
            cached = node_hash(self.range_root(start, start + split), self.range_root(start + split, end))
            self.memo[(start, end)] = cached
        return cached


def main() -> None:
    rng = random.Random(6962)
    sha256 = hashlib.sha256
    leaves = [sha256(b"\x00" + i.to_bytes(8, "big") + b"audit entry").digest() for i in range(N)]
    inputs = [b"\x01" + leaves[i] + leaves[i - 1] for i in range(N)]

    def raw_hashes() -> None:
        for x in inputs:
            sha256(x).digest()

    def appends() -> None:
        tree = CompactRange()
        append = tree.append
        for h in leaves:
            append(h)

    def extend() -> None:
        CompactRange().extend(leaves)

    raw = N / best_of(raw_hashes)
    append_rate = N / best_of(appends)
    extend_rate = N / best_of(extend)
    tree = CompactRange()
    tree.extend(leaves)
    log_root = tree.root()
    inputs.clear()

    print(f"ceiling: hashlib.sha256 of 65-byte inputs: {raw:,.0f}/s (one node hash per append, amortized)")
    print(
        f"CompactRange.append, 1,000,000 leaves: {append_rate:,.0f} appends/s "
        f"({append_rate / raw:.0%} of the ceiling; target >= 500,000/s)"
    )
    print(
        f"CompactRange.extend, 1,000,000 leaves: {extend_rate:,.0f} leaves/s ({extend_rate / raw:.0%} of the ceiling)"
    )

    start = time.perf_counter()
    cache = SubtreeCache(leaves)
    build = time.perf_counter() - start
    assert cache.range_root(0, N) == log_root
    print(
        f"subtree cache for 1,000,000 leaves, one pass: {build:.2f} s "
        f"({N - 1:,} node hashes: {(N - 1) / build:,.0f}/s), {sum(len(x) for x in cache.levels) / 2**20:.0f} MiB"
    )

    indexes = [rng.randrange(N) for _ in range(PROOFS)]
    times: list[float] = []
    proofs = []
    for index in indexes:
        start = time.perf_counter()
        proof = inclusion_proof_from(index, N, cache.range_root)
        times.append(time.perf_counter() - start)
        proofs.append(proof)
    total = sum(times)
    print(
        f"inclusion proof, 1,000,000-leaf log, cached range roots: median {statistics.median(times) * 1e6:.1f} us, "
        f"mean {total / PROOFS * 1e6:.1f} us ({PROOFS / total:,.0f} proofs/s, {len(proofs[0])} hashes each)"
    )
    start = time.perf_counter()
    for index, proof in zip(indexes, proofs, strict=True):
        assert verify_inclusion(index, N, leaves[index], proof, log_root)
    verify_time = time.perf_counter() - start
    print(f"inclusion proof verification: {verify_time / PROOFS * 1e6:.1f} us each ({PROOFS / verify_time:,.0f}/s)")

    pairs = [tuple(sorted((rng.randrange(1, N + 1), rng.randrange(1, N + 1)))) for _ in range(1000)]
    prefix_roots = {}
    for old, new in pairs:
        for size in (old, new):
            if size not in prefix_roots:
                prefix_roots[size] = cache.range_root(0, size)
    start = time.perf_counter()
    consistency = [consistency_proof_from(old, new, cache.range_root) for old, new in pairs]
    build_time = time.perf_counter() - start
    start = time.perf_counter()
    for (old, new), proof in zip(pairs, consistency, strict=True):
        assert verify_consistency(old, new, prefix_roots[old], prefix_roots[new], proof)
    check_time = time.perf_counter() - start
    print(
        f"consistency proof, random sizes up to 1,000,000, cached range roots: {build_time / len(pairs) * 1e6:.1f} us "
        f"each; verification {check_time / len(pairs) * 1e6:.1f} us each"
    )

    lazy = LazyRangeRoots(leaves)
    start = time.perf_counter()
    first = inclusion_proof_from(indexes[0], N, lazy.range_root)
    cold = time.perf_counter() - start
    assert first == proofs[0]
    start = time.perf_counter()
    for index in indexes[1:1001]:
        inclusion_proof_from(index, N, lazy.range_root)
    warming = (time.perf_counter() - start) / 1000
    print(
        f"cold cache: first inclusion proof {cold:.2f} s (hashes every leaf once); "
        f"the next 1,000 proofs, ranges of >= 256 leaves memoized: mean {warming * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    main()
