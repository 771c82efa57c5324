"""Moving entries between the four thermal layers, and changing their strengths in place.

Every function works on the layer mappings of a thermogram (``{Layer: {key: Entry}}``)
and a :class:`~thermo_cli.config.engine.ThermalConfig`, mutates them, and returns what it
did; :class:`~thermo_cli.engine.thermogram.Thermogram` wraps each in a logged event.
Arithmetic and comparisons are float32 like the crate's (thresholds rounded to f32
first: 0.9 as a double is above f32(0.9), so comparing against the double would refuse
an entry the crate promotes).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field

from thermo_cli.config.engine import ThermalConfig
from thermo_cli.engine.plasticity import F32, f32
from thermo_cli.engine.select import StrengthTest, select_keys
from thermo_cli.model import Entry, Layer

_pack = F32.pack
_unpack = F32.unpack

Layers = dict[Layer, MutableMapping[str, Entry]]

_HOT, _WARM, _COOL, _COLD = Layer.HOT, Layer.WARM, Layer.COOL, Layer.COLD
PROMOTIONS = ((_HOT, _WARM), (_WARM, _COOL), (_COOL, _COLD))
DEMOTIONS = ((_COLD, _COOL), (_COOL, _WARM), (_WARM, _HOT))


_KEEP = f32(0.3)
_TAKE = f32(0.7)
_DEMOTE_FACTOR = f32(0.95)
_DEMOTE_FLOOR = f32(0.01)
_WARM_COST = f32(0.1)
_WARM_FLOOR = f32(0.1)


def merge_into(existing: Entry, moved: Entry) -> None:
    """Promotion/crystallization merge: 0.3·target + 0.7·moved, moved's value, counts summed."""
    existing.strength = f32(f32(existing.strength * _KEEP) + f32(moved.strength * _TAKE))
    existing.value = moved.value
    existing.tensor = moved.tensor
    existing.ternary = moved.ternary
    existing.updated_at_ns = moved.updated_at_ns
    existing.update_count += moved.update_count


# --- transitions -------------------------------------------------------------------------


def promote(layers: Layers, src: Layer, dst: Layer, cfg: ThermalConfig) -> list[str]:
    """Move entries strong and observed enough from ``src`` to the next colder ``dst``."""
    threshold = f32(cfg.promotion_thresholds[src])
    min_obs = cfg.min_observations[src]
    source = layers[src]
    moving = select_keys(source, StrengthTest(at_least=threshold, min_count=min_obs))
    target = layers[dst]
    pop, get = source.pop, target.get
    for key in moving:
        entry = pop(key)
        existing = get(key)
        if existing is None:
            target[key] = entry
        else:
            merge_into(existing, entry)
    return moving


def demote(layers: Layers, src: Layer, dst: Layer, cfg: ThermalConfig, now_ns: int) -> list[str]:
    """Move entries weaker than the demotion threshold of ``src`` one layer hotter.

    A moved entry keeps 95% of its strength (at least 0.01); where the key already sits
    in ``dst`` that entry stays and takes the larger strength.
    """
    threshold = f32(cfg.demotion_thresholds[src])
    source = layers[src]
    moving = select_keys(source, StrengthTest(below=threshold))
    target = layers[dst]
    pop, get, pack, unpack = source.pop, target.get, _pack, _unpack
    factor, floor = _DEMOTE_FACTOR, _DEMOTE_FLOOR
    for key in moving:
        entry = pop(key)
        s = unpack(pack(entry.strength * factor))[0]
        entry.strength = s if s > floor else floor
        entry.updated_at_ns = now_ns
        existing = get(key)
        if existing is None:
            target[key] = entry
        else:
            if entry.strength > existing.strength:
                existing.strength = entry.strength
            existing.updated_at_ns = now_ns
    return moving


def prune(layers: Layers, threshold: float) -> list[tuple[Layer, str]]:
    """Remove entries weaker than ``threshold`` from every layer; returns (layer, key) pairs."""
    t = f32(threshold)
    removed: list[tuple[Layer, str]] = []
    for layer in Layer:
        mapping = layers[layer]
        weak = select_keys(mapping, StrengthTest(below=t))
        for key in weak:
            del mapping[key]
        removed.extend((layer, k) for k in weak)
    return removed


