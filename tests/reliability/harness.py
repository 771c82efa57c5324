"""Crash-test harness: run real ``thermo`` commands in subprocesses and SIGKILL them.

A *scenario* is one writing command on a prepared file (``thermo apply``, ``consolidate``,
``import-safetensors``, ``quantize``, ``snn run``). The harness runs it once to the end on a
copy to learn the state *after* it, then, for each kill, copies the prepared file again,
starts the command, waits until the command holds the file's writer lock (seen in
``/proc/locks``, without touching the lock itself) or picks a random moment from the
start, sleeps a random fraction of the time the command held the lock in the complete
run, and sends SIGKILL. The file must then open, verify, and hold exactly the state before
or after the command; a torn tail must be reported by verification and dropped by repair,
which must give back the bytes of the last commit and keep the original in a backup.

State is compared two ways: commands whose output is deterministic (``apply`` of deltas
with explicit ids and timestamps) must give back the exact bytes of the before or after
file once repaired; the others (their events carry the current time) are compared on a
normalised snapshot: every record's kind, key, value digest, strength and source, every
entry of every layer, the extension state, and the exact hashes of the records that
existed before the command (a committed record must never change).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thermo_cli import store
from thermo_cli.codec import cbor
from thermo_cli.container.fileops import lock_path
from thermo_cli.model import Delta, Layer
from thermo_cli.operations.audit.verify import verify_file
from thermo_cli.operations.repair import leftover_temp_files, repair

ROOT = Path(__file__).resolve().parents[2]
THERMO = [sys.executable, "-c", "import sys; from thermo_cli.cli import main; sys.argv[0] = 'thermo'; main()"]
"""The ``thermo`` CLI of this interpreter (independent of where the script was installed)."""


def thermo(
    *args: str | os.PathLike[str], check: bool = True, timeout: float = 300, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``thermo ARGS`` to the end in a subprocess."""
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    proc = subprocess.run(
        [*THERMO, *map(os.fspath, args)],
        capture_output=True,
        timeout=timeout,
        cwd=ROOT,
        env=child_env(),
        **stdin,
    )  # type: ignore[call-overload]
    if check and proc.returncode != 0:
        raise AssertionError(
            f"thermo {' '.join(map(str, args))} exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace')}"
        )
    return proc


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["NO_COLOR"] = "1"
    return env


# --- state snapshots --------------------------------------------------------------------------


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:24]


def _tensor(t: Any) -> Any:
    if t is None:
        return None
    scales = getattr(t, "scales", None)
    return (t.dtype, tuple(t.shape), t.encoding, None if scales is None else _digest(bytes(scales)))


def _record(rec: Any) -> tuple[Any, ...]:
    if isinstance(rec, Delta):
        return (
            "delta",
            rec.delta_type.label,
            rec.key,
            _digest(rec.value),
            rec.strength,
            None if rec.ternary is None else int(rec.ternary),
            rec.source,
            _tensor(rec.tensor),
        )
    return ("event", rec.kind)


@dataclass(frozen=True)
class Snapshot:
    """What a reader sees in a file's last commit, normalised for comparison."""

    hashes: tuple[str, ...]
    records: tuple[tuple[Any, ...], ...]
    layers: tuple[tuple[str, tuple[Any, ...]], ...]
    extras: str
    name: str
    total_deltas: int
    consolidations: int

    def same_as(self, other: Snapshot) -> bool:
        """Equal state, where record hashes are compared only for the older file's records."""
        return (
            self.records == other.records
            and self.layers == other.layers
            and self.extras == other.extras
            and self.name == other.name
            and self.total_deltas == other.total_deltas
            and self.consolidations == other.consolidations
        )


def snapshot(path: str | os.PathLike[str]) -> Snapshot | None:
    """The normalised committed state of ``path`` (None if the file does not exist)."""
    if not os.path.exists(path):
        return None
    tg = store.load(path, layers="full", log="full")
    layers = []
    for layer in Layer:
        rows = tuple(
            sorted(
                (
                    k,
                    _digest(e.value),
                    e.strength,
                    None if e.ternary is None else int(e.ternary),
                    _tensor(e.tensor),
                )
                for k, e in tg.layers[layer].items()
            )
        )
        layers.append((layer.label, rows))
    return Snapshot(
        hashes=tuple(r.hash for r in tg.records),
        records=tuple(_record(r) for r in tg.records),
        layers=tuple(layers),
        extras=_digest(cbor.encode(tg.extras)) if tg.extras else "",
        name=tg.name,
        total_deltas=tg.meta.total_deltas,
        consolidations=tg.meta.total_consolidations,
    )


