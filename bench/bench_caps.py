"""Caps on what decoding produces: the cost of refusing an amplification bomb, and of the pre-scan.

``python -m bench.bench_caps``. Times ``thermo keys`` (a fresh process, as a user runs it) on
the 2 M-empty-maps vector with the default caps (refused by the pre-scan) and with
``max_cbor_items`` raised above the item count (decoded as before the cap existed), and
the pre-scan (forced, i.e. without the "shorter than the cap" shortcut) against
``cbor2.loads`` on a realistic meta block (a spiking network's state) and index block.
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
import time
from pathlib import Path

import cbor2
import numpy as np

from bench._report import report, timed
from thermo_cli.codec.cborscan import scan
from thermo_cli.container.reader import Reader

ROOT = Path(__file__).resolve().parents[1]
ATTACK = ROOT / "format" / "vectors" / "broken" / "meta_2m_empty_maps.thermo"
MULTICHUNK = ROOT / "format" / "vectors" / "multichunk.thermo"


def _cli_seconds(*args: str) -> float:
    """Wall time of one ``thermo`` process (the exit code is not checked: refusing is the point)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "thermo_cli", *args], capture_output=True, check=False)
    return time.perf_counter() - t0


def _snn_meta(neurons: int, dims: int) -> bytes:
    """A meta block shaped like the spiking network's: prototypes as base64 float32, per-neuron lists."""
    rng = np.random.default_rng(1)
    protos = base64.b64encode(rng.standard_normal((neurons, dims), dtype=np.float32).tobytes()).decode()
    snn = {
        "prototypes": protos,
        "thresholds": [float(x) for x in rng.random(neurons)],
        "spike_counts": list(range(neurons)),
        "labels": [f"n{i}" for i in range(neurons)],
    }
    meta = {"name": "bench", "id": "x", "meta": {"custom": {"tags": ["a"] * 20}}, "extras": {"snn": snn}}
    return cbor2.dumps(meta, canonical=True)


def _ratio_rows(name: str, data: bytes, repeat: int) -> list[dict[str, object]]:
    items = scan(data, max_items=len(data) + 1)
    t_scan = timed(lambda: scan(data, max_items=len(data) + 1), repeat=repeat)
    t_load = timed(lambda: cbor2.loads(data), repeat=repeat)
    return [
        {"metric": f"{name}: size / items", "value": f"{len(data)} B / {items}", "unit": ""},
        {"metric": f"{name}: pre-scan", "value": t_scan * 1e3, "unit": "ms"},
        {"metric": f"{name}: cbor2.loads", "value": t_load * 1e3, "unit": "ms"},
        {
            "metric": f"{name}: pre-scan / cbor2.loads",
            "value": t_scan / t_load,
            "unit": "x",
            "target": "paid only above max_cbor_items bytes",
        },
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    after = min(_cli_seconds("keys", str(ATTACK)) for _ in range(3))
    before = _cli_seconds("--limit", "max_cbor_items=3000000", "keys", str(ATTACK))
    baseline = min(_cli_seconds("keys", str(MULTICHUNK)) for _ in range(3))
    rows: list[dict[str, object]] = [
        {"metric": "keys, 2M-map meta, item cap raised (as before)", "value": before, "unit": "s"},
        {
            "metric": "keys, 2M-map meta, default caps (refused)",
            "value": after,
            "unit": "s",
            "target": "about a process start",
            "ok": after < baseline + 0.1,
        },
        {"metric": "keys, a valid file (process start + open)", "value": baseline, "unit": "s"},
    ]
    attack = ATTACK.read_bytes()
    bomb = b"\x9a\x00\x1e\x84\x80" + b"\xa0" * 2_000_000
    t_refuse = timed(lambda: _refuse(bomb), repeat=args.repeat)
    rows.append({"metric": "pre-scan refusing 2M empty maps (1M cap)", "value": t_refuse * 1e3, "unit": "ms"})
    rows.append({"metric": "attack file size", "value": len(attack), "unit": "B"})
    rows += _ratio_rows("meta, SNN 100x2048", _snn_meta(100, 2048), args.repeat)
    rows += _ratio_rows("meta, SNN 1000x4096", _snn_meta(1000, 4096), args.repeat)
    with Reader(MULTICHUNK) as r:
        index_raw = r.read_block(r.trailer.index, "index")
    rows += _ratio_rows("index, multichunk vector", index_raw, args.repeat)
    rows += _ratio_rows("worst case: 1M small ints", cbor2.dumps(list(range(1000, 1_001_000))), args.repeat)
    rows += _ratio_rows("worst case: 300k {k: [1]} maps", cbor2.dumps([{"k": [1]}] * 300_000), args.repeat)
    report("caps", rows)


def _refuse(data: bytes) -> None:
    try:
        scan(data, max_items=1_000_000)
    except Exception:
        return
    raise AssertionError("not refused")


if __name__ == "__main__":
    main()
