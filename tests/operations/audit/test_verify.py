"""verify_file on real containers: intact files pass; every kind of tampering is caught
with the right check, record index or key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from thermo_cli import store
from thermo_cli.codec import records
from thermo_cli.container.layout import FOOTER_SIZE
from thermo_cli.errors import RefusedError
from thermo_cli.integrity import merkle, note
from thermo_cli.model import Layer, TensorSpec, Ternary
from thermo_cli.model.valueclass import replace
from thermo_cli.operations.audit import checkpoints, keys, proofs
from thermo_cli.operations.audit.verify import verify_file

from .conftest import find_entry, flip, load_full, make_tg, reseal, write

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "legacy"


def names(report) -> dict[str, bool]:
    return {c.name: c.ok for c in report.checks}


def test_an_intact_file_passes_every_check(thermo_file):
    r = verify_file(thermo_file)
    assert r.ok, r.failure
    assert {
        "commits",
        "records",
        "log segments",
        "head",
        "merkle root",
        "consolidation point",
        "checkpoints",
        "chunk digests",
        "state digest",
    } <= set(names(r))
    assert r.records == 35 and r.head_hash == store.load(thermo_file).head_hash
    assert r.details["log_size"] == 35
    assert next(c for c in r.checks if c.name == "state digest").detail.startswith("6 entries match")


@pytest.mark.parametrize(
    "field", ["id", "op", "key", "value", "ts", "src", "s", "tern", "obs", "custom", "tensor", "prev"]
)
def test_every_field_of_a_record(tmp_path, field):
    tg = make_tg()
    k = 12
    d = tg.records[k]
    change = {
        "id": {"id": "forged-id"},
        "key": {"key": "key9"},
        "value": {"value": b"forged"},
        "ts": {"timestamp_ns": d.timestamp_ns + 1},
        "src": {"source": "mallory"},
        "s": {"strength": 0.25},
        "tern": {"ternary": Ternary.POS},
        "obs": {"observation_count": 3},
        "custom": {"custom": [1]},
        "tensor": {"tensor": TensorSpec("U8", (1,))},
        "prev": {"prev_hash": "00" * 32},
    }
    if field == "op":
        from thermo_cli.model import DeltaType

        change["op"] = {"delta_type": DeltaType.MERGE}
    forged = replace(d, **change[field])
    d.encoded = records.encode_record(forged)  # the stored bytes change, the chain's hashes do not
    r = verify_file(write(tmp_path / "f.thermo", tg))
    assert not r.ok and r.failure.check == "records" and r.failure.index == k
    assert ("prev link" if field == "prev" else "altered") in r.failure.reason


def test_a_tampered_event_record(tmp_path):
    tg = make_tg()
    k = 30  # the consolidation event
    ev = tg.records[k]
    forged = replace(ev, fields={**ev.fields, "pruned": 99})
    ev.encoded = records.encode_record(forged)
    r = verify_file(write(tmp_path / "f.thermo", tg))
    assert r.failure.check == "records" and r.failure.index == k


def test_a_consistently_resealed_history_is_caught_by_the_consolidation_root(tmp_path):
    tg = make_tg()
    tg.records[3].value = b"rewritten"
    reseal(tg, 3)
    r = verify_file(write(tmp_path / "f.thermo", tg))
    assert r.failure.check == "checkpoints" and r.failure.index == 30
    assert "history rewritten" in r.failure.reason


@pytest.mark.parametrize(
    "change",
    ["value", "strength", "ternary", "updated_at", "update_count", "tensor", "move", "delete", "add"],
)
def test_every_part_of_an_entry_is_bound_by_the_state_digest(tmp_path, change):
    tg = make_tg()
    layer, e = find_entry(tg, "key3")
    hot = tg.layers[layer]
    if change == "value":
        e.value = e.value[:-1] + bytes([e.value[-1] ^ 1])
    elif change == "strength":
        e.strength = 0.5
    elif change == "ternary":
        e.ternary = Ternary.NEG
    elif change == "updated_at":
        e.updated_at_ns += 1
    elif change == "update_count":
        e.update_count += 1
    elif change == "tensor":
        e.tensor = TensorSpec("U8", (len(e.value),))
    elif change == "move":
        tg.layers[Layer.WARM]["key3"] = hot.pop("key3")
    elif change == "delete":
        del hot["key3"]
    else:
        hot["intruder"] = replace(e, key="intruder")
    r = verify_file(write(tmp_path / "f.thermo", tg))
    assert r.failure.check == "state digest" and r.failure.index == 30
    assert "do not match the state digest" in r.failure.reason


def test_every_value_byte_is_bound(tmp_path):
    base = make_tg()
    value = find_entry(base, "key0")[1].value
    for i in range(len(value)):
        tg = make_tg()
        e = find_entry(tg, "key0")[1]
        b = bytearray(e.value)
        b[i] ^= 0x80
        e.value = bytes(b)
        r = verify_file(write(tmp_path / f"v{i}.thermo", tg))
        assert r.failure.check == "state digest", i


def _chunk_spans(path: Path) -> list[tuple[str, int, int]]:
    reader = store.open_reader(path)
    try:
        return [(what, off, n) for what, off, n, _raw, _sha in reader.all_chunks()]
    finally:
        reader.close()


def test_every_stored_chunk_byte_is_checked(tmp_path, thermo_file):
    spans = _chunk_spans(thermo_file)
    assert len(spans) >= 2
    for what, off, n in spans:
        for i in range(n):
            damaged = flip(thermo_file, off + i, tmp_path / "x.thermo")
            r = verify_file(damaged)
            assert not r.ok and r.failure.check == "chunk digests", (what, i)
            assert what in r.failure.reason
            assert r.failure.reason.count(what) == 1, r.failure.reason  # said once, not "x: x: …"
            assert str(damaged) not in r.failure.reason  # the report's header names the file
            assert r.failure.key is not None


def test_chunk_order(tmp_path, monkeypatch):
    from thermo_cli.container import writer

    monkeypatch.setattr(writer, "DATA_CHUNK", 64)
    import os

    tg = make_tg(0, consolidate=False, tail=0)
    for i in range(4):
        tg.update(f"blob{i}", os.urandom(64), strength=0.9)
    tg.consolidate()
    path = write(tmp_path / "c.thermo", tg)
    spans = [(off, n) for what, off, n in _chunk_spans(path) if "stream" in what]
    same = [s for s in spans if s[1] == spans[0][1]]
    assert len(same) >= 2
    (a, n), (b, _) = same[0], same[1]
    data = bytearray(path.read_bytes())
    data[a : a + n], data[b : b + n] = data[b : b + n], data[a : a + n]
    swapped = tmp_path / "swapped.thermo"
    swapped.write_bytes(bytes(data))
    r = verify_file(swapped)
    assert r.failure.check == "chunk digests" and "stream 0 chunk" in r.failure.reason
    # the same reordering written consistently (digests recomputed) breaks the state digest
    tg2 = make_tg(0, consolidate=False, tail=0)
    for i in range(4):
        tg2.update(f"blob{i}", bytes([i]) * 64, strength=0.9)
    tg2.consolidate()
    hot = tg2.layers[Layer.HOT]
    hot["blob0"].value, hot["blob1"].value = hot["blob1"].value, hot["blob0"].value
    r = verify_file(write(tmp_path / "c2.thermo", tg2))
    assert r.failure.check == "state digest"


def test_segment_and_trailer_damage(tmp_path, thermo_file):
    reader = store.open_reader(thermo_file)
    seg = reader.segments(0)[0]
    reader.close()
    r = verify_file(flip(thermo_file, seg.off + seg.len - 3, tmp_path / "s.thermo"))
    assert not r.ok and r.failure.check in ("records", "log segments")
    assert not names(r)["log segments"]


def test_rewriting_the_same_records_elsewhere_stays_valid(tmp_path):
    tg = make_tg()
    path = write(tmp_path / "f.thermo", tg)
    full = load_full(path)
    reseal(full, len(full.records) - 1)  # same records
    assert verify_file(write(tmp_path / "g.thermo", full)).ok


@pytest.mark.parametrize("op", ["decay", "transitions", "reinforce", "weaken", "prune"])
def test_every_engine_layer_change_is_checked_against_the_layers(tmp_path, op):
    tg = make_tg()
    {
        "decay": tg.apply_decay,
        "transitions": lambda: (tg.weaken("key1", 0.6), tg.run_thermal_transitions()),
        "reinforce": lambda: tg.reinforce("key1", 0.1),
        "weaken": lambda: tg.weaken("key1", 0.1),
        "prune": lambda: (tg.weaken("key2", 1.0), tg.prune()),
    }[op]()
    assert "state_digest" not in tg.records[-1].fields  # the operation itself does not bind
    r = verify_file(write(tmp_path / "d.thermo", tg))
    last = len(tg.records) - 1  # writing bound the state once, after the operations
    detail = next(c.detail for c in r.checks if c.name == "state digest")
    assert r.ok and f"match the digest bound at record {last} (bind)" in detail
    assert not r.notes or not any("not bound" in n for n in r.notes)
    _, entry = find_entry(tg, "key3")
    entry.strength = 0.125  # changed without a logged operation
    r = verify_file(write(tmp_path / "e.thermo", tg))
    assert not r.ok and r.failure.check == "state digest" and r.failure.index == last


def _write_unbound(path: Path, tg) -> Path:
    """Write ``tg`` as another tool might: straight through the container writer, without
    the store's binding of pending layer changes."""
    from thermo_cli.container.layout import new_prefix
    from thermo_cli.container.writer import write_full

    with open(path, "wb") as f:
        write_full(f, tg, prefix=new_prefix(), seq=0, source=None)
    return path


