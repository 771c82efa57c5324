"""Benchmark of sharded-checkpoint import with workers (issue 18).

One run, side by side: ``import_safetensors`` of a checkpoint in 8 shards (index JSON),
stored exactly and with ``--ternary``, with ``jobs=1`` (this process: one read, hashing
on a second thread), ``jobs=2`` local processes, and a 2-worker Dask ``LocalCluster``
(its start-up timed apart: the cluster is meant to exist). The workers read, hash and
pack the shards; this process then writes the one file (and reads the raw tensors again
to do so). Median of ``ROUNDS`` rounds, the engines interleaved within each round.

Run: ``python -m bench.bench_sharded``.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._report import report

SHARDS = 8
TENSORS_PER_SHARD = 2
ROUNDS = 3


def build_checkpoint(root: Path) -> tuple[Path, int]:
    """``root/ckpt``: 8 shards of two float32 1024x1024 matrices and a bias each, and the
    index JSON; returns (index path, tensor bytes)."""
    from safetensors.numpy import save_file

    d = root / "ckpt"
    d.mkdir()
    rng = np.random.default_rng(0)
    weight_map: dict[str, str] = {}
    total = 0
    for s in range(SHARDS):
        name = f"model-{s + 1:05d}-of-{SHARDS:05d}.safetensors"
        tensors = {
            f"layers.{s}.w{i}": rng.standard_normal((1024, 1024)).astype(np.float32)
            for i in range(TENSORS_PER_SHARD)
        }
        tensors[f"layers.{s}.bias"] = rng.standard_normal(1024).astype(np.float32)
        total += sum(t.nbytes for t in tensors.values())
        save_file(tensors, str(d / name))
        weight_map.update(dict.fromkeys(tensors, name))
    index = d / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))
    return index, total


def pin_random_ids() -> None:
    """Give every new file and thermogram fixed ids (as the tests do), so the files the
    engines write can be compared byte for byte: with the clock fixed too, the ids are the
    only inputs an import does not take from its arguments."""
    from thermo_cli import store
    from thermo_cli.container import layout
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.operations.safetensors import importer

    real = layout.new_prefix
    store.new_prefix = lambda file_id=None: real(bytes(16) if file_id is None else file_id)  # type: ignore[attr-defined]
    importer.Thermogram = lambda name: Thermogram(name=name, id="00000000-0000-4000-8000-000000000000")  # type: ignore[assignment,misc]


def main() -> None:
    from distributed import LocalCluster

    from thermo_cli.config.clock import fixed_clock, use_clock
    from thermo_cli.operations.safetensors import TernaryOptions, import_safetensors

    pin_random_ids()
    rows: list[dict] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-sharded-") as tmp,
        use_clock(fixed_clock(1_790_000_000 * 10**9)),
    ):
        root = Path(tmp)
        index, total = build_checkpoint(root)
        t0 = time.perf_counter()
        with LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            start = time.perf_counter() - t0
            engines = {
                "--jobs 1": {"jobs": 1},
                "--jobs 2": {"jobs": 2},
                "2-worker LocalCluster": {"dask": cluster.scheduler_address},
            }
            variants = (
                ("exact", None),
                ("--ternary", TernaryOptions()),
                ("--ternary --method optimal", TernaryOptions(method="optimal")),
            )
            for label, ternary in variants:
                times: dict[str, list[float]] = {e: [] for e in engines}
                files: dict[str, bytes] = {}
                for _ in range(ROUNDS):
                    for engine, kwargs in engines.items():
                        out = root / "out.thermo"
                        t = time.perf_counter()
                        import_safetensors([index], out, ternary=ternary, overwrite=True, **kwargs)  # type: ignore[arg-type]
                        times[engine].append(time.perf_counter() - t)
                        files[engine] = hashlib.sha256(out.read_bytes()).digest()
                        out.unlink()
                base = statistics.median(times["--jobs 1"])
                for engine in engines:
                    med = statistics.median(times[engine])
                    rows.append(
                        {
                            "metric": f"import {SHARDS} shards ({total / 2**20:.0f} MiB), {label}: {engine}",
                            "value": round(med, 3),
                            "unit": "s",
                        }
                    )
                    if engine != "--jobs 1":
                        rows.append(
                            {"metric": "  speed-up over --jobs 1", "value": round(base / med, 2), "unit": "x"}
                        )
                same = len(set(files.values())) == 1
                rows.append(
                    {"metric": f"  {label}: byte-identical files from all three", "value": same, "ok": same}
                )
        rows.append(
            {
                "metric": "LocalCluster start-up (not in the times above)",
                "value": round(start, 2),
                "unit": "s",
            }
        )
    report("sharded", rows)


if __name__ == "__main__":
    main()
