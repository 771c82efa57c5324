"""Detached signed notes (``verify --note``), witness cosignatures, repeated signature lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import thermo_cli.cli  # noqa: F401 - registers every feature's commands
from thermo_cli import store
from thermo_cli.cli._common import app
from thermo_cli.errors import ValidationError
from thermo_cli.integrity import merkle, note
from thermo_cli.operations.audit import checkpoints, keys
from thermo_cli.operations.audit.verify import verify_file

from .conftest import make_tg, write


def row(report, name: str):
    """The report's check called ``name``."""
    return next(c for c in report.checks if c.name == name)


def signer(tmp_path: Path, name: str):
    """(private key, PublicKey, path of the public key file) of a new key named ``name``."""
    pub = keys.generate(tmp_path / name)
    return keys.load_private(tmp_path / name), pub, tmp_path / f"{name}.pub"


def cosigned(signed: note.SignedNote, *signers: tuple[object, str]) -> note.SignedNote:
    """The note with one more signature line per (private key, name), as a witness adds."""
    for private, name in signers:
        signed = signed.with_signature(note.sign_body(signed.body, name, private))
    return signed


@pytest.fixture
def setup(tmp_path):
    path = write(tmp_path / "t.thermo", make_tg())
    alice, witness = signer(tmp_path, "alice"), signer(tmp_path, "witness")
    return path, alice, witness


def test_witness_cosignature_on_a_saved_note_is_accepted(tmp_path, setup):
    """The issue: `verify --since note -k witness` said "no valid signature by witness"."""
    path, (alice_key, alice, _), (witness_key, witness, _) = setup
    info = checkpoints.sign(path, alice_key, "alice")  # alice signs in the file
    saved = tmp_path / "cp.txt"
    saved.write_text(cosigned(info.note, (witness_key, "witness")).text())
    tg = store.load(path)
    tg.update("later", b"x", strength=0.5)
    store.commit(path, tg)
    r = verify_file(path, since=saved, pubkeys=[alice, witness])
    assert r.ok, r.failure
    assert row(r, "since signatures").detail == "signed by alice, witness"
    r = verify_file(path, pubkeys=[alice, witness])  # without the note the witness signed nothing
    assert r.failure.check == "signatures" and "no valid signature by witness" in r.failure.reason


def test_a_detached_note_authenticates_the_head(tmp_path, setup):
    path, (alice_key, alice, _), (witness_key, witness, _) = setup
    info = checkpoints.checkpoint(path)  # an unsigned checkpoint record; signatures stay outside
    detached = cosigned(info.note, (alice_key, "alice"), (witness_key, "witness"))
    r = verify_file(path, pubkeys=[alice, witness], require_signed_head=True)
    assert r.failure.check == "signatures"  # the file alone is not signed
    assert r.failure.reason == "no valid signature by alice, witness"
    r = verify_file(path, pubkeys=[alice, witness], detached_note=detached, require_signed_head=True)
    assert r.ok, r.failure
    assert row(r, "note").detail == (
        f"signed by alice, witness; covers the checkpoint the file binds at record {info.index} of "
        f"{info.index + 1}"
    )
    assert r.authentication["status"] == "signed" and r.authentication["signers"] == ["alice", "witness"]
    assert "of them on the detached note" in row(r, "signatures").detail