def test_store_binds_logged_layer_changes_at_commit(tmp_path):
    tg = make_tg()
    _, entry = find_entry(tg, "key1")
    entry.value = b"quantized elsewhere"
    tg.append_event("quantize", {"keys": ["key1"]})  # logged without binding: the write binds it
    tg.layers_modified = True
    r = verify_file(write(tmp_path / "d.thermo", tg))
    assert r.ok and "(bind)" in next(c.detail for c in r.checks if c.name == "state digest")
    assert not any("not bound" in n or "without binding" in n for n in r.notes)


def test_an_earlier_commit_with_unbound_layer_changes_is_noted(tmp_path):
    tg = make_tg()
    _, entry = find_entry(tg, "key1")
    entry.value = b"quantized elsewhere"
    tg.append_event("quantize", {"keys": ["key1"]})
    path = _write_unbound(tmp_path / "d.thermo", tg)
    quantize_at = len(tg.records) - 1
    later = store.load(path)
    later.append_event("import", {"what": "nothing"}, bind=True)  # binds, in a second (append) commit
    assert store.commit(path, later) == "append"
    r = verify_file(path)
    assert r.ok, r.failure
    assert any(
        f"records {quantize_at}-{quantize_at} (quantize)" in n and "without binding" in n for n in r.notes
    )