@dataclass(slots=True)
class TransitionReport:
    """What one run of thermal transitions moved: counts per step, in the order they ran."""

    promoted: list[int] = field(default_factory=lambda: [0, 0, 0])  # hot→warm, warm→cool, cool→cold
    demoted: list[int] = field(default_factory=lambda: [0, 0, 0])  # cold→cool, cool→warm, warm→hot
    pruned: int = 0
    pruned_keys: list[tuple[Layer, str]] = field(default_factory=list, repr=False)

    @property
    def total_promoted(self) -> int:
        return sum(self.promoted)

    @property
    def total_demoted(self) -> int:
        return sum(self.demoted)


def run_transitions(layers: Layers, cfg: ThermalConfig, now_ns: int) -> TransitionReport:
    """Promote (hot→warm→cool→cold), demote where allowed (cold→cool→warm→hot), prune.

    Each step sees the result of the previous one, so one call can carry an entry
    through several layers in either direction, exactly as the crate does.
    """
    report = TransitionReport()
    for i, (src, dst) in enumerate(PROMOTIONS):
        report.promoted[i] = len(promote(layers, src, dst, cfg))
    for i, (src, dst) in enumerate(DEMOTIONS):
        if cfg.allow_demotion[src]:
            report.demoted[i] = len(demote(layers, src, dst, cfg, now_ns))
    report.pruned_keys = prune(layers, cfg.prune_threshold)
    report.pruned = len(report.pruned_keys)
    return report


def crystallize(layers: Layers, cfg: ThermalConfig) -> tuple[int, int]:
    """Legacy two-temperature step: hot entries at or above the crystallization threshold
    with enough observations jump straight to cold (merged 0.3/0.7 into an existing cold
    entry). Returns (new cold entries, merged into existing ones).

    Copies of the key in warm or cool were hidden behind the hot entry; they are dropped so
    that the key still reads the crystallized value (the crate left them to shadow it).
    """
    threshold = f32(cfg.crystallization_threshold)
    min_obs = cfg.min_observations[_HOT]
    hot, cold = layers[_HOT], layers[_COLD]
    moving = select_keys(hot, StrengthTest(at_least=threshold, min_count=min_obs))
    created = merged = 0
    warm, cool = layers[_WARM], layers[_COOL]
    for key in moving:
        entry = hot.pop(key)
        warm.pop(key, None)
        cool.pop(key, None)
        existing = cold.get(key)
        if existing is None:
            cold[key] = entry
            created += 1
        else:
            merge_into(existing, entry)
            merged += 1
    return created, merged


# --- strength changes --------------------------------------------------------------------


def apply_decay(layers: Layers, cfg: ThermalConfig) -> int:
    """strength = max(0, strength·(1 − decay_rate[layer])) for every entry; returns count."""
    count = 0
    for layer in Layer:
        factor = f32(1.0 - f32(cfg.decay_rates[layer]))
        for entry in layers[layer].values():
            s = _unpack(_pack(entry.strength * factor))[0]
            entry.strength = s if s > 0.0 else 0.0
            count += 1
    return count


def find(layers: Layers, key: str) -> tuple[Layer, Entry] | None:
    """The hottest layer holding ``key`` and its entry."""
    for layer in Layer:
        entry = layers[layer].get(key)
        if entry is not None:
            return layer, entry
    return None


def reinforce(entry: Entry, amount: float, now_ns: int) -> None:
    """strength = min(1, strength + amount), one more update, updated now."""
    entry.strength = min(1.0, f32(entry.strength + f32(amount)))
    entry.update_count += 1
    entry.updated_at_ns = now_ns


def weaken(entry: Entry, amount: float, now_ns: int) -> None:
    """strength = max(0, strength − amount), updated now (update count unchanged)."""
    entry.strength = max(0.0, f32(entry.strength - f32(amount)))
    entry.updated_at_ns = now_ns


def warm(layers: Layers, key: str, cfg: ThermalConfig, now_ns: int) -> bool:
    """Move a cold entry back to hot, paying 0.1·warming_delta of strength (at least 0.1).

    Returns False when warming is disabled or cold does not hold the key. If hot already
    holds a (newer) entry for the key, that entry keeps its value and takes the larger
    strength and the summed update count, so warming never changes what the key reads.
    """
    if not cfg.allow_warming:
        return False
    entry = layers[_COLD].pop(key, None)
    if entry is None:
        return False
    cost = f32(_WARM_COST * f32(cfg.warming_delta))
    entry.strength = max(_WARM_FLOOR, f32(entry.strength - cost))
    entry.updated_at_ns = now_ns
    hot = layers[_HOT]
    existing = hot.get(key)
    if existing is None:
        hot[key] = entry
    else:
        existing.strength = max(existing.strength, entry.strength)
        existing.update_count += entry.update_count
        existing.updated_at_ns = now_ns
    return True
