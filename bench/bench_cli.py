"""CLI benchmark: end-to-end `thermo apply`, `thermo get` on a 1 GiB file, start-up time.

Run by hand: ``python -m bench.bench_cli [--quick] [--keep DIR]``. Every figure is a real
process (``subprocess`` running the installed ``thermo`` script), so interpreter
start-up, imports, locking, parsing, hashing and the final fsynced commit are included.

Measured (medians of several runs, after a warm-up run; the children use cached bytecode
like an installed package, kept in a temporary ``PYTHONPYCACHEPREFIX``):

* ``thermo apply`` of 100,000 JSONL deltas (one text value each, 5,000 distinct keys)
  into a fresh file with the manual policy — the goal row: >= 150,000 deltas/s (issue
  #15) — and with the default policy, which auto-consolidates every 1,000 deltas (100
  consolidations, each binding a Merkle root and a state digest into the log); beside it,
  in the same run, a plain ``sqlite3`` script that inserts the same rows chaining SHA-256
  per row (the ratio says what the format's guarantees cost over that);
* the JSONL parser alone (lines/s in-process), line by line and as apply's batch road
  (``DeltaParser.plain_batch``: parse, check and encode chunks of 4,096 lines), to show
  what of the apply it costs;
* start-up, side by side: ``thermo get FILE KEY`` and ``thermo keys FILE`` on a small
  file against ``python -c pass``, run in turn (A B A B …) so a drifting machine affects
  both; the median of the per-pair differences in wall and CPU time (children's rusage) —
  goal (issue #15): ``get`` <= 50 ms above ``python -c pass``;
* ``thermo get FILE KEY --raw`` on a 1 GiB file (1,228 float32 tensors of 1 MiB in the
  cold layer, compressed to ~1 GiB) and on a 1 MiB file, minus ``python -c pass`` (interpreter start-up):
  goal <= 50 ms above start-up;
* ``thermo --help`` and ``thermo --version``: goal <= 300 ms.

Start-up depends on how the package is installed: an editable install (``pip install -e``)
adds an import finder that ``site`` loads in every start of its venv (``python -c pass``
too, so the difference hides it), which users of ``pip install .`` do not have. The
table's first row says which kind of install ran (:func:`install_kind`); measure start-up
in a venv with a plain install (``pip install .``, reinstalled after each change).

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


_WHERE = (
    "import sysconfig, thermo_cli; f = thermo_cli.__file__; "
    "print(('regular' if f.startswith(sysconfig.get_paths()['purelib']) else 'editable') + ' ' + f)"
)
"""Run as the ``thermo`` script runs (not from the source tree): which ``thermo_cli`` it loads."""


def install_kind() -> str:
    """How the measured ``thermo`` is installed: "regular" (``pip install .``, the package
    is in the venv's site-packages) or "editable" (loaded from a source tree through the
    editable finder), with the package's path."""
    out = subprocess.run(
        [sys.executable, "-c", _WHERE], capture_output=True, text=True, check=True, cwd=tempfile.gettempdir()
    )
    kind, where = out.stdout.split(maxsplit=1)
    return f"{kind} ({Path(where.strip()).parent})"


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


def paired(a: list[str], b: list[str], *, repeat: int) -> dict[str, float]:
    """Run ``a`` and ``b`` in turn ``repeat`` times (after one warm-up each); medians of the
    per-pair differences a - b and of each side, in wall and CPU seconds (the child's own
    user + system time, from ``os.wait4``)."""

    def once(args: list[str]) -> tuple[float, float]:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            raise RuntimeError(f"{args} exited {proc.returncode}")
        return wall, usage.ru_utime + usage.ru_stime

    once(a), once(b)
    rows = [(once(a), once(b)) for _ in range(repeat)]
    med = statistics.median
    return {
        "wall_a": med(x[0] for x, _ in rows),
        "wall_b": med(y[0] for _, y in rows),
        "cpu_a": med(x[1] for x, _ in rows),
        "cpu_b": med(y[1] for _, y in rows),
        "wall_diff": med(x[0] - y[0] for x, y in rows),
        "cpu_diff": med(x[1] - y[1] for x, y in rows),
    }


