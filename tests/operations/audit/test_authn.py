"""The meta digest and what verify says is authenticated: configuration edits without a
logged, bound change fail; a signature covers the configuration; the report states who
signed up to which record, and ``require_signed_head`` turns that into a check."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from thermo_cli import store
from thermo_cli.errors import ValidationError
from thermo_cli.integrity import note
from thermo_cli.model import Event
from thermo_cli.operations.audit import checkpoints, keys
from thermo_cli.operations.audit.authn import authentication_of, ranges_text
from thermo_cli.operations.audit.verify import verify_file

from .conftest import find_entry, load_full, make_tg, reseal, write


def _forge(path: Path, tg) -> Path:
    """Write ``tg`` straight through the container writer (digests recomputed, no binding
    added): what someone without the key can always do."""
    from thermo_cli.container.layout import new_prefix
    from thermo_cli.container.writer import write_full

    with open(path, "wb") as f:
        write_full(f, tg, prefix=new_prefix(), seq=0, source=None)
    return path


def _sign(path, key_path):
    return checkpoints.sign(path, keys.load_private(key_path), keys.signer_name(key_path))


def _tamper_config(tg) -> None:
    """Change the thermal configuration behind the thermogram's back (no event, no binding)."""
    thermal = dataclasses.replace(tg.thermal, decay_rates=(0.9,) * 4, prune_threshold=0.5)
    tg.__dict__["_thermal"] = thermal


def check(report, name):
    return next(c for c in report.checks if c.name == name)


# --- the meta digest ------------------------------------------------------------------------


def test_every_binding_carries_the_meta_digest(thermo_file):
    tg = load_full(thermo_file)
    bound = [r for r in tg.records if isinstance(r, Event) and "state_digest" in r.fields]
    assert bound and all(r.fields["meta_digest"] == tg.meta_digest() for r in bound)
    r = verify_file(thermo_file)
    assert r.ok and check(r, "meta digest").ok and "match the digest bound" in check(r, "meta digest").detail


@pytest.mark.parametrize("signed", [False, True])
def test_a_configuration_edited_with_digests_recomputed_fails(tmp_path, thermo_file, keypair, signed):
    key_path, alice = keypair
    if signed:
        _sign(thermo_file, key_path)
    tg = load_full(thermo_file)
    _tamper_config(tg)
    r = verify_file(_forge(tmp_path / "f.thermo", tg), pubkeys=[alice] if signed else [])
    assert not r.ok and r.failure.check == "meta digest"
    assert "changed without a logged, bound change" in r.failure.reason


def test_the_failure_names_the_field_the_log_last_configured(tmp_path):
    tg = make_tg()
    tg.set_thermal(dataclasses.replace(tg.thermal, prune_threshold=0.25))
    tg.rename("renamed")
    path = write(tmp_path / "c.thermo", tg)
    assert verify_file(path).ok
    tg = load_full(path)
    _tamper_config(tg)
    tg.__dict__["_name"] = "other"
    r = verify_file(_forge(tmp_path / "f.thermo", tg))
    assert r.failure.check == "meta digest"
    assert r.details["meta_fields_changed"] == ["thermal", "name"]
    assert "thermal, name" in r.failure.reason


@pytest.mark.parametrize(
    "change",
    [
        lambda tg: tg.set_thermal(dataclasses.replace(tg.thermal, prune_threshold=0.25)),
        lambda tg: tg.rename("another name"),
        lambda tg: tg.set_extra("snn", {"neurons": 3}),
        lambda tg: tg.meta.__setattr__("custom", {"owner": "bob"}),
    ],
    ids=["configure", "rename", "extension", "custom"],
)
def test_a_meta_change_is_bound_at_commit(tmp_path, thermo_file, change):
    tg = store.load(thermo_file)
    before = tg.log_length
    change(tg)
    store.commit(thermo_file, tg)
    back = store.load(thermo_file, log="full")
    assert back.records[-1].kind == "bind" and back.log_length > before
    assert back.records[-1].fields["meta_digest"] == back.meta_digest()
    assert verify_file(thermo_file).ok


def test_counters_and_timestamps_are_not_bound(tmp_path, thermo_file):
    tg = load_full(thermo_file)
    digest = tg.meta_digest()
    tg.meta.total_deltas += 5
    tg.meta.last_consolidation_ns += 1
    assert tg.meta_digest() == digest
    assert verify_file(_forge(tmp_path / "f.thermo", tg)).ok


def test_bindings_without_meta_digest_get_a_note(tmp_path):
    tg = make_tg()
    for rec in tg.records:
        if isinstance(rec, Event):
            rec.fields.pop("meta_digest", None)
    reseal(tg, 0)
    r = verify_file(_forge(tmp_path / "old.thermo", tg))
    assert r.ok
    assert (
        "configuration not bound (written before format 2.1 meta binding)" in check(r, "meta digest").detail
    )
    assert any("configuration not bound" in n for n in r.notes)


