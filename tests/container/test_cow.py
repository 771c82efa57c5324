"""Copy-on-write layer commits (spec §12.5): a layer change appends what it changed.

A file with many directory and data chunks gets one key reinforced, keys added, changed
and deleted; each commit must append bytes on the order of the changed chunk (not the
file), every value must read back, verification must pass, and a cut anywhere in such a
commit must read as the state before it.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.container.helpers import state
from thermo_cli import store
from thermo_cli.container import cow
from thermo_cli.container.reader import Reader
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.model import Entry, Layer
from thermo_cli.operations.audit.verify import verify_file

N = 3000
"""Entries of the big file: 4 directory chunks and 6 data chunks."""


def _value(i: int, size: int = 2000) -> bytes:
    return (f"v{i}:".encode() * size)[:size]


def _big(path: Path, n: int = N) -> None:
    tg = Thermogram(name="big")
    for i in range(n):
        key = f"k{i:06d}"
        tg.layers[Layer.HOT][key] = Entry(key, _value(i), 0.5, 1_700_000_000_000_000_000 + i, 1)
    store.create(path, tg)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cow") / "big.thermo"
    _big(path)
    return path


@pytest.fixture
def path(big: Path, tmp_path: Path) -> Path:
    p = tmp_path / "big.thermo"
    p.write_bytes(big.read_bytes())
    return p


def _dir_chunk_bytes(path: Path) -> int:
    with Reader(path) as r:
        dirs = r.index[Layer.HOT].dirs
        return max(d.len + (d.ident[1] if d.ident else 0) for d in dirs)


def test_reinforce_appends_one_directory_chunk_and_the_index(path: Path) -> None:
    size = path.stat().st_size
    with Reader(path) as r:
        assert len(r.index[Layer.HOT].dirs) > 3
    tg = store.load(path)
    tg.reinforce("k001234", 0.25)
    assert store.commit(path, tg) == "cow"
    grown = path.stat().st_size - size
    assert grown < 3 * _dir_chunk_bytes(path) + 8192, grown
    with Reader(path) as r:
        assert len(r.index[Layer.HOT].streams) == 1  # the value did not change: no new stream
    back = store.load(path)
    assert back.layers[Layer.HOT]["k001234"].strength == pytest.approx(0.75)
    assert back.layers[Layer.HOT]["k001234"].value == _value(1234)
    report = verify_file(path)
    assert report.ok, report.failure
    assert not any("not bound" in n for n in report.notes)


def test_changed_added_and_deleted_values_read_back(path: Path) -> None:
    tg = store.load(path)
    tg.layers[Layer.HOT]["k000010"] = Entry("k000010", b"changed", 0.9, 5, 2)
    del tg.layers[Layer.HOT]["k000020"]
    tg.layers[Layer.HOT]["k000020x"] = Entry("k000020x", b"added", 0.4, 6, 1)
    tg.layers[Layer.COLD]["cold"] = Entry("cold", b"in an empty layer", 0.3, 7, 1)
    tg.layers[Layer.HOT]["zz-after-all"] = Entry("zz-after-all", b"", 0.2, 8, 1)
    tg.append_event("import", {"keys": 4})
    assert store.commit(path, tg) == "cow"
    expected = state(tg)
    full = store.load(path, layers="full")
    assert state(full) == expected
    assert "k000020" not in full.layers[Layer.HOT]
    assert store.read(path, "k000010").value == b"changed"
    assert store.read(path, "k002999").value == _value(2999)
    assert verify_file(path).ok


def test_successive_commits_of_one_session_each_append_their_change(path: Path) -> None:
    tg = store.load(path)
    sizes = [path.stat().st_size]
    for i in range(5):
        tg.layers[Layer.HOT][f"k00{i}500"] = Entry(f"k00{i}500", f"new {i}".encode(), 0.6, i, 3)
        assert store.commit(path, tg) == "cow"
        sizes.append(path.stat().st_size)
    steps = [b - a for a, b in itertools.pairwise(sizes)]
    assert max(steps) < 3 * _dir_chunk_bytes(path) + 8192, steps
    expected = state(tg)
    assert state(store.load(path, layers="full")) == expected
    assert verify_file(path).ok


def test_a_layer_over_max_streams_is_compacted_by_a_rewrite(path: Path) -> None:
    tg = store.load(path)
    modes = []
    for i in range(66):
        tg.layers[Layer.HOT]["k000100"] = Entry("k000100", f"value {i}".encode(), 0.5, i, 1)
        modes.append(store.commit(path, tg))
    assert "rewrite" in modes and modes.count("cow") >= 63
    with Reader(path) as r:
        assert len(r.index[Layer.HOT].streams) <= 64
    assert store.read(path, "k000100").value == b"value 65"
    assert verify_file(path).ok


def test_garbage_over_the_threshold_compacts(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tg = store.load(path)
    tg.layers[Layer.HOT]["k000001"] = Entry("k000001", b"x", 0.5, 1, 1)
    assert store.commit(path, tg) == "cow"
    with Reader(path) as r:
        assert r.garbage > 2000  # the old value and directory chunk, the old index
    monkeypatch.setattr(cow, "COMPACT_MIN_GARBAGE", 0)
    monkeypatch.setattr(cow, "COMPACT_RATIO", 0.0)
    tg.layers[Layer.HOT]["k000002"] = Entry("k000002", b"y", 0.5, 1, 1)
    assert store.commit(path, tg) == "rewrite"
    with Reader(path) as r:
        assert r.garbage == 0 and r.trailer.start == 32
    assert store.read(path, "k000001").value == b"x"
    assert verify_file(path).ok


def test_plain_dict_layers_still_rewrite(path: Path) -> None:
    tg = store.load(path, layers="full")
    tg.reinforce("k000005", 0.1)
    assert store.commit(path, tg) == "rewrite"
    assert verify_file(path).ok


def test_a_cut_cow_commit_reads_as_before(tmp_path: Path) -> None:
    path = tmp_path / "c.thermo"
    _big(path, 400)
    before_bytes = path.read_bytes()
    before = state(store.load(path, layers="full"))
    tg = store.load(path)
    tg.reinforce("k000123", 0.2)
    tg.layers[Layer.WARM]["w"] = Entry("w", b"warm value", 0.5, 1, 1)
    assert store.commit(path, tg) == "cow"
    data = path.read_bytes()[len(before_bytes) :]
    after = state(store.load(path, layers="full"))
    cut = tmp_path / "cut.thermo"
    for k in sorted({*range(0, len(data), 97), *range(len(data) - 50, len(data) + 1)}):
        cut.write_bytes(before_bytes + data[:k])
        got = store.load(cut, layers="full")
        assert state(got) == (after if k == len(data) else before), k


def test_value_digest_column_mismatch_fails_verification(tmp_path: Path) -> None:
    from thermo_cli.container import directory

    path = tmp_path / "d.thermo"
    _big(path, 10)
    original = directory.chunk_map

    def lying(*args: object, **kwargs: object) -> dict[str, object]:
        m = original(*args, **kwargs)  # type: ignore[arg-type]
        m[directory.VALUE_SHA] = bytes(len(m[directory.VALUE_SHA]))
        return m

    tg = store.load(path)
    tg.layers[Layer.HOT]["k000003"] = Entry("k000003", b"other", 0.5, 1, 1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("thermo_cli.container.writer.chunk_map", lying)
        mp.setattr("thermo_cli.container.cow.chunk_map", lying)
        store.commit(path, tg)
    report = verify_file(path)
    assert not report.ok


def test_a_pass_over_strengths_writes_state_chunks_only(tmp_path: Path) -> None:
    path = tmp_path / "s.thermo"
    _big(path, 2000)
    tg = store.load(path)
    tg.apply_decay()
    assert store.commit(path, tg) == "cow"  # the first pass splits identity from state
    size = path.stat().st_size
    tg = store.load(path)
    tg.apply_decay()
    assert store.commit(path, tg) == "cow"
    per_entry = (path.stat().st_size - size) / 2000
    assert per_entry <= 32, per_entry
    with Reader(path) as r:
        assert all(d.ident is not None for d in r.index[Layer.HOT].dirs)
    full = store.load(path, layers="full")
    assert full.layers[Layer.HOT]["k000042"].value == _value(42)
    assert full.layers[Layer.HOT]["k000042"].strength < 0.5
    assert verify_file(path).ok
    store.compact(path)
    assert store.read(path, "k001999").value == _value(1999)
    assert verify_file(path).ok


def test_a_rewrite_of_a_ticked_layer_keeps_it_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass that triggers a compacting rewrite must not undo the state/identity split:
    the pass after it still writes only state chunks."""
    from thermo_cli.container import cow

    path = tmp_path / "s.thermo"
    _big(path, 2000)
    tg = store.load(path)
    tg.apply_decay()
    assert store.commit(path, tg) == "cow"
    monkeypatch.setattr(cow, "should_compact", lambda source, garbage: True)  # the next commit compacts
    tg = store.load(path)
    tg.apply_decay()
    assert store.commit(path, tg) == "rewrite"
    monkeypatch.undo()
    _first_strength_pass_writes_state_only(path)


