"""store.create / load / commit / read round-trips of complete thermograms."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.container.helpers import sample_thermogram, state, weights
from thermo_cli import store
from thermo_cli.container.lazy import LazyLayer
from thermo_cli.errors import ChainError, NotFoundError, RefusedError
from thermo_cli.model import Entry, Layer, TensorSpec
from thermo_cli.operations.audit.verify import verify_file


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "t.thermo"


def test_create_then_load_gives_back_every_field(path: Path) -> None:
    tg = sample_thermogram()
    store.create(path, tg)
    for layers in ("lazy", "full"):
        back = store.load(path, layers=layers, log="full")
        assert state(back) == state(tg)
        assert [r.encoded for r in back.records] == [r.encoded for r in tg.records]
    assert store.sniff(path) == "thermo"


def test_lazy_load_reads_only_what_is_asked(path: Path) -> None:
    store.create(path, sample_thermogram(200))
    back = store.load(path)
    hot = back.layers[Layer.HOT]
    assert isinstance(hot, LazyLayer)
    assert "layer0/w004" in hot and "nope" not in hot
    assert len(hot) == 51
    assert hot["layer0/w004"].tensor == TensorSpec("F16", (8, 5))
    assert sorted(hot) == sorted(k for k in hot)


def test_lazy_layer_mutations_behave_like_a_dict(path: Path) -> None:
    tg = sample_thermogram(40)
    store.create(path, tg)
    ref = {k: e for k, e in tg.layers[Layer.WARM].items()}
    lazy = store.load(path).layers[Layer.WARM]
    new = Entry("zzz", b"new", 0.5, 1, 1)
    lazy["zzz"] = ref["zzz"] = new
    del lazy["layer1/w001"]
    del ref["layer1/w001"]
    lazy["layer1/w005"].strength = 0.75
    ref["layer1/w005"].strength = 0.75
    with pytest.raises(KeyError):
        del lazy["layer1/w001"]
    assert len(lazy) == len(ref)
    assert sorted(lazy) == sorted(ref)
    assert lazy["layer1/w005"].strength == 0.75
    assert not lazy.pristine()


def test_append_only_grows_the_file_by_the_delta(path: Path) -> None:
    store.create(path, sample_thermogram(50))
    size = path.stat().st_size
    tg = store.load(path)
    tg.update("delta/b", b"beta2", timestamp_ns=1_700_000_009_000_000_000)
    assert store.commit(path, tg) == "append"
    grown = path.stat().st_size - size
    assert 0 < grown < 2000
    back = store.load(path, log="full")
    assert state(back) == state(tg)
    assert store.read(path, "delta/b").value == b"beta2"
    assert verify_file(path).ok


def test_meta_only_change_is_appended(path: Path) -> None:
    store.create(path, sample_thermogram(10))
    tg = store.load(path)
    tg.extras["snn"]["neurons"] = 5
    tg.meta.custom = {"changed": True}
    assert store.commit(path, tg) == "append"
    back = store.load(path)
    assert back.extras["snn"]["neurons"] == 5 and back.meta.custom == {"changed": True}
    assert store.commit(path, back) == "unchanged"


def test_consolidation_rewrites_and_keeps_history(path: Path) -> None:
    store.create(path, sample_thermogram(30))
    tg = store.load(path)
    tg.consolidate()
    assert store.commit(path, tg) == "cow"
    back = store.load(path, log="full")
    assert state(back) == state(tg)
    assert back.log_length == 4 and back.dirty_start == 4
    tail = store.load(path)
    assert tail.records == [] and tail.log_base == 4
    assert tail.log_root() == back.log_root()
    tail.create("after", b"x")
    assert store.commit(path, tail) == "append"
    assert [r.hash for r in store.iter_log(path)] == [r.hash for r in back.records] + [tail.head_hash]
    assert verify_file(path).ok


def test_rewrite_of_a_tail_loaded_thermogram_copies_old_records(path: Path) -> None:
    store.create(path, sample_thermogram(12))
    tg = store.load(path)
    tg.consolidate()
    store.commit(path, tg)
    tg = store.load(path)
    tg.create("k", b"v")
    tg.layers[Layer.COLD]["added"] = Entry("added", weights(32), 0.9, 3, 2, None, TensorSpec("F32", (32,)))
    tg.append_event("import", {"keys": ["added"]}, bind=True)  # a layer change is logged and bound
    tg.layers_modified = True
    assert store.commit(path, tg) == "cow"
    full = store.load(path, layers="full", log="full")
    assert full.log_length == 6
    assert full.layers[Layer.COLD]["added"].value == weights(32)
    assert verify_file(path).ok
    other = path.with_name("copy.thermo")
    store.create(other, tg)
    assert [r.hash for r in store.iter_log(other)] == [r.hash for r in full.records]


def test_pristine_lazy_layers_are_copied_verbatim(path: Path) -> None:
    store.create(path, sample_thermogram(60))
    tg = store.load(path)
    tg.layers[Layer.HOT]["new"] = Entry("new", b"n", 0.5, 1, 1)
    tg.layers_modified = True
    store.commit(path, tg)
    back = store.load(path, layers="full")
    assert back.layers[Layer.HOT]["new"].value == b"n"
    assert len(back.layers[Layer.COLD]) == 15


def test_create_refuses_to_overwrite(path: Path) -> None:
    store.create(path, sample_thermogram(2))
    before = path.read_bytes()
    with pytest.raises(RefusedError):
        store.create(path, sample_thermogram(3))
    assert path.read_bytes() == before
    store.create(path, sample_thermogram(3), overwrite=True)
    assert store.load(path).layers[Layer.HOT]


def test_commit_refuses_when_the_file_moved_on(path: Path) -> None:
    store.create(path, sample_thermogram(5))
    a = store.load(path)
    b = store.load(path)
    a.create("from-a", b"1")
    store.commit(path, a)
    b.create("from-b", b"2")
    before = path.read_bytes()
    with pytest.raises(ChainError):
        store.commit(path, b)
    assert path.read_bytes() == before


def test_commit_to_a_different_file_is_refused(path: Path, tmp_path: Path) -> None:
    store.create(path, sample_thermogram(5))
    other = tmp_path / "other.thermo"
    store.create(other, sample_thermogram(5))
    tg = store.load(path)
    with pytest.raises(RefusedError):
        store.commit(other, tg)


def test_commit_creates_a_missing_file(path: Path) -> None:
    tg = sample_thermogram(4)
    assert store.commit(path, tg) == "rewrite"
    tg.create("more", b"m")
    assert store.commit(path, tg) == "append"
    assert store.read(path, "more").value == b"m"


def test_read_prefers_dirty_deltas_then_hottest_layer(path: Path) -> None:
    tg = sample_thermogram(8)
    tg.layers[Layer.COLD]["layer0/w000"] = Entry("layer0/w000", b"cold", 0.1, 1, 1)
    tg.delete("delta/b")
    store.create(path, tg)
    assert store.read(path, "delta/a").source == "dirty"
    assert store.read(path, "delta/b") is None
    assert store.read(path, "layer0/w000").source == "hot"
    assert store.read(path, "layer3/w003").source == "cold"
    assert store.read(path, "missing") is None


def test_legacy_files_load_and_are_protected(tmp_path: Path, fixtures_dir: Path) -> None:
    src = fixtures_dir / "legacy" / "v0.5" / "small.thermo"
    legacy = tmp_path / "small.thermo"
    shutil.copy(src, legacy)
    assert store.sniff(legacy) == "legacy"
    tg = store.load(legacy)
    before = legacy.read_bytes()
    tg.create("new-key", b"v")
    with pytest.raises(RefusedError):
        store.commit(legacy, tg)
    assert legacy.read_bytes() == before
    assert store.commit(legacy, tg, upgrade=True) == "rewrite"
    assert store.sniff(legacy) == "thermo"
    up = store.load(legacy, log="full")
    assert [r.hash for r in up.records] == [r.hash for r in tg.records]
    assert verify_file(legacy).ok


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        store.load(tmp_path / "nope.thermo")


def test_big_values_span_several_chunks(path: Path) -> None:
    tg = sample_thermogram(3)
    big = weights(700_000)  # 2.8 MB: three 1 MiB data chunks
    tg.layers[Layer.WARM]["big"] = Entry("big", big, 1.0, 1, 1, None, TensorSpec("F32", (700_000,)))
    store.create(path, tg)
    assert store.read(path, "big").value == big
    assert store.load(path, layers="full").layers[Layer.WARM]["big"].value == big


def test_no_temporary_files_are_left(path: Path) -> None:
    store.create(path, sample_thermogram(3))
    tg = store.load(path)
    tg.consolidate()
    store.commit(path, tg)
    leftovers = [n for n in os.listdir(path.parent) if n.endswith(".thermo-tmp")]
    assert leftovers == []


def test_many_appends_chain_log_tables(path: Path) -> None:
    from thermo_cli.container.reader import Reader

    store.create(path, sample_thermogram(3))
    hashes = [r.hash for r in store.load(path, log="full").records]
    for i in range(80):
        tg = store.load(path)
        tg.create(f"many/{i}", bytes([i]) * 10, timestamp_ns=i)
        assert store.commit(path, tg) == "append"
        hashes.append(tg.head_hash)
    with Reader(path) as r:
        assert r.trailer.table is not None and len(r.trailer.segments) <= 64
        assert len(r.segments(r.trailer.log_size - 1)) == 1
    assert [r.hash for r in store.iter_log(path)] == hashes
    assert next(store.iter_log(path, start=50)).hash == hashes[50]
    assert verify_file(path).ok
    tg = store.load(path)
    tg.consolidate()
    store.commit(path, tg)
    assert [r.hash for r in store.iter_log(path)][:-1] == hashes
