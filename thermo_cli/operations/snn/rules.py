"""Element-wise learning rules of the spiking network, written for whole arrays at once.

Weights are float32 arrays; in ternary mode they hold exactly -1.0, 0.0 or +1.0 so the
same spreading code serves both modes.
"""

from __future__ import annotations

import numpy as np


def ternary_stdp(
    current: np.ndarray,
    pre_fired: np.ndarray | bool,
    post_fired: np.ndarray | bool,
    dt_ms: np.ndarray | int,
    *,
    reference: bool = False,
) -> np.ndarray:
    """New ternary weights after one spike-timing step (inputs broadcast together).

    When both ends fired: ``dt_ms > 0`` (pre before post, causal) strengthens one step
    (Neg→Zero→Pos), ``dt_ms < 0`` weakens one step. Co-firing in the same tick has
    ``dt_ms == 0``: the crate then only lifted Neg to Zero and kept Zero as it was, so a
    connection that starts at Zero — all of them in ternary mode — could never learn.
    **FIX** (default): simultaneous firing is Hebbian co-activation and strengthens one
    step, like the continuous rule, which always strengthens co-firing pairs.
    ``reference=True`` gives the crate's rule. Without both spikes the weight is kept.
    """
    w = np.asarray(current, dtype=np.float32)
    both = np.logical_and(pre_fired, post_fired)
    dt = np.asarray(dt_ms)
    up = np.minimum(w + 1.0, 1.0)
    down = np.maximum(w - 1.0, -1.0)
    at_zero_dt = np.where(w < 0, 0.0, w) if reference else up
    stepped = np.where(dt > 0, up, np.where(dt < 0, down, at_zero_dt))
    return np.where(both, stepped, w).astype(np.float32)


def ternary_quantize(values: np.ndarray | float, threshold: float) -> np.ndarray:
    """``w >= t`` → +1, ``w <= -t`` → -1, else 0 (as float32)."""
    v = np.asarray(values, dtype=np.float32)
    t = np.float32(threshold)
    return np.where(v >= t, 1.0, np.where(v <= -t, -1.0, 0.0)).astype(np.float32)
