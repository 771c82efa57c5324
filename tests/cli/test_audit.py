"""The audit commands end to end: verify, keygen, sign, checkpoint, prove, verify-proof."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from thermo_cli import store
from thermo_cli.codec import records

from .conftest import LEGACY_SMALL


def _tamper_record(path: Path, out: Path, k: int) -> Path:
    tg = store.load(path, layers="full", log="full")
    tg.persisted = 0
    rec = tg.records[k]
    rec.encoded = records.encode_record(
        type(rec)(
            **{**{f: getattr(rec, f) for f in rec.__slots__ if f not in ("encoded",)}, "source": "mallory"}
        )
    )
    store.create(out, tg)
    return out


def test_verify_intact_json_and_text(thermo, filled):
    r = thermo("verify", filled)
    assert r.code == 0 and r.out.rstrip().endswith("INTACT") and "merkle root" in r.out
    r = thermo("verify", filled, "--json")
    doc = json.loads(r.out)
    assert r.code == 0 and doc["ok"] and doc["failure"] is None
    assert {c["name"] for c in doc["checks"]} >= {"records", "merkle root", "state digest"}
    assert thermo("verify", filled, "--deep").code == 0


def test_verify_names_the_tampered_record(thermo, filled, tmp_path):
    bad = _tamper_record(filled, tmp_path / "bad.thermo", 2)
    r = thermo("verify", bad)
    assert r.code == 1 and "FIRST FAILURE [records] at record 2" in r.out
    assert r.out.rstrip().endswith("FAILED")
    doc = json.loads(thermo("verify", bad, "--json").out)
    assert doc["failure"]["index"] == 2 and not doc["ok"]


def test_verify_unreadable_and_legacy(thermo, tmp_path):
    junk = tmp_path / "junk.thermo"
    junk.write_bytes(b"\x00" * 10)
    r = thermo("verify", junk)
    assert r.code == 3 and r.err.startswith("thermo: error:") and r.out == ""
    assert thermo("verify", tmp_path / "missing.thermo").code == 6
    r = thermo("verify", LEGACY_SMALL)
    assert r.code == 0 and "legacy" in r.out


def test_keygen_sign_checkpoint_since(thermo, filled, tmp_path):
    pytest.importorskip("bcrypt", reason="encrypted OpenSSH keys need the openssh extra")
    key = tmp_path / "alice"
    r = thermo("keygen", key, "--passphrase", "s3cret")
    assert r.code == 0 and r.out.startswith("alice+")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and (tmp_path / "alice.pub").exists()
    assert thermo("keygen", key).code == 4  # never overwrites a key
    assert thermo("sign", filled, "--key", key).code == 3  # encrypted: needs the passphrase
    pw = tmp_path / "pw"
    pw.write_text("wrong\n")
    assert thermo("sign", filled, "--key", key, "--passphrase-file", pw).code == 3
    before = filled.read_bytes()
    pw.write_text("s3cret\n")
    cp = tmp_path / "cp.txt"
    r = thermo("sign", filled, "--key", key, "--passphrase-file", pw, "--out", cp)
    assert r.code == 0 and "signed checkpoint record" in r.err and filled.read_bytes() != before
    text = cp.read_text()
    assert "\n\n\u2014 alice " in text and "state-digest " in text
    assert thermo("verify", filled, "--pubkey", tmp_path / "alice.pub", "--since", cp).code == 0
    thermo("keygen", tmp_path / "bob", "--format", "pem")
    r = thermo("verify", filled, "--pubkey", tmp_path / "bob.pub")
    assert r.code == 1 and "no valid signature by bob" in r.out
    r = thermo("checkpoint", filled, "--json")
    doc = json.loads(r.out)
    assert r.code == 0 and not doc["created"] and doc["signers"] == ["alice"]
    cp.write_text(text.replace("\n\n", "\nextra line\n\n"))
    r = thermo("verify", filled, "--pubkey", tmp_path / "alice.pub", "--since", cp)
    assert r.code == 1 and "since signatures" in r.out


def test_checkpoint_writes_the_note(thermo, filled, tmp_path):
    r = thermo("checkpoint", filled)  # the consolidation is the current checkpoint
    assert r.code == 0 and r.out.splitlines()[0].startswith("thermo/") and "current checkpoint" in r.err
    assert thermo("apply", filled, "-", input='{"op": "update", "key": "k", "value": "v"}\n').code == 0
    r = thermo("checkpoint", filled)
    assert r.code == 0 and "appended checkpoint" in r.err
    out = tmp_path / "cp.txt"
    r = thermo("checkpoint", filled, "--out", out)
    assert r.code == 0 and r.out == "" and out.read_text().startswith("thermo/")
    assert thermo("checkpoint", LEGACY_SMALL).code == 4


def test_prove_and_verify_proof(thermo, filled, tmp_path):
    key = tmp_path / "k"
    thermo("keygen", key, "--name", "auditor")
    thermo("sign", filled, "--key", key)
    tg = store.load(filled, layers="full")
    layer, entry_key = next((layer, k) for layer, m in tg.layers.items() for k in m)
    proof = tmp_path / "proof.json"
    r = thermo("prove", filled, entry_key, "--out", proof)
    assert r.code == 0
    doc = json.loads(proof.read_text())
    assert doc["key"] == entry_key and doc["layer"] == layer.label
    assert thermo("verify-proof", proof, "--pubkey", tmp_path / "k.pub").code == 0
    value = tmp_path / "value.bin"
    value.write_bytes(tg.layers[layer][entry_key].value)
    assert thermo("verify-proof", proof, "--pubkey", tmp_path / "k.pub", "--value", value).code == 0
    value.write_bytes(b"other")
    r = thermo("verify-proof", proof, "--value", value, "--json")
    assert r.code == 1 and json.loads(r.out)["failure"]["check"] == "value"
    doc["path"][0] = "00" * 32 if doc["path"] else None
    if doc["path"][0] is not None:
        proof.write_text(json.dumps(doc))
        assert thermo("verify-proof", proof).code == 1
    assert thermo("verify-proof", "-", input="not json").code == 3
    assert thermo("prove", filled, "no-such-key").code == 6


def test_prove_after_a_tick_uses_the_state_the_tick_bound(thermo, filled):
    tg = store.load(filled, layers="full")
    some_key = next(k for m in tg.layers.values() for k in m)
    assert thermo("tick", filled).code == 0
    r = thermo("prove", filled, some_key)
    assert r.code in (0, 6)  # 6 if the tick pruned it
    if r.code == 0:
        assert json.loads(r.out)["checkpoint"]["kind"] == "bind"  # the commit bound the state the tick left
    assert thermo("checkpoint", filled).code == 0
    assert thermo("prove", filled, some_key).code == r.code


@pytest.mark.parametrize("args", [["verify", "--help"], ["keygen", "--help"], ["verify-proof", "--help"]])
def test_help(thermo, args):
    assert thermo(*args).code == 0


def test_pipeline_in_a_real_process(filled, tmp_path):
    exe = [str(Path(sys.executable).parent / "thermo")]
    key = tmp_path / "ops"
    subprocess.run([*exe, "keygen", str(key)], check=True, capture_output=True)
    subprocess.run(
        [*exe, "sign", str(filled), "--key", str(key), "--out", str(tmp_path / "cp.txt")],
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [*exe, "verify", str(filled), "--pubkey", f"{key}.pub", "--since", str(tmp_path / "cp.txt")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_verify_states_what_is_authenticated(thermo, filled, tmp_path):
    r = thermo("verify", filled)
    assert r.code == 0 and "authenticity: NOT signed" in r.out
    r = thermo("verify", filled, "--require-signed-head")
    assert r.code == 3 and "--require-signed-head needs --pubkey" in r.err
    key = tmp_path / "alice"
    thermo("keygen", key)
    pub = tmp_path / "alice.pub"
    assert thermo("verify", filled, "--pubkey", pub, "--require-signed-head").code == 1
    assert thermo("sign", filled, "--key", key).code == 0
    r = thermo("verify", filled, "--pubkey", pub, "--require-signed-head", "--json")
    doc = json.loads(r.out)
    assert (
        r.code == 0 and doc["authentication"]["status"] == "signed" and doc["authentication"]["head_signed"]
    )
    assert thermo("tick", filled).code == 0  # changes the layers after the signature
    r = thermo("verify", filled, "--pubkey", pub)
    assert r.code == 0 and "authenticity: signed by alice up to record" in r.out and "NOT covered" in r.out
    r = thermo("verify", filled, "--pubkey", pub, "--require-signed-head")
    assert r.code == 1 and "FIRST FAILURE [signed head]" in r.out
