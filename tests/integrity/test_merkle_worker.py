"""The Merkle worker process computes exactly the in-process range, or says it cannot.

``RangeWorker`` only moves the hashing of a commit's records to another process; the
caller takes its range only when it covers exactly the runs committed from the range the
commit starts at. Every other case (other runs, another start, a dead worker, a platform
that cannot start one) must answer None so the caller hashes itself.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.codec import worker as transport
from thermo_cli.integrity.merkle import CompactRange, leaf_hashes_of
from thermo_cli.integrity.merkle_worker import RangeWorker

pytestmark = pytest.mark.skipif(not transport.available(), reason="needs posix_spawn and memfd_create")


class Run:
    """A stand-in for a sealed run: the worker only needs identity and record bytes."""

    def __init__(self, records: list[bytes]) -> None:
        self.encoded = records


def encoded(run: Run) -> list[bytes]:
    return run.encoded


def committed_range(size: int) -> CompactRange:
    rng = CompactRange()
    rng.extend([hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)])
    return rng


def in_process(start: CompactRange, runs: list[Run]) -> CompactRange:
    rng = start.copy()
    rng.extend(leaf_hashes_of([r for run in runs for r in run.encoded]))
    return rng


def worker_for(start: CompactRange) -> RangeWorker:
    worker = RangeWorker.start()
    assert worker is not None
    worker.begin(start)
    return worker


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(0, 70),
    runs=st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=20), min_size=1, max_size=6),
    syncs=st.integers(1, 3),
)
def test_the_worker_extends_the_range_as_the_caller_would(size, runs, syncs):
    """Any starting size (so every way the new leaves merge with old subtrees), records
    with 0x00 bytes and empty ones, runs fed over several syncs."""
    start = committed_range(size)
    objs = [Run(r) for r in runs]
    worker = worker_for(start)
    try:
        step = max(1, len(objs) // syncs)
        for stop in range(step, len(objs) + step, step):
            worker.sync(objs[:stop], encoded)
        got = worker.finish(start, objs)
    finally:
        worker.close()
    want = in_process(start, objs)
    assert got is not None
    assert (got.size, got.nodes) == (want.size, want.nodes)


def test_a_big_commit_in_many_runs():
    start = committed_range(1001)
    objs = [Run([os.urandom(100 + i % 50) for i in range(3000)]) for _ in range(7)]
    worker = worker_for(start)
    for i in range(1, len(objs) + 1):
        worker.sync(objs[:i], encoded)
    got = worker.finish(start, objs)
    assert got is not None and got.root() == in_process(start, objs).root()


def test_other_runs_or_another_start_get_no_range():
    start = committed_range(5)
    a, b = Run([b"a"]), Run([b"b"])
    for runs, begun_at in (([a], start), ([b, a], start), ([a, b], committed_range(6))):
        worker = worker_for(start)
        worker.sync([a, b], encoded)
        assert worker.finish(begun_at, runs) is None


def test_runs_that_are_no_longer_a_prefix_stop_the_worker():
    """A thermogram that turned its runs into records (a consolidation) no longer lists them."""
    start = committed_range(3)
    a, b = Run([b"a"]), Run([b"b"])
    worker = worker_for(start)
    worker.sync([a], encoded)
    worker.sync([b], encoded)  # the runs fed so far are gone
    assert worker.finish(start, [b]) is None
    assert worker.fed == 1  # nothing more was sent


def test_a_worker_that_died_gives_no_range_and_no_error():
    start = committed_range(2)
    runs = [Run([b"x" * 10])]
    worker = worker_for(start)
    worker.sync(runs, encoded)
    os.kill(worker._worker._pid, signal.SIGKILL)
    assert worker.finish(start, runs) is None


def test_close_reaps_the_process_and_can_be_repeated():
    worker = worker_for(committed_range(1))
    pid = worker._worker._pid
    worker.close()
    worker.close()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    worker.sync([Run([b"late"])], encoded)  # a closed worker ignores what comes after
    assert worker.finish(committed_range(1), []) is None


def test_a_worker_never_begun_gives_no_range():
    worker = RangeWorker.start()
    assert worker is not None
    worker.sync([Run([b"a"])], encoded)
    assert worker.fed == 0
    assert worker.finish(committed_range(0), []) is None


def test_a_worker_while_other_threads_run():
    """A fresh interpreter, not a fork: the caller's threads are not copied into it."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        start = committed_range(4)
        runs = [Run([b"a", b"bc"])]
        worker = worker_for(start)
        worker.sync(runs, encoded)
        got = worker.finish(start, runs)
        assert got is not None and got.root() == in_process(start, runs).root()
    finally:
        stop.set()
        thread.join()


