"""Signed checkpoints (C2SP tlog-checkpoint in a C2SP signed note): what an auditor relies on is that a
checkpoint verifies only when signed by a known key over exactly this text for this log, that the keys
interoperate with Go's golang.org/x/mod/sumdb/note, and that replayed or forked checkpoints are caught."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ir.adapters.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    Signer,
    Verifier,
    check_consistent,
    detect_equivocation,
    generate_signer,
    is_older,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
    sign_note,
    verify_checkpoint,
)
from ir.adapters.audit.merkle import consistency_proof, leaf_hash, root

ORIGIN = "ir.example/audit/log-1"
LEAVES = [leaf_hash(f"record {i}".encode()) for i in range(40)]

# The example key and note of golang.org/x/mod/sumdb/note (note_test.go). Ed25519 is deterministic, so
# signing the same text must give the same bytes.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"


@pytest.fixture(scope="module")
def keys() -> tuple[Signer, Verifier]:
    signer_key, verifier_key = generate_signer(ORIGIN)
    return Signer(signer_key), Verifier(verifier_key)


def _reason(text: str | bytes, verifiers: list[Verifier], origin: str = ORIGIN) -> tuple[str, str]:
    with pytest.raises(CheckpointError) as caught:
        verify_checkpoint(text, verifiers, origin=origin)
    return caught.value.reason, str(caught.value)


def _sig_line(signer: Signer, body: str) -> str:
    raw = signer.key_id + signer.sign(body.encode())
    return f"— {signer.name} {base64.b64encode(raw).decode()}\n"


def _signed(body: str, signer: Signer) -> str:
    """Signed by hand, so that text `sign_note` refuses (an empty line) can be signed too."""
    return body + "\n" + _sig_line(signer, body)


# Round trip and interoperability.


def test_round_trip(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    tree_root = root(LEAVES[:17])
    text = sign_checkpoint(ORIGIN, 17, tree_root, signer)
    body = f"{ORIGIN}\n17\n{base64.b64encode(tree_root).decode()}\n"
    assert text.startswith(body + "\n— " + ORIGIN + " ")
    assert text.endswith("\n")
    checkpoint = verify_checkpoint(text, [verifier], origin=ORIGIN)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root, checkpoint.extensions) == (ORIGIN, 17, tree_root, ())
    assert checkpoint.body == body
    assert [s.key for s in checkpoint.signatures] == [f"{ORIGIN}+{verifier.key_id.hex()}"]
    assert parse_checkpoint(text) == checkpoint
    assert verify_checkpoint(text.encode(), [verifier], origin=ORIGIN) == checkpoint

    empty = verify_checkpoint(sign_checkpoint(ORIGIN, 0, hashlib.sha256().digest(), signer), [verifier], origin=ORIGIN)
    assert empty.size == 0

    extended = sign_checkpoint(ORIGIN, 17, tree_root, signer, extensions=["timestamp 1700000000"])
    parsed = verify_checkpoint(extended, [verifier], origin=ORIGIN)
    assert parsed.extensions == ("timestamp 1700000000",)
    assert parsed.body == body + "timestamp 1700000000\n"

    biggest = verify_checkpoint(sign_checkpoint(ORIGIN, 2**64 - 1, tree_root, signer), [verifier], origin=ORIGIN)
    assert biggest.size == 2**64 - 1


def test_go_reference_note_byte_for_byte() -> None:
    signer = Signer(PETER_SKEY)
    assert signer.verifier_key == PETER_VKEY
    assert sign_note(GO_TEXT, signer) == GO_TEXT + "\n" + PETER_SIG
    peter, enoch = Verifier(PETER_VKEY), Verifier(ENOCH_VKEY)
    assert peter.key == PETER_VKEY

    body, signatures = open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter])
    assert body == GO_TEXT
    assert [s.key for s in signatures] == ["PeterNeumann+c74f20a3"]
    _, both = open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter, enoch])
    assert [s.key for s in both] == ["PeterNeumann+c74f20a3", "EnochRoot+af0cfe78"]
    _, once = open_note(GO_TEXT + "\n" + PETER_SIG + PETER_SIG, [peter])
    assert len(once) == 1
    with pytest.raises(CheckpointError, match="unknown key") as unknown:
        open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
    assert "PeterNeumann+c74f20a3" in str(unknown.value)
    with pytest.raises(CheckpointError, match="bad signature by key PeterNeumann"):
        open_note(GO_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], [peter])
    with pytest.raises(CheckpointError, match="malformed"):
        open_note(GO_TEXT + "\n" + PETER_SIG * 101, [peter])


def test_key_id_matches_an_independent_computation() -> None:
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public = private.public_key().public_bytes_raw()
    name = "audit.example/log"
    by_hand = hashlib.sha256(name.encode() + b"\x0a" + b"\x01" + public).digest()[:4]
    seed_b64 = base64.b64encode(b"\x01" + seed).decode()
    public_b64 = base64.b64encode(b"\x01" + public).decode()
    signer_key = f"PRIVATE+KEY+{name}+{by_hand.hex()}+{seed_b64}"
    verifier_key = f"{name}+{by_hand.hex()}+{public_b64}"

    signer = Signer(signer_key)
    verifier = Verifier(verifier_key)
    assert signer.key_id == verifier.key_id == by_hand
    assert signer.verifier_key == verifier_key
    assert verifier.public_key == public

    # The published example key: c74f20a3 = SHA-256("PeterNeumann\n" || 0x01 || public key)[:4].
    peter_public = base64.b64decode(PETER_VKEY.split("+", 2)[2])
    assert hashlib.sha256(b"PeterNeumann\n" + peter_public).digest()[:4].hex() == "c74f20a3"
    assert Verifier(PETER_VKEY).key_id.hex() == "c74f20a3"

    # A signature line carries the key id, then the signature.
    text = sign_checkpoint(ORIGIN, 1, LEAVES[0], signer)
    raw = base64.b64decode(text.rstrip("\n").rsplit(" ", 1)[1])
    assert raw[:4] == by_hand
    body = f"{ORIGIN}\n1\n{base64.b64encode(LEAVES[0]).decode()}\n"
    private.public_key().verify(raw[4:], body.encode())


def test_generated_keys_are_well_formed() -> None:
    signer_key, verifier_key = generate_signer("log")
    assert signer_key.startswith("PRIVATE+KEY+log+")
    name, key_id, material = verifier_key.split("+", 2)
    assert name == "log" and len(key_id) == 8 and int(key_id, 16) >= 0
    assert base64.b64decode(material)[0] == 1 and len(base64.b64decode(material)) == 33
    signer = Signer(signer_key)
    assert signer.verifier_key == verifier_key
    assert signer.verifier().verify(b"hi", signer.sign(b"hi"))
    assert not Verifier(verifier_key).verify(b"ho", signer.sign(b"hi"))
    assert signer_key.split("+")[-1] not in repr(signer)
    for bad in ("", "a b", "a+b", "tab\tname", "new\nline"):
        with pytest.raises(ValueError):
            generate_signer(bad)


def test_mangled_key_strings_are_refused() -> None:
    """As Go's TestNewVerifier and TestNewSigner: every proper substring and every one-character change."""
    for key, make in ((PETER_VKEY, Verifier), (PETER_SKEY, Signer)):
        make(key)
        for i in range(len(key) + 1):
            for j in range(i + 1, len(key) + 1):
                if (i, j) != (0, len(key)):
                    with pytest.raises(ValueError):
                        make(key[i:j])
        for i in range(len(key)):
            with pytest.raises(ValueError):
                make(key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :])
    with pytest.raises(ValueError):
        Verifier("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(ValueError):
        Verifier("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    with pytest.raises(ValueError):
        Verifier(PETER_VKEY + "\n")


# Every rejection, with its message.


def test_malformed_notes(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    body = f"{ORIGIN}\n5\n{base64.b64encode(root(LEAVES[:5])).decode()}\n"
    sig = _sig_line(signer, body)
    assert verify_checkpoint(body + "\n" + sig, [verifier], origin=ORIGIN).size == 5
    malformed = [
        "",
        body,
        body + "\n",
        body + "\n" + sig[:-1],
        body + sig,
        "\x01" + body + "\n" + sig,
        body.replace("\n", "\r\n") + "\n" + sig,
        body + "\n" + sig + "Unexpected line.\n",
        body + "\n" + sig.replace(f"— {ORIGIN} ", "— Bad Name "),
        body + "\n" + sig.replace("— ", "- "),
        body + "\n" + sig.replace("— ", "—"),
        body + "\n" + f"— {ORIGIN} not*base64\n",
        body + "\n" + f"— {ORIGIN} AAAA\n",
        body + "\n" + sig * 101,
    ]
    for text in malformed:
        reason, message = _reason(text, [verifier])
        assert reason == "malformed", (text, message)
        assert message.startswith("malformed checkpoint: ")
    reason, _ = _reason(b"\xff" + body.encode() + b"\n" + sig.encode(), [verifier])
    assert reason == "malformed"
    # Correctly signed text that is not a checkpoint: too few lines, an empty origin line.
    no_root = sign_note(f"{ORIGIN}\n5\n", signer)
    assert _reason(no_root, [verifier]) == (
        "malformed",
        "malformed checkpoint: the text must hold an origin, a tree size and a root hash line",
    )
    no_origin = "\n" + body.split("\n", 1)[1]
    assert _reason(no_origin + "\n" + _sig_line(signer, no_origin), [verifier]) == (
        "malformed",
        "malformed checkpoint: empty origin line",
    )
    with pytest.raises(CheckpointError, match="malformed"):
        parse_checkpoint(body)


def test_unknown_key(keys: tuple[Signer, Verifier]) -> None:
    signer, _ = keys
    text = sign_checkpoint(ORIGIN, 3, root(LEAVES[:3]), signer)
    other = Verifier(generate_signer("someone.else")[1])
    reason, message = _reason(text, [other])
    assert reason == "unknown_key"
    assert message == f"unknown key: no signature by a known key (signed by {ORIGIN}+{signer.key_id.hex()})"
    assert _reason(text, [])[0] == "unknown_key"


def test_signature_by_another_key_with_the_same_name(keys: tuple[Signer, Verifier]) -> None:
    _, verifier = keys
    impostor = Signer(generate_signer(ORIGIN)[0])
    assert impostor.name == verifier.name and impostor.key_id != verifier.key_id
    text = sign_checkpoint(ORIGIN, 3, root(LEAVES[:3]), impostor)
    reason, message = _reason(text, [verifier])
    assert reason == "unknown_key"
    assert f"{ORIGIN}+{impostor.key_id.hex()}" in message
    # Even claiming the real key's id, another key's signature is a bad signature.
    body = text.split("\n\n")[0] + "\n"
    forged = body + "\n" + f"— {ORIGIN} " + base64.b64encode(verifier.key_id + impostor.sign(body.encode())).decode()
    reason, message = _reason(forged + "\n", [verifier])
    assert (reason, message) == ("bad_signature", f"bad signature by key {ORIGIN}+{verifier.key_id.hex()}")


def test_bad_signature(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    text = sign_checkpoint(ORIGIN, 3, root(LEAVES[:3]), signer)
    body, sig_line = text.split("\n\n")
    raw = bytearray(base64.b64decode(sig_line.rstrip("\n").rsplit(" ", 1)[1]))
    for position in (4, 20, len(raw) - 1):
        changed = bytearray(raw)
        changed[position] ^= 0x01
        tampered = f"{body}\n\n— {ORIGIN} {base64.b64encode(bytes(changed)).decode()}\n"
        assert _reason(tampered, [verifier]) == (
            "bad_signature",
            f"bad signature by key {ORIGIN}+{signer.key_id.hex()}",
        )
    truncated = f"{body}\n\n— {ORIGIN} {base64.b64encode(bytes(raw[:40])).decode()}\n"
    assert _reason(truncated, [verifier])[0] == "bad_signature"
    # A good signature does not excuse a bad one by the same key.
    bad_too = f"{body}\n\n{sig_line}— {ORIGIN} {base64.b64encode(bytes(raw[:40])).decode()}\n"
    assert _reason(bad_too, [verifier])[0] == "bad_signature"


def test_wrong_origin(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    text = sign_checkpoint("ir.example/audit/log-2", 3, root(LEAVES[:3]), signer)
    assert _reason(text, [verifier]) == (
        "wrong_origin",
        f"wrong origin: expected {ORIGIN!r}, got 'ir.example/audit/log-2'",
    )


def test_size_not_a_canonical_decimal(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    root_line = base64.b64encode(root(LEAVES[:7])).decode()
    for size in ("007", "00", "-1", "+7", " 7", "7 ", "1e3", "0x7", "7.0", "٧", "", "18446744073709551616", "9" * 400):
        text = _signed(f"{ORIGIN}\n{size}\n{root_line}\n", signer)
        reason, message = _reason(text, [verifier])
        assert reason == "bad_size", size
        assert message.startswith("tree size is not a canonical decimal: "), size


def test_root_not_32_bytes_of_base64(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    digest = root(LEAVES[:7])
    good = base64.b64encode(digest).decode()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(good[-2]) ^ 1]  # flip one of the two unused low bits
    non_canonical = good[:-2] + last + "="  # the same 32 bytes, written another way
    assert base64.b64decode(non_canonical) == digest
    for line in (
        base64.b64encode(digest[:31]).decode(),
        base64.b64encode(digest + b"\x00").decode(),
        good.rstrip("="),
        good.replace("+", "-").replace("/", "_") if ("+" in good or "/" in good) else "-" + good[1:],
        "not base64 at all",
        digest.hex(),
        non_canonical,
        " " + good,
        "",
    ):
        text = _signed(f"{ORIGIN}\n7\n{line}\n", signer)
        reason, message = _reason(text, [verifier])
        assert reason == "bad_root", line
        assert message.startswith("root hash is not 32 bytes of standard base64: "), line


def test_body_altered_after_signing(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    text = sign_checkpoint(ORIGIN, 9, root(LEAVES[:9]), signer)
    body, sigs = text.split("\n\n")
    lines = body.split("\n")
    altered = {
        "size": "\n".join([lines[0], "10", lines[2]]),
        "root": "\n".join([lines[0], lines[1], base64.b64encode(root(LEAVES[:10])).decode()]),
        "origin": "\n".join(["ir.example/audit/log-2", lines[1], lines[2]]),
        "added line": body + "\nextension",
        "origin case": body.upper(),
    }
    for what, changed in altered.items():
        reason, message = _reason(f"{changed}\n\n{sigs}", [verifier])
        assert reason == "bad_signature", what
        assert message == f"bad signature by key {ORIGIN}+{signer.key_id.hex()}", what


def test_unknown_signatures_are_ignored_and_verified_ones_listed(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    witness = Signer(generate_signer("witness.example")[0])
    body = f"{ORIGIN}\n4\n{base64.b64encode(root(LEAVES[:4])).decode()}\n"
    text = body + "\n" + _sig_line(witness, body) + _sig_line(signer, body)
    checkpoint = verify_checkpoint(text, [verifier], origin=ORIGIN)
    assert [s.name for s in checkpoint.signatures] == [ORIGIN]
    assert len(parse_checkpoint(text).signatures) == 2
    both = verify_checkpoint(text, [verifier, witness.verifier()], origin=ORIGIN)
    assert [s.name for s in both.signatures] == ["witness.example", ORIGIN]


def test_two_verifiers_sharing_a_name_and_id_are_ambiguous(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    text = sign_checkpoint(ORIGIN, 3, root(LEAVES[:3]), signer)
    twin = Verifier(generate_signer(ORIGIN)[1])
    twin.key_id = verifier.key_id  # a 4-byte id collision
    assert _reason(text, [verifier, twin])[0] == "ambiguous_key"
    assert verify_checkpoint(text, [verifier, Verifier(verifier.key)], origin=ORIGIN).size == 3


def test_signing_refuses_what_it_could_not_verify(keys: tuple[Signer, Verifier]) -> None:
    signer, _ = keys
    digest = root(LEAVES[:3])
    for args in (
        ("", 3, digest),
        ("a\nb", 3, digest),
        (ORIGIN, -1, digest),
        (ORIGIN, 2**64, digest),
        (ORIGIN, 3, b"x"),
    ):
        with pytest.raises(ValueError):
            sign_checkpoint(*args, signer)
    with pytest.raises(ValueError):
        sign_checkpoint(ORIGIN, 3, digest, signer, extensions=[""])
    with pytest.raises(ValueError):
        sign_checkpoint(ORIGIN, 3, digest, signer, extensions=["two\nlines"])
    for text in ("no newline", "a\n\nb\n", "\n", "tab\tinside\n"):
        with pytest.raises(ValueError):
            sign_note(text, signer)


# Comparing checkpoints an auditor kept.


def _checkpoint(size: int, leaves: list[bytes] = LEAVES, origin: str = ORIGIN) -> Checkpoint:
    return Checkpoint(origin, size, root(leaves[:size]))


def test_replayed_older_checkpoint_is_detected(keys: tuple[Signer, Verifier]) -> None:
    signer, verifier = keys
    kept = verify_checkpoint(sign_checkpoint(ORIGIN, 20, root(LEAVES[:20]), signer), [verifier], origin=ORIGIN)
    replayed = verify_checkpoint(sign_checkpoint(ORIGIN, 12, root(LEAVES[:12]), signer), [verifier], origin=ORIGIN)
    assert is_older(replayed, kept)
    assert not is_older(kept, replayed)
    assert not is_older(kept, kept)
    with pytest.raises(CheckpointError) as caught:
        check_consistent(kept, replayed, [])
    assert caught.value.reason == "rollback"
    assert str(caught.value) == "rollback: the newer checkpoint covers 12 records, the older 20"


def test_two_roots_for_the_same_size_are_equivocation() -> None:
    forked = [*LEAVES[:10], leaf_hash(b"rewritten"), *LEAVES[11:]]
    a, b = _checkpoint(15), _checkpoint(15, forked)
    assert detect_equivocation(a, b)
    assert detect_equivocation(b, a)
    assert not detect_equivocation(a, _checkpoint(15))
    assert not detect_equivocation(a, _checkpoint(16, forked))
    with pytest.raises(CheckpointError) as caught:
        detect_equivocation(a, _checkpoint(15, origin="other.example/log"))
    assert caught.value.reason == "different_origin"


def test_consistency_between_kept_and_new_checkpoints() -> None:
    older, newer = _checkpoint(13), _checkpoint(31)
    check_consistent(older, newer, consistency_proof(13, LEAVES[:31]))
    check_consistent(older, _checkpoint(13), [])
    forked = [*LEAVES[:5], leaf_hash(b"rewritten"), *LEAVES[6:]]
    with pytest.raises(CheckpointError) as caught:
        check_consistent(older, _checkpoint(31, forked), consistency_proof(13, forked[:31]))
    assert caught.value.reason == "inconsistent"
    assert str(caught.value) == "inconsistent: the tree of 31 records does not extend the tree of 13 records"
    with pytest.raises(CheckpointError) as caught:
        check_consistent(older, _checkpoint(31, origin="other.example/log"), consistency_proof(13, LEAVES[:31]))
    assert caught.value.reason == "different_origin"
