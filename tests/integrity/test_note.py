"""C2SP signed notes and checkpoints, anchored to the golang.org/x/mod/sumdb/note vector."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from thermo_cli.errors import CorruptError, LimitExceededError, ValidationError
from thermo_cli.integrity import note

# golang.org/x/mod/sumdb/note: the PeterNeumann key pair, text and published signature.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
SIGNED = (
    TEXT + "\n\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
PLUS_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"  # base64 holding a '+'


def peter_private() -> Ed25519PrivateKey:
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])[1:]
    return Ed25519PrivateKey.from_private_bytes(seed)


def test_verifier_keys_parse_and_round_trip():
    name, pub = note.parse_verifier_key(PETER_VKEY)
    assert name == "PeterNeumann" and note.key_id(name, pub).hex() == "c74f20a3"
    assert note.verifier_key(name, pub) == PETER_VKEY
    assert note.parse_verifier_key(PLUS_VKEY)[0] == "TEST"
    assert note.public_key_bytes(peter_private().public_key()) == pub


@pytest.mark.parametrize(
    "bad",
    [
        PETER_VKEY.replace("c74f20a3", "c74f20a4"),
        "PeterNeumann+c74f20a3",
        "x+00000000+AAAA",
        PETER_VKEY[:-4] + "AAAA",
    ],
)
def test_mangled_verifier_keys_are_refused(bad):
    with pytest.raises(CorruptError):
        note.parse_verifier_key(bad)


def test_signing_reproduces_the_go_note_byte_for_byte():
    sig = note.sign_body(TEXT, "PeterNeumann", peter_private())
    assert note.SignedNote(TEXT, (sig,)).text() == SIGNED


def test_the_go_note_verifies_and_an_altered_text_does_not():
    parsed = note.parse_note(SIGNED.encode())
    _, pub = note.parse_verifier_key(PETER_VKEY)
    assert parsed.body == TEXT
    res = note.check_note(parsed, [("PeterNeumann", pub)])
    assert res.verified == ("PeterNeumann",) and not res.invalid
    altered = note.parse_note(SIGNED.replace("cryptography", "cryptographY"))
    res = note.check_note(altered, [("PeterNeumann", pub)])
    assert res.invalid == ("PeterNeumann",) and not res.verified


def test_unknown_signatures_are_ignored_and_keys_without_names_match_by_id():
    other = Ed25519PrivateKey.generate()
    extra = note.sign_body(TEXT, "EnochRoot", other)
    parsed = note.parse_note(note.SignedNote(TEXT, (*note.parse_note(SIGNED).signatures, extra)).text())
    _, peter = note.parse_verifier_key(PETER_VKEY)
    res = note.check_note(parsed, [(None, peter)])
    assert res.verified == ("PeterNeumann",) and res.ignored == 1
    _, enoch = note.parse_verifier_key(ENOCH_VKEY)  # right name, wrong key: ignored, not invalid
    res = note.check_note(parsed, [("EnochRoot", enoch)])
    assert res.verified == () and res.invalid == () and res.ignored == 2


def test_a_repeated_signature_line_counts_once_as_in_go():
    """golang.org/x/mod/sumdb/note drops later lines by a known key and identical unknown lines."""
    peter_sig = note.parse_note(SIGNED).signatures[0]
    enoch = note.sign_body(TEXT, "EnochRoot", Ed25519PrivateKey.generate())
    doubled = note.parse_note(note.SignedNote(TEXT, (peter_sig, peter_sig, enoch, enoch)).text())
    assert len(doubled.signatures) == 4
    _, peter = note.parse_verifier_key(PETER_VKEY)
    res = note.check_note(doubled, [("PeterNeumann", peter)])
    assert (res.verified, res.invalid, res.ignored, res.keys) == (("PeterNeumann",), (), 1, (0,))
    assert res.describe() == "signed by PeterNeumann; 1 unknown signature(s) ignored"
    # only the first line by a known key is checked: a later (even broken) line is dropped ...
    broken = note.NoteSignature(peter_sig.name, peter_sig.key_id, bytes(64))
    res = note.check_note(note.SignedNote(TEXT, (peter_sig, broken)), [("PeterNeumann", peter)])
    assert res.verified == ("PeterNeumann",) and not res.invalid
    # ... and a broken first line is not rescued by a good one after it
    res = note.check_note(note.SignedNote(TEXT, (broken, peter_sig)), [("PeterNeumann", peter)])
    assert res.invalid == ("PeterNeumann",) and not res.verified


def test_with_signature_replaces_the_same_key():
    priv = peter_private()
    a = note.sign_body(TEXT, "PeterNeumann", priv)
    signed = note.SignedNote(TEXT).with_signature(a).with_signature(a)
    assert len(signed.signatures) == 1


@pytest.mark.parametrize(
    "bad",
    [
        TEXT + "\n\u2014 PeterNeumann !!!\n",
        TEXT + "\n- PeterNeumann x08go/ZJku\n",
        TEXT + "\n\u2014 PeterNeumann\n",
        TEXT + "\n\u2014 Peter+Neumann x08go/ZJkuBS9UG/Sffc\n",
        TEXT[:-1],
        "line\x07bell\n",
    ],
)
def test_malformed_notes_are_refused(bad):
    with pytest.raises(CorruptError):
        note.parse_note(bad)


def test_note_limits():
    with pytest.raises(CorruptError):
        note.parse_note(b"\xff\xfe\n")
    with pytest.raises(LimitExceededError):
        note.parse_note(b"x" * (note.MAX_NOTE_BYTES + 1))
    line = "\u2014 a " + base64.b64encode(b"k" * 68).decode() + "\n"
    with pytest.raises(LimitExceededError):
        note.parse_note(TEXT + "\n" + line * (note.MAX_SIGNATURES + 1))


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there"])
def test_bad_key_names(name):
    with pytest.raises(ValidationError):
        note.check_key_name(name)


def test_checkpoint_body_format_and_parse():
    root = bytes(range(32))
    cp = note.Checkpoint("thermo/abc", 42, root, bytes(32), ("vendor ext",))
    body = cp.body()
    assert body.splitlines()[:3] == ["thermo/abc", "42", base64.b64encode(root).decode()]
    assert body.splitlines()[3] == "state-digest " + base64.b64encode(bytes(32)).decode()
    assert note.parse_checkpoint(body) == cp
    assert note.parse_checkpoint("o\n0\n" + base64.b64encode(root).decode() + "\n").state_digest is None


@pytest.mark.parametrize(
    "body",
    [
        "o\n01\nAAAA\n",
        "o\n-1\nAAAA\n",
        "o\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "o\n1\n!!!\n",
        "\n1\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "o\n1\n",
        "o\n1\n" + base64.b64encode(bytes(32)).decode(),
        "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\n\n",
        "o\n1\n" + base64.b64encode(bytes(32)).decode() + "\nstate-digest AAAA\n",
    ],
)
def test_malformed_checkpoints_are_refused(body):
    with pytest.raises(CorruptError):
        note.parse_checkpoint(body)


@given(
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40),
    st.integers(min_value=0, max_value=2**64),
    st.binary(min_size=32, max_size=32),
    st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
)
def test_checkpoint_round_trip(origin, size, root, digest):
    cp = note.Checkpoint(origin, size, root, digest)
    assert note.parse_checkpoint(cp.body()) == cp
    assert note.parse_note(cp.body()).body == cp.body()
