"""Crash safety: an interrupted commit leaves the file at the state before or after it.

In-process, an append is cut at every byte (what kill -9 leaves behind), and a rewrite
is made to fail half-way. Out of process, a writer doing appends and consolidations is
killed with SIGKILL at random moments; the file must then open, verify, and hold
exactly the commits the writer reported, or one more.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.container.helpers import sample_thermogram, state
from thermo_cli import store
from thermo_cli.container import writer as writer_mod
from thermo_cli.container.reader import Reader
from thermo_cli.container.writer import plan_append
from thermo_cli.model import Delta, Entry, Layer
from thermo_cli.operations.audit.verify import verify_file

ROOT = Path(__file__).resolve().parents[2]


def _append_cuts(tmp_path: Path, every: bool) -> None:
    path = tmp_path / "a.thermo"
    store.create(path, sample_thermogram(6))
    before_bytes = path.read_bytes()
    before = state(store.load(path, layers="full"))
    tg = store.load(path)
    tg.create("new", b"n" * 100)
    tg.extras["snn"]["neurons"] = 9
    with Reader(path) as r:
        planned = plan_append(tg, r)
    assert planned is not None
    data = planned[0]
    after_path = tmp_path / "after.thermo"
    after_path.write_bytes(before_bytes + data)
    after = state(store.load(after_path, layers="full"))
    assert after != before
    cut = tmp_path / "cut.thermo"
    n = len(data)
    cuts = range(n + 1) if every else sorted({*range(0, n, 13), *range(n - 60, n + 1)})
    for k in cuts:
        cut.write_bytes(before_bytes + data[:k])
        got = store.load(cut, layers="full")
        assert state(got) == (after if k == len(data) else before), k
        assert store.info(got).torn_tail_bytes == (0 if k == len(data) else k)


def test_append_cut_at_many_bytes_reads_as_before_or_after(tmp_path: Path) -> None:
    _append_cuts(tmp_path, every=False)


@pytest.mark.slow
def test_append_cut_at_every_byte_reads_as_before_or_after(tmp_path: Path) -> None:
    _append_cuts(tmp_path, every=True)


def test_commit_after_a_torn_tail_drops_it(tmp_path: Path) -> None:
    path = tmp_path / "a.thermo"
    store.create(path, sample_thermogram(4))
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x00half-written append")
    tg = store.load(path)
    assert store.info(tg).torn_tail_bytes == len(b"\x00half-written append")
    assert not verify_file(path).failure
    tg.create("x", b"y")
    assert store.commit(path, tg) == "append"
    with Reader(path) as r:
        assert r.torn_tail_bytes == 0
        assert r.trailer.prev is not None and r.trailer.prev.off + r.trailer.prev.len == size
    assert verify_file(path).ok


def test_failed_rewrite_leaves_the_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.thermo"
    store.create(path, sample_thermogram(10))
    before = path.read_bytes()
    tg = store.load(path)
    tg.layers[Layer.HOT]["extra"] = Entry("extra", b"e", 0.5, 1, 1)
    tg.layers_modified = True

    def boom(*args: object, **kw: object) -> object:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer_mod, "write_segments", boom)
    with pytest.raises(OSError):
        store.commit(path, tg)
    assert path.read_bytes() == before
    assert [n for n in os.listdir(tmp_path) if "thermo-tmp" in n] == []


def _committed_keys(path: Path) -> list[int]:
    return [int(r.key[1:]) for r in store.iter_log(path) if isinstance(r, Delta) and r.key.startswith("k")]


def _run_kills(tmp_path: Path, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "crash.thermo"
    store.create(path, sample_thermogram(8))
    done = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(kills):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.container.crash_worker", str(path), str(done)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        time.sleep(rng.uniform(0.25, 0.9))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        reported = [int(x) for x in out.split()]
        keys = _committed_keys(path)
        last = reported[-1] if reported else done - 1
        assert keys == list(range(len(keys))), "the log must hold k0..kn without gaps"
        assert len(keys) - 1 in (last, last + 1), (keys[-1:], last)
        report = verify_file(path)
        assert report.ok, report.failure
        done = len(keys)
    assert [n for n in os.listdir(tmp_path) if n.endswith(".thermo")] == ["crash.thermo"]


def test_kill_during_appends_and_consolidations(tmp_path: Path) -> None:
    _run_kills(tmp_path, kills=3, seed=1)


@pytest.mark.slow
def test_many_kills_during_appends_and_consolidations(tmp_path: Path) -> None:
    _run_kills(tmp_path, kills=120, seed=2)


@pytest.mark.parametrize("fail", ["second part", "footer"])
def test_failed_append_is_taken_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail: str) -> None:
    """The commit's parts are written one by one, then the footer: a failure at any of
    them truncates the file back to where the commit began."""
    from thermo_cli.container import fileops
    from thermo_cli.container.layout import FOOTER_SIZE

    path = tmp_path / "a.thermo"
    store.create(path, sample_thermogram(4))
    before = path.read_bytes()
    tg = store.load(path)
    for i in range(40):  # records over more than one part
        tg.create(f"k{i}", b"v" * 40_000)
    real = fileops._pwrite_all
    calls = []

    def failing(fd: int, data: bytes, off: int) -> None:
        calls.append(len(data))
        if (fail == "second part" and len(calls) == 2) or (fail == "footer" and len(data) == FOOTER_SIZE):
            raise OSError(28, "No space left on device")
        real(fd, data, off)

    monkeypatch.setattr(fileops, "_pwrite_all", failing)
    with pytest.raises(OSError):
        store.commit(path, tg)
    assert path.read_bytes() == before
