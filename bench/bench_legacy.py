"""Legacy benchmark: read, verify and migrate large Rust-crate save files.

Run by hand: ``python -m bench.bench_legacy`` (adds the ~600 MB dirty-chain file with
``--big``). Writes its own files in the crate's layout with valid legacy hashes:

* ``hot``: 1,000 hot entries, each 2,048 float32 as a bincode ``Vec<f32>`` (8-byte length
  + data = 8,200 bytes), pretty printed ≈ 103 MB — the crate loads this in 180 ms here;
* ``dirty`` (``--big``): 5,000 dirty deltas of 8,200-byte values on one chain ≈ 600 MB.

Times (median): *read* = read the file + :func:`load_legacy`; *verify* = the crate's chain
check on the loaded thermogram; *migrate* = read + load + verify + migrate event +
``store.create`` of the container. Peak memory is measured in a fresh subprocess per
operation (``ru_maxrss`` growth over the interpreter's baseline after imports), as a
multiple of the file size. Targets: read <= 0.5 s for the 1,000-entry file, peak memory
<= 3x the file size. Prints a table and writes ``bench/results/legacy.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import report, timed
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.formats.legacy import legacy_hash, load_legacy, verify_legacy
from thermo_cli.formats.legacy.writer import dump_legacy
from thermo_cli.model import Delta, DeltaType, Entry, HashScheme, Layer

T0 = 1_795_363_590_479_892_697  # 2026-11-22T16:06:30.479892697Z
FLOATS = 2048
VALUE_BYTES = 8 + 4 * FLOATS  # bincode Vec<f32>: u64 length, then the elements


def _tensor_value(rng: np.random.Generator) -> bytes:
    return np.uint64(FLOATS).astype("<u8").tobytes() + rng.standard_normal(FLOATS).astype("<f4").tobytes()


def make_hot_file(path: Path, n: int = 1000) -> int:
    rng = np.random.default_rng(1)
    tg = Thermogram(name="bench-hot")
    hot = tg.layers[Layer.HOT]
    for i in range(n):
        key = f"tensor/{i}"
        hot[key] = Entry(key, _tensor_value(rng), 0.75, T0 + i * 1_001, update_count=3)
    data = dump_legacy(tg)
    path.write_bytes(data)
    return len(data)


def make_dirty_file(path: Path, n: int = 5000) -> int:
    rng = np.random.default_rng(2)
    tg = Thermogram(name="bench-dirty")
    prev = None
    for i in range(n):
        d = Delta(
            DeltaType.UPDATE if i % 5 else DeltaType.CREATE,
            f"tensor/{i % 500}",
            _tensor_value(rng),
            0.5,
            T0 + i * 1_000_003,
            source="bench",
            prev_hash=prev,
            scheme=HashScheme.LEGACY,
        )
        d.hash = legacy_hash(d)
        prev = d.hash
        tg.records.append(d)
    tg.meta.total_deltas = n
    tg.set_extra("legacy", {"format": "thermogram-json", "version": "0.5", "head_hash": prev})
    data = dump_legacy(tg)
    path.write_bytes(data)
    return len(data)


def _read(path: Path) -> Thermogram:
    return load_legacy(path.read_bytes(), source=str(path))


def _migrate(path: Path, out: Path) -> None:
    from thermo_cli.operations.migrate import migrate_file

    migrate_file(path, out, overwrite=True)


_CHILD = """
import json, sys, time
from pathlib import Path
from bench.bench_legacy import _read, _migrate, high_water_kb
from thermo_cli.formats.legacy import verify_legacy
import thermo_cli.store, thermo_cli.operations.migrate  # imports count as baseline
op, path, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
base = high_water_kb()
t = time.perf_counter()
if op == "read":
    _read(path)
elif op == "verify":
    assert verify_legacy(_read(path)).ok
else:
    _migrate(path, out)
