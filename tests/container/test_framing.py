"""Format 2.1 commit framing (spec §3.3, §11): every byte belongs to one commit, commits
chain in order, and a damaged last commit is never mistaken for a torn tail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.container.helpers import sample_thermogram, state
from thermo_cli import store
from thermo_cli.container.layout import COMMIT_HEADER_SIZE, FOOTER_SIZE, PREFIX_SIZE, new_prefix
from thermo_cli.container.reader import Reader
from thermo_cli.container.writer import plan_append, write_full
from thermo_cli.errors import IntegrityError, RefusedError
from thermo_cli.operations.audit.verify import verify_file
from thermo_cli.operations.repair import repair


def _two_commits(path: Path) -> Path:
    store.create(path, sample_thermogram(6))
    with store.edit(path) as tg:
        tg.create("second", b"the second commit")
    return path


def _next_append(path: Path) -> bytes:
    tg = store.load(path)
    tg.create("third", b"x" * 200)
    with Reader(path) as r:
        planned = plan_append(tg, r)
    assert planned is not None
    return planned[0]


def _flip(path: Path, pos: int, mask: int = 0x01) -> bytes:
    data = bytearray(path.read_bytes())
    data[pos] ^= mask
    path.write_bytes(bytes(data))
    return bytes(data)


def test_commits_are_contiguous_and_framed(tmp_path: Path) -> None:
    path = _two_commits(tmp_path / "f.thermo")
    with Reader(path) as r:
        first, last = r._prev_trailer(r.trailer), r.trailer
        assert first.start == PREFIX_SIZE and first.prev is None
        assert last.start == first.off + first.len + FOOTER_SIZE
    report = verify_file(path)
    framing = [c for c in report.checks if c.name == "framing"]
    assert report.ok and framing[0].count == 2
    assert report.details["covered_bytes"] == path.stat().st_size - PREFIX_SIZE


def test_footer_magic_bitflip_is_damage_and_a_commit_leaves_the_file_alone(tmp_path: Path) -> None:
    path = _two_commits(tmp_path / "f.thermo")
    tg = store.load(path)
    tg.create("after", b"would build on the older state")
    damaged = _flip(path, path.stat().st_size - 1)
    with pytest.raises(IntegrityError, match="complete but damaged"):
        store.load(path)
    with pytest.raises(IntegrityError):
        store.commit(path, tg)
    report = verify_file(path)  # damage is a failed verification (exit 1), not unreadable input
    assert not report.ok and report.failure is not None and "complete but damaged" in report.failure.reason
    assert path.read_bytes() == damaged
    with pytest.raises(RefusedError, match="damaged"):
        repair(path)
    report = repair(path, force=True, backup=tmp_path / "f.bak")
    assert (tmp_path / "f.bak").read_bytes() == damaged and report.commit_seq == 0


def test_header_length_bitflip_is_damage_not_an_incomplete_commit(tmp_path: Path) -> None:
    path = _two_commits(tmp_path / "f.thermo")
    with Reader(path) as r:
        start = r.trailer.start
    assert start is not None
    _flip(path, start + 8 + 5)  # a high byte of the length: without the CRC it would look torn
    with pytest.raises(IntegrityError, match="not framed"):
        store.load(path)


def test_appended_older_commit_is_refused_not_a_rollback(tmp_path: Path) -> None:
    path = _two_commits(tmp_path / "f.thermo")
    with Reader(path) as r:
        old = r._prev_trailer(r.trailer)
    data = path.read_bytes()
    rolled = data + data[old.off : old.off + old.len + FOOTER_SIZE]
    path.write_bytes(rolled)
    with pytest.raises(IntegrityError, match="rollback"):
        store.load(path)
    with pytest.raises(RefusedError):
        repair(path)
    assert repair(path, force=True, backup=tmp_path / "b").torn_tail_bytes == len(rolled) - len(data)
    assert path.read_bytes() == data and verify_file(path).ok


@pytest.mark.parametrize("extra", [b"copy", b"garbage"])
def test_bytes_after_the_last_commit_that_no_commit_covers(tmp_path: Path, extra: bytes) -> None:
    path = _two_commits(tmp_path / "f.thermo")
    data = path.read_bytes()
    path.write_bytes(data + (data if extra == b"copy" else b"\x01garbage that is no header" * 3))
    with pytest.raises(IntegrityError):
        store.load(path)


def test_torn_tails_load_as_the_previous_commit(tmp_path: Path) -> None:
    path = _two_commits(tmp_path / "f.thermo")
    before = path.read_bytes()
    data = _next_append(path)
    for tail in (data[:20], data[:-1], data[: len(data) // 2], bytes(COMMIT_HEADER_SIZE + 500)):
        path.write_bytes(before + tail)
        with Reader(path) as r:
            assert r.committed_end == len(before) and r.torn_tail_bytes == len(tail)
            assert r.tail_fault is None


def test_complete_commit_with_a_broken_footer_digest_is_damage(tmp_path: Path) -> None:
    path = _two_commits(tmp_path / "f.thermo")
    before = path.read_bytes()
    data = bytearray(_next_append(path))
    data[-FOOTER_SIZE + 3] ^= 0x10
    path.write_bytes(before + bytes(data))
    with pytest.raises(IntegrityError, match="damaged"):
        Reader(path)


def test_append_after_a_torn_tail_drops_only_the_torn_bytes(tmp_path: Path) -> None:
    path = _two_commits(tmp_path / "f.thermo")
    before = path.read_bytes()
    path.write_bytes(before + _next_append(path)[:-30])
    tg = store.load(path)
    tg.create("fourth", b"after the crash")
    assert store.commit(path, tg) == "append"
    after = path.read_bytes()
    assert after[: len(before)] == before
    with Reader(path) as r:
        assert r.torn_tail_bytes == 0 and r.trailer.start == len(before)
    assert verify_file(path).ok
    assert store.read(path, "fourth").value == b"after the crash"  # type: ignore[union-attr]


def test_changed_bytes_between_header_and_trailer_fail_verify(tmp_path: Path) -> None:
    path = _two_commits(tmp_path / "f.thermo")
    with Reader(path) as r:
        t = r.trailer
    assert t.start is not None
    data = bytearray(path.read_bytes())
    data[t.start + COMMIT_HEADER_SIZE + 1] ^= 0x04  # a segment byte of the last commit
    path.write_bytes(bytes(data))
    assert not verify_file(path).ok


def _write_v20(path: Path) -> None:
    tg = sample_thermogram(6)
    with open(path, "wb") as f:
        write_full(f, tg, prefix=new_prefix()[:10] + b"\x00" + new_prefix()[11:], seq=0, source=None)


def test_a_20_file_is_read_and_upgraded_to_21_on_write(tmp_path: Path) -> None:
    path = tmp_path / "old.thermo"
    _write_v20(path)
    with Reader(path) as r:
        assert r.prefix.minor == 0 and not r.framed and r.trailer.start is None
        file_id, seq = r.prefix.file_id, r.trailer.seq
    report = verify_file(path)
    assert report.ok and any("format 2.0" in n for n in report.notes)
    tg = store.load(path)
    tg.create("new", b"written after the upgrade")
    expected = state(tg)
    assert store.commit(path, tg) == "rewrite"
    with Reader(path) as r:
        assert r.prefix.minor == 1 and r.framed and r.prefix.file_id == file_id
        assert r.trailer.seq == seq + 1 and r.trailer.start == PREFIX_SIZE
    assert state(store.load(path, layers="full")) == expected
    assert verify_file(path).ok