def test_a_binding_that_drops_the_meta_digest_after_one_had_it_fails(tmp_path, thermo_file):
    tg = load_full(thermo_file)
    tg.append_event("checkpoint", {"origin": "x"}, bind=True)
    tg.records[-1].fields.pop("meta_digest")
    reseal(tg, len(tg.records) - 1)
    r = verify_file(_forge(tmp_path / "f.thermo", tg))
    assert r.failure.check == "meta digest" and "lost its binding" in r.failure.reason


# --- what a signature covers ----------------------------------------------------------------


def test_the_signed_note_carries_the_meta_digest(thermo_file, keypair):
    info = _sign(thermo_file, keypair[0])
    cp = note.parse_checkpoint(info.note.body)
    assert cp.meta_digest == store.load(thermo_file).meta_digest()
    assert f"\n{note.META_EXTENSION} " in info.note.body


def test_a_signed_head(thermo_file, keypair):
    key_path, alice = keypair
    _sign(thermo_file, key_path)
    r = verify_file(thermo_file, pubkeys=[alice], require_signed_head=True)
    auth = r.authentication
    assert r.ok and check(r, "signed head").ok
    assert auth["status"] == "signed" and auth["head_signed"] and auth["signers"] == ["alice"]
    assert auth["signed_records"] == auth["total_records"] - 1  # all but the trailing signature


def test_changes_after_the_last_signature_are_partially_signed(thermo_file, keypair):
    key_path, alice = keypair
    _sign(thermo_file, key_path)
    tg = store.load(thermo_file)
    _, entry = find_entry(tg, "key1")
    entry.value = b"changed after signing"
    tg.append_event("quantize", {"keys": ["key1"]})
    tg.mark_layers_changed()
    store.commit(thermo_file, tg)  # a bind record after the signed checkpoint
    r = verify_file(thermo_file, pubkeys=[alice])
    auth = r.authentication
    assert r.ok and auth["status"] == "partially-signed" and not auth["head_signed"]
    assert auth["uncovered_records"] == 2 and "are NOT covered by a signature" in auth["summary"]
    r = verify_file(thermo_file, pubkeys=[alice], require_signed_head=True)
    assert not r.ok and r.failure.check == "signed head" and "NOT covered" in r.failure.reason


def test_stripped_signatures_are_reported_unsigned(tmp_path, thermo_file, keypair):
    key_path, alice = keypair
    _sign(thermo_file, key_path)
    tg = load_full(thermo_file)
    tg.records = [r for r in tg.records if not (isinstance(r, Event) and r.kind == "signature")]
    reseal(tg, 0)
    stripped = _forge(tmp_path / "s.thermo", tg)
    r = verify_file(stripped)
    assert r.ok and r.authentication["status"] == "unsigned" and "NOT signed" in r.authentication["summary"]
    r = verify_file(stripped, pubkeys=[alice], require_signed_head=True)
    assert not r.ok and r.authentication["status"] == "unsigned"
    assert not check(r, "signed head").ok


def test_signatures_without_a_key_are_unverified(thermo_file, keypair):
    _sign(thermo_file, keypair[0])
    r = verify_file(thermo_file)
    assert r.ok and r.authentication["status"] == "signatures-unverified"
    assert r.authentication["signers"] == ["alice"] and not r.authentication["head_signed"]


def test_a_signed_head_that_fails_another_check_is_not_vouched_for(tmp_path, thermo_file, keypair):
    key_path, alice = keypair
    _sign(thermo_file, key_path)
    tg = load_full(thermo_file)
    _tamper_config(tg)
    r = verify_file(_forge(tmp_path / "f.thermo", tg), pubkeys=[alice], require_signed_head=True)
    assert r.failure.check == "meta digest" and not check(r, "signed head").ok


def test_require_signed_head_needs_a_key(thermo_file):
    with pytest.raises(ValidationError, match="require_signed_head"):
        verify_file(thermo_file, require_signed_head=True)


def test_an_old_signed_checkpoint_does_not_cover_the_configuration():
    cp = Event("checkpoint", 0, {"log_size": 3, "log_root": bytes(32), "state_digest": bytes(32)})
    auth = authentication_of(
        size=5, trusted=True, signed=[("alice", cp)], checkpoints=[3], signature_records=[4]
    )
    assert auth.status == "partially-signed" and not auth.head_signed and not auth.meta_signed
    assert "configuration is NOT covered" in auth.summary


def test_ranges_text():
    assert ranges_text([31, 32, 35]) == "31–32, 35"
    assert ranges_text(list(range(0, 20, 2))) == "0, 2, 4, 6, 8, …"
