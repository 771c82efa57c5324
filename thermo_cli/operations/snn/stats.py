"""A summary of a spiking network's state for people and scripts (``thermo snn stats``).

Plain data only (numbers, lists, text-keyed maps), so the CLI can print it as a table or
as JSON unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermo_cli.operations.snn.network import EmbeddedSNN

RATE_EDGES = (0.0, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0)
"""Firing-rate histogram bins (the homeostasis target is 0.1 by default)."""
WEIGHT_EDGES = (0.0, 0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
"""Continuous-weight histogram bins; the first, [0, 0.01), holds the pruned weights."""
TOP_NEURONS = 5


def summarize(net: EmbeddedSNN) -> dict[str, Any]:
    """Configuration, neuromodulators, firing rates, weights and learning counters."""
    cfg = net.config
    tick = net.tick
    counters = dict(net.counters)
    return {
        "engine": "EmbeddedSNN",
        "mode": "ternary" if cfg.use_ternary else "continuous",
        "config": cfg.to_dict(),
        "seed": net.seed,
        "tick": tick,
        "simulated_ms": tick * 100,
        "neuromod": net.neuromod.to_dict(),
        "firing_rates": _rates(net.firing_rates, cfg.homeostasis_target),
        "weights": _weights(net.weights, cfg.use_ternary),
        "prototypes": {
            "learning": cfg.learn_prototypes,
            "in_use": int(np.count_nonzero(net.last_learned >= 0))
            if net.book is None
            else int(np.count_nonzero(net.book.ids >= 0)),
            "updates": counters["prototype_updates"],
            "recruited": counters["recruits"],
        },
        "spiking_tick_fraction": counters["ticks_with_spikes"] / tick if tick else 0.0,
        "counters": counters,
        "concepts": [] if net.book is None else net.book.summary(),
    }


def _rates(rates: np.ndarray, target: float) -> dict[str, Any]:
    order = np.argsort(-rates, kind="stable")[:TOP_NEURONS]
    counts, _ = np.histogram(np.clip(rates, 0.0, 1.0), bins=RATE_EDGES)
    return {
        "mean": float(rates.mean()),
        "max": float(rates.max()),
        "min": float(rates.min()),
        "target": target,
        "above_target": int(np.count_nonzero(rates > target)),
        "silent": int(np.count_nonzero(rates < 0.01)),
        "top": [[int(i), float(rates[i])] for i in order],
        "histogram": {"edges": list(RATE_EDGES), "counts": counts.tolist()},
    }


def _weights(weights: np.ndarray, ternary: bool) -> dict[str, Any]:
    total = int(weights.size)
    if ternary:
        return {
            "connections": total,
            "neg": int(np.count_nonzero(weights < 0)),
            "zero": int(np.count_nonzero(weights == 0)),
            "pos": int(np.count_nonzero(weights > 0)),
        }
    counts, _ = np.histogram(weights, bins=WEIGHT_EDGES)
    return {
        "connections": total,
        "zero": int(np.count_nonzero(weights == 0)),
        "mean": float(weights.mean()) if total else 0.0,
        "max": float(weights.max()) if total else 0.0,
        "histogram": {"edges": list(WEIGHT_EDGES), "counts": counts.tolist()},
    }