def test_a_compacted_layer_is_written_split_so_the_first_pass_writes_state_only(tmp_path: Path) -> None:
    path = tmp_path / "c.thermo"
    _big(path, 2000)
    store.compact(path)
    _first_strength_pass_writes_state_only(path)


def test_compact_drops_garbage_and_keeps_everything(path: Path) -> None:
    tg = store.load(path)
    for i in range(4):
        tg.layers[Layer.HOT][f"k0000{i}0"] = Entry(f"k0000{i}0", _value(i, 30_000), 0.5, i, 1)
        del tg.layers[Layer.HOT][f"k0000{i}1"]
        assert store.commit(path, tg) == "cow"
    expected = state(store.load(path, layers="full", log="full"))
    with Reader(path) as r:
        garbage, file_id, seq = r.garbage, r.prefix.file_id, r.trailer.seq
    result = store.compact(path)
    assert result.garbage == garbage > 0 and result.after < result.before
    with Reader(path) as r:
        assert r.garbage == 0 and r.prefix.file_id == file_id and r.trailer.seq == seq + 1
        assert all(len(li.streams) <= 2 for li in r.index.values())
    assert state(store.load(path, layers="full", log="full")) == expected
    assert verify_file(path).ok


def test_compact_command(path: Path) -> None:
    from typer.testing import CliRunner

    from thermo_cli.cli import app

    tg = store.load(path)
    tg.layers[Layer.HOT]["k000000"] = Entry("k000000", b"new", 0.5, 1, 1)
    store.commit(path, tg)
    out = CliRunner().invoke(app, ["compact", str(path), "--json"])
    assert out.exit_code == 0, out.output
    assert '"after"' in out.stdout


def test_layers_marked_changed_without_a_change_write_nothing(path: Path) -> None:
    data = path.read_bytes()
    tg = store.load(path)
    _ = tg.layers[Layer.HOT]["k000001"].strength
    tg.mark_layers_changed()
    assert store.commit(path, tg) == "unchanged"
    assert path.read_bytes() == data


def _first_strength_pass_writes_state_only(path: Path) -> None:
    """After a rewrite, the hot layer is split (state + identity) and a decay of its 2,000
    entries copies only their state chunks: at most 32 bytes an entry."""
    with Reader(path) as r:
        assert all(d.ident is not None for d in r.index[Layer.HOT].dirs)
    size = path.stat().st_size
    tg = store.load(path)
    tg.apply_decay()
    assert store.commit(path, tg) == "cow"
    assert (path.stat().st_size - size) / 2000 <= 32
    assert verify_file(path).ok
