"""Signed checkpoints of the audit log: C2SP tlog-checkpoint bodies in C2SP signed notes, signed with
Ed25519 keys written in the golang.org/x/mod/sumdb/note key formats, so Go tooling (and witnesses) read them.

A checkpoint::

    <origin>
    <tree size, decimal>
    <root hash, standard base64>
    [extension lines]

    — <key name> <base64(key id (4 bytes) || Ed25519 signature of the text above the blank line)>

Key id = SHA-256(name || 0x0A || 0x01 || public key)[:4]. Verifier key: ``<name>+<8 hex id>+<base64(0x01 ||
public key)>``; signer key: ``PRIVATE+KEY+<name>+<8 hex id>+<base64(0x01 || seed)>``.

A checkpoint is only as good as the copy held elsewhere: `is_older`, `detect_equivocation` and
`check_consistent` compare a new checkpoint with one an auditor kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ir.adapters.audit.merkle import HASH_SIZE, verify_consistency

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # an em dash and a space
MAX_SIGNATURES = 100
MAX_TREE_SIZE = 2**64 - 1
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_HEX_ID = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted. `reason` is one of: malformed, unknown_key, ambiguous_key,
    bad_signature, wrong_origin, bad_size, bad_root, different_origin, rollback, inconsistent."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """Standard base64, padded, and canonical (re-encodes to the same text); None otherwise."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return None
    return data if _b64(data) == text else None


def _is_valid_name(name: str) -> bool:
    if not name or "+" in name or any(ch.isspace() for ch in name) or _CONTROL.search(name):
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _is_valid_name(name):
        raise ValueError(f"a key name must be non-empty, without spaces or '+': {name!r}")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte id of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _split_key(text: str, what: str) -> tuple[str, bytes, bytes]:
    """<name>+<hex id>+<base64 key material> -> (name, id, material); the material may hold '+'."""
    name, sep1, rest = text.partition("+")
    id_hex, sep2, material_b64 = rest.partition("+")
    if not sep1 or not sep2:
        raise ValueError(f"malformed {what} key: expected <name>+<key id>+<key>")
    _check_name(name)
    if not _HEX_ID.fullmatch(id_hex):
        raise ValueError(f"malformed {what} key: the key id must be 8 hex digits")
    material = _b64decode(material_b64)
    if material is None or len(material) != 33:
        raise ValueError(f"malformed {what} key: the key must be 33 bytes of base64")
    if material[0] != ALG_ED25519:
        raise ValueError(f"unsupported {what} key: algorithm {material[0]} is not Ed25519 (1)")
    return name, bytes.fromhex(id_hex), material[1:]


class Verifier:
    """An Ed25519 note verifier from its key string ``<name>+<hex id>+<base64(0x01 || public key)>``."""

    __slots__ = ("_public", "key_id", "name", "public_key")

    def __init__(self, key: str) -> None:
        if not isinstance(key, str):
            raise ValueError("a verifier key is a string")
        name, kid, public_key = _split_key(key, "verifier")
        if key_id(name, public_key) != kid:
            raise ValueError(f"verifier key {name}: the key id does not match the key")
        self.name = name
        self.key_id = kid
        self.public_key = public_key
        self._public = Ed25519PublicKey.from_public_bytes(public_key)

    @property
    def key(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([ALG_ED25519]) + self.public_key)}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self._public.verify(signature, message)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verifier) and (self.name, self.public_key) == (other.name, other.public_key)

    def __hash__(self) -> int:
        return hash((self.name, self.public_key))

    def __repr__(self) -> str:
        return f"Verifier({self.key!r})"


class Signer:
    """An Ed25519 note signer from its key string ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>``."""

    __slots__ = ("_private", "key_id", "name", "public_key")

    def __init__(self, key: str) -> None:
        if not isinstance(key, str) or not key.startswith(_PRIVATE_PREFIX):
            raise ValueError("malformed signer key: expected PRIVATE+KEY+<name>+<key id>+<key>")
        name, kid, seed = _split_key(key[len(_PRIVATE_PREFIX) :], "signer")
        private = Ed25519PrivateKey.from_private_bytes(seed)
        public_key = private.public_key().public_bytes_raw()
        if key_id(name, public_key) != kid:
            raise ValueError(f"signer key {name}: the key id does not match the key")
        self.name = name
        self.key_id = kid
        self.public_key = public_key
        self._private = private

    @property
    def verifier_key(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([ALG_ED25519]) + self.public_key)}"

    def verifier(self) -> Verifier:
        return Verifier(self.verifier_key)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:  # never the private key
        return f"Signer(name={self.name!r}, key_id={self.key_id.hex()!r})"


