"""CLI benchmark: end-to-end `thermo apply`, `thermo get` on a 1 GiB file, start-up time.

Run by hand: ``python -m bench.bench_cli [--quick] [--keep DIR]``. Every figure is a real
process (``subprocess`` running the installed ``thermo`` script), so interpreter
start-up, imports, locking, parsing, hashing and the final fsynced commit are included.

Measured (medians of several runs, after a warm-up run; the children use cached bytecode
like an installed package, kept in a temporary ``PYTHONPYCACHEPREFIX``):

* ``thermo apply`` of 100,000 JSONL deltas (one text value each, 5,000 distinct keys)
  into a fresh file with the manual policy — the goal row: >= 100,000 deltas/s — and with
  the default policy, which auto-consolidates every 1,000 deltas (100 consolidations,
  each binding a Merkle root and a state digest into the log);
* the JSONL parser alone (lines/s in-process), to show what of the apply it costs;
* ``thermo get FILE KEY --raw`` on a 1 GiB file (1,228 float32 tensors of 1 MiB in the
  cold layer, compressed to ~1 GiB) and on a 1 MiB file, minus ``python -c pass`` (interpreter start-up):
  goal <= 50 ms above start-up;
* ``thermo --help`` and ``thermo --version``: goal <= 300 ms.

Prints a table and writes ``bench/results/cli.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._report import report

THERMO = str(Path(sys.executable).with_name("thermo"))
MiB = 1024 * 1024


PYCACHE = Path(tempfile.gettempdir()) / "thermo-bench-pycache"
ENV = {
    **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
    "PYTHONPYCACHEPREFIX": str(PYCACHE),
}
"""Child processes use cached bytecode, as an installed package does (kept outside the tree)."""


def run_time(args: list[str], *, repeat: int = 5, setup: Any = None) -> float:
    """Median wall time of a process after one untimed warm-up run (``setup`` before each)."""
    samples = []
    for i in range(repeat + 1):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
        if i:
            samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def write_deltas(path: Path, n: int) -> None:
    import orjson

    with open(path, "wb") as f:
        f.write(
            b"".join(
                orjson.dumps(
                    {
                        "op": "update",
                        "key": f"key/{i % 5000:05d}",
                        "value": f"value number {i}",
                        "strength": 0.8,
                        "source": "bench",
                    }
                )
                + b"\n"
                for i in range(n)
            )
        )


def bench_apply(work: Path, n: int, repeat: int) -> list[dict[str, Any]]:
    deltas = work / "deltas.jsonl"
    write_deltas(deltas, n)
    rows = []
    for policy, goal in (("manual", True), ("default", False)):
        target = work / f"apply-{policy}.thermo"

        def fresh(target: Path = target, policy: str = policy) -> None:
            subprocess.run(
                [THERMO, "init", str(target), "--policy", policy, "--force"],
                check=True,
                stderr=subprocess.DEVNULL,
                env=ENV,
            )

        secs = run_time([THERMO, "apply", str(target), str(deltas)], repeat=repeat, setup=fresh)
        rate = n / secs
        rows.append(
            {
                "metric": f"thermo apply {n:,} deltas ({policy} policy)",
                "value": rate,
                "unit": "deltas/s",
                "target": ">= 100000" if goal else "",
                "ok": (rate >= 100_000) if goal else None,
                "seconds": secs,
            }
        )
    from thermo_cli.formats import jsonl

    data = deltas.read_bytes()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        jsonl.parse_deltas([data])
        samples.append(time.perf_counter() - t0)
    rows.append(
        {
            "metric": "JSONL parse in-process",
            "value": n / statistics.median(samples),
            "unit": "lines/s",
            "target": "",
            "ok": None,
        }
    )
    return rows


def build_file(path: Path, total_bytes: int, entry_bytes: int) -> int:
    """A consolidated thermogram whose cold layer holds float32 tensors of ``entry_bytes``."""
    import numpy as np

    from thermo_cli import store
    from thermo_cli.config.clock import now_ns
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.model import Entry, Layer, TensorSpec

    rng = np.random.default_rng(1)
    tg = Thermogram(name=path.stem)
    n = max(1, total_bytes // entry_bytes)
    cold = tg.layers[Layer.COLD]
    t = now_ns()
    for i in range(n):
        arr = rng.standard_normal(entry_bytes // 4, dtype=np.float32)
        key = f"layer.{i:05d}.weight"
        cold[key] = Entry(
            key=key,
            value=arr.tobytes(),
            strength=0.9,
            updated_at_ns=t,
            update_count=60,
            tensor=TensorSpec("F32", (entry_bytes // 4,)),
        )
    tg.layers_modified = True
    if path.exists():
        path.unlink()
    store.create(path, tg)
    return n


def bench_get(work: Path, repeat: int, big_bytes: int) -> list[dict[str, Any]]:
    python_start = run_time([sys.executable, "-c", "pass"], repeat=repeat * 2)
    rows: list[dict[str, Any]] = [
        {
            "metric": "python -c pass (interpreter start-up)",
            "value": python_start * 1e3,
            "unit": "ms",
            "target": "",
            "ok": None,
        }
    ]
    small = work / "small.thermo"
    build_file(small, MiB, 64 * 1024)
    big = work / f"big-{big_bytes // MiB}.thermo"
    n_big = big_bytes * 6 // 5 // MiB  # random floats compress ~1.19x: 1.2x raw fills the file size
    if not big.exists():
        t0 = time.perf_counter()
        build_file(big, n_big * MiB, MiB)
        rows.append(
            {
                "metric": f"build {n_big} MiB of tensors into a file (library)",
                "value": time.perf_counter() - t0,
                "unit": "s",
                "target": "",
                "ok": None,
            }
        )
    costs = {}
    for label, path, key in (
        ("1 MiB", small, "layer.00007.weight"),
        ("1 GiB", big, f"layer.{n_big // 2 + 5:05d}.weight"),
    ):
        secs = run_time([THERMO, "get", str(path), key, "--raw"], repeat=repeat * 2)
        costs[label] = secs - python_start
        rows.append(
            {
                "metric": f"thermo get on {label} file ({path.stat().st_size / MiB:.0f} MiB) - start-up",
                "value": costs[label] * 1e3,
                "unit": "ms",
                "target": "<= 50" if label == "1 GiB" else "",
                "ok": (costs[label] <= 0.050) if label == "1 GiB" else None,
            }
        )
    ratio = costs["1 GiB"] / max(costs["1 MiB"], 1e-9)
    rows.append(
        {"metric": "get cost ratio 1 GiB / 1 MiB", "value": ratio, "unit": "x", "target": "", "ok": None}
    )
    return rows


def bench_startup(repeat: int) -> list[dict[str, Any]]:
    rows = []
    for args, label in (([THERMO, "--help"], "thermo --help"), ([THERMO, "--version"], "thermo --version")):
        secs = run_time(args, repeat=repeat * 2)
        rows.append(
            {"metric": label, "value": secs * 1e3, "unit": "ms", "target": "<= 300", "ok": secs <= 0.300}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 deltas, 64 MiB file, 3 runs")
    parser.add_argument("--keep", type=Path, help="Work directory to keep (reuses the 1 GiB file)")
    args = parser.parse_args()
    n, big, repeat = (10_000, 64 * MiB, 3) if args.quick else (100_000, 1024 * MiB, 5)
    work = args.keep or Path(tempfile.mkdtemp(prefix="thermo-bench-cli-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rows = bench_startup(repeat) + bench_apply(work, n, repeat) + bench_get(work, repeat, big)
        rows.append(
            {
                "metric": "cpus / load average (1 min)",
                "value": f"{os.cpu_count()} / {os.getloadavg()[0]:.2f}",
                "unit": "",
                "target": "",
                "ok": None,
            }
        )
        report("cli" if not args.quick else "cli-quick", rows)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
