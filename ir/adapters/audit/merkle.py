"""The RFC 6962 Merkle tree (RFC 9162 §2.1) over the audit log's entry hashes: roots, and inclusion and
consistency proofs with their verification.

A leaf hash is SHA-256(0x00 || data) and an interior node SHA-256(0x01 || left || right), so a leaf can never
be taken for a node. Everything is iterative (no recursion), and the proof builders only ask for the roots
of leaf ranges, so a database-backed log can answer proofs from stored or cached subtree hashes
(`inclusion_proof_from`, `consistency_proof_from`); `CompactRange` computes the root of any number of
leaves in one pass with O(log n) memory.

The verifiers never raise on malformed input: wrong sizes, out-of-range indexes, proofs of the wrong
length and hashes of the wrong length or type all return False.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

RangeRoot = Callable[[int, int], bytes]
"""get_range_root(start, end): the Merkle tree hash of leaves[start:end] (0 <= start < end <= size)."""

_sha256 = hashlib.sha256
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the hash of one leaf (the audit log's entry hash)."""
    return _sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    if len(left) != HASH_SIZE or len(right) != HASH_SIZE:
        raise ValueError(f"a node's children are {HASH_SIZE}-byte hashes")
    return _sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): the size of the left subtree."""
    return 1 << ((n - 1).bit_length() - 1)


class CompactRange:
    """The roots of the perfect subtrees covering leaves [0, size), left to right (largest first).

    `append` merges equal-sized subtrees as a binary counter carries, one node hash per leaf amortized;
    `root()` folds the at most log2(size) + 1 subtree roots from the right. `hashes` and `from_state` let
    a sealer persist the range and resume it later.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._hashes: list[bytes] = []
        self._size = 0

    @classmethod
    def from_state(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """Resume a range saved as (`size`, `hashes`): one hash per set bit of size, largest subtree first."""
        if size < 0 or len(hashes) != size.bit_count():
            raise ValueError(f"a compact range of size {size} holds {max(size, 0).bit_count()} hashes")
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(f"a compact range holds {HASH_SIZE}-byte hashes")
        state = cls()
        state._hashes = [bytes(h) for h in hashes]
        state._size = size
        return state

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf, given by its leaf hash."""
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
        hashes = self._hashes
        n = self._size
        h = bytes(leaf_hash)
        while n & 1:
            h = _sha256(_NODE + hashes.pop() + h).digest()
            n >>= 1
        hashes.append(h)
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Add many leaves (the same as `append` for each, faster)."""
        hashes = self._hashes
        pop = hashes.pop
        push = hashes.append
        size = self._size
        for leaf in leaf_hashes:
            if len(leaf) != HASH_SIZE:
                self._size = size
                raise ValueError(f"a leaf hash is {HASH_SIZE} bytes")
            h = bytes(leaf)
            n = size
            while n & 1:
                h = _sha256(_NODE + pop() + h).digest()
                n >>= 1
            push(h)
            size += 1
        self._size = size

    def root(self) -> bytes:
        """The Merkle tree hash of the leaves appended so far (EMPTY_ROOT for none)."""
        hashes = self._hashes
        if not hashes:
            return EMPTY_ROOT
        h = hashes[-1]
        for left in reversed(hashes[:-1]):
            h = _sha256(_NODE + left + h).digest()
        return h


def root(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over already-hashed leaves."""
    tree = CompactRange()
    tree.extend(leaf_hashes)
    return tree.root()


def _range_root_of(leaf_hashes: Sequence[bytes]) -> RangeRoot:
    def get_range_root(start: int, end: int) -> bytes:
        return root(leaf_hashes[start:end])

    return get_range_root


def _fetched(get_range_root: RangeRoot, start: int, end: int) -> bytes:
    h = get_range_root(start, end)
    if not isinstance(h, bytes) or len(h) != HASH_SIZE:
        raise ValueError(f"get_range_root({start}, {end}) did not return a {HASH_SIZE}-byte hash")
    return h


def inclusion_proof_from(index: int, size: int, get_range_root: RangeRoot) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf's sibling first, built from range roots.

    Asks for exactly len(proof) ranges, each a perfect subtree except along the tree's right edge.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    proof: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            proof.append(_fetched(get_range_root, mid, hi))
            hi = mid
        else:
            proof.append(_fetched(get_range_root, lo, mid))
            lo = mid
    proof.reverse()
    return proof


def consistency_proof_from(old_size: int, new_size: int, get_range_root: RangeRoot) -> list[bytes]:
    """PROOF(old_size, D[new_size]) = SUBPROOF(old_size, D[new_size], true) (RFC 9162 §2.1.4.1), built from
    range roots; empty when old_size is 0 or equals new_size."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    proof: list[bytes] = []
    if old_size in (0, new_size):
        return proof
    lo, hi = 0, new_size
    whole = True  # the flag b: the old tree is the whole of the current subtree's left part so far
    while True:
        if old_size == hi:
            if not whole:
                proof.append(_fetched(get_range_root, lo, hi))
            break
        mid = lo + _split(hi - lo)
        if old_size <= mid:
            proof.append(_fetched(get_range_root, mid, hi))
            hi = mid
        else:
            proof.append(_fetched(get_range_root, lo, mid))
            lo = mid
            whole = False
    proof.reverse()
    return proof


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) over all the leaves, n = len(leaf_hashes)."""
    return inclusion_proof_from(index, len(leaf_hashes), _range_root_of(leaf_hashes))


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, D[n]) over all the leaves, n = len(leaf_hashes)."""
    return consistency_proof_from(old_size, len(leaf_hashes), _range_root_of(leaf_hashes))


def _size_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _hash_or_none(value: object) -> bytes | None:
    if not isinstance(value, bytes | bytearray | memoryview):
        return None
    h = bytes(value)
    return h if len(h) == HASH_SIZE else None


def _path_or_none(proof: object) -> list[bytes] | None:
    if isinstance(proof, str | bytes | bytearray | memoryview) or not isinstance(proof, Iterable):
        return None
    path: list[bytes] = []
    try:
        for element in proof:
            h = _hash_or_none(element)
            if h is None:
                return None
            path.append(h)
    except Exception:  # a malformed iterable: not a proof
        return None
    return path


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether `proof` shows the leaf with `leaf_hash` at `index` in the tree of `size` leaves with `root`
    (RFC 9162 §2.1.3.2)."""
    fn = _size_or_none(index)
    size_ = _size_or_none(size)
    leaf = _hash_or_none(leaf_hash)
    expected = _hash_or_none(root)
    path = _path_or_none(proof)
    if fn is None or size_ is None or leaf is None or expected is None or path is None or fn >= size_:
        return False
    sn = size_ - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _sha256(_NODE + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` shows the tree of `new_size` leaves with `new_root` extends the tree of `old_size`
    leaves with `old_root` (RFC 9162 §2.1.4.2).

    Equal sizes need an empty proof and equal roots; old_size 0 needs an empty proof and old_root
    EMPTY_ROOT (every tree extends the empty one). The proof must be consumed exactly, with the second
    size fully consumed.
    """
    first = _size_or_none(old_size)
    second = _size_or_none(new_size)
    first_hash = _hash_or_none(old_root)
    second_hash = _hash_or_none(new_root)
    path = _path_or_none(proof)
    if first is None or second is None or first_hash is None or second_hash is None or path is None:
        return False
    if first > second:
        return False
    if first == second:
        return not path and first_hash == second_hash and (first != 0 or first_hash == EMPTY_ROOT)
    if first == 0:
        return not path and first_hash == EMPTY_ROOT
    if not path:
        return False
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    fn = first - 1
    sn = second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE + c + fr).digest()
            sr = _sha256(_NODE + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(_NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_hash and sr == second_hash