def test_a_detached_note_for_a_prefix_vouches_for_the_log_only(tmp_path, setup):
    path, (alice_key, alice, _), _ = setup
    origin = checkpoints.checkpoint(path).note.body.split("\n")[0]
    with store.open_reader(path) as reader:
        first = [raw.data for raw in reader.iter_raw_records(0)][:10]
    body = note.Checkpoint(origin, 10, merkle.root(first)).body()
    detached = cosigned(note.SignedNote(body), (alice_key, "alice"))
    r = verify_file(path, pubkeys=[alice], detached_note=detached)
    assert r.ok, r.failure
    assert "covers the first 10 of" in row(r, "note").detail
    assert r.authentication["status"] == "unsigned"  # a log prefix says nothing of the layers


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("altered", "signature by 'alice' does not verify (the text was altered)"),
        ("stranger", "not signed by any of the given keys"),
        ("fork", "the first 35 records of the log do not hash to the checkpoint's root"),
        ("future", "the log has 36 records, fewer than the 99 of the checkpoint"),
        ("origin", "the checkpoint is for 'elsewhere', this file's log is"),
    ],
)
def test_a_bad_detached_note_fails_the_note_check(tmp_path, setup, change, reason):
    path, (alice_key, alice, _), _ = setup
    info = checkpoints.checkpoint(path)
    body = info.note.body
    if change == "altered":
        signed = cosigned(note.SignedNote(body), (alice_key, "alice"))
        signed = note.SignedNote(body.replace(body.split("\n")[1], "34"), signed.signatures)
    elif change == "stranger":
        stranger, _, _ = signer(tmp_path, "mallory")
        signed = cosigned(note.SignedNote(body), (stranger, "mallory"))
    else:
        cp = note.parse_checkpoint(body)
        other = write(tmp_path / "fork.thermo", make_tg(seed=1))
        if change == "fork":
            cp = note.parse_checkpoint(checkpoints.checkpoint(other).note.body)
            cp = note.Checkpoint(note.parse_checkpoint(body).origin, cp.size, cp.root)
        elif change == "future":
            cp = note.Checkpoint(cp.origin, 99, cp.root)
        else:
            cp = note.Checkpoint("elsewhere", cp.size, cp.root)
        signed = cosigned(note.SignedNote(cp.body()), (alice_key, "alice"))
    r = verify_file(path, pubkeys=[alice], detached_note=signed)
    assert not r.ok and r.failure.check == "note"
    assert r.failure.reason.startswith(f"detached note: {reason}")


def test_a_repeated_line_is_one_signature(tmp_path, setup):
    path, (alice_key, alice, _), _ = setup
    info = checkpoints.checkpoint(path)
    line = note.sign_body(info.note.body, "alice", alice_key)
    doubled = note.SignedNote(info.note.body, (line, line))
    r = verify_file(path, pubkeys=[alice], detached_note=doubled)
    assert r.ok and row(r, "note").count == 1 and row(r, "note").detail.startswith("signed by alice;")


def test_a_detached_note_needs_a_trusted_key(tmp_path, setup):
    path, (alice_key, _, _), _ = setup
    detached = cosigned(checkpoints.checkpoint(path).note, (alice_key, "alice"))
    with pytest.raises(ValidationError, match="detached_note: needs at least one trusted key"):
        verify_file(path, detached_note=detached)


def test_cli_verify_note_with_a_witness_key(tmp_path, setup):
    path, (alice_key, _, alice_pub), (witness_key, witness, _) = setup
    info = checkpoints.checkpoint(path)
    cp = tmp_path / "cp.txt"
    cp.write_text(cosigned(info.note, (alice_key, "alice"), (witness_key, "witness")).text())
    vkey = tmp_path / "witness.vkey"
    vkey.write_text(witness.vkey + "\n")
    runner = CliRunner()
    args = ["verify", str(path), "--note", str(cp), "-k", str(alice_pub), "-k", str(vkey)]
    r = runner.invoke(app, [*args, "--require-signed-head"])
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "signed by alice, witness; covers the checkpoint" in r.stdout and "INTACT" in r.stdout
    r = runner.invoke(app, ["verify", str(path), "--note", str(cp)])
    assert r.exit_code == 3  # as every option missing the option it needs
    assert r.stderr.strip() == (
        "thermo: error: --note needs --pubkey: a detached note is worth only the keys that signed it"
    )
    r = runner.invoke(app, ["verify", str(path), "--note", str(tmp_path / "none.txt"), "-k", str(alice_pub)])
    assert r.exit_code != 0 and "none.txt: no such checkpoint file" in r.stderr
