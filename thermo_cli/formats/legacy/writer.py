"""Write a Thermogram as the crate's pretty-printed JSON (0.5 layout, or 0.4 when asked).

Used to hand data back to users still on the crate, to build large legacy files for the
benchmark, and to round-trip the reader in tests. The output has the crate's shape:
serde_json's two-space pretty printing, members in the crate's order, f32 numbers in
their shortest form, byte values as arrays of integers, timestamps ending in ``Z``.

The dirty chain is the Delta records after the last consolidation point. Legacy deltas
are written exactly as stored (hash and ``prev_hash`` included, so a tampered chain stays
visibly tampered); any other delta is linked to the previous one and given the crate's
hash, so the file verifies in the crate. What the crate cannot hold — events, tensor
specs — is not written.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from thermo_cli.codec.timestamps import format_z
from thermo_cli.config.engine import DeltaCount, DirtySize, Manual, ThermalConfig, TimePeriod, Trigger
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import ValidationError
from thermo_cli.formats.legacy.verify import legacy_hash
from thermo_cli.model import Delta, Entry, HashScheme, Layer, Ternary

_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY


def dump_legacy(tg: Thermogram, *, version: str = "0.5") -> bytes:
    """The crate's save-file bytes for ``tg`` (``version`` "0.5" or "0.4").

    0.4 has no warm or cool layer: writing one that holds entries there raises
    ValidationError rather than dropping them.
    """
    if version not in ("0.4", "0.5"):
        raise ValidationError(f"version: expected 0.4 or 0.5, got {version!r}")
    if version == "0.4":
        crowded = [layer.label for layer in (Layer.WARM, Layer.COOL) if tg.layers[layer]]
        if crowded:
            raise ValidationError(
                f"version: 0.4 files have no {' or '.join(crowded)} layer; "
                "write version 0.5 to keep those entries"
            )
    deltas, head = _dirty_chain(tg)
    doc: dict[str, Any] = {"id": tg.id, "name": tg.name, "hot_entries": _entries(tg.layers[Layer.HOT])}
    if version == "0.5":
        doc["warm_entries"] = _entries(tg.layers[Layer.WARM])
        doc["cool_entries"] = _entries(tg.layers[Layer.COOL])
    doc["cold_entries"] = _entries(tg.layers[Layer.COLD])
    doc["dirty_chain"] = {"deltas": deltas, "head_hash": head}
    rule = tg.plasticity
    doc["plasticity_rule"] = {
        "policy": rule.policy.value,
        "novelty_threshold": _f32(rule.novelty_threshold),
        "merge_threshold": _f32(rule.merge_threshold),
        "decay_rate": _f32(rule.decay_rate),
        "prune_threshold": _f32(rule.prune_threshold),
        "learning_rate": _f32(rule.learning_rate),
    }
    doc["consolidation_policy"] = {
        "triggers": [_trigger(t) for t in tg.policy.triggers],
        "enable_pruning": tg.policy.enable_pruning,
        "enable_merging": tg.policy.enable_merging,
    }
    doc["thermal_config"] = _thermal(tg.thermal, version)
    doc["metadata"] = {
        "created_at": format_z(tg.meta.created_at_ns),
        "last_consolidation": format_z(tg.meta.last_consolidation_ns),
        "total_deltas": tg.meta.total_deltas,
        "total_consolidations": tg.meta.total_consolidations,
        "custom": tg.meta.custom,
    }
    return orjson.dumps(doc, option=_OPTIONS)


def _f32(x: float) -> np.float32:
    return np.float32(x)


def _bytes(value: bytes) -> np.ndarray:
    return np.frombuffer(value, dtype=np.uint8)


def _ternary(t: Ternary | None) -> str | None:
    return None if t is None else t.legacy_name


def _entries(layer: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, e in layer.items():
        entry: Entry = e
        out[key] = {
            "key": entry.key,
            "value": _bytes(entry.value),
            "strength": _f32(entry.strength),
            "ternary_strength": _ternary(entry.ternary),
            "updated_at": format_z(entry.updated_at_ns),
            "update_count": entry.update_count,
        }
    return out


def _dirty_chain(tg: Thermogram) -> tuple[list[dict[str, Any]], str | None]:
    start = max(tg.dirty_start - tg.log_base, 0)
    out: list[dict[str, Any]] = []
    prev: str | None = None
    for rec in tg.records[start:]:
        if not isinstance(rec, Delta):
            continue
        if rec.scheme is HashScheme.LEGACY:
            prev_hash, digest = rec.prev_hash, rec.hash
        else:
            relinked = Delta(
                rec.delta_type,
                rec.key,
                rec.value,
                rec.strength,
                rec.timestamp_ns,
                rec.source,
                rec.id,
                rec.ternary,
                rec.observation_count,
                rec.custom,
                prev_hash=prev,
                scheme=HashScheme.LEGACY,
            )
            prev_hash, digest = prev, legacy_hash(relinked)
        out.append(
            {
                "id": rec.id,
                "delta_type": rec.delta_type.legacy_name,
                "key": rec.key,
                "value": _bytes(rec.value),
                "metadata": {
                    "timestamp": format_z(rec.timestamp_ns),
                    "source": rec.source,
                    "strength": _f32(rec.strength),
                    "ternary_strength": _ternary(rec.ternary),
                    "observation_count": rec.observation_count,
                    "custom": rec.custom,
                },
                "prev_hash": prev_hash,
                "hash": digest,
            }
        )
        prev = digest
    as_loaded = "legacy" in tg.extras and all(
        isinstance(r, Delta) and r.scheme is HashScheme.LEGACY for r in tg.records[start:]
    )
    head = tg.extras["legacy"].get("head_hash") if as_loaded else prev  # keep a null/edited head as it was
    return out, head


def _trigger(t: Trigger) -> Any:
    if isinstance(t, DeltaCount):
        return {"DeltaCount": t.count}
    if isinstance(t, TimePeriod):
        return {"TimePeriod": {"hours": t.hours}}
    if isinstance(t, DirtySize):
        return {"DirtySize": {"bytes": t.bytes}}
    if isinstance(t, Manual):
        return "Manual"
    raise ValidationError(f"consolidation trigger: cannot write {t!r} in the crate's format")


def _thermal(tc: ThermalConfig, version: str) -> dict[str, Any]:
    if version == "0.4":
        return {
            "crystallization_threshold": _f32(tc.crystallization_threshold),
            "min_observations": tc.min_observations[0],
            "prune_threshold": _f32(tc.prune_threshold),
            "allow_warming": tc.allow_warming,
            "warming_delta": _f32(tc.warming_delta),
        }
    return {
        "decay_rates": [_f32(x) for x in tc.decay_rates],
        "promotion_thresholds": [_f32(x) for x in tc.promotion_thresholds],
        "demotion_thresholds": [_f32(x) for x in tc.demotion_thresholds],
        "min_observations": list(tc.min_observations),
        "allow_demotion": list(tc.allow_demotion),
        "prune_threshold": _f32(tc.prune_threshold),
        "crystallization_threshold": _f32(tc.crystallization_threshold),
        "allow_warming": tc.allow_warming,
        "warming_delta": _f32(tc.warming_delta),
    }