def generate_signer(name: str) -> tuple[str, str]:
    """A new Ed25519 key pair as (signer key, verifier key) strings."""
    _check_name(name)
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    public_key = private.public_key().public_bytes_raw()
    kid = key_id(name, public_key).hex()
    signer_key = f"{_PRIVATE_PREFIX}{name}+{kid}+{_b64(bytes([ALG_ED25519]) + seed)}"
    verifier_key = f"{name}+{kid}+{_b64(bytes([ALG_ED25519]) + public_key)}"
    return signer_key, verifier_key


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    @property
    def key(self) -> str:
        return f"{self.name}+{self.key_id.hex()}"

    def line(self) -> str:
        return f"{SIGNATURE_PREFIX}{self.name} {_b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()
    signatures: tuple[NoteSignature, ...] = ()

    @property
    def body(self) -> str:
        return checkpoint_body(self.origin, self.size, self.root, extensions=self.extensions)


def _malformed(detail: str) -> CheckpointError:
    return CheckpointError("malformed", f"malformed checkpoint: {detail}")


def _note_text_problem(text: str) -> str | None:
    if _CONTROL.search(text):
        return "control characters other than newline"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8"
    return None


def checkpoint_body(origin: str, size: int, root: bytes, *, extensions: Sequence[str] = ()) -> str:
    """The checkpoint's note text: origin, size and root lines, then any extension lines."""
    if not isinstance(origin, str) or not origin or "\n" in origin or _note_text_problem(origin):
        raise ValueError(f"a checkpoint origin is one non-empty line of text: {origin!r}")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_TREE_SIZE:
        raise ValueError(f"a tree size is an integer from 0 to 2**64-1: {size!r}")
    if not isinstance(root, bytes) or len(root) != HASH_SIZE:
        raise ValueError(f"a root hash is {HASH_SIZE} bytes")
    for line in extensions:
        if not isinstance(line, str) or not line or "\n" in line or _note_text_problem(line):
            raise ValueError(f"an extension is one non-empty line of text: {line!r}")
    return "".join(f"{line}\n" for line in (origin, str(size), _b64(root), *extensions))


def sign_note(body: str, signer: Signer) -> str:
    """A signed note: `body`, a blank line and `signer`'s signature line."""
    if not body.endswith("\n") or "\n\n" in body or body.startswith("\n"):
        raise ValueError("a note's text is non-empty lines, each ending in a newline")
    problem = _note_text_problem(body)
    if problem:
        raise ValueError(f"a note's text must not hold {problem}")
    signature = NoteSignature(signer.name, signer.key_id, signer.sign(body.encode("utf-8")))
    return body + "\n" + signature.line()


def sign_checkpoint(origin: str, size: int, root: bytes, signer: Signer, *, extensions: Sequence[str] = ()) -> str:
    return sign_note(checkpoint_body(origin, size, root, extensions=extensions), signer)


