"""Ternary benchmark: quantize+pack and unpack throughput, layer forward, reconstruction quality.

Run by hand: ``python -m bench.bench_ternary [--quick] [--cli-mb 256]``. Prints a table
and writes ``bench/results/bench_ternary.json``. Throughput is GB/s of float32 data (input
for quantize+pack, output for unpack); targets from issue 6: quantize+pack >= 4 GB/s,
unpack >= 5 GB/s on 16 M values on one core (the library rows run with one thread) "where
memory bandwidth allows"; the Rust crate did pack + unpack at 1.29 GB/s. What memory allows
is measured beside them on arrays of the same size: a copy and a write-only fill into an
existing array, a read-only scan, and a copy and a fill into a new array, whose pages the
kernel must map and zero first (unpack returns a new array, as numpy's own ``copy`` does).

Issue 17 (and 15): the command line end to end. ``thermo ternary pack W.npy W.thermo`` and
``thermo ternary unpack W.thermo OUT.npy`` of a 256 MB .npy, each against numpy's own
``np.save(out, np.load(W.npy))`` of the same file, run as a command the same way, side by
side and interleaved in one run (medians): target <= 2x. An exported file is written
atomically but, like numpy's, not fsynced unless asked (``--sync``); ``unpack --sync`` is
timed against numpy with an fsync. The commands run with their bytecode
cached, as installed packages have it (``PYTHONDONTWRITEBYTECODE`` in the environment would make
every thermo run compile its modules while numpy's come precompiled), after an untimed warm-up.
CPU time (user + system) is shown beside the wall time: on a shared machine it moves less.
``--baseline DIR`` times another source tree's pack/unpack in the same runs (before/after).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._report import report, timed

N = 1 << 24  # 16 M float32 values = 64 MiB
CRATE_PACK_UNPACK_GBS = 1.29


def weight_like(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Weight-like data: Student-t (4 dof) tails, per-row spread, a few outlier columns."""
    rng = np.random.default_rng(seed)
    w = rng.standard_t(4, shape).astype(np.float32)
    w *= np.float32(0.02)
    w *= rng.lognormal(0.0, 0.3, (shape[0], 1)).astype(np.float32)
    w[:, rng.choice(shape[1], max(1, shape[1] // 200), replace=False)] *= np.float32(8)
    return w


def gbs(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e9


NUMPY_COPY = "import numpy as np, sys; np.save(sys.argv[2], np.load(sys.argv[1]))"
NUMPY_COPY_FSYNC = (
    "import numpy as np, os, sys\n"
    "a = np.load(sys.argv[1])\n"
    "with open(sys.argv[2], 'wb') as f:\n"
    "    np.save(f, a); f.flush(); os.fsync(f.fileno())"
)


def _command_seconds(argv: list[str], clean: list[Path], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of user + system time) of one run of ``argv``."""
    for p in clean:
        p.unlink(missing_ok=True)
    os.sync()  # earlier runs' dirty pages are not this run's to flush
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def _command_env(cache: Path) -> dict[str, str]:
    """The environment of the timed commands: bytecode written to and read from ``cache``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


THERMO_FROM_SOURCE = "import sys; sys.argv[0] = 'thermo'; from thermo_cli.cli import main; main()"


def cli_rows(mb: int, repeat: int, baseline: Path | None = None) -> list[dict]:
    """End-to-end command times of pack/unpack against numpy load+save (see the docstring).

    ``baseline``: a source tree of another thermo version (``git archive REV | tar -x -C DIR``)
    whose pack/unpack are timed in the same interleaved runs, for before/after ratios."""
    thermo = str(Path(sys.executable).with_name("thermo"))
    py = sys.executable
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-ternary-", dir=os.environ.get("BENCH_TMP")) as d:
        src, packed, out, copy = (Path(d) / n for n in ("w.npy", "w.thermo", "back.npy", "copy.npy"))
        n_rows = 4096
        w = weight_like((n_rows, mb * (1 << 20) // 4 // n_rows))
        np.save(src, w)
        del w
        env = _command_env(Path(d) / "pycache")
        commands = {
            "numpy": ([py, "-c", NUMPY_COPY, str(src), str(copy)], [copy], env),
            "numpy+fsync": ([py, "-c", NUMPY_COPY_FSYNC, str(src), str(copy)], [copy], env),
            "pack": ([thermo, "ternary", "pack", str(src), str(packed)], [packed], env),
            "unpack": ([thermo, "ternary", "unpack", str(packed), str(out)], [out], env),
            "unpack --sync": ([thermo, "ternary", "unpack", "--sync", str(packed), str(out)], [out], env),
        }
        if baseline is not None:
            old = [py, "-c", THERMO_FROM_SOURCE, "ternary"]
            base_env = {**env, "PYTHONPATH": str(baseline.resolve())}
            commands["pack (baseline)"] = ([*old, "pack", str(src), str(packed)], [packed], base_env)
            commands["unpack (baseline)"] = ([*old, "unpack", str(packed), str(out)], [out], base_env)
        for argv, clean, e in commands.values():  # warm-up: bytecode and page cache
            _command_seconds(argv, clean, e)
        runs: dict[str, list[tuple[float, float]]] = {k: [] for k in commands}
        for _ in range(repeat):
            for k, (argv, clean, e) in commands.items():
                runs[k].append(_command_seconds(argv, clean, e))
        med = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
        cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
        size = src.stat().st_size
    label = f"{size / 1e6:.0f} MB .npy"
    rows.append(
        {"metric": f"numpy load+save of a {label} (command)", "value": med["numpy"] * 1e3, "unit": "ms"}
    )
    rows.append(
        {"metric": "numpy load+save: CPU time (user + system)", "value": cpu["numpy"] * 1e3, "unit": "ms"}
    )
    rows.append(
        {
            "metric": f"numpy load+save+fsync of a {label} (command)",
            "value": med["numpy+fsync"] * 1e3,
            "unit": "ms",
        }
    )
    actions = ("pack", "unpack", "unpack --sync", "pack (baseline)", "unpack (baseline)")
    for action in [k for k in actions if k in med]:
        ratio = med[action] / med["numpy"]
        rows.append(
            {
                "metric": f"thermo ternary {action} of a {label} (CLI, end to end)",
                "value": med[action] * 1e3,
                "unit": "ms",
            }
        )
        rows.append(
            {
                "metric": f"ternary {action} / numpy load+save",
                "value": ratio,
                "unit": "x",
                "target": "" if "baseline" in action or "sync" in action else "<= 2",
                "ok": None if "baseline" in action or "sync" in action else ratio <= 2.0,
            }
        )
        rows.append(
            {
                "metric": f"ternary {action} / numpy load+save+fsync",
                "value": med[action] / med["numpy+fsync"],
                "unit": "x",
            }
        )
        rows.append(
            {
                "metric": f"ternary {action} / numpy load+save, CPU time (less sensitive to other load)",
                "value": cpu[action] / cpu["numpy"],
                "unit": "x",
            }
        )
    return rows


def cpu_seconds(fn: object, repeat: int) -> float:
    """Median CPU time (user + system) of ``fn()``: on a machine shared with other jobs it
    moves less than wall time, since waiting for a core is not counted."""
    assert callable(fn)
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        samples.append(time.process_time() - t0)
    return statistics.median(samples)


def cpu_rows(w: np.ndarray, repeat: int) -> list[dict]:
    """The one-core targets and the memory reference points side by side, in CPU time."""
    from thermo_cli.codec.ternary.quantize import quantize

    dst = np.empty_like(w)
    q_tensor, q_row = quantize(w, per_row=False), quantize(w)
    cases = {
        "memcpy into an existing array": lambda: np.copyto(dst, w),
        "copy into a new array (w.copy())": lambda: w.copy(),
        "fill a new array": lambda: np.empty_like(w).fill(np.float32(1)),
        "quantize+pack, absmean per row (the default)": lambda: quantize(w),
        "unpack to f32, per-tensor scale": q_tensor.dequantize,
        "unpack to f32, per-row scale": q_row.dequantize,
        "unpack to f32 into an existing array, per-tensor scale": lambda: q_tensor.dequantize(out=dst),
        "unpack to f32 into an existing array, per-row scale": lambda: q_row.dequantize(out=dst),
    }
    return [
        {"metric": f"CPU time: {label}", "value": gbs(w.nbytes, cpu_seconds(fn, repeat)), "unit": "GB/s"}
        for label, fn in cases.items()
    ]


def memory_rows(w: np.ndarray, repeat: int) -> list[dict]:
    """What memory allows on this machine, for arrays the size of ``w`` (see the docstring)."""
    dst = np.empty_like(w)
    one = np.float32(1)
    cases = {
        "memcpy 64 MiB into an existing array (read + write)": lambda: np.copyto(dst, w),
        "fill 64 MiB of an existing array (write only)": lambda: dst.fill(one),
        "scan 64 MiB (read only: max)": lambda: w.max(),
        "copy 64 MiB into a new array (numpy's w.copy())": lambda: w.copy(),
        "fill a new 64 MiB array (np.empty + fill)": lambda: np.empty_like(w).fill(one),
    }
    return [
        {
            "metric": f"{label} (reference point)",
            "value": gbs(w.nbytes, timed(fn, repeat=repeat)),
            "unit": "GB/s",
        }
        for label, fn in cases.items()
    ]


def main(argv: list[str] | None = None) -> int:
    from thermo_cli.codec.ternary import parallel
    from thermo_cli.codec.ternary.layer import TernaryLayer
    from thermo_cli.codec.ternary.quantize import quantize, reconstruction_quality

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer repeats (for a smoke run)")
    ap.add_argument("--cli-mb", type=int, default=256, help="size of the .npy for the CLI rows (0: skip)")
    ap.add_argument("--cli-only", action="store_true", help="only the CLI pack/unpack rows")
    ap.add_argument(
        "--baseline", type=Path, help="source tree of an earlier thermo to time side by side (CLI rows)"
    )
    args = ap.parse_args(argv)
    repeat = 3 if args.quick else 9
    if args.cli_only:
        report("bench_ternary_cli", cli_rows(args.cli_mb, 3 if args.quick else 5, args.baseline))
        return 0

    parallel.THREADS = 1  # the library targets are per core
    w = weight_like((4096, N // 4096))
    nbytes = w.nbytes
    rows: list[dict] = memory_rows(w, repeat) + cpu_rows(w, repeat)

    cases = [
        ("reference", False, None),
        ("absmean", False, None),
        ("reference", True, None),
        ("absmean", True, None),
        ("twn", True, None),
        ("optimal", True, None),
        ("reference", False, 0.05),
    ]
    pack_times: dict[str, float] = {}
    for method, per_row, threshold in cases:
        label = f"{method}{', per-row' if per_row else ''}{f', threshold {threshold}' if threshold else ''}"
        t = timed(
            lambda m=method, p=per_row, th=threshold: quantize(w, m, per_row=p, threshold=th), repeat=repeat
        )
        pack_times[label] = t
        rate = gbs(nbytes, t)
        costly = method == "optimal"  # a sort per row: no throughput target
        rows.append(
            {
                "metric": f"quantize+pack 16M f32 ({label})",
                "value": rate,
                "unit": "GB/s",
                "target": "" if costly else ">= 4",
                "ok": None if costly else rate >= 4.0,
            }
        )

    deq = quantize(w, "reference").dequantize()
    t = timed(lambda: reconstruction_quality(w, deq), repeat=repeat)
    rate = gbs(nbytes, t)
    rows.append(
        {
            "metric": "reconstruction quality 16M f32 (float64 sums, no BLAS threads)",
            "value": rate,
            "unit": "GB/s",
            "target": ">= 0.5",
            "ok": rate >= 0.5,
        }
    )
    qa = quantize(w)
    t = timed(lambda: qa.quality(w), repeat=repeat)
    rows.append(
        {
            "metric": "quality from per-row sums 16M f32 (QuantizedTensor.quality)",
            "value": gbs(nbytes, t),
            "unit": "GB/s",
        }
    )

    reused = np.empty_like(w)
    for per_row in (False, True):
        q = quantize(w, "absmean", per_row=per_row)
        t = timed(q.dequantize, repeat=repeat)
        t_into = timed(lambda q=q: q.dequantize(out=reused), repeat=repeat)
        scale = "per-row" if per_row else "per-tensor"
        for label, seconds in (
            (f"unpack to f32 16M ({scale} scale, new array)", t),
            (f"unpack to f32 16M ({scale} scale, into an existing array: out=)", t_into),
        ):
            rate = gbs(nbytes, seconds)
            rows.append({"metric": label, "value": rate, "unit": "GB/s", "target": ">= 5", "ok": rate >= 5.0})
        if not per_row:
            t_unpack = t
    t_pack = pack_times["reference"]
    both = gbs(nbytes, t_pack + t_unpack)
    rows.append(
        {
            "metric": "pack + unpack 16M (reference method), vs crate 1.29 GB/s",
            "value": both,
            "unit": "GB/s",
            "target": f"> {CRATE_PACK_UNPACK_GBS}",
            "ok": both > CRATE_PACK_UNPACK_GBS,
        }
    )
    rows.append(
        {
            "metric": "speed-up over the crate (pack + unpack)",
            "value": both / CRATE_PACK_UNPACK_GBS,
            "unit": "x",
        }
    )

    lw = weight_like((4096, 4096), 1)
    x = np.random.default_rng(2).standard_normal((32, 4096)).astype(np.float32)
    layer = TernaryLayer.from_float(lw, method="reference")
    t_build = timed(lambda: TernaryLayer.from_float(lw, method="reference"), repeat=max(3, repeat // 3))
    layer.forward(x)  # unpack once into the cached -1/0/+1 matrix
    t_fwd = timed(lambda: layer.forward(x), repeat=repeat)
    t_cold = timed(lambda: layer.forward(x, cache=False), repeat=max(3, repeat // 3))
    flops = 2 * 32 * 4096 * 4096
    rows.append(
        {
            "metric": "TernaryLayer 4096x4096 from float (per-row reference)",
            "value": t_build * 1e3,
            "unit": "ms",
        }
    )
    rows.append({"metric": "forward 4096x4096, batch 32 (cached matrix)", "value": t_fwd * 1e3, "unit": "ms"})
    rows.append(
        {"metric": "forward throughput (cached matrix)", "value": flops / t_fwd / 1e9, "unit": "GFLOP/s"}
    )
    rows.append(
        {"metric": "forward 4096x4096, batch 32 (unpack each call)", "value": t_cold * 1e3, "unit": "ms"}
    )
    rows.append(
        {
            "metric": "layer memory: packed + scales vs float32",
            "value": layer.compression_ratio(),
            "unit": "x smaller",
        }
    )

    sample = weight_like((1024, 1024), 3)
    for method in ("reference", "absmean", "twn", "optimal"):
        for per_row in (False, True):
            q = quantize(sample, method, per_row=per_row).quality(sample)
            tag = f"{method}{', per-row' if per_row else ''}"
            rows.append({"metric": f"quality {tag}: relative L2 error", "value": q.rel_l2, "unit": ""})
            rows.append({"metric": f"quality {tag}: cosine similarity", "value": q.cosine, "unit": ""})
    if args.cli_mb:
        rows += cli_rows(args.cli_mb, 3 if args.quick else 5, args.baseline)
    report("bench_ternary", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
