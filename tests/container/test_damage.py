"""Every single-byte flip and every truncation of a small file: a clean error or a committed state.

The file has three commits (a rewrite and two appends). A truncation must read as the
newest commit that fits, with the cut-off bytes reported as a torn tail, or fail with a
library error when no commit fits. A flipped byte must make reading or verifying fail
with a library error (a flip in the newest commit's trailer or footer digest is an
IntegrityError: damage, never a torn tail), unless it hit the end magic of the last footer,
in which case the file no longer ends in a footer: the previous commit is read and the
bytes after it are reported as a torn tail.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.container.helpers import state
from thermo_cli import store
from thermo_cli.container.reader import Reader
from thermo_cli.errors import ThermoError
from thermo_cli.operations.audit.verify import verify_file

GOLDEN = Path(__file__).resolve().parents[2] / "format" / "vectors" / "appended.thermo"
TIME_LIMIT_S = 5


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang("reading took longer than the per-input time limit")


def _read(path: Path) -> tuple[dict, int, bool]:
    """(state, torn tail bytes, verify ok) of a file; raises ThermoError on bad input."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT_S)
    try:
        tg = store.load(path, layers="full", log="full")
        origin = store.info(tg)
        assert origin is not None
        report = verify_file(path)
        return state(tg), origin.torn_tail_bytes, report.ok
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _commits(data: bytes, tmp: Path) -> list[tuple[int, dict]]:
    """(end offset, state) of each commit of the golden file, oldest first."""
    with Reader(GOLDEN) as r:
        ends = sorted(t.off + t.len + 44 for t in r.trailers())
    out = []
    for end in ends:
        p = tmp / f"commit-{end}.thermo"
        p.write_bytes(data[:end])
        out.append((end, _read(p)[0]))
    return out


def _check_truncation(data: bytes, length: int, commits: list[tuple[int, dict]], p: Path) -> None:
    p.write_bytes(data[:length])
    fitting = [(end, st) for end, st in commits if end <= length]
    try:
        got, torn, ok = _read(p)
    except ThermoError:
        assert not fitting, f"truncation to {length} bytes failed although commit at {fitting[-1][0]} fits"
        return
    assert fitting, f"truncation to {length} bytes read without error"
    end, want = fitting[-1]
    assert got == want and torn == length - end and ok, f"truncation to {length}"


def _check_flip(data: bytes, pos: int, mask: int, commits: list[tuple[int, dict]], p: Path) -> None:
    b = bytearray(data)
    b[pos] ^= mask
    p.write_bytes(bytes(b))
    try:
        got, torn, ok = _read(p)
    except ThermoError:
        return
    if not ok:
        return
    assert torn > 0, f"flip at {pos} (mask {mask:#x}) went unnoticed"
    assert any(got == st and len(data) - end == torn for end, st in commits[:-1]), f"flip at {pos}"


def _positions(n: int, stride: int) -> list[int]:
    """A quick subset: every ``stride``-th byte plus the prefix and the last commit's tail."""
    return sorted(set(range(0, n, stride)) | set(range(40)) | set(range(max(0, n - 120), n)))


def test_truncations_quick(tmp_path: Path) -> None:
    data = GOLDEN.read_bytes()
    commits = _commits(data, tmp_path)
    for length in _positions(len(data), 43):
        _check_truncation(data, length, commits, tmp_path / "cut.thermo")


def test_byte_flips_quick(tmp_path: Path) -> None:
    data = GOLDEN.read_bytes()
    commits = _commits(data, tmp_path)
    for pos in _positions(len(data), 47):
        _check_flip(data, pos, 0xFF, commits, tmp_path / "flip.thermo")


@pytest.mark.slow
def test_every_truncation(tmp_path: Path) -> None:
    data = GOLDEN.read_bytes()
    commits = _commits(data, tmp_path)
    for length in range(len(data) + 1):
        _check_truncation(data, length, commits, tmp_path / "cut.thermo")


@pytest.mark.slow
@pytest.mark.parametrize("mask", [0xFF, 0x01, 0x80])
def test_every_byte_flip(tmp_path: Path, mask: int) -> None:
    data = GOLDEN.read_bytes()
    commits = _commits(data, tmp_path)
    for pos in range(len(data)):
        _check_flip(data, pos, mask, commits, tmp_path / "flip.thermo")
