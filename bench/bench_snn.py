"""Benchmark of the embedded spiking network: tick time, batch throughput, learning quality.

Run by hand: ``python -m bench.bench_snn`` (``--quick`` for a short run). Prints a table
and writes ``bench/results/bench_snn.json``.

* Per-tick time of :meth:`EmbeddedSNN.process` at 100 neurons x 2048 inputs (the Rust
  crate: 151 us published, 113 us measured; goal <= 40 us), and at 10 and 1,000 neurons,
  in the steady state (prototypes learned, the network spiking every tick), with BLAS
  limited to one thread around the loop (the small matrix-vector product per tick is
  slower threaded) and, for 100 neurons, with the default threads too.
* The cosine floor: the one matrix-vector product of unit prototypes with a unit input.
* Batched throughput: :meth:`EmbeddedSNN.process_batch` on 10,000 activations.
* The quality check of prototype learning (8 clusters in 2048-D, noise norm 0.3, 4,000
  samples, then a 30-degree drift and 4,000 more), and the crate's frozen prototypes.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from typing import Any

import numpy as np

from bench._report import report
from thermo_cli.snn import EmbeddedSNN, SNNConfig
from thermo_cli.snn.synthetic import alignment, cluster_samples, drift, random_centres

DIM = 2048
CRATE_PUBLISHED_US = 151.0
CRATE_MEASURED_US = 113.0
GOAL_US = 40.0


def one_blas_thread() -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def stream(seed: int, n: int, k: int = 8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    samples, _ = cluster_samples(rng, random_centres(rng, k, DIM), n, 0.3)
    return samples


def tick_us(neurons: int, samples: np.ndarray, *, warm: int, repeat: int, limit: bool) -> float:
    """Median microseconds per process() call over ``repeat`` blocks, after ``warm`` ticks."""
    net = EmbeddedSNN(SNNConfig(num_neurons=neurons, top_k=min(10, neurons)), seed=1)
    net.process_batch(samples[:warm])
    block = samples[warm:]
    per_block = len(block) // repeat
    times = []
    with one_blas_thread() if limit else contextlib.nullcontext():
        for r in range(repeat):
            rows = block[r * per_block : (r + 1) * per_block]
            t0 = time.perf_counter()
            for x in rows:
                net.process(x)
            times.append((time.perf_counter() - t0) / len(rows))
    return statistics.median(times) * 1e6


def cosine_floor_us(neurons: int) -> float:
    rng = np.random.default_rng(0)
    p = rng.standard_normal((neurons, DIM)).astype(np.float32)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    x = rng.standard_normal(DIM).astype(np.float32)
    x /= np.linalg.norm(x)
    times = []
    with one_blas_thread():
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(2000):
                p @ x
            times.append((time.perf_counter() - t0) / 2000)
    return statistics.median(times) * 1e6


def batch_rate(samples: np.ndarray, *, ternary: bool = False, learn: bool = True) -> float:
    """Activations per second through process_batch on a fresh 100-neuron network."""
    net = EmbeddedSNN(SNNConfig(use_ternary=ternary, learn_prototypes=learn), seed=1)
    t0 = time.perf_counter()
    net.process_batch(samples)
    return len(samples) / (time.perf_counter() - t0)


def quality(seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    centres = random_centres(rng, 8, DIM)
    first, _ = cluster_samples(rng, centres, 4000, 0.3)
    moved = drift(rng, centres, 30.0)
    second, _ = cluster_samples(rng, moved, 4000, 0.3)
    out: dict[str, float] = {}
    for name, learn in (("learning", True), ("frozen", False)):
        net = EmbeddedSNN(SNNConfig(learn_prototypes=learn), seed=seed)
        fractions = []
        for samples, target in ((first, centres), (second, moved)):
            net.process_batch(samples[:-1000])
            before = net.counters["ticks_with_spikes"]
            net.process_batch(samples[-1000:])
            fractions.append((net.counters["ticks_with_spikes"] - before) / 1000)
            a = alignment(net.prototypes, target)
            phase = "drifted" if target is moved else "initial"
            out[f"{name} {phase} worst best-cosine"] = a.worst
            out[f"{name} {phase} best cosine (max)"] = max(a.cosines)
            out[f"{name} {phase} distinct best neurons"] = float(len(set(a.neurons)))
            out[f"{name} {phase} spiking ticks (last 1000)"] = fractions[-1]
        out[f"{name} recruits"] = float(net.counters["recruits"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer ticks (a rough figure)")
    args = parser.parse_args()
    warm, timed, repeat = (1000, 1000, 3) if args.quick else (2000, 5000, 5)
    samples = stream(7, warm + timed)
    rows: list[dict[str, Any]] = []

    t100 = tick_us(100, samples, warm=warm, repeat=repeat, limit=True)
    rows.append({"metric": "tick, 100 neurons x 2048", "value": t100, "unit": "us",
                 "target": f"<= {GOAL_US:g} (crate {CRATE_PUBLISHED_US:g} published, "
                           f"{CRATE_MEASURED_US:g} measured)", "ok": t100 <= GOAL_US})
    rows.append({"metric": "speed-up vs crate (measured 113 us)", "value": CRATE_MEASURED_US / t100,
                 "unit": "x", "target": "", "ok": None})
    threaded = tick_us(100, samples, warm=warm, repeat=repeat, limit=False)
    rows.append({"metric": "tick, 100 neurons, default BLAS threads", "value": threaded, "unit": "us",
                 "target": "", "ok": None})
    rows.append({"metric": "cosine floor, 100 x 2048 matvec", "value": cosine_floor_us(100),
                 "unit": "us", "target": "~11", "ok": None})
    for neurons in (10, 1000):
        rows.append({"metric": f"tick, {neurons} neurons x 2048",
                     "value": tick_us(neurons, samples, warm=warm, repeat=repeat, limit=True),
                     "unit": "us", "target": "", "ok": None})

    batch = stream(8, 2000 if args.quick else 10_000)
    rate = batch_rate(batch)
    rows.append({"metric": f"batch throughput, {len(batch)} activations (learning)", "value": rate,
                 "unit": "activations/s", "target": f"> {1e6 / GOAL_US:,.0f} (goal tick)",
                 "ok": rate > 1e6 / GOAL_US})
    rows.append({"metric": "batch per activation (learning)", "value": 1e6 / rate, "unit": "us",
                 "target": "", "ok": None})
    rows.append({"metric": "batch throughput (frozen prototypes)",
                 "value": batch_rate(batch, learn=False), "unit": "activations/s", "target": "",
                 "ok": None})
    rows.append({"metric": "batch throughput (ternary, learning)",
                 "value": batch_rate(batch, ternary=True), "unit": "activations/s", "target": "",
                 "ok": None})

    q = quality(20240611)
    for name, value in q.items():
        target, ok = "", None
        if name.startswith("learning") and "worst" in name:
            target, ok = ">= 0.9", value >= 0.9
        elif name.startswith("learning") and "spiking" in name:
            target, ok = ">= 0.9", value >= 0.9
        elif name.startswith("learning") and "distinct" in name:
            target, ok = "8", value == 8
        elif name.startswith("frozen") and "max" in name:
            target = "~0.1 (near chance)"
        elif name.startswith("frozen") and "spiking" in name:
            target = "0 (nothing spikes)"
        rows.append({"metric": f"quality: {name}", "value": value, "unit": "", "target": target,
                     "ok": ok})
    report("bench_snn", rows)


if __name__ == "__main__":
    main()
