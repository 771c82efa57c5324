"""Soak benchmark: 1,000,000 deltas appended in batches of 1,000, then consolidated and verified.

Run by hand: ``python -m bench.bench_soak [--deltas N] [--batch B] [--quick] [--keep DIR]``.

Through the library, the way a long-running service uses it: one thermogram kept in
memory (manual consolidation policy, so the whole million stays uncommitted-to-layers
until the end), ``apply_many`` of a batch of 1,000 update deltas (50,000 distinct keys,
~70-byte text values), then ``store.commit`` — an O(delta) append with its fsyncs. The
cycle collector is off during the appends, as in ``thermo apply`` (it would only walk the
million live records again and again). At
100k, 250k, 500k and 1M records the file size and the time of a full ``thermo verify``
(every record hash and link, segment digests, Merkle root) are measured; both must grow
linearly, so the table reports bytes per record and microseconds per record at each size
and the ratio of the per-record cost at the largest size to the smallest (1.0 = exactly
linear). The time of one batch commit must not grow with the file (first vs last 50
batches). Then one consolidation (a rewrite folding the million deltas into the hot
layer), a verify of the consolidated file, and a single-key read.

Prints a table and writes ``bench/results/soak.json``.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._report import report


def _batch(start: int, n: int, keys: int, t0: int) -> list[Any]:
    from thermo_cli.model import Delta, DeltaType

    pad = b"value %d of the soak benchmark, padded to ~70 bytes"
    return [
        Delta(DeltaType.UPDATE, f"soak/{i % keys:06d}", pad % i, 0.5 + (i % 50) / 100, t0 + i * 1000, "soak")
        for i in range(start, start + n)
    ]


_VERIFY = """
import sys, time
from thermo_cli.operations.audit.verify import verify_file
t0 = time.perf_counter()
rep = verify_file(sys.argv[1])
print(time.perf_counter() - t0, int(rep.ok), rep.records)
"""


def _verify_seconds(path: Path, repeat: int = 3) -> tuple[float, bool, int]:
    """Best of ``repeat`` timings of a full ``thermo verify`` (the audit verifier the CLI runs).

    Each run is a fresh process, as the CLI is: verifying inside this process would also
    time the garbage collector walking the million live records the benchmark holds. The
    best run, not the median, because this machine is shared and only slowed down by others.
    """
    samples, ok, records = [], True, 0
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _VERIFY, str(path)], capture_output=True, text=True, check=True
        )
        seconds, good, records_text = out.stdout.split()
        samples.append(float(seconds))
        ok, records = ok and good == "1", int(records_text)
    return min(samples), ok, records


def _fit(points: list[tuple[int, float]]) -> tuple[float, float, float]:
    """Least-squares line y = a + b·n through the points: (a, b, R²)."""
    import numpy as np

    n = np.array([p[0] for p in points], dtype=float)
    y = np.array([p[1] for p in points], dtype=float)
    b, a = np.polyfit(n, y, 1)
    resid = y - (a + b * n)
    total = float(((y - y.mean()) ** 2).sum()) or 1.0
    return float(a), float(b), 1.0 - float((resid**2).sum()) / total


def run(total: int, batch: int, checkpoints: list[int], workdir: Path) -> list[dict[str, Any]]:
    from thermo_cli import store
    from thermo_cli.config.engine import ConsolidationPolicy
    from thermo_cli.engine.thermogram import Thermogram

    path = workdir / "soak.thermo"
    store.create(path, Thermogram(name="soak", policy=ConsolidationPolicy.preset("manual")))
    tg = store.load(path)
    keys = 50_000
    t_start = 1_767_225_600_000_000_000
    rows: list[dict[str, Any]] = []
    commit_times: list[float] = []
    apply_times: list[float] = []
    sizes: list[tuple[int, int, float]] = []
    wall0 = time.perf_counter()
    done = 0
    gc.disable()  # as `thermo apply` does: the cycle collector would only re-walk the live log
    while done < total:
        n = min(batch, total - done)
        deltas = _batch(done, n, keys, t_start)
        t0 = time.perf_counter()
        tg.apply_many(deltas)
        t1 = time.perf_counter()
        assert store.commit(path, tg) == "append"
        t2 = time.perf_counter()
        apply_times.append(t1 - t0)
        commit_times.append(t2 - t1)
        done += n
        if done in checkpoints:
            size = path.stat().st_size
            seconds, ok, records = _verify_seconds(path)
            assert ok and records == done, (ok, records, done)
            sizes.append((done, size, seconds))
            print(
                f"  {done:>9,} records: {size / 1e6:8.1f} MB, verify {seconds:6.2f} s "
                f"({time.perf_counter() - wall0:.0f} s elapsed)",
                flush=True,
            )
    gc.enable()
    append_wall = sum(apply_times) + sum(commit_times)

    for n, size, seconds in sizes:
        k = f"{n // 1000:,}k"
        rows.append({"metric": f"file size @{k}", "value": round(size / 1e6, 2), "unit": "MB"})
        rows.append({"metric": f"  bytes/record @{k}", "value": round(size / n, 1), "unit": "B"})
        rows.append({"metric": f"verify @{k}", "value": round(seconds, 3), "unit": "s"})
        rows.append({"metric": f"  µs/record @{k}", "value": round(seconds / n * 1e6, 2), "unit": "µs"})
    _, size_slope, size_r2 = _fit([(n, size) for n, size, _ in sizes])
    verify_a, verify_slope, verify_r2 = _fit([(n, sec) for n, _, sec in sizes])
    rows.append({"metric": "file size: linear fit slope", "value": round(size_slope, 1), "unit": "B/record"})
    rows.append(
        {
            "metric": "file size: linear fit R²",
            "value": round(size_r2, 5),
            "unit": "",
            "target": ">= 0.99",
            "ok": size_r2 >= 0.99,
        }
    )
    rows.append(
        {"metric": "verify: linear fit slope", "value": round(verify_slope * 1e6, 2), "unit": "µs/record"}
    )
    rows.append({"metric": "verify: linear fit intercept", "value": round(verify_a, 3), "unit": "s"})
    rows.append(
        {
            "metric": "verify: linear fit R²",
            "value": round(verify_r2, 4),
            "unit": "",
            "target": ">= 0.98",
            "ok": verify_r2 >= 0.98,
        }
    )
    (na, _, va), (nb, _, vb) = sizes[0], sizes[1]
    (nc, _, vc), (nd, _, vd) = sizes[-2], sizes[-1]
    marginal = ((vd - vc) / (nd - nc)) / max((vb - va) / (nb - na), 1e-12)
    rows.append(
        {
            "metric": "verify: marginal cost, last vs first step",
            "value": round(marginal, 3),
            "unit": "x",
            "target": "0.5-2 (linear)",
            "ok": 0.5 <= marginal <= 2,
        }
    )
    head = statistics.median(commit_times[:50])
    tail = statistics.median(commit_times[-50:])
    rows.append({"metric": "commit of a batch, first 50", "value": round(head * 1e3, 2), "unit": "ms"})
    rows.append(
        {
            "metric": "commit of a batch, last 50",
            "value": round(tail * 1e3, 2),
            "unit": "ms",
            "target": "<= 2x first",
            "ok": tail <= 2 * head,
        }
    )
    rows.append(
        {
            "metric": "apply_many of a batch (median)",
            "value": round(statistics.median(apply_times) * 1e3, 2),
            "unit": "ms",
        }
    )
    rows.append({"metric": "append throughput", "value": round(total / append_wall), "unit": "deltas/s"})

    t0 = time.perf_counter()
    result = tg.consolidate()
    t1 = time.perf_counter()
    assert store.commit(path, tg) == "rewrite"
    t2 = time.perf_counter()
    rows.append({"metric": "consolidate (engine)", "value": round(t1 - t0, 2), "unit": "s"})
    rows.append({"metric": "  commit (rewrite)", "value": round(t2 - t1, 2), "unit": "s"})
    rows.append({"metric": "  entries after", "value": result.entries_after, "unit": ""})
    size = path.stat().st_size
    rows.append({"metric": "file size consolidated", "value": round(size / 1e6, 2), "unit": "MB"})
    seconds, ok, records = _verify_seconds(path, repeat=1)
    rows.append(
        {
            "metric": f"verify consolidated ({records:,} rec.)",
            "value": round(seconds, 3),
            "unit": "s",
            "target": "intact",
            "ok": ok,
        }
    )
    t0 = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).with_name("thermo")), "verify", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows.append(
        {
            "metric": "`thermo verify` wall, consolidated",
            "value": round(time.perf_counter() - t0, 3),
            "unit": "s",
        }
    )
    t0 = time.perf_counter()
    got = store.read(path, "soak/000123")
    rows.append(
        {
            "metric": "read one key, consolidated",
            "value": round((time.perf_counter() - t0) * 1e3, 2),
            "unit": "ms",
        }
    )
    assert got is not None
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100,000 deltas (checkpoints 10k … 100k)")
    parser.add_argument("--keep", type=Path, help="keep the file in this directory")
    args = parser.parse_args(argv)
    total = 100_000 if args.quick else args.deltas
    checkpoints = [total // 10, total // 4, total // 2, total]
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="thermo-soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        rows = run(total, args.batch, checkpoints, workdir)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report("soak-quick" if args.quick else "soak", rows)
    return 0 if all(r.get("ok", True) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
