"""The configuration's map encoding: thermal, plasticity and consolidation settings ⇄ maps.

One encoding serves the container's meta block, the JSONL dump and configuration
events, so a configuration reads back identically wherever it was written. Decoding is
strict: every field present, of its type, finite; unknown policies and triggers are
refused with the field's path.
"""

from __future__ import annotations

from typing import Any

from thermo_cli.config.engine import (
    ConsolidationPolicy,
    DeltaCount,
    DirtySize,
    Manual,
    PlasticityPolicy,
    PlasticityRule,
    ThermalConfig,
    TimePeriod,
    Trigger,
)
from thermo_cli.errors import CorruptError
from thermo_cli.model.fields import as_bool, as_float, as_list, as_map, as_text, as_uint, field_of

# --- encode -------------------------------------------------------------------------------


def thermal_to_map(c: ThermalConfig) -> dict[str, Any]:
    return {
        "decay_rates": list(c.decay_rates),
        "promotion_thresholds": list(c.promotion_thresholds),
        "demotion_thresholds": list(c.demotion_thresholds),
        "min_observations": list(c.min_observations),
        "allow_demotion": list(c.allow_demotion),
        "prune_threshold": c.prune_threshold,
        "crystallization_threshold": c.crystallization_threshold,
        "allow_warming": c.allow_warming,
        "warming_delta": c.warming_delta,
    }


def plasticity_to_map(r: PlasticityRule) -> dict[str, Any]:
    return {
        "policy": r.policy.value,
        "novelty_threshold": r.novelty_threshold,
        "merge_threshold": r.merge_threshold,
        "decay_rate": r.decay_rate,
        "prune_threshold": r.prune_threshold,
        "learning_rate": r.learning_rate,
    }


def trigger_to_map(t: Trigger) -> dict[str, Any]:
    if isinstance(t, DeltaCount):
        return {"kind": "delta_count", "count": t.count}
    if isinstance(t, TimePeriod):
        return {"kind": "time_period", "hours": t.hours}
    if isinstance(t, DirtySize):
        return {"kind": "dirty_size", "bytes": t.bytes}
    return {"kind": "manual"}


def policy_to_map(p: ConsolidationPolicy) -> dict[str, Any]:
    return {
        "triggers": [trigger_to_map(t) for t in p.triggers],
        "enable_pruning": p.enable_pruning,
        "enable_merging": p.enable_merging,
    }


# --- decode -------------------------------------------------------------------------------


def _quad(m: dict[str, Any], name: str, what: str, conv: Any) -> tuple[Any, Any, Any, Any]:
    items = as_list(field_of(m, name, what), f"{what}.{name}")
    if len(items) != 4:
        raise CorruptError(f"{what}.{name}: expected 4 values (hot, warm, cool, cold), got {len(items)}")
    a, b, c, d = (conv(x, f"{what}.{name}") for x in items)
    return a, b, c, d


def thermal_from_map(v: Any, what: str = "meta.thermal") -> ThermalConfig:
    m = as_map(v, what)
    return ThermalConfig(
        decay_rates=_quad(m, "decay_rates", what, as_float),
        promotion_thresholds=_quad(m, "promotion_thresholds", what, as_float),
        demotion_thresholds=_quad(m, "demotion_thresholds", what, as_float),
        min_observations=_quad(m, "min_observations", what, as_uint),
        allow_demotion=_quad(m, "allow_demotion", what, as_bool),
        prune_threshold=as_float(field_of(m, "prune_threshold", what), f"{what}.prune_threshold"),
        crystallization_threshold=as_float(
            field_of(m, "crystallization_threshold", what), f"{what}.crystallization_threshold"
        ),
        allow_warming=as_bool(field_of(m, "allow_warming", what), f"{what}.allow_warming"),
        warming_delta=as_float(field_of(m, "warming_delta", what), f"{what}.warming_delta"),
    )


def plasticity_from_map(v: Any, what: str = "meta.plasticity") -> PlasticityRule:
    m = as_map(v, what)
    name = as_text(field_of(m, "policy", what), f"{what}.policy")
    try:
        policy = PlasticityPolicy(name)
    except ValueError:
        raise CorruptError(f"{what}.policy: unknown plasticity policy {name!r}") from None

    def num(key: str) -> float:
        return as_float(field_of(m, key, what), f"{what}.{key}")

    return PlasticityRule(
        policy,
        num("novelty_threshold"),
        num("merge_threshold"),
        num("decay_rate"),
        num("prune_threshold"),
        num("learning_rate"),
    )


def trigger_from_map(v: Any, what: str) -> Trigger:
    m = as_map(v, what)
    kind = as_text(field_of(m, "kind", what), f"{what}.kind")
    if kind == "delta_count":
        return DeltaCount(as_uint(field_of(m, "count", what), f"{what}.count"))
    if kind == "time_period":
        return TimePeriod(as_uint(field_of(m, "hours", what), f"{what}.hours"))
    if kind == "dirty_size":
        return DirtySize(as_uint(field_of(m, "bytes", what), f"{what}.bytes"))
    if kind == "manual":
        return Manual()
    raise CorruptError(f"{what}.kind: unknown trigger {kind!r}")


def policy_from_map(v: Any, what: str = "meta.policy") -> ConsolidationPolicy:
    m = as_map(v, what)
    triggers = as_list(field_of(m, "triggers", what), f"{what}.triggers")
    return ConsolidationPolicy(
        triggers=tuple(trigger_from_map(t, f"{what}.triggers[{i}]") for i, t in enumerate(triggers)),
        enable_pruning=as_bool(field_of(m, "enable_pruning", what), f"{what}.enable_pruning"),
        enable_merging=as_bool(field_of(m, "enable_merging", what), f"{what}.enable_merging"),
    )