# --- scenarios ------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One writing command on a prepared file.

    ``prepare(dir)`` builds the inputs in ``dir`` once and returns the prepared target file
    (or, for a command that creates its target, the path it will create) and the argv.
    """

    name: str
    prepare: Callable[[Path], tuple[Path, list[str]]]
    deterministic: bool = False
    """The complete command always writes the same bytes (compare files exactly)."""
    creates: bool = False
    """The command creates its target (before = no file)."""


@dataclass
class Prepared:
    scenario: Scenario
    workdir: Path
    base: Path
    """Pristine copy of the target before the command (absent for ``creates``)."""
    target: Path
    argv: list[str]
    before: Snapshot | None
    after: Snapshot
    before_bytes: bytes | None
    after_bytes: bytes
    lock_window: float
    """Seconds the complete run held the writer lock (0 if not seen)."""
    write_window: float
    """Seconds from its first write to its exit in the complete run (0 if not seen)."""
    runtime: float


@dataclass
class KillStats:
    kills: int = 0
    finished_before_kill: int = 0
    before: int = 0
    after: int = 0
    torn_tails: int = 0
    temp_files: int = 0
    repaired: int = 0
    cli_checked: int = 0
    outcomes: list[str] = field(default_factory=list)


def _lock_inode(target: Path) -> int | None:
    try:
        return os.stat(lock_path(target)).st_ino
    except OSError:
        return None


def _holds_lock(pid: int, inode: int | None) -> bool:
    if inode is None:
        return False
    try:
        with open("/proc/locks") as f:
            text = f.read()
    except OSError:
        return False
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[4] == str(pid) and parts[5].rsplit(":", 1)[-1] == str(inode):
            return True
    return False


def _restore(p: Prepared) -> None:
    for leftover in [p.target, *leftover_temp_files(p.target)]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(leftover)
    for backup in p.workdir.glob(f"{p.target.name}.bak-*"):
        backup.unlink()
    if not p.scenario.creates:
        shutil.copyfile(p.base, p.target)


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*THERMO, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env=child_env(),
    )


def _write_started(target: Path, base_size: int | None) -> bool:
    """The command has begun writing: the target grew, or a rewrite's temporary file exists."""
    try:
        if base_size is None or os.stat(target).st_size != base_size:
            return base_size is not None or target.exists()
    except FileNotFoundError:
        pass
    return bool(leftover_temp_files(target))


def _run_timed(target: Path, argv: list[str], base_size: int | None) -> tuple[float, float, float]:
    """Run to the end; return (seconds the lock was held, seconds spent writing, total seconds)."""
    t0 = time.monotonic()
    proc = _spawn(argv)
    first = last = wrote = None
    while proc.poll() is None:
        now = time.monotonic()
        if _holds_lock(proc.pid, _lock_inode(target)):
            first = first if first is not None else now
            last = now
        if wrote is None and _write_started(target, base_size):
            wrote = now
        time.sleep(0.001)
    _, errout = proc.communicate()
    if proc.returncode != 0:
        raise AssertionError(f"{argv[0]} failed ({proc.returncode}): {errout.decode(errors='replace')}")
    end = time.monotonic()
    lock = (last - first) if first is not None and last is not None else 0.0
    return lock, (end - wrote) if wrote is not None else 0.0, end - t0