def test_unbound_layer_changes_are_reported_until_a_checkpoint(tmp_path):
    tg = make_tg()
    _, entry = find_entry(tg, "key1")
    entry.value = b"quantized elsewhere"
    tg.append_event("quantize", {"keys": ["key1"]})  # logged, but without binding the state
    tg.layers_modified = True
    path = _write_unbound(tmp_path / "d.thermo", tg)
    r = verify_file(path)
    assert r.ok and "not bound" in next(c.detail for c in r.checks if c.name == "state digest")
    assert any("checkpoint" in n for n in r.notes)
    with pytest.raises(RefusedError, match="thermo checkpoint"):
        proofs.prove(path, "key1")
    info = checkpoints.checkpoint(path)
    assert info.created
    r = verify_file(path)
    assert r.ok and "match the digest bound at record" in next(
        c.detail for c in r.checks if c.name == "state digest"
    )
    assert proofs.prove(path, "key1")["checkpoint"]["kind"] == "checkpoint"


def test_torn_tail_is_reported_not_failed(tmp_path, thermo_file):
    tg = store.load(thermo_file)
    tg.update("more", b"x", strength=0.5)
    store.commit(thermo_file, tg)
    before = thermo_file.stat().st_size
    data = thermo_file.read_bytes()
    torn = tmp_path / "torn.thermo"
    torn.write_bytes(data[: before - 5])
    r = verify_file(torn)
    assert r.ok and r.torn_tail_bytes > 0 and names(r)["torn tail"]


# --- signatures and checkpoints -------------------------------------------------------------