seconds = time.perf_counter() - t
print(json.dumps({"baseline_kb": base, "peak_kb": high_water_kb(), "seconds": seconds}))
"""


def high_water_kb() -> int:
    """Peak resident memory of this process in KiB.

    ``VmHWM`` from /proc on Linux: unlike ``ru_maxrss``, it starts afresh at ``exec``
    (``ru_maxrss`` keeps the parent's peak across fork + exec, which hides the child's).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_memory(op: str, path: Path, out: Path) -> dict[str, Any]:
    """Run one operation in a fresh interpreter; its peak RSS growth over the baseline."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, op, str(path), str(out)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _time_verify(path: Path, repeat: int) -> float:
    loaded = _read(path)
    assert verify_legacy(loaded).ok
    return timed(lambda: verify_legacy(loaded), repeat=repeat, warmup=0)


def bench_file(
    label: str, path: Path, size: int, *, repeat: int, read_target: float | None, workdir: Path
) -> list[dict[str, Any]]:
    mb = size / 1e6
    out = workdir / f"{label}-migrated.thermo"
    rows: list[dict[str, Any]] = [{"metric": f"{label}: file size", "value": mb, "unit": "MB"}]
    read_s = timed(lambda: _read(path), repeat=repeat, warmup=1)
    verify_s = _time_verify(path, repeat)
    migrate_s = timed(lambda: _migrate(path, out), repeat=repeat, warmup=0)
    rows += [
        {
            "metric": f"{label}: read (file + load_legacy)",
            "value": read_s,
            "unit": "s",
            "target": f"<= {read_target}" if read_target else "",
            "ok": read_s <= read_target if read_target else None,
        },
        {"metric": f"{label}: read throughput", "value": mb / read_s, "unit": "MB/s"},
        {"metric": f"{label}: verify (crate chain check)", "value": verify_s, "unit": "s"},
        {"metric": f"{label}: migrate (read + verify + store.create)", "value": migrate_s, "unit": "s"},
        {"metric": f"{label}: container size", "value": out.stat().st_size / 1e6, "unit": "MB"},
    ]
    for op in ("read", "migrate"):
        m = peak_memory(op, path, out)
        growth = (m["peak_kb"] - m["baseline_kb"]) * 1024
        rows.append(
            {
                "metric": f"{label}: peak memory of {op} / file size",
                "value": growth / size,
                "unit": "x",
                "target": "<= 3",
                "ok": growth / size <= 3,
            }
        )
        rows.append(
            {
                "metric": f"{label}: peak RSS of {op} (incl. interpreter)",
                "value": m["peak_kb"] / 1024,
                "unit": "MiB",
            }
        )
    out.unlink(missing_ok=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", action="store_true", help="also the 5,000-delta (~600 MB) dirty-chain file")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per operation (median)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the generated files")
    args = parser.parse_args(argv)
    workdir = Path(args.dir or tempfile.mkdtemp(prefix="thermo-bench-legacy-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    try:
        hot = workdir / "hot1000.thermo"
        t = time.perf_counter()
        size = make_hot_file(hot)
        rows.append({"metric": "hot: generate (dump_legacy)", "value": time.perf_counter() - t, "unit": "s"})
        rows += bench_file("hot", hot, size, repeat=args.repeat, read_target=0.5, workdir=workdir)
        hot.unlink()
        if args.big:
            dirty = workdir / "dirty5000.thermo"
            t = time.perf_counter()
            size = make_dirty_file(dirty)
            rows.append(
                {"metric": "dirty: generate (dump_legacy)", "value": time.perf_counter() - t, "unit": "s"}
            )
            rows += bench_file("dirty", dirty, size, repeat=1, read_target=None, workdir=workdir)
            dirty.unlink()
    finally:
        if args.dir is None:
            for p in workdir.iterdir():
                p.unlink()
            workdir.rmdir()
    report("legacy", rows)


if __name__ == "__main__":
    main()