def test_no_worker_without_posix_spawn(monkeypatch):
    monkeypatch.delattr(os, "posix_spawn")
    assert RangeWorker.start() is None


def test_no_worker_when_the_interpreter_is_unknown(monkeypatch):
    monkeypatch.setattr(transport.sys, "executable", "")
    assert RangeWorker.start() is None


def test_a_worker_that_cannot_start_gives_no_range(monkeypatch):
    """An interpreter that fails at once closes its end of the pipes: no range, no error."""
    monkeypatch.setattr(transport.sys, "executable", "/bin/false")
    start = committed_range(3)
    runs = [Run([b"a"])]
    worker = RangeWorker.start()
    assert worker is not None
    worker.begin(start)
    worker.sync(runs, encoded)
    assert worker.finish(start, runs) is None


def test_no_worker_when_a_dead_worker_could_kill_the_caller(monkeypatch):
    monkeypatch.setattr(transport.signal, "getsignal", lambda sig: transport.signal.SIG_DFL)
    assert RangeWorker.start() is None


def test_no_worker_when_the_spawn_fails(monkeypatch):
    def refuse(*args: object, **kwargs: object) -> int:
        raise OSError("Resource temporarily unavailable")

    monkeypatch.setattr(os, "posix_spawn", refuse)
    before = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()
    assert RangeWorker.start() is None
    if before:
        assert set(os.listdir("/proc/self/fd")) == before  # its pipes and memory file closed


def test_a_worker_started_by_a_process_with_few_files_open():
    """A fresh process gets its pipes on descriptors 3, 4…, the very numbers the worker's
    ends are placed at: each must be moved out of the way first, or one placement
    overwrites a descriptor still to be placed (the worker then dies and nothing is gained)."""
    script = (
        "from thermo_cli.integrity.merkle import CompactRange, leaf_hashes_of\n"
        "from thermo_cli.integrity.merkle_worker import RangeWorker\n"
        "class Run:\n"
        "    encoded = [b'x' * 40, b'y' * 7]\n"
        "runs = [Run()]\n"
        "w = RangeWorker.start()\n"
        "w.begin(CompactRange())\n"
        "w.sync(runs, lambda r: r.encoded)\n"
        "got = w.finish(CompactRange(), runs)\n"
        "want = CompactRange(); want.extend(leaf_hashes_of(Run.encoded))\n"
        "print(got is not None and got.root() == want.root())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "True", done.stderr


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(b")", 1)[1].split()[1]) == pid:
            found.append((int(entry), cmdline))
    return found


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_killing_apply_leaves_no_worker_and_the_file_as_it_was(tmp_path):
    """``kill -9`` of ``thermo apply`` while its worker runs: the worker sees its pipe close
    and exits (no orphan hashing on), and the file holds its state before the apply."""
    import time

    import orjson

    from thermo_cli import store
    from thermo_cli.config.engine import ConsolidationPolicy
    from thermo_cli.engine.thermogram import Thermogram

    target = tmp_path / "f.thermo"
    tg = Thermogram(name="t")
    tg.set_policy(ConsolidationPolicy.manual())
    store.create(target, tg)
    before, records = target.read_bytes(), store.load(target).log_length
    deltas = tmp_path / "d.jsonl"
    deltas.write_bytes(
        b"".join(
            orjson.dumps({"op": "update", "key": f"k{i}", "value": "v" * 40, "strength": 0.5}) + b"\n"
            for i in range(200_000)
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "thermo_cli", "apply", str(target), str(deltas)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    deadline = time.monotonic() + 60
    while worker is None and proc.poll() is None and time.monotonic() < deadline:
        worker = next((pid for pid, cmd in _children(proc.pid) if "merkle_worker" in cmd), None)
        time.sleep(0.002)
    if worker is None:
        proc.wait()
        pytest.skip("the apply ended before its worker was seen (or ran without one)")
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _gone(worker), "the worker outlived the apply that started it"
    assert target.read_bytes()[: len(before)] == before
    assert store.load(target).log_length in (records, records + 200_000)
