"""The audit log's RFC 6962 Merkle tree: known-answer roots, streaming roots, and inclusion and consistency
proofs that verify when true and fail under the transparency-dev probe list when anything is changed."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir.adapters.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    consistency_proof,
    consistency_proof_from,
    inclusion_proof,
    inclusion_proof_from,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from tests.standards import RFC6962_KNOWN_ANSWERS

KNOWN_ANSWERS = RFC6962_KNOWN_ANSWERS


def _known_answers() -> tuple[list[bytes], list[bytes]]:
    if not KNOWN_ANSWERS.is_file():
        pytest.fail(f"the RFC 6962 known answers are missing: expected them at {KNOWN_ANSWERS}")
    data = json.loads(KNOWN_ANSWERS.read_text())
    return [bytes.fromhex(x) for x in data["leaf_inputs_hex"]], [bytes.fromhex(x) for x in data["root_hashes_hex"]]


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


# Reference proofs over the same eight leaves (transparency-dev/merkle and Trillian test data).
REFERENCE_INCLUSION = {
    (0, 1): [],
    (0, 2): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    (1, 2): ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
REFERENCE_CONSISTENCY = {
    (1, 1): [],
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (2, 8): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
}

# Independent recursive references, written straight from the RFC 9162 definitions.


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def reference_mth(leaves: Sequence[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return hashlib.sha256(b"\x01" + reference_mth(leaves[:k]) + reference_mth(leaves[k:])).digest()


def reference_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if m < k:
        return [*reference_path(m, leaves[:k]), reference_mth(leaves[k:])]
    return [*reference_path(m - k, leaves[k:]), reference_mth(leaves[:k])]


def reference_subproof(m: int, leaves: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if b else [reference_mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*reference_subproof(m, leaves[:k], b), reference_mth(leaves[k:])]
    return [*reference_subproof(m - k, leaves[k:], False), reference_mth(leaves[:k])]


LEAVES = [leaf_hash(i.to_bytes(4, "big") + b"audit record") for i in range(300)]
ROOTS = [reference_mth(LEAVES[:n]) for n in range(65)]
WRONG = hashlib.sha256(b"WrongRoot").digest()


def _flip(h: bytes, bit: int) -> bytes:
    changed = bytearray(h)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


# Known answers.


def test_known_answer_roots_for_every_prefix() -> None:
    inputs, roots = _known_answers()
    assert len(roots) == 9
    hashes = [leaf_hash(d) for d in inputs]
    assert roots[0] == EMPTY_ROOT
    for n in range(9):
        assert root(hashes[:n]) == roots[n], n
        assert reference_mth(hashes[:n]) == roots[n], n
    streaming = CompactRange()
    assert streaming.root() == roots[0]
    for n, h in enumerate(hashes, start=1):
        streaming.append(h)
        assert streaming.size == n
        assert streaming.root() == roots[n], n


def test_reference_proofs_over_the_known_answer_tree() -> None:
    inputs, roots = _known_answers()
    hashes = [leaf_hash(d) for d in inputs]
    for (index, size), expected in REFERENCE_INCLUSION.items():
        proof = inclusion_proof(index, hashes[:size])
        assert proof == [_h(x) for x in expected], (index, size)
        assert verify_inclusion(index, size, hashes[index], proof, roots[size])
    for (old, new), expected in REFERENCE_CONSISTENCY.items():
        proof = consistency_proof(old, hashes[:new])
        assert proof == [_h(x) for x in expected], (old, new)
        assert verify_consistency(old, new, roots[old], roots[new], proof)


def test_hashes_are_domain_separated() -> None:
    a, b = LEAVES[0], LEAVES[1]
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(a + b) != node_hash(a, b)
    with pytest.raises(ValueError):
        node_hash(a, b[:31])


# Streaming roots.


def test_compact_range_equals_root_for_every_size_up_to_300() -> None:
    streaming = CompactRange()
    assert streaming.root() == EMPTY_ROOT
    for n, h in enumerate(LEAVES, start=1):
        streaming.append(h)
        assert streaming.size == n
        assert len(streaming.hashes) == n.bit_count()
        assert streaming.root() == root(LEAVES[:n]), n
    for n in range(65):
        assert root(LEAVES[:n]) == ROOTS[n], n


def test_compact_range_equals_root_for_random_sizes() -> None:
    rng = random.Random(6962)
    leaves = [leaf_hash(rng.randbytes(rng.randrange(0, 40))) for _ in range(5000)]
    for _ in range(25):
        n = rng.randrange(0, len(leaves) + 1)
        streaming = CompactRange()
        streaming.extend(leaves[:n])
        assert streaming.root() == reference_mth(leaves[:n]), n
        one_by_one = CompactRange()
        for h in leaves[:n]:
            one_by_one.append(h)
        assert one_by_one.root() == streaming.root()


def test_compact_range_resumes_from_saved_state() -> None:
    first = CompactRange()
    first.extend(LEAVES[:77])
    resumed = CompactRange.from_state(first.size, first.hashes)
    resumed.extend(LEAVES[77:200])
    assert resumed.size == 200
    assert resumed.root() == root(LEAVES[:200])
    with pytest.raises(ValueError):
        CompactRange.from_state(77, first.hashes[:-1])
    with pytest.raises(ValueError):
        CompactRange().append(b"short")
    partial = CompactRange()
    with pytest.raises(ValueError):
        partial.extend([LEAVES[0], LEAVES[1], b"short"])
    assert partial.size == 2
    assert partial.root() == root(LEAVES[:2])


# Every proof verifies.


def test_every_inclusion_proof_verifies_up_to_64_leaves() -> None:
    for size in range(1, 65):
        for index in range(size):
            proof = inclusion_proof(index, LEAVES[:size])
            assert proof == reference_path(index, LEAVES[:size]), (index, size)
            assert verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size]), (index, size)


def test_every_consistency_proof_verifies_up_to_64_leaves() -> None:
    for new in range(65):
        for old in range(new + 1):
            proof = consistency_proof(old, LEAVES[:new])
            expected = [] if old in (0, new) else reference_subproof(old, LEAVES[:new], True)
            assert proof == expected, (old, new)
            assert verify_consistency(old, new, ROOTS[old], ROOTS[new], proof), (old, new)


def test_proofs_from_range_roots_ask_once_per_element() -> None:
    calls: list[tuple[int, int]] = []

    def get_range_root(start: int, end: int) -> bytes:
        calls.append((start, end))
        return reference_mth(LEAVES[start:end])

    for size in (1, 2, 3, 7, 8, 9, 63, 64):
        for index in range(size):
            calls.clear()
            proof = inclusion_proof_from(index, size, get_range_root)
            assert len(calls) == len(proof)
            assert proof == reference_path(index, LEAVES[:size])
        for old in range(size + 1):
            calls.clear()
            proof = consistency_proof_from(old, size, get_range_root)
            assert len(calls) == len(proof)
    with pytest.raises(ValueError):
        inclusion_proof_from(3, 3, get_range_root)
    with pytest.raises(ValueError):
        inclusion_proof_from(-1, 3, get_range_root)
    with pytest.raises(ValueError):
        consistency_proof_from(4, 3, get_range_root)
    with pytest.raises(ValueError):
        inclusion_proof_from(0, 2, lambda start, end: b"not a hash")


# The transparency-dev probe list.


def _inclusion_probes(
    index: int, size: int, leaf: bytes, proof: list[bytes], tree_root: bytes
) -> list[tuple[str, int, int, bytes, list[bytes], bytes]]:
    probes = [
        ("index - 1", index - 1, size, leaf, proof, tree_root),
        ("index + 1", index + 1, size, leaf, proof, tree_root),
        ("index ^ 2", index ^ 2, size, leaf, proof, tree_root),
        ("size * 2", index, size * 2, leaf, proof, tree_root),
        ("size / 2", index, size // 2, leaf, proof, tree_root),
        ("wrong leaf", index, size, hashlib.sha256(b"WrongLeaf").digest(), proof, tree_root),
        ("short leaf", index, size, b"WrongLeaf", proof, tree_root),
        ("empty root", index, size, leaf, proof, EMPTY_ROOT),
        ("wrong root", index, size, leaf, proof, WRONG),
        ("no root", index, size, leaf, proof, b""),
        ("trailing garbage", index, size, leaf, [*proof, b""], tree_root),
        ("trailing root", index, size, leaf, [*proof, tree_root], tree_root),
        ("trailing zeros", index, size, leaf, [*proof, bytes(32)], tree_root),
        ("preceding garbage", index, size, leaf, [b"", *proof], tree_root),
        ("preceding root", index, size, leaf, [tree_root, *proof], tree_root),
    ]
    # A size one off, against that size's real root: the proof of one tree does not prove the other.
    for other in (size - 1, size + 1):
        if index < other <= 64 and inclusion_proof(index, LEAVES[:other]) != proof:
            probes.append((f"size {other}", index, other, leaf, proof, ROOTS[other]))
    if proof:
        probes.append(("truncated", index, size, leaf, proof[:-1], tree_root))
        probes.append(("first element dropped", index, size, leaf, proof[1:], tree_root))
        probes.append(("empty proof", index, size, leaf, [], tree_root))
    if len(proof) > 1:
        probes.append(("swapped elements", index, size, leaf, [proof[1], proof[0], *proof[2:]], tree_root))
    return probes


def test_inclusion_probes_fail() -> None:
    for size in range(1, 65):
        for index in range(size):
            proof = inclusion_proof(index, LEAVES[:size])
            for name, i, n, leaf, p, r in _inclusion_probes(index, size, LEAVES[index], proof, ROOTS[size]):
                assert not verify_inclusion(i, n, leaf, p, r), (name, index, size)


def test_inclusion_single_bit_flips_fail() -> None:
    for size in range(1, 20):
        for index in range(size):
            proof = inclusion_proof(index, LEAVES[:size])
            for k in range(len(proof)):
                for bit in range(256):
                    changed = [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]
                    assert not verify_inclusion(index, size, LEAVES[index], changed, ROOTS[size]), (index, size, k)
            for bit in range(256):
                assert not verify_inclusion(index, size, _flip(LEAVES[index], bit), proof, ROOTS[size])
                assert not verify_inclusion(index, size, LEAVES[index], proof, _flip(ROOTS[size], bit))


def _consistency_probes(
    old: int, new: int, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    old_root, new_root = ROOTS[old], ROOTS[new]
    probes = [
        ("old_size ^ 2", old ^ 2, new, old_root, new_root, proof),
        ("new_size * 2", old, new * 2, old_root, new_root, proof),
        ("new_size / 2", old, new // 2, old_root, new_root, proof),
        ("wrong old root", old, new, WRONG, new_root, proof),
        ("wrong new root", old, new, old_root, WRONG, proof),
        ("short old root", old, new, old_root[:31], new_root, proof),
        ("short new root", old, new, old_root, new_root[:31], proof),
        ("trailing garbage", old, new, old_root, new_root, [*proof, b""]),
        ("trailing root", old, new, old_root, new_root, [*proof, new_root]),
        ("trailing zeros", old, new, old_root, new_root, [*proof, bytes(32)]),
        ("preceding garbage", old, new, old_root, new_root, [b"", *proof]),
        ("preceding root", old, new, old_root, new_root, [old_root, *proof]),
    ]
    if old != new:
        probes.append(("swapped roots", old, new, new_root, old_root, proof))
        probes.append(("old_size > new_size", new, old, new_root, old_root, proof))
    if old_root != EMPTY_ROOT:
        probes.append(("empty old root", old, new, EMPTY_ROOT, new_root, proof))
    if new_root != EMPTY_ROOT:
        probes.append(("empty new root", old, new, old_root, EMPTY_ROOT, proof))
    # Sizes one off, against those sizes' real roots.
    for other in (old - 1, old + 1):
        if 0 <= other <= new and consistency_proof(other, LEAVES[:new]) != proof:
            probes.append((f"old_size {other}", other, new, ROOTS[other], new_root, proof))
    for other in (new - 1, new + 1):
        if old <= other <= 64 and consistency_proof(old, LEAVES[:other]) != proof:
            probes.append((f"new_size {other}", old, other, old_root, ROOTS[other], proof))
    if proof:
        probes.append(("truncated", old, new, old_root, new_root, proof[:-1]))
        probes.append(("first element dropped", old, new, old_root, new_root, proof[1:]))
        probes.append(("empty proof", old, new, old_root, new_root, []))
    if len(proof) > 1:
        probes.append(("swapped elements", old, new, old_root, new_root, [proof[1], proof[0], *proof[2:]]))
    return probes


def test_consistency_probes_fail() -> None:
    for new in range(65):
        for old in range(new + 1):
            proof = consistency_proof(old, LEAVES[:new])
            for name, m, n, r1, r2, p in _consistency_probes(old, new, proof):
                if m == 0 and r1 == EMPTY_ROOT and not p and len(r2) == 32 and n >= 0:
                    continue  # a true claim: every tree extends the empty tree
                assert not verify_consistency(m, n, r1, r2, p), (name, old, new)


def test_consistency_single_bit_flips_fail() -> None:
    for new in range(1, 20):
        for old in range(1, new + 1):
            proof = consistency_proof(old, LEAVES[:new])
            for k in range(len(proof)):
                for bit in range(256):
                    changed = [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]
                    assert not verify_consistency(old, new, ROOTS[old], ROOTS[new], changed), (old, new, k)
            for bit in range(256):
                assert not verify_consistency(old, new, _flip(ROOTS[old], bit), ROOTS[new], proof)
                assert not verify_consistency(old, new, ROOTS[old], _flip(ROOTS[new], bit), proof)


def test_equal_and_empty_sizes() -> None:
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(0, 0, WRONG, WRONG, [])
    assert verify_consistency(0, 17, EMPTY_ROOT, ROOTS[17], [])
    assert not verify_consistency(0, 17, ROOTS[1], ROOTS[17], [])
    assert not verify_consistency(0, 17, EMPTY_ROOT, ROOTS[17], [ROOTS[17]])
    assert verify_consistency(17, 17, ROOTS[17], ROOTS[17], [])
    assert not verify_consistency(17, 17, ROOTS[17], ROOTS[16], [])
    assert not verify_consistency(17, 17, ROOTS[17], ROOTS[17], [ROOTS[17]])
    assert not verify_consistency(18, 17, ROOTS[18], ROOTS[17], consistency_proof(17, LEAVES[:18]))
    assert not verify_inclusion(0, 0, LEAVES[0], [], EMPTY_ROOT)
    assert verify_inclusion(0, 1, LEAVES[0], [], ROOTS[1])


def test_leaf_node_confusion_fails() -> None:
    """A node hash passed off as a leaf: rejected at the tree's real size, and a leaf whose data is two
    child hashes does not hash to their parent (the second-preimage attack RFC 6962's prefixes stop)."""
    for size in range(2, 65):
        tree_root = ROOTS[size]
        for width in (2, 4, 8, 16, 32):
            for start in range(0, size - width + 1, width):
                node = reference_mth(LEAVES[start : start + width])
                proof = inclusion_proof(start, LEAVES[:size])
                above = proof[width.bit_length() - 1 :]  # the node's own path to the root
                assert verify_inclusion(start, size, LEAVES[start], proof, tree_root)
                assert not verify_inclusion(start, size, node, proof, tree_root)
                assert not verify_inclusion(start, size, node, above, tree_root)
                assert not verify_inclusion(start // width, size, node, above, tree_root)
    n01 = node_hash(LEAVES[0], LEAVES[1])
    n23 = node_hash(LEAVES[2], LEAVES[3])
    assert node_hash(n01, n23) == ROOTS[4]
    forged_leaf = leaf_hash(LEAVES[0] + LEAVES[1])
    assert not verify_inclusion(0, 2, forged_leaf, [n23], ROOTS[4])
    assert not verify_inclusion(0, 4, forged_leaf, [n23], ROOTS[4])


MALFORMED: list[object] = [None, -1, True, 1.0, "0", b"", "x" * 32, bytes(31), bytes(33), [bytes(32)], object()]


def test_verifiers_never_raise_on_malformed_input() -> None:
    good_inclusion = (3, 10, LEAVES[3], inclusion_proof(3, LEAVES[:10]), ROOTS[10])
    good_consistency = (3, 10, ROOTS[3], ROOTS[10], consistency_proof(3, LEAVES[:10]))
    assert verify_inclusion(*good_inclusion)
    assert verify_consistency(*good_consistency)
    bad_proofs: list[object] = [
        None,
        b"",
        bytes(64),
        "proof",
        [None],
        [1, 2],
        [bytes(31)],
        iter([bytes(32)]),
        5,
        [bytes(32)] * 200,
    ]
    verify_i: Callable[..., bool] = verify_inclusion
    verify_c: Callable[..., bool] = verify_consistency
    for position in range(5):
        for bad in MALFORMED + (bad_proofs if position == 3 else []):
            args = list(good_inclusion)
            args[position] = bad
            assert verify_i(*args) is False, (position, bad)
    for position in range(5):
        for bad in MALFORMED + (bad_proofs if position == 4 else []):
            args = list(good_consistency)
            args[position] = bad
            assert verify_c(*args) is False, (position, bad)
    assert verify_inclusion(3, 2**70, LEAVES[3], [bytes(32)] * 70, ROOTS[10]) is False
    assert verify_consistency(3, 2**70, ROOTS[3], ROOTS[10], [bytes(32)] * 70) is False
    assert verify_inclusion(2**70, 2**71, LEAVES[3], [bytes(32)] * 3, ROOTS[10]) is False


# Property: random trees, random sizes.


@settings(max_examples=150, deadline=None)
@given(
    leaves=st.lists(st.binary(max_size=24), min_size=1, max_size=90),
    data=st.data(),
)
def test_random_proofs_verify_and_any_changed_byte_breaks_them(leaves: list[bytes], data: st.DataObject) -> None:
    hashes = [leaf_hash(d) for d in leaves]
    n = data.draw(st.integers(min_value=1, max_value=len(hashes)), label="n")
    m = data.draw(st.integers(min_value=0, max_value=n), label="m")
    index = data.draw(st.integers(min_value=0, max_value=n - 1), label="index")
    root_m, root_n = root(hashes[:m]), root(hashes[:n])

    proof = inclusion_proof(index, hashes[:n])
    assert verify_inclusion(index, n, hashes[index], proof, root_n)
    for k, element in enumerate(proof):
        for i in range(len(element)):
            changed = bytearray(element)
            changed[i] ^= 0xFF
            broken = [*proof[:k], bytes(changed), *proof[k + 1 :]]
            assert not verify_inclusion(index, n, hashes[index], broken, root_n)

    consistency = consistency_proof(m, hashes[:n])
    assert verify_consistency(m, n, root_m, root_n, consistency)
    for k, element in enumerate(consistency):
        for i in range(len(element)):
            changed = bytearray(element)
            changed[i] ^= 0xFF
            broken = [*consistency[:k], bytes(changed), *consistency[k + 1 :]]
            assert not verify_consistency(m, n, root_m, root_n, broken)
    byte = data.draw(st.integers(min_value=0, max_value=31), label="root byte")
    changed_root = bytearray(root_n)
    changed_root[byte] ^= 0x01
    if m > 0:  # every tree extends the empty tree, whatever its root
        assert not verify_consistency(m, n, root_m, bytes(changed_root), consistency)
    changed_old_root = bytearray(root_m)
    changed_old_root[byte] ^= 0x01
    assert not verify_consistency(m, n, bytes(changed_old_root), root_n, consistency)
    assert not verify_inclusion(index, n, hashes[index], proof, bytes(changed_root))


# -- the export's index: levels kept in temporary files, proofs streamed in order -------------------------


def test_the_export_index_gives_the_reference_proofs_and_roots() -> None:
    from ir.adapters.audit.export import TreeIndex

    inputs, roots = _known_answers()
    hashes = [leaf_hash(d) for d in inputs]
    with TreeIndex() as index:
        assert index.range_root(0, 0) == roots[0]
        for n, h in enumerate(hashes, start=1):
            index.append(h)
            assert index.range_root(0, n) == roots[n], n
        for (i, size), expected in REFERENCE_INCLUSION.items():
            assert index.prover(size)(i) == [_h(x) for x in expected], (i, size)
            assert index.proof(i, size) == [_h(x) for x in expected], (i, size)
        for (old, new), expected in REFERENCE_CONSISTENCY.items():
            assert consistency_proof_from(old, new, index.range_root) == [_h(x) for x in expected], (old, new)


@pytest.mark.parametrize("total", [1, 2, 3, 7, 64, 65, 2047, 2048, 2049, 4097, 6000])
def test_the_export_index_streams_the_same_proofs_as_the_reference(total: int) -> None:
    """Across its blocks (2,048 nodes a level): every size near the end, leaves asked in order and out of
    order, against the reference builder over the same leaves."""
    from ir.adapters.audit.export import TreeIndex

    rng = random.Random(total)
    leaves = [hashlib.sha256(rng.randbytes(8)).digest() for _ in range(total)]
    with TreeIndex() as index:
        index.extend(leaves)
        for size in sorted({total, max(1, total - 1), max(1, total // 2 + 1)}):
            tree_root = root(leaves[:size])
            assert index.range_root(0, size) == tree_root
            prove = index.prover(size)
            picks = range(size) if size <= 300 else sorted(rng.sample(range(size), 200))
            for i in [*picks, *rng.sample(range(size), min(size, 20))]:
                proof = prove(i)
                assert proof == inclusion_proof(i, leaves[:size]), (size, i)
                assert verify_inclusion(i, size, leaves[i], proof, tree_root)
        with pytest.raises(ValueError):
            index.prover(total + 1)
        with pytest.raises(ValueError):
            index.prover(total)(total)
        with pytest.raises(ValueError):
            index.range_root(0, total + 1)
