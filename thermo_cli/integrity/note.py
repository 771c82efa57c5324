"""C2SP signed notes and tlog checkpoints: the text an auditor keeps and verifies.

A checkpoint (C2SP tlog-checkpoint) is a note body of an origin line, the log size in
decimal, the base64 log root, and optional extension lines; thermo adds two extensions,
``state-digest <base64>`` and ``meta-digest <base64>``, so the signed text also commits to
the layer state and to the configuration (:mod:`thermo_cli.integrity.metadigest`). A signed
note (C2SP signed-note) is that body, a blank line, then one line per signature::

    — <name> <base64(key ID || signature)>

where for Ed25519 the key ID is the first 4 bytes of SHA-256(name || 0x0A || 0x01 ||
public key) and the signature covers the body bytes exactly. Any number of signatures
may coexist; a verifier ignores signatures whose (name, key ID) it does not know, which
lets a witness or a second auditor co-sign without breaking anyone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from thermo_cli.errors import CorruptError, LimitExceededError, NotFoundError, ValidationError

SIG_PREFIX = "\u2014 "
"""An em dash and a space open every signature line."""

ED25519_TYPE = 0x01
STATE_EXTENSION = "state-digest"
META_EXTENSION = "meta-digest"
MAX_SIGNATURES = 100
MAX_NOTE_BYTES = 1 << 20


def read_small_file(path: str | os.PathLike[str], max_bytes: int, missing: str, kind: str) -> bytes:
    """The bytes of a note or key file, refused by size before reading (NotFoundError
    "no such <missing>", CorruptError "too large to be a <kind>")."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise NotFoundError(f"{p}: no such {missing}") from None
    if size > max_bytes:
        raise CorruptError(f"{p}: too large to be a {kind} ({size} bytes)")
    return p.read_bytes()


def key_id(name: str, public_key: bytes) -> bytes:
    """C2SP key ID of an Ed25519 verifier key: 4 bytes of SHA-256(name \\n 0x01 key)."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes((ED25519_TYPE,)) + public_key).digest()[:4]


def check_key_name(name: str) -> str:
    """A signer name: non-empty, no whitespace, no '+' (C2SP signed-note)."""
    if not isinstance(name, str) or not name:
        raise ValidationError("key name: must not be empty")
    if "+" in name or any(ch.isspace() for ch in name):
        raise ValidationError(f"key name: must not contain whitespace or '+', got {name!r}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise ValidationError(f"key name: must not contain control characters, got {name!r}")
    return name


def verifier_key(name: str, public_key: bytes) -> str:
    """The C2SP verifier-key text ``name+hex(key ID)+base64(0x01 || key)``."""
    blob = base64.b64encode(bytes((ED25519_TYPE,)) + public_key).decode("ascii")
    return f"{name}+{key_id(name, public_key).hex()}+{blob}"


def parse_verifier_key(text: str) -> tuple[str, bytes]:
    """``name+hex+base64`` → (name, 32-byte Ed25519 public key)."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise CorruptError("verifier key: expected name+keyid+base64")
    name, hex_id, blob = parts
    try:
        raw = base64.b64decode(blob, validate=True)
        kid = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError):
        raise CorruptError("verifier key: bad hex key ID or base64 key") from None
    if len(raw) != 33 or raw[0] != ED25519_TYPE:
        raise CorruptError("verifier key: only Ed25519 keys (type 0x01, 32 bytes) are supported")
    if not name or kid != key_id(name, raw[1:]):
        raise CorruptError("verifier key: key ID does not match the name and key")
    return name, raw[1:]


