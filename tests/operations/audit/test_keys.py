"""Ed25519 key files: ssh-keygen-like creation, loading in every accepted form."""

from __future__ import annotations

import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from thermo_cli.errors import CorruptError, NotFoundError, RefusedError, ValidationError
from thermo_cli.integrity import note
from thermo_cli.operations.audit import keys


@pytest.mark.parametrize("fmt", ["openssh", "pem"])
@pytest.mark.parametrize("passphrase", [None, b"correct horse"])
def test_generate_and_load(tmp_path, fmt, passphrase):
    if fmt == "openssh" and passphrase:
        pytest.importorskip("bcrypt", reason="encrypted OpenSSH keys need the openssh extra")
    out = tmp_path / "alice"
    pub = keys.generate(out, fmt=fmt, passphrase=passphrase)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert pub.name == "alice" and pub.vkey.startswith("alice+")
    marker = b"OPENSSH PRIVATE KEY" if fmt == "openssh" else b"PRIVATE KEY"
    assert marker in out.read_bytes()
    private = keys.load_private(out, passphrase)
    assert note.public_key_bytes(private.public_key()) == pub.raw
    loaded = keys.load_public(tmp_path / "alice.pub")
    assert (loaded.raw, loaded.name) == (pub.raw, "alice")
    assert (tmp_path / "alice.pub").read_text().startswith("ssh-ed25519 ")
    assert keys.signer_name(out) == "alice"
    if passphrase:
        with pytest.raises(ValidationError, match="encrypted"):
            keys.load_private(out, None)
        with pytest.raises(ValidationError, match="wrong passphrase"):
            keys.load_private(out, b"wrong")
    else:
        with pytest.raises(ValidationError, match="not encrypted"):
            keys.load_private(out, b"something")


def test_generate_refuses_to_overwrite_and_checks_arguments(tmp_path):
    out = tmp_path / "k"
    keys.generate(out, name="auditor")
    before = out.read_bytes()
    with pytest.raises(RefusedError):
        keys.generate(out)
    assert out.read_bytes() == before
    with pytest.raises(ValidationError):
        keys.generate(tmp_path / "k2", fmt="der")
    with pytest.raises(ValidationError):
        keys.generate(tmp_path / "k3", name="has space")
    with pytest.raises(ValidationError):
        keys.generate(tmp_path / "k4", passphrase=b"")
    assert not (tmp_path / "k2").exists() and not (tmp_path / "k3").exists()
    assert keys.load_public(tmp_path / "k.pub").name == "auditor"


def test_public_keys_in_every_form(tmp_path):
    pub = keys.generate(tmp_path / "bob")
    private = keys.load_private(tmp_path / "bob")
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "bob.pem").write_bytes(pem)
    from_pem = keys.load_public(tmp_path / "bob.pem")
    assert from_pem.raw == pub.raw and from_pem.name is None
    from_vkey = keys.load_public(pub.vkey)
    assert (from_vkey.raw, from_vkey.name) == (pub.raw, "bob")
    (tmp_path / "bob.vkey").write_text(pub.vkey + "\n")
    assert keys.load_public(tmp_path / "bob.vkey").raw == pub.raw


def test_bad_key_files(tmp_path):
    with pytest.raises(NotFoundError):
        keys.load_public(tmp_path / "missing.pub")
    (tmp_path / "junk").write_text("hello\n")
    with pytest.raises(CorruptError):
        keys.load_public(tmp_path / "junk")
    with pytest.raises(CorruptError):
        keys.load_private(tmp_path / "junk")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ec").write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ValidationError, match="Ed25519"):
        keys.load_private(tmp_path / "ec")
    (tmp_path / "ec.pem").write_bytes(
        ec_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(ValidationError, match="Ed25519"):
        keys.load_public(tmp_path / "ec.pem")
    (tmp_path / "big").write_bytes(b"x" * (keys.MAX_KEY_FILE_BYTES + 1))
    with pytest.raises(CorruptError):
        keys.load_public(tmp_path / "big")
