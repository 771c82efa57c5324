"""Plasticity formulas: how a strength or a ternary weight changes when a new one arrives.

These are the Rust crate's formulas (ENGINE.md), evaluated in float32 step by step the
way the crate's ``f32`` arithmetic does, so strengths computed here equal the crate's bit
for bit. (A float64 product, sum or quotient of two float32 values rounded once to
float32 is exactly the float32 operation, so each step is one Python operation followed
by :func:`f32`.) :class:`~thermo_cli.config.engine.PlasticityRule` picks the formula for
its policy; the functions here take plain numbers so they can be tested one by one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from thermo_cli.config.engine import PlasticityPolicy, PlasticityRule
from thermo_cli.model import Ternary

F32 = struct.Struct("<f")
"""A float32: ``F32.unpack(F32.pack(x))[0]`` is :func:`f32` inlined, for loops over entries."""
_pack = F32.pack
_unpack: Callable[[bytes], tuple[float]] = F32.unpack

SECONDS_PER_DAY = 86400.0
QUANTIZE_THRESHOLD = 0.3
"""Threshold that turns a continuous entry strength into a ternary one during consolidation."""


def f32(x: float) -> float:
    """Round to the nearest float32 (the crate stores and computes strengths in f32)."""
    return _unpack(_pack(x))[0]


_C03 = f32(0.3)
_C05 = f32(0.5)
_C07 = f32(0.7)
# Thresholds compared in float32, like the crate: 0.3 as a double is below f32(0.3).


def clamp01(x: float) -> float:
    return 0.0 if x < 0.0 else (1.0 if x > 1.0 else x)


# --- continuous updates ------------------------------------------------------------------


def stdp(current: float, new: float, dt_seconds: float, decay_rate: float, learning_rate: float) -> float:
    """clamp(current·(1 − decay_rate·dt/86400) + learning_rate·new, 0, 1)."""
    decay = f32(f32(f32(decay_rate) * f32(dt_seconds)) / SECONDS_PER_DAY)
    decayed = f32(current * f32(1.0 - decay))
    return clamp01(f32(decayed + f32(f32(learning_rate) * new)))


def ema(current: float, new: float, learning_rate: float) -> float:
    """learning_rate·new + (1 − learning_rate)·current."""
    alpha = f32(learning_rate)
    return f32(f32(alpha * new) + f32(f32(1.0 - alpha) * current))


def bayesian(current: float, new: float) -> float:
    """(c² + n²)/(c + n): each observation weighted by itself; 0 when c + n <= 0."""
    total = f32(current + new)
    if total <= 0.0:
        return 0.0
    return f32(f32(f32(current * current) + f32(new * new)) / total)


def winner_take_all(current: float, new: float) -> float:
    return max(current, new)


# --- ternary updates ---------------------------------------------------------------------


def quantize(strength: float, threshold: float = QUANTIZE_THRESHOLD) -> Ternary:
    """A continuous strength as a ternary value: >= t → +1, <= −t → −1, else 0 (t in f32)."""
    t = f32(threshold)
    if strength >= t:
        return Ternary.POS
    if strength <= -t:
        return Ternary.NEG
    return Ternary.ZERO


def toward(current: Ternary, target: Ternary) -> Ternary:
    """One step from ``current`` in the direction of ``target`` (no step when equal)."""
    if target > current:
        return current.strengthen()
    if target < current:
        return current.weaken()
    return current


def toward_zero(current: Ternary) -> Ternary:
    """Decay one step toward zero: Pos→Zero, Neg→Zero, Zero stays."""
    return toward(current, Ternary.ZERO)


def ternary_stdp_update(current: Ternary, observed: Ternary, confidence: float) -> Ternary:
    """STDP policy: agreement with confidence > 0.7 strengthens; disagreement with
    confidence > 0.5 steps toward the observation; anything else decays toward zero."""
    if current == observed and confidence > _C07:
        return current.strengthen()
    if current != observed and confidence > _C05:
        return toward(current, observed)
    return toward_zero(current)


def ternary_replace_update(current: Ternary, observed: Ternary, confidence: float) -> Ternary:
    """Replace and WTA policies: take the observation when confidence > 0.5."""
    return observed if confidence > _C05 else current


def ternary_ema_update(
    current: Ternary, observed: Ternary, confidence: float, learning_rate: float
) -> Ternary:
    """EMA policy: take a differing observation when confidence > learning_rate."""
    if current != observed and confidence > f32(learning_rate):
        return observed
    return current


def ternary_bayesian_update(current: Ternary, observed: Ternary, confidence: float) -> Ternary:
    """Bayesian policy: confident (> 0.7) → observation; unsure (> 0.3) → toward zero; else keep."""
    if confidence > _C07:
        return observed
    if confidence > _C03:
        return toward_zero(current)
    return current


def majority_vote(values: Iterable[Ternary | int]) -> Ternary:
    """More +1 than −1 → +1, more −1 → −1, a tie (zeros do not vote) → 0."""
    pos = neg = 0
    for v in values:
        if v > 0:
            pos += 1
        elif v < 0:
            neg += 1
    if pos > neg:
        return Ternary.POS
    if neg > pos:
        return Ternary.NEG
    return Ternary.ZERO


def ternary_stdp(current: Ternary, pre_fired: bool, post_fired: bool, dt_ms: float) -> Ternary:
    """Spike-timing rule for a ternary synapse, as the crate has it.

    Only when both neurons fired: pre before post (dt > 0) strengthens, post before pre
    (dt < 0) weakens, and simultaneous spikes (dt = 0) lift a −1 to 0 and keep anything
    else — so a zero weight never changes at dt = 0 (the spiking network corrects that).
    """
    if not (pre_fired and post_fired):
        return current
    if dt_ms > 0:
        return current.strengthen()
    if dt_ms < 0:
        return current.weaken()
    return Ternary.ZERO if current == Ternary.NEG else current


def observation_confidence(observation_count: int | None) -> float:
    """Confidence of a ternary delta: min(1, observations/10), or 0.5 when not given."""
    if observation_count is None:
        return 0.5
    return min(1.0, f32(f32(observation_count) / 10.0))


# --- a rule's decisions ------------------------------------------------------------------------
# PlasticityRule (thermo_cli.config.engine) is plain configuration; these apply it.


def apply_update(rule: PlasticityRule, current: float, new: float, dt_seconds: float) -> float:
    """New continuous strength of an entry at ``current`` receiving ``new`` under ``rule``.

    ``dt_seconds`` is the time since the entry was last updated (the crate passes whole
    seconds); only the STDP policy uses it.
    """
    policy = rule.policy
    if policy is PlasticityPolicy.STDP:
        return stdp(current, new, dt_seconds, rule.decay_rate, rule.learning_rate)
    if policy is PlasticityPolicy.REPLACE:
        return new
    if policy is PlasticityPolicy.EMA:
        return ema(current, new, rule.learning_rate)
    if policy is PlasticityPolicy.BAYESIAN:
        return bayesian(current, new)
    return winner_take_all(current, new)


def ternary_update(rule: PlasticityRule, current: Ternary, observed: Ternary, confidence: float) -> Ternary:
    """New ternary strength of an entry at ``current`` observing ``observed`` under ``rule``.

    ``confidence`` is compared in float32, as the crate holds it.
    """
    confidence = f32(confidence)
    policy = rule.policy
    if policy is PlasticityPolicy.STDP:
        return ternary_stdp_update(current, observed, confidence)
    if policy is PlasticityPolicy.EMA:
        return ternary_ema_update(current, observed, confidence, rule.learning_rate)
    if policy is PlasticityPolicy.BAYESIAN:
        return ternary_bayesian_update(current, observed, confidence)
    return ternary_replace_update(current, observed, confidence)


def should_create_new(rule: PlasticityRule, novelty: float) -> bool:
    """An observation this novel becomes a new memory (novelty > novelty_threshold)."""
    return f32(novelty) > f32(rule.novelty_threshold)


def should_merge(rule: PlasticityRule, similarity: float) -> bool:
    """An observation this similar merges with an existing one (> 1 − merge_threshold)."""
    return f32(similarity) > f32(1.0 - f32(rule.merge_threshold))


def should_prune(rule: PlasticityRule, strength: float) -> bool:
    """A memory this weak is dropped at consolidation (strength < prune_threshold)."""
    return f32(strength) < f32(rule.prune_threshold)