def prepare(scenario: Scenario, workdir: Path) -> Prepared:
    """Build the scenario's inputs, then run the command to the end once to learn 'after'."""
    workdir.mkdir(parents=True, exist_ok=True)
    target, argv = scenario.prepare(workdir)
    base = workdir / f"{target.name}.base"
    if scenario.creates:
        assert not target.exists()
        before = None
        before_bytes = None
    else:
        shutil.copyfile(target, base)
        before = snapshot(target)
        before_bytes = base.read_bytes()
    base_size = None if scenario.creates else target.stat().st_size
    window, write_window, runtime = _run_timed(target, argv, base_size)
    after = snapshot(target)
    assert after is not None
    after_bytes = target.read_bytes()
    p = Prepared(
        scenario,
        workdir,
        base,
        target,
        argv,
        before,
        after,
        before_bytes,
        after_bytes,
        window,
        write_window,
        runtime,
    )
    assert before is None or not after.same_as(before), f"{scenario.name}: the command changed nothing"
    if scenario.deterministic:
        _restore(p)
        _run_timed(target, argv, base_size)
        assert target.read_bytes() == after_bytes, f"{scenario.name}: output is not deterministic"
    _restore(p)
    return p


def kill_once(p: Prepared, rng: random.Random, stats: KillStats, *, cli_check: bool = False) -> str:
    """One run killed at a random moment, then every check; returns 'before' or 'after'."""
    _restore(p)
    proc = _spawn(p.argv)
    start = time.monotonic()
    mode = rng.random()
    if mode < 0.2 or p.lock_window <= 0:  # any moment of the run
        _wait(proc, lambda: time.monotonic() - start > rng.uniform(0, p.runtime * 1.1), p)
    elif mode < 0.5:  # while it holds the writer lock
        inode: list[int | None] = [None]

        def locked_now() -> bool:
            inode[0] = inode[0] or _lock_inode(p.target)
            return _holds_lock(proc.pid, inode[0])

        _wait(proc, locked_now, p)
        time.sleep(rng.uniform(0, p.lock_window * 1.1))
    else:  # while it writes
        base_size = None if p.before_bytes is None else len(p.before_bytes)
        _wait(proc, lambda: _write_started(p.target, base_size), p)
        time.sleep(rng.uniform(0, p.write_window * 1.1))
    finished = proc.poll() is not None
    if not finished:
        proc.send_signal(signal.SIGKILL)
    _, errout = proc.communicate()
    stats.kills += 1
    if finished:
        stats.finished_before_kill += 1
        assert proc.returncode == 0, (
            f"{p.scenario.name}: the command failed on its own "
            f"({proc.returncode}): {errout.decode(errors='replace')}"
        )
    outcome = check_after_crash(p, stats, cli_check=cli_check)
    stats.outcomes.append(outcome)
    return outcome


def _wait(proc: subprocess.Popen[bytes], ready: Callable[[], bool], p: Prepared) -> None:
    limit = time.monotonic() + p.runtime * 5 + 10
    while proc.poll() is None and not ready() and time.monotonic() < limit:
        time.sleep(0.0005)


def check_after_crash(p: Prepared, stats: KillStats, *, cli_check: bool = False) -> str:
    """The file must hold the before or after state, verify, and repair to a clean end."""
    name = p.scenario.name
    temps = leftover_temp_files(p.target)
    if p.scenario.creates and not p.target.exists():
        assert not any(p.workdir.glob(f"{p.target.name}.bak-*"))
        if temps:
            stats.temp_files += 1
            report = repair_missing_target(p)
            assert report == [], name
        stats.before += 1
        return "before"
    raw = p.target.read_bytes()
    state = snapshot(p.target)
    assert state is not None
    tg_origin = store.open_reader(p.target)
    torn = tg_origin.torn_tail_bytes
    committed = raw[: tg_origin.committed_end]
    tg_origin.close()
    report = verify_file(p.target)
    assert report.ok, f"{name}: verify failed after a kill: {report.failure}"
    assert report.torn_tail_bytes == torn
    if p.before is not None and state.same_as(p.before):
        outcome = "before"
        assert state.hashes == p.before.hashes, f"{name}: a committed record changed"
        assert committed == p.before_bytes, f"{name}: committed bytes differ from the file before"
    else:
        assert state.same_as(p.after), f"{name}: the file after a kill is neither the state before nor after"
        if p.before is not None:
            n = len(p.before.hashes)
            assert state.hashes[:n] == p.before.hashes, f"{name}: a committed record changed"
        if p.scenario.deterministic:
            assert committed == p.after_bytes, f"{name}: committed bytes differ from the complete run's"
        outcome = "after"
    if torn:
        stats.torn_tails += 1
        assert not _rewritten(p), f"{name}: a rewriting command left a torn tail"
        if cli_check:
            _cli_verify_reports_tail(p.target, torn)
            stats.cli_checked += 1
    if temps:
        stats.temp_files += 1
    if torn or temps:
        if cli_check:
            import orjson

            doc = orjson.loads(thermo("repair", "--json", p.target).stdout)
            backup, dropped = doc["backup"], doc["torn_tail_bytes"]
        else:
            rep = repair(p.target)
            backup, dropped = rep.backup, rep.torn_tail_bytes
        stats.repaired += 1
        assert dropped == torn
        if torn:
            assert backup is not None and Path(backup).read_bytes() == raw, f"{name}: bad backup"
        assert p.target.read_bytes() == committed, f"{name}: repair changed committed bytes"
        assert leftover_temp_files(p.target) == []
        again = verify_file(p.target)
        assert again.ok and again.torn_tail_bytes == 0
        assert snapshot(p.target) == state, f"{name}: repair changed the state"
    if outcome == "before":
        stats.before += 1
    else:
        stats.after += 1
    return outcome