def _sign(path, key_path, name=None):
    private = keys.load_private(key_path)
    return checkpoints.sign(path, private, name or keys.signer_name(key_path))


def test_signatures(tmp_path, thermo_file, keypair):
    key_path, alice = keypair
    carol_path = tmp_path / "carol"
    carol = keys.generate(carol_path)
    _sign(thermo_file, key_path)
    info = _sign(thermo_file, carol_path)
    assert [s.name for s in info.note.signatures] == ["alice", "carol"]
    r = verify_file(thermo_file, pubkeys=[alice])
    assert r.ok and "1 signature(s) by other keys ignored" in next(
        c.detail for c in r.checks if c.name == "signatures"
    )
    assert verify_file(thermo_file, pubkeys=[alice, carol]).ok
    mallory = keys.generate(tmp_path / "mallory")
    r = verify_file(thermo_file, pubkeys=[mallory])
    assert r.failure.check == "signatures" and "no valid signature by mallory" in r.failure.reason
    impostor = keys.PublicKey(mallory.raw, "alice")
    assert verify_file(thermo_file, pubkeys=[impostor]).failure.check == "signatures"


def test_signing_twice_with_one_key_adds_nothing(thermo_file, keypair):
    key_path, _ = keypair
    first = _sign(thermo_file, key_path)
    size = store.open_reader(thermo_file).trailer.log_size
    second = _sign(thermo_file, key_path)
    assert second.note.text() == first.note.text()
    assert store.open_reader(thermo_file).trailer.log_size == size


def test_a_forged_signature_is_caught_even_in_a_resealed_log(tmp_path, thermo_file, keypair):
    key_path, alice = keypair
    _sign(thermo_file, key_path)
    tg = load_full(thermo_file)
    sig_ev = tg.records[-1]
    assert sig_ev.kind == "signature"
    sig = bytearray(sig_ev.fields["signature"])
    sig[0] ^= 1
    sig_ev.fields["signature"] = bytes(sig)
    reseal(tg, len(tg.records) - 1)
    r = verify_file(write(tmp_path / "forged.thermo", tg), pubkeys=[alice])
    assert r.failure.check == "signatures" and r.failure.index == len(tg.records) - 1
    assert "does not verify" in r.failure.reason


def test_checkpoint_reuses_the_current_one_and_appends_after_changes(thermo_file):
    first = checkpoints.checkpoint(thermo_file)
    assert first.created and first.checkpoint.size == 35 and first.index == 35
    again = checkpoints.checkpoint(thermo_file)
    assert not again.created and again.index == first.index
    tg = store.load(thermo_file)
    tg.update("late", b"x", strength=0.5)
    store.commit(thermo_file, tg)
    third = checkpoints.checkpoint(thermo_file)
    assert third.created and third.checkpoint.size == 37
    body = note.parse_checkpoint(third.note.body)
    assert body.origin.startswith("thermo/") and body.state_digest is not None


def test_checkpoint_refuses_a_damaged_file(tmp_path):
    tg = make_tg()
    find_entry(tg, "key1")[1].strength = 0.125
    path = write(tmp_path / "bad.thermo", tg)
    before = path.read_bytes()
    from thermo_cli.errors import IntegrityError

    with pytest.raises(IntegrityError, match="state digest"):
        checkpoints.checkpoint(path)
    assert path.read_bytes() == before


# --- since a saved checkpoint ----------------------------------------------------------------


def _saved(tmp_path, path, key_path=None) -> Path:
    info = _sign(path, key_path) if key_path else checkpoints.checkpoint(path)
    out = tmp_path / "cp.txt"
    out.write_text(info.note.text())
    return out


def test_since_passes_for_an_extended_log(tmp_path, thermo_file, keypair):
    key_path, alice = keypair
    cp = _saved(tmp_path, thermo_file, key_path)
    tg = store.load(thermo_file)
    for i in range(5):
        tg.update(f"after{i}", b"y", strength=0.5)
    store.commit(thermo_file, tg)
    r = verify_file(thermo_file, since=cp, pubkeys=[alice])
    assert r.ok, r.failure
    proof = r.details["consistency_proof"]
    assert proof["old_size"] == 35 and proof["new_size"] == 42 and proof["proof"]


