"""store.edit: one transaction (lock → load → change → commit) for every writer."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.formats.legacy._fixtures import LEGACY_DIR
from thermo_cli import store
from thermo_cli.container.fileops import holds_lock
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import NotFoundError, RefusedError
from thermo_cli.model import Delta, Layer


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _new_file(tmp_path: Path) -> Path:
    path = tmp_path / "t.thermo"
    tg = Thermogram(name="t")
    tg.create("seed", b"0")
    store.create(path, tg)
    return path


def _keys_in_log(path: Path) -> list[str]:
    return [r.key for r in store.iter_log(path) if isinstance(r, Delta)]


def test_an_edit_commits_what_the_block_changed(tmp_path):
    path = _new_file(tmp_path)
    with store.edit(path) as tg:
        tg.create("added", b"value")
    assert store.read(path, "added").value == b"value"
    assert not holds_lock(path)


def test_an_edit_that_raises_writes_nothing_and_releases_the_lock(tmp_path):
    path = _new_file(tmp_path)
    before = _sha(path)
    with pytest.raises(KeyError), store.edit(path) as tg:
        tg.create("lost", b"value")
        tg.consolidate()
        raise KeyError("boom")
    assert _sha(path) == before
    assert not holds_lock(path)
    with store.edit(path, timeout=0) as tg:  # another writer gets the lock at once
        tg.create("next", b"value")
    assert "lost" not in _keys_in_log(path) and "next" in _keys_in_log(path)


def test_an_unchanged_edit_writes_nothing(tmp_path):
    path = _new_file(tmp_path)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = _sha(path)
    with store.edit(path) as tg:
        assert tg.read("seed") == b"0"
    assert _sha(path) == before
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_a_dry_run_edit_checks_and_changes_in_memory_only(tmp_path):
    path = _new_file(tmp_path)
    before = _sha(path)
    with store.edit(path, dry_run=True) as tg:
        tg.create("added", b"value")
    assert _sha(path) == before


def test_an_edit_with_create_starts_a_missing_file_from_the_given_thermogram(tmp_path):
    path = tmp_path / "new.thermo"
    with store.edit(path, create=Thermogram(name="fresh")) as tg:
        tg.create("k", b"v")
    assert store.load(path).name == "fresh"
    assert store.read(path, "k").value == b"v"
    with store.edit(path, create=Thermogram(name="ignored")) as tg:  # it exists now: loaded
        assert tg.name == "fresh"
        tg.create("k2", b"v2")
    assert store.read(path, "k2").value == b"v2"


def test_an_edit_with_create_that_raises_creates_no_file(tmp_path):
    path = tmp_path / "new.thermo"
    with pytest.raises(ValueError), store.edit(path, create=Thermogram()) as tg:
        tg.create("k", b"v")
        raise ValueError("boom")
    assert not path.exists()


def test_an_edit_of_a_missing_file_leaves_no_lock_file(tmp_path):
    path = tmp_path / "missing.thermo"
    with pytest.raises(NotFoundError, match="no such file"), store.edit(path):
        pass
    assert list(tmp_path.iterdir()) == []


def _crate_file(tmp_path: Path) -> Path:
    path = tmp_path / "crate.thermo"
    shutil.copyfile(LEGACY_DIR / "v0.5" / "small.thermo", path)
    return path


def test_an_edit_of_a_crate_file_without_upgrade_is_refused_naming_the_parameter(tmp_path):
    path = _crate_file(tmp_path)
    before = _sha(path)
    with pytest.raises(RefusedError, match=r"Rust-crate legacy file.*pass upgrade=True"), store.edit(path):
        pytest.fail("the block must not run")
    assert _sha(path) == before
    assert not holds_lock(path)


def test_an_edit_of_an_engram_export_is_refused_even_with_upgrade(tmp_path):
    path = tmp_path / "export.json"
    shutil.copyfile(LEGACY_DIR / "v0.5" / "export_small.json", path)
    with pytest.raises(RefusedError, match="import source only"), store.edit(path, upgrade=True):
        pytest.fail("the block must not run")


def test_an_upgrading_edit_logs_the_migration_before_the_change(tmp_path):
    path = _crate_file(tmp_path)
    with store.edit(path, upgrade=True) as tg:
        tg.update("added", b"after the crate", strength=0.5)
    assert store.sniff(path) == "thermo"
    log = list(store.iter_log(path))
    migrate = next(i for i, r in enumerate(log) if getattr(r, "kind", None) == "migrate")
    added = next(i for i, r in enumerate(log) if isinstance(r, Delta) and r.key == "added")
    assert migrate == added - 1
    assert store.read(path, "added").value == b"after the crate"


def test_an_upgrading_edit_that_changes_nothing_leaves_the_crate_file(tmp_path):
    path = _crate_file(tmp_path)
    before = _sha(path)
    with store.edit(path, upgrade=True):
        pass
    assert _sha(path) == before


def _increment(path: str, key: str) -> None:
    """Read-modify-write of a counter: only serialized edits keep every increment."""
    with store.edit(path) as tg:
        value = int(tg.read("seed"))
        time.sleep(0.2)
        tg.update("seed", str(value + 1).encode())
        tg.create(key, b"x")


def test_concurrent_edits_in_threads_serialize(tmp_path):
    path = _new_file(tmp_path)
    threads = [threading.Thread(target=_increment, args=(str(path), f"t{i}")) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.read(path, "seed").value == b"2"
    assert {"t0", "t1"} <= set(_keys_in_log(path))


def test_concurrent_edits_in_processes_serialize(tmp_path):
    path = _new_file(tmp_path)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_increment, args=(str(path), f"p{i}")) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert store.read(path, "seed").value == b"2"
    assert {"p0", "p1"} <= set(_keys_in_log(path))


def test_a_newer_minor_version_is_read_but_never_written(tmp_path):
    """Writing a 2.2 file with a 2.1 writer would drop what the newer writer stored."""
    import hashlib
    import shutil

    from thermo_cli.errors import UnsupportedVersionError

    vector = Path(__file__).resolve().parents[1] / "format" / "vectors" / "future_minor.thermo"
    path = tmp_path / "newer.thermo"
    shutil.copyfile(vector, path)
    before = hashlib.sha256(path.read_bytes()).digest()
    assert store.load(path).keys()  # readable
    with (
        pytest.raises(UnsupportedVersionError, match=r"format 2\.2, newer than this thermo writes"),
        store.edit(path) as tg,
    ):
        tg.update("k", b"v")
    with pytest.raises(UnsupportedVersionError):
        tg = store.load(path)
        tg.consolidate()
        store.commit(path, tg)
    assert hashlib.sha256(path.read_bytes()).digest() == before


# --- reads through the per-commit key index (spec §9.7) ----------------------------------


def _dirty_file(tmp_path, commits: int = 4, per_commit: int = 50):
    from thermo_cli.config.engine import ConsolidationPolicy
    from thermo_cli.engine.thermogram import Thermogram

    path = tmp_path / "dirty.thermo"
    tg = Thermogram(name="dirty", policy=ConsolidationPolicy.manual())
    tg.create("base", b"b0")
    tg.consolidate()
    store.create(path, tg)
    for c in range(commits):
        with store.edit(path) as tg:
            for i in range(per_commit):
                tg.create(f"k{c}-{i}", b"v%d-%d" % (c, i)) if c == 0 else tg.update(
                    f"k0-{i}", b"u%d-%d" % (c, i)
                )
            tg.append_event("note", {"commit": c})
    return path


def test_read_decodes_one_record_with_the_key_index(tmp_path, monkeypatch):
    from thermo_cli.codec import records

    path = _dirty_file(tmp_path)
    calls = []
    real = records.decode_record
    monkeypatch.setattr(records, "decode_record", lambda *a, **k: calls.append(a) or real(*a, **k))
    assert store.read(path, "k0-7").value == b"u3-7"
    assert len(calls) == 1
    calls.clear()
    assert store.read(path, "base").source != "dirty" and calls == []
    assert store.read(path, "missing") is None and calls == []


def test_read_follows_the_chain_and_deletes(tmp_path):
    path = _dirty_file(tmp_path, commits=2)
    with store.edit(path) as tg:
        tg.delete("k0-3")
        tg.append_event("note", {"only": "events"})
    with store.edit(path) as tg:
        tg.append_event("note", {"only": "events"})
    assert store.read(path, "k0-3") is None
    assert store.read(path, "k0-4").value == b"u1-4"
    with store.edit(path) as tg:
        tg.consolidate()
    with store.open_reader(path) as r:
        assert r.trailer.keys is None
    assert store.read(path, "k0-4").value == b"u1-4"


def test_keys_lists_what_a_loaded_thermogram_lists(tmp_path):
    """store.keys (no engine) against Thermogram.keys: layers, dirty creates and deletes,
    a deleted layer key, one layer at a time, and a Rust-crate file."""
    path = _dirty_file(tmp_path, commits=2, per_commit=5)
    with store.edit(path) as tg:
        tg.create("warmish", b"w")
        tg.consolidate()
    with store.edit(path) as tg:
        tg.delete("k0-3")
        tg.delete("base")  # consolidated, then deleted by a dirty delta
        tg.create("late", b"l")
    loaded = store.load(path)
    assert store.keys(path) == loaded.keys() and "base" not in store.keys(path)
    assert "late" in store.keys(path) and "k0-3" not in store.keys(path)
    for layer in ("hot", "warm", "cool", "cold"):
        assert store.keys(path, layer) == loaded.keys(layer)
    assert store.keys(path, Layer.HOT) == loaded.keys(Layer.HOT)
    legacy = _crate_file(tmp_path)
    assert store.keys(legacy) == store.load(legacy).keys() != []


def test_keys_checks_the_file_as_load_does(tmp_path):
    path = _dirty_file(tmp_path, commits=1, per_commit=3)
    data = bytearray(path.read_bytes())
    with store.open_reader(path) as r:
        last = r.trailer.log_size - 1
        rec = next(iter(r.iter_raw_records(last)))
    data[rec.offset + len(rec.data) - 1] ^= 0xFF  # the last record no longer hashes to the head
    path.write_bytes(bytes(data))
    with pytest.raises(Exception) as by_load:
        store.load(path)
    with pytest.raises(Exception) as by_keys:
        store.keys(path)
    assert type(by_keys.value) is type(by_load.value) and str(by_keys.value) == str(by_load.value)


def test_read_scans_commits_without_a_key_index(tmp_path, monkeypatch):
    from thermo_cli.container import writer

    real = writer._append_key_index
    monkeypatch.setattr(writer, "_append_key_index", lambda *a: None)
    path = _dirty_file(tmp_path, commits=2)
    monkeypatch.setattr(writer, "_append_key_index", real)
    with store.edit(path) as tg:
        tg.update("k0-5", b"newest")
    assert store.read(path, "k0-5").value == b"newest"
    assert store.read(path, "k0-6").value == b"u1-6"
    assert store.read(path, "k0-6").source == "dirty"


def test_verify_checks_the_key_index(tmp_path, monkeypatch):
    from thermo_cli.container import writer
    from thermo_cli.operations.audit.verify import verify_file

    path = _dirty_file(tmp_path, commits=2)
    report = verify_file(path)
    assert report.ok and any(c.name == "key index" and c.ok for c in report.checks)
    monkeypatch.setattr(writer, "newest_deltas", lambda recs, first: {})  # a rewrite's index
    monkeypatch.setattr(writer, "newest_of_keys", lambda keys, first: {})  # an append's
    with store.edit(path) as tg:
        tg.update("k0-1", b"hidden from the index")
    report = verify_file(path)
    assert not report.ok and report.failure.check == "key index"


def test_a_large_commit_splits_its_key_index_and_a_read_loads_one_part(tmp_path, monkeypatch):
    """More keys than PART_KEYS: the block lists parts by last key; a lookup reads one part,
    every key (first, last, between parts, absent) is found right, and verify passes."""
    from thermo_cli.container import writer
    from thermo_cli.container.reader import Reader
    from thermo_cli.operations.audit.verify import verify_file

    monkeypatch.setattr(writer, "PART_KEYS", 8)
    path = _dirty_file(tmp_path, commits=3, per_commit=50)
    loaded = []
    real = Reader._key_index_part
    monkeypatch.setattr(Reader, "_key_index_part", lambda self, ref: loaded.append(ref) or real(self, ref))
    for i in (0, 7, 8, 9, 49):
        loaded.clear()
        assert store.read(path, f"k0-{i}").value == b"u2-%d" % i
        assert len(loaded) == 1
    loaded.clear()
    assert store.read(path, "k0-99") is None and store.read(path, "zzz") is None
    assert store.read(path, "base").source != "dirty"
    with store.open_reader(path) as r:
        block = r.key_index(r.trailer.keys)
        assert block.table is None and len(block.parts) == 7  # 50 keys, 8 per part
    assert verify_file(path).ok


def test_verify_refuses_a_split_key_index_whose_part_names_another_last_key(tmp_path, monkeypatch):
    from thermo_cli.container import keyindex, writer
    from thermo_cli.operations.audit.verify import verify_file

    monkeypatch.setattr(writer, "PART_KEYS", 8)

    def misnamed(latest, per_part):
        parts = keyindex.part_maps(latest, per_part)
        return [(parts[0][0] + b"~", parts[0][1]), *parts[1:]]

    monkeypatch.setattr(writer, "part_maps", misnamed)
    path = _dirty_file(tmp_path, commits=1, per_commit=20)
    report = verify_file(path)
    assert not report.ok and report.failure.check == "key index"


# --- a binding with nothing uncommitted closes the tail (spec §9.5) ------------------------


def test_a_binding_with_no_uncommitted_delta_closes_the_tail(tmp_path):
    """reinforce and tick commits (events + bind) leave no uncommitted records behind; a
    commit after deltas keeps them uncommitted; verify accepts both points."""
    from thermo_cli.config.engine import ConsolidationPolicy
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.operations.audit.verify import verify_file

    path = tmp_path / "t.thermo"
    tg = Thermogram(name="t", policy=ConsolidationPolicy.manual())
    tg.create("k", b"v")
    tg.consolidate()
    store.create(path, tg)
    with store.edit(path) as tg:
        tg.reinforce("k", 0.1)
    with store.open_reader(path) as r:
        assert r.trailer.dirty_start == r.trailer.log_size and r.trailer.keys is None
    assert verify_file(path).ok
    with store.edit(path) as tg:
        tg.update("k", b"dirty")
        tg.reinforce("k", 0.1)
    with store.open_reader(path) as r:
        assert r.trailer.dirty_start < r.trailer.log_size  # the delta stays uncommitted
    assert store.read(path, "k").value == b"dirty"
    report = verify_file(path)
    assert report.ok, report.failure


def test_an_import_ends_with_nothing_uncommitted(tmp_path):
    from thermo_cli.operations.safetensors.importer import import_safetensors

    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    import numpy as np

    src = tmp_path / "m.safetensors"
    safetensors_numpy.save_file({f"w{i}": np.full((4, 4), i, dtype=np.float32) for i in range(30)}, str(src))
    out = tmp_path / "m.thermo"
    import_safetensors([src], out)
    with store.open_reader(out) as r:
        assert r.trailer.dirty_start == r.trailer.log_size
    from thermo_cli.operations.audit.verify import verify_file

    assert verify_file(out).ok


def test_a_writer_refuses_a_record_readers_would_refuse(tmp_path):
    from thermo_cli.config.limits import Limits, use_limits
    from thermo_cli.errors import LimitExceededError

    path = tmp_path / "e.thermo"
    store.create(path, _thermogram_with_one_key())
    before = path.read_bytes()
    with (
        use_limits(Limits(max_cbor_items=1000)),
        pytest.raises(LimitExceededError, match=r"max_cbor_items.*not written"),
        store.edit(path) as tg,
    ):
        tg.append_event("note", {"many": list(range(5000))})
    assert path.read_bytes() == before


def _thermogram_with_one_key():
    from thermo_cli.engine.thermogram import Thermogram

    tg = Thermogram(name="one")
    tg.create("k", b"v")
    return tg