def bench_startup_get(work: Path, repeat: int) -> list[dict[str, Any]]:
    """``thermo get``/``keys`` on a small file against ``python -c pass``, side by side."""
    small = work / "startup.thermo"
    subprocess.run([THERMO, "init", str(small), "--force"], check=True, stderr=subprocess.DEVNULL, env=ENV)
    subprocess.run(
        [THERMO, "apply", str(small), "-"],
        input=b'{"op":"create","key":"greeting","value":"hello"}\n',
        check=True,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    python = [sys.executable, "-c", "pass"]
    rows: list[dict[str, Any]] = []
    for label, args, goal in (
        ("thermo get FILE KEY", [THERMO, "get", str(small), "greeting"], True),
        ("thermo keys FILE", [THERMO, "keys", str(small)], False),
    ):
        r = paired(args, python, repeat=repeat)
        rows.append(
            {
                "metric": f"{label} (small file) - python -c pass, wall",
                "value": r["wall_diff"] * 1e3,
                "unit": "ms",
                "target": "<= 50" if goal else "",
                "ok": (r["wall_diff"] <= 0.050) if goal else None,
                **r,
            }
        )
        rows.append(
            {
                "metric": f"{label} (small file) - python -c pass, cpu",
                "value": r["cpu_diff"] * 1e3,
                "unit": "ms",
                "target": "",
                "ok": None,
                "ratio_cpu": r["cpu_a"] / max(r["cpu_b"], 1e-9),
            }
        )
    return rows


SQLITE_CHAIN = """
import hashlib, sqlite3, sys, orjson
db = sqlite3.connect(sys.argv[2])
db.execute("create table log (i integer primary key, key text, value blob, prev blob, hash blob)")
prev = b""
rows = []
with open(sys.argv[1], "rb") as f:
    for i, line in enumerate(f):
        d = orjson.loads(line)
        value = d["value"].encode()
        h = hashlib.sha256(prev + d["key"].encode() + value).digest()
        rows.append((i, d["key"], value, prev, h))
        prev = h
db.executemany("insert into log values (?, ?, ?, ?, ?)", rows)
db.commit()
"""
"""The comparison of issue #15: a plain script that stores the rows with a SHA-256 chain."""


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
                "target": ">= 150000" if goal else "",
                "ok": (rate >= 150_000) if goal else None,
                "seconds": secs,
            }
        )
        if goal:
            db = work / "chain.sqlite"

            def fresh_db(db: Path = db) -> None:
                db.unlink(missing_ok=True)

            base = run_time(
                [sys.executable, "-c", SQLITE_CHAIN, str(deltas), str(db)], repeat=repeat, setup=fresh_db
            )
            rows.append(
                {
                    "metric": f"sqlite3 + SHA-256 chain script, {n:,} rows",
                    "value": n / base,
                    "unit": "rows/s",
                    "target": "",
                    "ok": None,
                    "seconds": base,
                }
            )
            rows.append(
                {
                    "metric": "thermo apply rate / sqlite3 chain rate",
                    "value": base / secs,
                    "unit": "x",
                    "target": "",
                    "ok": None,
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
    parser = jsonl.DeltaParser(source="thermo")
    lines = data.splitlines()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for at in range(0, len(lines), 4096):
            parser.plain_batch(lines[at : at + 4096])
        samples.append(time.perf_counter() - t0)
    rows.append(
        {
            "metric": "JSONL batch parse + encode in-process (apply's road)",
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
    parser.add_argument(
        "--only",
        default="startup,apply,get",
        help="Comma-separated parts to run: startup (help, version, get/keys start-up), apply, get",
    )
    args = parser.parse_args()
    n, big, repeat = (10_000, 64 * MiB, 3) if args.quick else (100_000, 1024 * MiB, 5)
    work = args.keep or Path(tempfile.mkdtemp(prefix="thermo-bench-cli-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        parts = set(args.only.split(","))
        rows: list[dict[str, Any]] = [
            {"metric": "install measured", "value": install_kind(), "unit": "", "target": "", "ok": None}
        ]
        if "startup" in parts:
            rows += bench_startup(repeat) + bench_startup_get(work, repeat * 4)
        if "apply" in parts:
            rows += bench_apply(work, n, repeat)
        if "get" in parts:
            rows += bench_get(work, repeat, big)
        rows.append(
            {
                "metric": "cpus / load average (1 min)",
                "value": f"{os.cpu_count()} / {os.getloadavg()[0]:.2f}",
                "unit": "",
                "target": "",
                "ok": None,
            }
        )
        name = "cli" if not args.quick else "cli-quick"
        if parts != {"startup", "apply", "get"}:
            name += "-" + "-".join(sorted(parts))
        report(name, rows)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