def _rewritten(p: Prepared) -> bool:
    """Whether the complete command rewrote the file (its bytes do not extend the old ones)."""
    return p.before_bytes is None or not p.after_bytes.startswith(p.before_bytes)


def repair_missing_target(p: Prepared) -> list[str]:
    """A killed create leaves only a temp file: removing it is all a repair could do."""
    for temp in leftover_temp_files(p.target):
        os.unlink(temp)
    return leftover_temp_files(p.target)


def _cli_verify_reports_tail(target: Path, torn: int) -> None:
    import orjson

    proc = thermo("verify", "--json", target)
    doc = orjson.loads(proc.stdout)
    assert doc["ok"] is True and doc["torn_tail_bytes"] == torn, doc
    assert any(c["name"] == "torn tail" for c in doc["checks"]), doc["checks"]


# --- truncation sweeps ----------------------------------------------------------------------


def truncation_sweep(p: Prepared, cuts: list[int], *, full_checks: int = 3) -> int:
    """Cut the appended bytes of a complete append commit at each of ``cuts`` (offsets into
    the appended part): the file must read as before (or after, for the whole commit), be
    reported as torn by verification, and repair back to the exact bytes before.

    The first ``full_checks`` cuts also compare full snapshots; the rest rely on the exact
    bytes, which imply the state.
    """
    assert p.before_bytes is not None and p.after_bytes.startswith(p.before_bytes)
    appended = p.after_bytes[len(p.before_bytes) :]
    checked = 0
    for i, k in enumerate(cuts):
        data = p.before_bytes + appended[:k]
        p.target.write_bytes(data)
        expect_after = k == len(appended)
        if i < full_checks:
            state = snapshot(p.target)
            assert state is not None and state.same_as(p.after if expect_after else p.before), k
        with store.open_reader(p.target) as r:
            assert r.committed_end == (len(data) if expect_after else len(p.before_bytes)), k
            assert r.torn_tail_bytes == (0 if expect_after else k), k
        report = verify_file(p.target)
        assert report.ok, (k, report.failure)
        assert report.torn_tail_bytes == (0 if expect_after else k), (k, report.torn_tail_bytes)
        if not expect_after and k:
            backup = p.workdir / f"sweep-{k}.bak"
            rep = repair(p.target, backup=backup)
            assert rep.torn_tail_bytes == k
            assert p.target.read_bytes() == p.before_bytes, k
            assert backup.read_bytes() == data, k
            backup.unlink()
        checked += 1
    _restore(p)
    return checked


def sweep_points(n: int, rng: random.Random, count: int) -> list[int]:
    """Cut offsets in an appended region of ``n`` bytes: both ends, the footer's bytes, random."""
    points = {0, 1, n - 1, n, *range(max(0, n - 50), n + 1)}
    points.update(rng.randrange(n + 1) for _ in range(count))
    return sorted(points)