def test_since_detects_a_truncated_log(tmp_path, thermo_file):
    tg = store.load(thermo_file)
    tg.update("x", b"1", strength=0.5)
    store.commit(thermo_file, tg)
    cp = _saved(tmp_path, thermo_file)
    short = load_full(thermo_file)
    del short.records[-3:]
    short.head_hash = short.records[-1].hash
    r = verify_file(write(tmp_path / "short.thermo", short), since=cp)
    assert r.failure.check == "since" and "truncated or rolled back" in r.failure.reason
    # cutting the file's last commit off rolls it back too
    data = thermo_file.read_bytes()
    reader = store.open_reader(thermo_file)
    first = list(reader.trailers())[-1]  # the commit before the delta the checkpoint covers
    prev_end = first.off + first.len + FOOTER_SIZE
    reader.close()
    cut = tmp_path / "cut.thermo"
    cut.write_bytes(data[: prev_end + 1])
    r = verify_file(cut, since=cp)
    assert r.failure.check == "since" and r.torn_tail_bytes == 1


def test_since_detects_a_fork(tmp_path, thermo_file):
    base_cp = _saved(tmp_path, thermo_file)
    fork = tmp_path / "fork.thermo"
    shutil.copy(thermo_file, fork)
    for path, word in ((thermo_file, b"left"), (fork, b"right")):
        tg = store.load(path)
        tg.update("branch", word, strength=0.5)
        store.commit(path, tg)
    fork_cp = tmp_path / "fork-cp.txt"
    fork_cp.write_text(checkpoints.checkpoint(fork).note.text())
    assert verify_file(thermo_file, since=base_cp).ok
    assert verify_file(fork, since=base_cp).ok
    r = verify_file(thermo_file, since=fork_cp)
    assert r.failure.check == "since" and "forked" in r.failure.reason


def test_since_detects_a_rewritten_history(tmp_path, thermo_file):
    cp = _saved(tmp_path, thermo_file)
    tg = load_full(thermo_file)
    tg.records[2].value = b"rewritten"
    reseal(tg, 2)
    for idx, rec in enumerate(tg.records):  # the forger also fixes every bound log root
        if "log_root" in getattr(rec, "fields", {}):
            rec.fields["log_root"] = merkle.root([r.encoded for r in tg.records[:idx]])
            reseal(tg, idx)
    forged = write(tmp_path / "rewritten.thermo", tg)
    assert verify_file(forged).ok  # a complete forgery is self-consistent ...
    r = verify_file(forged, since=cp)  # ... but not with what the auditor kept
    assert r.failure.check == "since" and "history rewritten or forked" in r.failure.reason


@pytest.mark.parametrize("line", [0, 1, 2, 3])
def test_a_tampered_checkpoint_text(tmp_path, thermo_file, keypair, line):
    key_path, alice = keypair
    cp = _saved(tmp_path, thermo_file, key_path)
    lines = cp.read_text().split("\n")
    if line == 1:
        lines[1] = str(int(lines[1]) - 1)
    else:
        # change the first character of the line's base64 (it carries six data bits; the
        # last one before "=" carries padding bits a decoder may ignore)
        text = lines[line]
        at = text.rfind(" ") + 1
        lines[line] = (
            text[:at] + ("B" if text[at] != "B" else "C") + text[at + 1 :] if line != 0 else text + "x"
        )
    bad = tmp_path / "bad.txt"
    bad.write_text("\n".join(lines))
    r = verify_file(thermo_file, since=bad, pubkeys=[alice])
    assert r.failure.check == "since signatures" and "does not verify" in r.failure.reason
    r = verify_file(thermo_file, since=bad)  # without the key the content itself disagrees
    assert not r.ok and r.failure.check == "since"


def test_since_needs_the_same_origin_and_a_trusted_signer(tmp_path, thermo_file, keypair):
    key_path, _ = keypair
    other = write(tmp_path / "other.thermo", make_tg(seed=1))
    cp_other = _saved(tmp_path, other, key_path)
    r = verify_file(thermo_file, since=cp_other)
    assert r.failure.check == "since" and "this file's log" in r.failure.reason
    cp = tmp_path / "mine.txt"
    cp.write_text(_sign(thermo_file, key_path).note.text())
    bob = keys.generate(tmp_path / "bob")
    r = verify_file(thermo_file, since=cp, pubkeys=[bob])
    assert r.failure.check in ("signatures", "since signatures")


