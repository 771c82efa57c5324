"""Unit tests of the chunk codec, the prefix/footer layout, the caps and the writer lock."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest
import zstandard

from tests.container.helpers import sample_thermogram, weights
from thermo_cli import store
from thermo_cli.config.limits import Limits, MiB
from thermo_cli.container import chunks as ck
from thermo_cli.container.layout import MAGIC, PREFIX_SIZE, new_prefix, parse_prefix
from thermo_cli.errors import (
    BadMagicError,
    CorruptError,
    IntegrityError,
    LimitExceededError,
    LockError,
    TruncatedError,
    UnsupportedVersionError,
)
from thermo_cli.model import Entry, Layer, TensorSpec


def _dec(stored: bytes, raw_len: int, cap: int = 4 * MiB) -> bytes:
    return ck.decompress(stored, raw_len, cap=cap, cap_name="max_chunk_bytes", what="chunk")


def test_shuffle_helps_float_weights() -> None:
    raw = weights(1 << 18)
    assert ck.choose_filter(raw, 4) == ck.SHUFFLE
    assert len(ck.pack(raw, filter=ck.SHUFFLE, elem=4).stored) < len(ck.pack(raw).stored)


def test_shuffle_is_skipped_where_it_does_not_help() -> None:
    assert ck.choose_filter(bytes(range(256)) * 64, 4) == ck.NO_FILTER


def test_decompression_is_bounded() -> None:
    bomb = ck.compress(bytes(8 * MiB), 19)
    assert len(bomb) < 2000
    with pytest.raises(LimitExceededError, match="max_chunk_bytes"):
        _dec(bomb, 1024)
    with pytest.raises(LimitExceededError):
        _dec(bomb, 8 * MiB)


def test_frames_must_declare_their_exact_size() -> None:
    obj = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    frame = obj.compress(b"abc" * 100) + obj.flush()
    with pytest.raises(CorruptError, match="content size"):
        _dec(frame, 300)
    good = ck.compress(b"abc" * 100, 1)
    with pytest.raises(CorruptError, match="index says"):
        _dec(good, 299)
    with pytest.raises(CorruptError, match="follow"):
        _dec(good + good, 300)
    with pytest.raises(CorruptError):
        _dec(good[:-3], 300)
    with pytest.raises(CorruptError):
        _dec(b"not zstd at all", 3)
    assert _dec(good, 300) == b"abc" * 100


def test_an_empty_frame_followed_by_bytes_is_refused() -> None:
    empty = ck.compress(b"", 1)
    assert _dec(empty, 0) == b""
    with pytest.raises(CorruptError, match="follow"):
        _dec(empty + b"x", 0)
    with pytest.raises(CorruptError, match="follow"):
        _dec(empty + empty, 0)


def test_a_scratch_unpacks_chunk_after_chunk_as_fresh_buffers_would() -> None:
    """Reused buffers (growing, then shrinking chunks) give the same bytes, and the digest is
    still checked first."""
    scratch = ck.Scratch()
    for n in (1000, 300_000, 4000, 0, 77_777):
        raw = weights(n)
        for filt, elem in ((ck.SHUFFLE, 4), (ck.NO_FILTER, 1)):
            p = ck.pack(raw, filter=filt, elem=elem)
            args = dict(filter=filt, elem=elem, cap=MiB * 4, cap_name="c", what="w")
            stored = scratch.buffer("stored", len(p.stored))
            stored[:] = p.stored
            got = ck.unpack(stored, len(raw), p.sha256, scratch=scratch, **args)
            assert bytes(got) == raw
            with pytest.raises(IntegrityError):
                ck.unpack(stored, len(raw), b"\x00" * 32, scratch=scratch, **args)


def test_digest_is_checked_before_decompressing() -> None:
    p = ck.pack(b"x" * 1000)
    with pytest.raises(IntegrityError):
        ck.unpack(p.stored, 1000, b"\x00" * 32, filter=ck.NO_FILTER, elem=1, cap=MiB, cap_name="c", what="w")


def test_prefix_checks() -> None:
    prefix = new_prefix(bytes(16))
    assert len(prefix) == PREFIX_SIZE
    assert parse_prefix(prefix).major == 2
    with pytest.raises(UnsupportedVersionError, match=r"3\.0"):
        parse_prefix(MAGIC + b"\x03\x00" + prefix[11:])
    newer = parse_prefix(MAGIC + b"\x02\x07" + prefix[11:])
    assert newer.minor == 7
    with pytest.raises(BadMagicError, match="CR LF"):
        parse_prefix(prefix.replace(b"\r\n", b"\n"))
    with pytest.raises(TruncatedError):
        parse_prefix(prefix[:12])
    with pytest.raises(BadMagicError):
        parse_prefix(b"GIF89a" + bytes(40))


def test_caps_are_raisable(tmp_path: Path) -> None:
    tg = sample_thermogram(2)
    big = weights(300_000)
    tg.layers[Layer.HOT]["big"] = Entry("big", big, 1.0, 1, 1, None, TensorSpec("F32", (300_000,)))
    path = tmp_path / "c.thermo"
    store.create(path, tg)
    small = Limits(max_value_bytes=1000)
    with pytest.raises(LimitExceededError, match="max_value_bytes"):
        store.load(path, layers="full", limits=small)
    with pytest.raises(LimitExceededError, match="max_value_bytes"):
        store.read(path, "big", limits=small)
    assert store.read(path, "big", limits=Limits(max_value_bytes=2 * MiB)).value == big
    with pytest.raises(LimitExceededError, match="max_block_bytes"):
        store.load(path, limits=Limits(max_block_bytes=10))


def _hold_lock(path: str, ready: object, seconds: float) -> None:
    with store.locked(path):
        ready.set()  # type: ignore[attr-defined]
        time.sleep(seconds)


def test_writer_lock_excludes_other_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "l.thermo")
    store.create(path, sample_thermogram(1))
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(path, ready, 0.6))
    proc.start()
    try:
        assert ready.wait(10)
        with pytest.raises(LockError), store.locked(path, timeout=0.1):
            pass
        t0 = time.monotonic()
        with store.locked(path, timeout=10):
            assert time.monotonic() - t0 > 0.2
    finally:
        proc.join()
    with store.locked(path), store.locked(path):  # re-entrant in one process
        tg = store.load(path)
        tg.create("k", b"v")
        store.commit(path, tg)
    assert os.path.exists(path + ".lock")


@pytest.mark.parametrize("elem", ck.SHUFFLE_ELEMS)
def test_pure_unshuffle_matches_numpy(elem: int) -> None:
    """The no-numpy path (used to read a key or two) inverts shuffle exactly, also into ``out``."""
    raw = weights(3 * 1024 * elem // 4 + elem)
    raw = raw[: len(raw) // elem * elem]
    shuffled = bytes(ck.shuffle(raw, elem))
    assert bytes(ck._unshuffle_pure(shuffled, elem, None)) == raw
    out = bytearray(len(raw) + 8)
    ck._unshuffle_pure(shuffled, elem, memoryview(out)[4 : 4 + len(raw)])
    assert bytes(out[4:-4]) == raw and out[:4] == b"\0" * 4


def test_reading_one_key_does_not_import_numpy(tmp_path: Path) -> None:
    """`thermo get` of a shuffled float tensor: numpy costs more to import than the read."""
    import subprocess
    import sys

    tg = sample_thermogram(0)
    value = weights(300_000)
    tg.layers[Layer.COLD]["w"] = Entry("w", value, 0.5, 1, tensor=TensorSpec("F32", (300_000,)))
    path = tmp_path / "one.thermo"
    store.create(path, tg)
    assert store.open_reader(path).index[Layer.COLD].streams[0].filter == ck.SHUFFLE
    code = (
        "import sys; from thermo_cli.cli import run_app; "
        f"rc = run_app(['get', {str(path)!r}, 'w', '--raw']); "
        "sys.stdout.flush(); sys.stderr.write(repr(('numpy' in sys.modules, rc)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False, timeout=60)
    assert done.stderr.decode().endswith("(False, 0)"), done.stderr.decode()
    assert done.stdout == value