# --- checkpoints ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's size and root under an origin, with the layer state digest if known."""

    origin: str
    size: int
    root: bytes
    state_digest: bytes | None = None
    extensions: tuple[str, ...] = ()
    meta_digest: bytes | None = None

    def body(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii")]
        if self.state_digest is not None:
            lines.append(f"{STATE_EXTENSION} {base64.b64encode(self.state_digest).decode('ascii')}")
        if self.meta_digest is not None:
            lines.append(f"{META_EXTENSION} {base64.b64encode(self.meta_digest).decode('ascii')}")
        lines.extend(self.extensions)
        return "\n".join(lines) + "\n"


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint body (strict: decimal size without leading zeros, 32-byte root)."""
    if not body.endswith("\n"):
        raise CorruptError("checkpoint: body must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CorruptError("checkpoint: needs an origin, a size and a root hash line")
    origin, size_text, root_text, *rest = lines
    if not origin:
        raise CorruptError("checkpoint: empty origin line")
    if not size_text.isascii() or not size_text.isdigit() or (size_text != "0" and size_text[0] == "0"):
        raise CorruptError(f"checkpoint: tree size is not a decimal number: {size_text!r}")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error:
        raise CorruptError("checkpoint: root hash is not base64") from None
    if len(root) != 32:
        raise CorruptError(f"checkpoint: root hash must be 32 bytes, got {len(root)}")
    digests: dict[str, bytes] = {}
    extensions = []
    for line in rest:
        if not line:
            raise CorruptError("checkpoint: empty extension line")
        name, _, value = line.partition(" ")
        if name in (STATE_EXTENSION, META_EXTENSION) and name not in digests:
            digests[name] = _digest_line(name, value)
        else:
            extensions.append(line)
    return Checkpoint(
        origin,
        int(size_text),
        root,
        digests.get(STATE_EXTENSION),
        tuple(extensions),
        digests.get(META_EXTENSION),
    )


def _digest_line(name: str, value: str) -> bytes:
    """The 32 bytes of a ``state-digest`` / ``meta-digest`` extension line's base64."""
    what = name.replace("-", " ")
    try:
        digest = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise CorruptError(f"checkpoint: {what} is not base64") from None
    if len(digest) != 32:
        raise CorruptError(f"checkpoint: {what} must be 32 bytes")
    return digest


# --- signed notes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIG_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True, slots=True)
class SignedNote:
    """A note body and its signature lines (possibly none for an unsigned checkpoint)."""

    body: str
    signatures: tuple[NoteSignature, ...] = field(default_factory=tuple)

    def text(self) -> str:
        if not self.signatures:
            return self.body
        return self.body + "\n" + "".join(s.line() for s in self.signatures)

    def with_signature(self, sig: NoteSignature) -> SignedNote:
        """Add a signature, replacing an earlier one by the same key (same name and ID)."""
        kept = tuple(s for s in self.signatures if (s.name, s.key_id) != (sig.name, sig.key_id))
        return SignedNote(self.body, (*kept, sig))


def _check_text(text: str) -> None:
    for ch in text:
        if (ord(ch) < 0x20 and ch != "\n") or ord(ch) == 0x7F:
            raise CorruptError(f"note: control character U+{ord(ch):04X} is not allowed")


def parse_note(data: bytes | str) -> SignedNote:
    """Parse a signed note; a text without a signature block parses as an unsigned body.

    Raises CorruptError for malformed text (bad UTF-8, control characters, a malformed
    signature line) and LimitExceededError beyond :data:`MAX_SIGNATURES` or 1 MiB.
    """
    if isinstance(data, bytes):
        if len(data) > MAX_NOTE_BYTES:
            raise LimitExceededError(f"note: larger than {MAX_NOTE_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptError("note: not valid UTF-8") from None
    else:
        text = data
    _check_text(text)
    if not text.endswith("\n"):
        raise CorruptError("note: text must end with a newline")
    split = text.rfind("\n\n")
    if split < 0:
        return SignedNote(text, ())
    body, sig_block = text[: split + 1], text[split + 2 :]
    if "\n\n" in body:
        raise CorruptError("note: blank line inside the note body")
    sigs = []
    for line in sig_block[:-1].split("\n"):
        sigs.append(_parse_signature_line(line))
        if len(sigs) > MAX_SIGNATURES:
            raise LimitExceededError(f"note: more than {MAX_SIGNATURES} signatures")
    return SignedNote(body, tuple(sigs))


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIG_PREFIX):
        raise CorruptError(f"note: signature line does not start with an em dash: {line[:40]!r}")
    name, sep, blob = line[len(SIG_PREFIX) :].partition(" ")
    if not sep or not name or "+" in name or " " in blob:
        raise CorruptError(f"note: malformed signature line: {line[:60]!r}")
    try:
        raw = base64.b64decode(blob, validate=True)
    except binascii.Error:
        raise CorruptError(f"note: signature of {name!r} is not base64") from None
    if len(raw) < 5:
        raise CorruptError(f"note: signature of {name!r} is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def sign_body(body: str, name: str, private_key: object) -> NoteSignature:
    """Sign a note body with an Ed25519 private key (cryptography object)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not isinstance(private_key, Ed25519PrivateKey):
        raise TypeError("sign_body needs an Ed25519 private key")
    check_key_name(name)
    pub = public_key_bytes(private_key.public_key())
    return NoteSignature(name, key_id(name, pub), private_key.sign(body.encode("utf-8")))


class _PublicKey(Protocol):
    def public_bytes(self, encoding: Any, format: Any) -> bytes: ...


def public_key_bytes(public_key: _PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verify_signature(body: str, sig: NoteSignature, public_key: bytes) -> bool:
    """True when ``sig`` is a valid Ed25519 signature of ``body`` by ``public_key``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if sig.key_id != key_id(sig.name, public_key) or len(sig.signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig.signature, body.encode("utf-8"))
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class NoteCheck:
    """Outcome of checking a note against trusted keys."""

    verified: tuple[str, ...]
    """Names of trusted keys whose signatures verified (each key once)."""
    invalid: tuple[str, ...]
    """Names whose (name, key ID) match a trusted key but whose signature is wrong."""
    ignored: int
    """Distinct signature lines by keys not in the trusted set (C2SP: ignored)."""
    keys: tuple[int, ...] = ()
    """Positions in the trusted list of the keys whose signatures verified."""

    def describe(self) -> str:
        """ "signed by alice, bob; 1 unknown signature(s) ignored" (for reports)."""
        text = f"signed by {', '.join(self.verified)}"
        if self.ignored:
            text += f"; {self.ignored} unknown signature(s) ignored"
        return text


def check_note(note: SignedNote, trusted: list[tuple[str | None, bytes]]) -> NoteCheck:
    """Check every signature line against the trusted keys, ignoring unknown ones.

    A trusted key given without a name (e.g. a PEM public key) matches any signature line
    whose key ID equals the ID computed from that line's name and the key. As in Go's
    ``golang.org/x/mod/sumdb/note``, a key's signature counts once: only the first line by a
    known (name, key ID) is checked, later lines by it are dropped, and repeated identical
    lines by unknown keys are counted once — so copying a line cannot fake a second signer.
    """
    verified: list[str] = []
    invalid: list[str] = []
    keys: list[int] = []
    seen_known: set[tuple[str, bytes]] = set()
    seen_unknown: set[NoteSignature] = set()
    for sig in note.signatures:
        match = _trusted_match(sig, trusted)
        if match is None:
            seen_unknown.add(sig)
            continue
        if (sig.name, sig.key_id) in seen_known:
            continue
        seen_known.add((sig.name, sig.key_id))
        if verify_signature(note.body, sig, trusted[match][1]):
            verified.append(sig.name)
            keys.append(match)
        else:
            invalid.append(sig.name)
    return NoteCheck(tuple(verified), tuple(invalid), len(seen_unknown), tuple(keys))


def _trusted_match(sig: NoteSignature, trusted: list[tuple[str | None, bytes]]) -> int | None:
    """The position of the trusted key a signature line names, or None."""
    for i, (name, pub) in enumerate(trusted):
        if (name is None or name == sig.name) and key_id(sig.name, pub) == sig.key_id:
            return i
    return None