def _split_note(text: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and its signature lines (signatures unchecked)."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("not valid UTF-8") from None
    if not isinstance(text, str):
        raise _malformed("not text")
    problem = _note_text_problem(text)
    if problem:
        raise _malformed(problem)
    split = text.rfind("\n\n")
    if split < 0:
        raise _malformed("no blank line before the signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if not block.endswith("\n"):
        raise _malformed("the signatures must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise _malformed(f"more than {MAX_SIGNATURES} signatures")
    signatures: list[NoteSignature] = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise _malformed(f"not a signature line: {line[:80]!r}")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        raw = _b64decode(encoded)
        if not _is_valid_name(name) or raw is None or len(raw) < 5:
            raise _malformed(f"bad signature line: {line[:80]!r}")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    return body, signatures


def _parse_body(body: str, signatures: Sequence[NoteSignature]) -> Checkpoint:
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise _malformed("the text must hold an origin, a tree size and a root hash line")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise _malformed("empty origin line")
    if any(not line for line in extensions):
        raise _malformed("empty extension line")
    if not _DECIMAL.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
        raise CheckpointError("bad_size", f"tree size is not a canonical decimal: {size_text[:40]!r}")
    root = _b64decode(root_text)
    if root is None or len(root) != HASH_SIZE:
        raise CheckpointError("bad_root", f"root hash is not {HASH_SIZE} bytes of standard base64: {root_text[:80]!r}")
    return Checkpoint(origin, int(size_text), root, tuple(extensions), tuple(signatures))


def parse_checkpoint(text: str | bytes) -> Checkpoint:
    """The checkpoint in a signed note, with all its signatures, none of them checked."""
    body, signatures = _split_note(text)
    return _parse_body(body, signatures)


def open_note(text: str | bytes, verifiers: Sequence[Verifier]) -> tuple[str, tuple[NoteSignature, ...]]:
    """A signed note's text and its verified signatures, once at least one signature by a known verifier
    checks out and every signature by a known verifier checks out. Signatures by unknown keys are ignored.
    """
    body, signatures = _split_note(text)
    message = body.encode("utf-8")
    known: dict[tuple[str, bytes], set[Verifier]] = {}
    for verifier in verifiers:
        known.setdefault((verifier.name, verifier.key_id), set()).add(verifier)
    verified: list[NoteSignature] = []
    unknown: list[str] = []
    for signature in signatures:
        candidates = known.get((signature.name, signature.key_id))
        if not candidates:
            unknown.append(signature.key)
            continue
        if len(candidates) > 1:
            raise CheckpointError("ambiguous_key", f"ambiguous key {signature.key}: two verifiers share it")
        (verifier,) = candidates
        if not verifier.verify(message, signature.signature):
            raise CheckpointError("bad_signature", f"bad signature by key {signature.key}")
        if signature not in verified:
            verified.append(signature)
    if not verified:
        signed_by = ", ".join(dict.fromkeys(unknown))
        raise CheckpointError("unknown_key", f"unknown key: no signature by a known key (signed by {signed_by})")
    return body, tuple(verified)


def verify_checkpoint(text: str | bytes, verifiers: Sequence[Verifier], *, origin: str) -> Checkpoint:
    """The checkpoint, once its signatures check out (`open_note`) and its origin is `origin`; the result
    lists the verified signatures only."""
    body, verified = open_note(text, verifiers)
    checkpoint = _parse_body(body, verified)
    if checkpoint.origin != origin:
        raise CheckpointError("wrong_origin", f"wrong origin: expected {origin!r}, got {checkpoint.origin!r}")
    return checkpoint


def _same_log(a: Checkpoint, b: Checkpoint) -> None:
    if a.origin != b.origin:
        raise CheckpointError("different_origin", f"checkpoints of different logs: {a.origin!r} and {b.origin!r}")


def is_older(a: Checkpoint, b: Checkpoint) -> bool:
    """Whether `a` covers fewer records than `b` (a replayed older checkpoint, when `b` was seen before)."""
    _same_log(a, b)
    return a.size < b.size


def detect_equivocation(a: Checkpoint, b: Checkpoint) -> bool:
    """Whether the log signed two different roots for the same size: proof of a forked history."""
    _same_log(a, b)
    return a.size == b.size and a.root != b.root


def check_consistent(older: Checkpoint, newer: Checkpoint, proof: Sequence[bytes]) -> None:
    """Raise CheckpointError unless `newer` extends `older` (both already verified) by the consistency
    proof `proof`: a smaller newer checkpoint is a rollback, a failing proof a rewritten history."""
    _same_log(older, newer)
    if newer.size < older.size:
        raise CheckpointError(
            "rollback", f"rollback: the newer checkpoint covers {newer.size} records, the older {older.size}"
        )
    if not verify_consistency(older.size, newer.size, older.root, newer.root, proof):
        raise CheckpointError(
            "inconsistent",
            f"inconsistent: the tree of {newer.size} records does not extend the tree of {older.size} records",
        )
