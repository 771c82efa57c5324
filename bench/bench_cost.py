"""Changes cost what they change: one-key operations on a small and a large file, side by side.

Run by hand: ``python -m bench.bench_cost [--quick] [--repeat N]``.

Files (built once per run in a temporary directory): a 1 MiB file and a 512 MiB file
(64 MiB with ``--quick``) of 8 KiB float32 entries (N(0, 0.02²), so chunks compress
like weights), all in the hot layer. Each case is timed on both, as a median, in one run:

* ``reinforce``: lock, lazy load, reinforce one key, commit (binds the state);
* ``consolidate``: lock, lazy load, apply one delta, consolidate, commit;
* ``tick``: lock, lazy load, decay + transitions, commit — on a third file of small
  entries (100 k, or 1 M without ``--quick``): bytes appended per entry;
* ``get``: ``store.read`` of one key with 100 k (10 k with ``--quick``) uncommitted
  deltas after the consolidation point, versus the same file consolidated.

Targets (issue 14): large / small <= 3 for reinforce and consolidate; tick <= 32 bytes
per entry; get with uncommitted deltas / consolidated <= 2. Prints a table and writes
``bench/results/cost.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import report, timed

MiB = 1 << 20
ENTRY_BYTES = 8192


def build(path: Path, total_bytes: int, *, entry_bytes: int = ENTRY_BYTES, seed: int = 0) -> int:
    """A container of ``total_bytes`` of float32 entries in the hot layer; returns the count."""
    from thermo_cli import store
    from thermo_cli.config.engine import ConsolidationPolicy
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.model import Entry, Layer, TensorSpec

    n = max(1, total_bytes // entry_bytes)
    rng = np.random.default_rng(seed)
    block = (rng.standard_normal(entry_bytes // 4 * 64) * 0.02).astype(np.float32).tobytes()
    tg = Thermogram(name="bench", policy=ConsolidationPolicy.manual())
    hot = tg.layers[Layer.HOT]
    spec = TensorSpec("F32", (entry_bytes // 4,))
    for i in range(n):
        a = (i * 7919 % 64) * entry_bytes
        value = (block + block)[a : a + entry_bytes]
        hot[f"w/{i:08d}"] = Entry(f"w/{i:08d}", value, 0.5, 1_700_000_000_000_000_000 + i, 1, None, spec)
    store.create(path, tg)
    return n


def _reinforce(path: Path, n: int) -> None:
    from thermo_cli import store

    with store.edit(path) as tg:
        tg.reinforce(f"w/{n // 2:08d}", 0.01)


def _consolidate(path: Path, n: int) -> None:
    from thermo_cli import store

    with store.edit(path) as tg:
        tg.update(f"w/{n // 3:08d}", os.urandom(64))
        tg.consolidate()


def _tick(path: Path) -> None:
    from thermo_cli import store

    with store.edit(path) as tg:
        tg.apply_decay()
        tg.run_thermal_transitions()


def _small_entries(path: Path, n: int) -> None:
    from thermo_cli import store
    from thermo_cli.config.engine import ConsolidationPolicy
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.model import Entry, Layer

    tg = Thermogram(name="ticks", policy=ConsolidationPolicy.manual())
    hot = tg.layers[Layer.HOT]
    for i in range(n):
        strength = float(np.float32(0.5 + (i * 7919 % 1000) / 2000))  # varied, as real strengths are
        hot[f"s/{i:08d}"] = Entry(
            f"s/{i:08d}", i.to_bytes(8, "little"), strength, 1_700_000_000_000_000_000 + i * 997, 1 + i % 7
        )
    store.create(path, tg)


def _with_dirty(path: Path, n: int, deltas: int) -> None:
    """Append ``deltas`` uncommitted updates (one commit) after the consolidation point."""
    from thermo_cli import store

    with store.edit(path) as tg:
        for i in range(deltas):
            tg.create(f"d/{i:08d}", b"dirty value %d" % i)


def _cli(*args: str) -> None:
    """One ``thermo`` command in a new process (what the issue measured: start-up included)."""
    subprocess.run([sys.executable, "-m", "thermo_cli", *args], check=True, capture_output=True)


def _get(path: Path, key: str) -> None:
    from thermo_cli import store

    store.read(path, key)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="64 MiB instead of 512 MiB; fewer entries")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    large = (64 if args.quick else 512) * MiB
    ticks = 100_000 if args.quick else 1_000_000
    dirty = 10_000 if args.quick else 100_000
    from thermo_cli import store

    rows: list[dict[str, Any]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-cost-"))
    try:
        small_path, large_path = tmp / "small.thermo", tmp / "large.thermo"
        n_small = build(small_path, 1 * MiB)
        n_large = build(large_path, large)
        label = f"{large // MiB} MiB"
        rows.append(
            {
                "metric": f"file sizes 1 MiB / {label}",
                "value": f"{small_path.stat().st_size} / {large_path.stat().st_size}",
                "unit": "bytes",
            }
        )
        for name, fn in (("reinforce one key", _reinforce), ("consolidate one delta", _consolidate)):
            t_small = timed(lambda fn=fn: fn(small_path, n_small), repeat=args.repeat)
            t_large = timed(lambda fn=fn: fn(large_path, n_large), repeat=args.repeat)
            ratio = t_large / t_small
            rows.append({"metric": f"{name}, 1 MiB", "value": t_small * 1e3, "unit": "ms"})
            rows.append({"metric": f"{name}, {label}", "value": t_large * 1e3, "unit": "ms"})
            rows.append(
                {
                    "metric": f"{name}: {label} / 1 MiB",
                    "value": ratio,
                    "unit": "x",
                    "target": "<= 3",
                    "ok": ratio <= 3,
                }
            )
        for name, args_ in (
            ("reinforce", ["reinforce", "{f}", "w/{k:08d}", "0.01"]),
            ("consolidate", ["consolidate", "{f}"]),
        ):
            t = {}
            for path, n in ((small_path, n_small), (large_path, n_large)):
                argv = [a.format(f=path, k=n // 2) for a in args_]
                t[path] = timed(lambda argv=argv: _cli(*argv), repeat=args.repeat)
            ratio = t[large_path] / t[small_path]
            rows.append({"metric": f"CLI {name}, 1 MiB", "value": t[small_path] * 1e3, "unit": "ms"})
            rows.append({"metric": f"CLI {name}, {label}", "value": t[large_path] * 1e3, "unit": "ms"})
            rows.append(
                {
                    "metric": f"CLI {name}: {label} / 1 MiB",
                    "value": ratio,
                    "unit": "x",
                    "target": "<= 3",
                    "ok": ratio <= 3,
                }
            )
        tick_path = tmp / "ticks.thermo"
        _small_entries(tick_path, ticks)
        for which in range(1, 5):  # 1: splits identity from state; 2: entries still move layers
            before = tick_path.stat().st_size
            with store.open_reader(tick_path) as r:
                seq = r.trailer.seq
            t_tick = timed(lambda: _tick(tick_path), repeat=1, warmup=0)
            per_entry = (tick_path.stat().st_size - before) / ticks
            with store.open_reader(tick_path) as r:
                mode = "rewrite (compaction)" if r.trailer.start == 32 and r.trailer.seq > seq else "append"
            rows.append(
                {"metric": f"tick {which}, {ticks} small entries ({mode})", "value": t_tick, "unit": "s"}
            )
            steady = which >= 3 and mode == "append"
            rows.append(
                {
                    "metric": f"tick {which}: bytes written per entry",
                    "value": per_entry,
                    "unit": "B",
                    "target": "<= 32" if steady else "",
                    "ok": per_entry <= 32 if steady else None,
                }
            )
        get_path = tmp / "get.thermo"
        shutil.copy(small_path, get_path)
        key = f"w/{n_small // 2:08d}"
        t_clean = timed(lambda: _get(get_path, key), repeat=args.repeat)
        _with_dirty(get_path, n_small, dirty)
        with store.open_reader(get_path) as r:
            pending = r.trailer.log_size - r.trailer.dirty_start
        t_dirty = timed(lambda: _get(get_path, key), repeat=args.repeat)
        ratio = t_dirty / t_clean
        rows.append({"metric": "get, consolidated", "value": t_clean * 1e3, "unit": "ms"})
        rows.append({"metric": f"get, {pending} uncommitted records", "value": t_dirty * 1e3, "unit": "ms"})
        rows.append(
            {
                "metric": "get: uncommitted / consolidated",
                "value": ratio,
                "unit": "x",
                "target": "<= 2",
                "ok": ratio <= 2,
            }
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report("cost", rows)


if __name__ == "__main__":
    main()
