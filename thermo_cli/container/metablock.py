"""The meta block: everything of a thermogram except its layers and its log.

Name, id, the three configurations, the metadata (with the user's custom JSON) and the
extension state (``extras``, e.g. the spiking network's) are one CBOR map. It is written
again only when it changes, so an append that only adds records stays O(delta) while a
counter or an SNN state update appends just this block.
"""

from __future__ import annotations

from typing import Any

from thermo_cli.container.blocks import (
    as_bool,
    as_float,
    as_int,
    as_list,
    as_map,
    as_text,
    as_uint,
    field_of,
)
from thermo_cli.engine.config import (
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
from thermo_cli.model import Metadata

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


def metadata_to_map(m: Metadata) -> dict[str, Any]:
    return {
        "created_at": m.created_at_ns,
        "last_consolidation": m.last_consolidation_ns,
        "total_deltas": m.total_deltas,
        "total_consolidations": m.total_consolidations,
        "custom": m.custom,
    }


def meta_to_map(tg: Any) -> dict[str, Any]:
    """The meta block map of a Thermogram (``tg`` typed loosely to avoid an import cycle)."""
    return {
        "name": tg.name,
        "id": tg.id,
        "thermal": thermal_to_map(tg.thermal),
        "plasticity": plasticity_to_map(tg.plasticity),
        "policy": policy_to_map(tg.policy),
        "meta": metadata_to_map(tg.meta),
        "extras": dict(tg.extras),
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
            field_of(m, "crystallization_threshold", what), f"{what}.crystallization_threshold"),
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

    return PlasticityRule(policy, num("novelty_threshold"), num("merge_threshold"), num("decay_rate"),
                          num("prune_threshold"), num("learning_rate"))


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


def metadata_from_map(v: Any, what: str = "meta.meta") -> Metadata:
    m = as_map(v, what)
    return Metadata(
        created_at_ns=as_int(field_of(m, "created_at", what), f"{what}.created_at"),
        last_consolidation_ns=as_int(field_of(m, "last_consolidation", what), f"{what}.last_consolidation"),
        total_deltas=as_uint(field_of(m, "total_deltas", what), f"{what}.total_deltas"),
        total_consolidations=as_uint(
            field_of(m, "total_consolidations", what), f"{what}.total_consolidations"),
        custom=field_of(m, "custom", what),
    )


def meta_fields_from_map(v: Any, what: str = "meta") -> dict[str, Any]:
    """Keyword arguments for Thermogram(...) decoded from a meta block map."""
    m = as_map(v, what)
    return {
        "name": as_text(field_of(m, "name", what), f"{what}.name"),
        "id": as_text(field_of(m, "id", what), f"{what}.id"),
        "thermal": thermal_from_map(field_of(m, "thermal", what)),
        "plasticity": plasticity_from_map(field_of(m, "plasticity", what)),
        "policy": policy_from_map(field_of(m, "policy", what)),
        "meta": metadata_from_map(field_of(m, "meta", what)),
        "extras": dict(as_map(field_of(m, "extras", what), f"{what}.extras")),
    }