# --- other kinds of file ---------------------------------------------------------------------


def test_legacy_files_dispatch_to_the_legacy_verifier(keypair):
    _, alice = keypair
    assert verify_file(FIXTURES / "v0.5" / "small.thermo").ok
    r = verify_file(FIXTURES / "v0.5" / "tampered_value.thermo")
    assert not r.ok and r.failure.index is not None
    r = verify_file(FIXTURES / "v0.4" / "small.thermo", pubkeys=[alice])
    assert r.failure.check == "signatures"


def test_a_migrated_file_reports_its_legacy_segment(tmp_path):
    from thermo_cli.operations.migrate import migrate_file

    out = tmp_path / "m.thermo"
    result = migrate_file(FIXTURES / "v0.5" / "small.thermo", out)
    r = verify_file(out)
    assert r.ok
    seg = next(c for c in r.checks if c.name == "legacy segment")
    assert seg.detail == f"{result.legacy_deltas} deltas OK"


def test_unreadable_inputs_raise(tmp_path):
    from thermo_cli.errors import FormatError, NotFoundError

    with pytest.raises(NotFoundError):
        verify_file(tmp_path / "missing.thermo")
    (tmp_path / "junk").write_bytes(b"not a thermogram")
    with pytest.raises(FormatError):
        verify_file(tmp_path / "junk")
    engram = next((FIXTURES / "v0.5").glob("export_*.json"))
    with pytest.raises(FormatError, match="Engram"):
        verify_file(engram)


def test_sign_refuses_a_tampered_file_even_when_a_checkpoint_exists(tmp_path, keypair):
    key_path, _ = keypair
    tg = make_tg()
    find_entry(tg, "key2")[1].update_count += 5  # the consolidation's digest no longer matches
    path = write(tmp_path / "bad.thermo", tg)
    before = path.read_bytes()
    from thermo_cli.errors import IntegrityError

    with pytest.raises(IntegrityError, match="refusing"):
        _sign(path, key_path)
    assert path.read_bytes() == before


def test_the_parallel_log_pass_agrees_with_the_sequential_one(tmp_path, monkeypatch):
    from thermo_cli.integrity import logscan as chain
    from thermo_cli.operations.audit import logpass

    monkeypatch.setattr(chain, "BLOCK", 16)
    monkeypatch.setattr(logpass, "PARALLEL_MIN_RECORDS", 10)
    tg = make_tg(200)
    path = write(tmp_path / "p.thermo", tg)
    reader = store.open_reader(path)
    try:
        par = logpass.scan_parallel(reader, workers=2, keep_leaves=True, probes={0, 50, 205})
        seq, _ = logpass.scan_file_log(reader, workers=1, keep_leaves=True, probes={0, 50, 205})
    finally:
        reader.close()
    assert par is not None
    scan, state = par
    assert (scan.root, scan.head, scan.size) == (seq.root, seq.head, seq.size)
    assert scan.probe_roots == seq.probe_roots and state.segments >= 1
    assert [e.prefix_root for e in scan.events] == [e.prefix_root for e in seq.events]
    assert verify_file(path, workers=2).ok
    k = 120
    tg = make_tg(200)
    d = tg.records[k]
    d.encoded = records.encode_record(replace(d, source="mallory"))
    bad = write(tmp_path / "bad.thermo", tg)
    r = verify_file(bad, workers=2)  # falls back to the sequential pass for the exact wording
    assert r.failure.check == "records" and r.failure.index == k


def test_a_committed_engine_operation_leaves_no_unbound_gap(tmp_path, thermo_file):
    path = tmp_path / "c.thermo"
    shutil.copy(thermo_file, path)
    tg = store.load(path)
    tg.weaken("key1", 0.5)
    tg.run_thermal_transitions()
    assert store.commit(path, tg) == "cow"
    r = verify_file(path)
    assert r.ok, r.failure
    assert "(bind)" in next(c.detail for c in r.checks if c.name == "state digest")
    assert not any("not bound" in n or "without binding" in n for n in r.notes)
