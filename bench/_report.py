"""Shared output for benchmarks: a rich table on stdout and a JSON file of the same rows.

Benchmarks are run by hand (``python -m bench.<name>``); targets are compared here, never
asserted in unit tests.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


def timed(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def report(name: str, rows: list[dict[str, Any]]) -> Path:
    """Print ``rows`` (metric, value, unit, target, ok) as a table and write them as JSON."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"bench: {name}")
    for col in ("metric", "value", "unit", "target", "ok"):
        table.add_column(col)
    for r in rows:
        ok = r.get("ok")
        table.add_row(
            str(r["metric"]),
            f"{r['value']:.4g}" if isinstance(r["value"], float) else str(r["value"]),
            str(r.get("unit", "")),
            str(r.get("target", "")),
            "" if ok is None else ("yes" if ok else "NO"),
        )
    Console().print(table)
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{name}.json"
    doc = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "rows": rows,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return out
