"""Ed25519 signing keys, stored the way ssh-keygen stores them.

``thermo keygen OUT`` writes the private key to OUT (OpenSSH or PKCS#8 PEM, optionally
encrypted with a passphrase, created with mode 0600 and never over an existing file)
and the public key to OUT.pub as one OpenSSH line whose comment is the signer name used
in signed notes. Public keys are accepted as OpenSSH lines, PEM, or C2SP verifier keys
(``name+keyid+base64``), so an auditor can use whatever the signer published.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from thermo_cli.container.fileops import atomic_write
from thermo_cli.errors import CorruptError, RefusedError, ValidationError
from thermo_cli.integrity import note

if TYPE_CHECKING:  # cryptography is imported by the functions that need it (start-up time)
    from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

FORMATS = ("openssh", "pem")
MAX_KEY_FILE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A verifier key: 32 raw Ed25519 bytes and the signer name when the file gives one."""

    raw: bytes
    name: str | None = None
    source: str = ""

    @property
    def vkey(self) -> str | None:
        return None if self.name is None else note.verifier_key(self.name, self.raw)


def default_name(path: str | os.PathLike[str]) -> str:
    """A signer name from a key file name: its stem with whitespace and '+' replaced."""
    stem = Path(path).name
    for suffix in (".pub", ".pem", ".key"):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
    cleaned = "".join("-" if ch.isspace() or ch == "+" else ch for ch in stem)
    return cleaned or "thermo"


def generate(
    out: str | os.PathLike[str],
    *,
    fmt: str = "openssh",
    passphrase: bytes | None = None,
    name: str | None = None,
) -> PublicKey:
    """Create a key pair: private key at ``out`` (0600), public key at ``out``.pub.

    Refuses (RefusedError) when either file exists, so a key is never overwritten.
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if fmt not in FORMATS:
        raise ValidationError(f"key format: expected openssh or pem, got {fmt!r}")
    if passphrase is not None and not passphrase:
        raise ValidationError("passphrase: must not be empty (omit it for an unencrypted key)")
    signer = note.check_key_name(name if name is not None else default_name(out))
    out = Path(out)
    pub_path = Path(str(out) + ".pub")
    for p in (out, pub_path):
        if p.exists():
            raise RefusedError(f"{p}: already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    private_format = (
        serialization.PrivateFormat.OpenSSH if fmt == "openssh" else serialization.PrivateFormat.PKCS8
    )
    try:
        private_bytes = key.private_bytes(serialization.Encoding.PEM, private_format, enc)
    except UnsupportedAlgorithm:  # encrypted OpenSSH keys need bcrypt's KDF
        raise ValidationError(
            "an encrypted OpenSSH key needs the bcrypt package; install it or use fmt='pem'"
        ) from None
    public_line = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    atomic_write(out, lambda f: f.write(private_bytes), overwrite=False, mode=0o600)
    try:
        public_text = public_line + b" " + signer.encode("utf-8") + b"\n"
        atomic_write(pub_path, lambda f: f.write(public_text), overwrite=False, mode=0o644)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return PublicKey(note.public_key_bytes(key.public_key()), signer, str(pub_path))


def _read_key_file(path: str | os.PathLike[str]) -> bytes:
    return note.read_small_file(path, MAX_KEY_FILE_BYTES, "key file", "key file")


def load_private(path: str | os.PathLike[str], passphrase: bytes | None = None) -> object:
    """Load an Ed25519 private key (OpenSSH or PEM, encrypted or not)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read_key_file(path)
    if _is_public_key(data):
        private = str(path)[: -len(".pub")] if str(path).endswith(".pub") else "the private key file"
        raise ValidationError(f"{path}: is a public key; signing needs the private key ({private})")
    loader = (
        serialization.load_ssh_private_key
        if b"OPENSSH PRIVATE KEY" in data
        else serialization.load_pem_private_key
    )
    try:
        key = loader(data, password=passphrase or None)
    except TypeError:  # cryptography: a password was given but not needed, or the reverse
        if passphrase:
            raise ValidationError(f"{path}: key is not encrypted; drop the passphrase") from None
        raise ValidationError(f"{path}: key is encrypted; pass passphrase=…") from None
    except ValueError as exc:
        if passphrase:
            raise ValidationError(f"{path}: wrong passphrase (or a damaged key file)") from None
        raise CorruptError(f"{path}: not a readable private key ({_library_reason(exc)})") from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm and friends
        raise CorruptError(f"{path}: not a readable private key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValidationError(f"{path}: not an Ed25519 key ({type(key).__name__})")
    return key


def _is_public_key(data: bytes) -> bool:
    """An OpenSSH ``.pub`` line or a PEM public key: given where a private key belongs."""
    head = data.lstrip()[:64]
    return head.startswith(b"ssh-ed25519 ") or head.startswith(b"-----BEGIN PUBLIC KEY-----")


def _library_reason(exc: Exception) -> str:
    """cryptography's message without its FAQ link and framing jargon: what the user can act on."""
    text = str(exc).split(" See https://", 1)[0].strip()
    return text.rstrip(".") or type(exc).__name__


def signer_name(key_path: str | os.PathLike[str]) -> str:
    """Default signer name for a private key: the comment of KEY.pub, else the file stem."""
    pub = Path(str(key_path) + ".pub")
    if pub.exists():
        try:
            loaded = load_public(pub)
        except (CorruptError, ValidationError):
            loaded = None
        if loaded is not None and loaded.name:
            return loaded.name
    return default_name(key_path)


def load_public(path_or_text: str | os.PathLike[str]) -> PublicKey:
    """A verifier key from a file (OpenSSH line, PEM, C2SP verifier key) or a vkey string."""
    text_arg = str(path_or_text)
    if "+" in text_arg and not Path(text_arg).exists():
        name, raw = note.parse_verifier_key(text_arg)
        return PublicKey(raw, name, "vkey")
    data = _read_key_file(path_or_text)
    return parse_public(data, source=text_arg)


def parse_public(data: bytes, *, source: str = "public key") -> PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    stripped = data.strip()
    if stripped.startswith(b"ssh-"):
        fields = stripped.split(None, 2)
        try:
            key: PublicKeyTypes = serialization.load_ssh_public_key(b" ".join(fields[:2]))
        except Exception as exc:  # cryptography raises ValueError or UnsupportedAlgorithm
            kind = type(exc).__name__
            raise CorruptError(f"{source}: not a readable OpenSSH public key ({kind})") from None
        name = fields[2].decode("utf-8", "replace").strip() if len(fields) > 2 else None
        if name is not None:
            try:
                note.check_key_name(name)
            except ValidationError:
                name = None
    elif b"-----BEGIN" in stripped:
        try:
            key = serialization.load_pem_public_key(stripped)
        except Exception as exc:
            raise CorruptError(f"{source}: not a readable PEM public key ({type(exc).__name__})") from None
        name = None
    else:
        try:
            vname, raw = note.parse_verifier_key(stripped.decode("ascii"))
        except (UnicodeDecodeError, CorruptError):
            raise CorruptError(
                f"{source}: not a public key (expected an OpenSSH line, PEM or name+keyid+base64)"
            ) from None
        return PublicKey(raw, vname, source)
    if not isinstance(key, Ed25519PublicKey):
        raise ValidationError(f"{source}: not an Ed25519 public key ({type(key).__name__})")
    return PublicKey(note.public_key_bytes(key), name, source)
