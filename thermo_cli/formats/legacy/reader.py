"""Read the Rust crate's 0.4.x and 0.5.x JSON save files into the one Thermogram model.

Field by field as LEGACY-FORMAT.md describes them, with serde's rules for what may be
missing: ``Option`` fields and ``custom`` (a ``serde_json::Value``) default to null, the
0.5 reader defaults the four ``*_entries`` maps to empty (how 0.5 read 0.4 files), and
everything else is required. The version is told apart by the thermal config: 0.4 has a
scalar ``min_observations``, 0.5 per-layer arrays.

The dirty chain becomes the log: each delta a ``Delta`` with ``scheme=LEGACY``, its crate
hash and its ``prev_hash`` text kept as stored (so a tampered file still loads and
:func:`thermo_cli.formats.legacy.verify.verify_legacy` can say where), sealed so ``encoded`` is
set. ``dirty_start`` is 0 because every one of them is uncommitted in the crate's sense.
"""

from __future__ import annotations

import os
from typing import Any

from thermo_cli.codec.records import seal
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
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import quote
from thermo_cli.formats.legacy.jsondoc import (
    MAX_LEGACY_BYTES,
    Document,
    join,
    join_key,
    legacy_cap,
    legacy_too_big,
    parse_document,
)
from thermo_cli.model import Delta, Entry, HashScheme, Layer, Metadata

FORMAT_NAME = "thermogram-json"
"""``extras["legacy"]["format"]``: the Rust crate's serde_json save file."""

LAYER_FIELDS = {
    Layer.HOT: "hot_entries",
    Layer.WARM: "warm_entries",
    Layer.COOL: "cool_entries",
    Layer.COLD: "cold_entries",
}
_POLICIES = {p.value: p for p in PlasticityPolicy}
_RULE_FIELDS = ("novelty_threshold", "merge_threshold", "decay_rate", "prune_threshold", "learning_rate")


def load_legacy(data: bytes, *, source: str = "<file>", max_bytes: int = MAX_LEGACY_BYTES) -> Thermogram:
    """A crate save file (bytes) → Thermogram; LegacyFormatError names the JSON path of a fault.

    ``source`` names the file in error messages. The result records where it came from
    in ``extras["legacy"]``: ``format``, ``version`` ("0.4" or "0.5", by shape) and the
    file's ``head_hash`` as stored (None means the crate skipped the head check).
    ``tg.head_hash`` is the stored head, or the last delta's hash when the file has none,
    so new records continue the chain as the crate would have continued it.
    """
    doc = parse_document(data, source=source, max_bytes=max_bytes)
    root = doc.obj(doc.root, "$")
    thermal, version = _thermal_config(doc, doc.req(root, "thermal_config", ""), "thermal_config")
    layers = {layer: _entries(doc, root.get(name, {}), name) for layer, name in LAYER_FIELDS.items()}
    deltas, file_head = _dirty_chain(doc, doc.req(root, "dirty_chain", ""), "dirty_chain")
    tg = Thermogram(
        name=doc.text(doc.req(root, "name", ""), "name"),
        id=doc.text(doc.req(root, "id", ""), "id"),
        thermal=thermal,
        plasticity=_plasticity(doc, doc.req(root, "plasticity_rule", ""), "plasticity_rule"),
        policy=_consolidation(doc, doc.req(root, "consolidation_policy", ""), "consolidation_policy"),
        meta=_metadata(doc, doc.req(root, "metadata", ""), "metadata"),
        layers=layers,  # type: ignore[arg-type]
        records=list(deltas),
        log_base=0,
        head_hash=file_head if file_head is not None else (deltas[-1].hash if deltas else None),
        dirty_start=0,
        persisted=0,
        layers_modified=False,
        extras={"legacy": {"format": FORMAT_NAME, "version": version, "head_hash": file_head}},
    )
    return tg


def read_legacy_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_LEGACY_BYTES) -> bytes:
    """The bytes of a legacy file, refusing one over ``max_bytes`` before reading it."""
    p = os.fspath(path)
    size = os.path.getsize(p)
    max_bytes = legacy_cap(max_bytes)
    if size > max_bytes:
        raise legacy_too_big(p, size, max_bytes)
    with open(p, "rb") as f:
        return f.read()


def load_legacy_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_LEGACY_BYTES) -> Thermogram:
    """:func:`load_legacy` of a file, size-checked before it is read into memory."""
    p = os.fspath(path)
    return load_legacy(read_legacy_file(p, max_bytes=max_bytes), source=p, max_bytes=max_bytes)


# --- configuration ---------------------------------------------------------------------


def _quad(doc: Document, obj: dict[str, Any], name: str, path: str, kind: str) -> tuple[Any, ...]:
    p = join(path, name)
    items = doc.arr(doc.req(obj, name, path), p, 4)
    if kind == "f32":
        return tuple(doc.f32(x, f"{p}[{i}]") for i, x in enumerate(items))
    if kind == "uint":
        return tuple(doc.uint(x, f"{p}[{i}]") for i, x in enumerate(items))
    return tuple(doc.boolean(x, f"{p}[{i}]") for i, x in enumerate(items))


def _thermal_config(doc: Document, value: Any, path: str) -> tuple[ThermalConfig, str]:
    """0.5 per-layer arrays, or the 0.4 scalar form mapped as ENGINE.md says."""
    tc = doc.obj(value, path)

    def f32(name: str) -> float:
        return doc.f32(doc.req(tc, name, path), join(path, name))

    def flag(name: str) -> bool:
        return doc.boolean(doc.req(tc, name, path), join(path, name))

    if "decay_rates" not in tc and type(tc.get("min_observations")) is not list:
        return ThermalConfig.from_legacy_04(
            crystallization_threshold=f32("crystallization_threshold"),
            min_observations=doc.uint(doc.req(tc, "min_observations", path), join(path, "min_observations")),
            prune_threshold=f32("prune_threshold"),
            allow_warming=flag("allow_warming"),
            warming_delta=f32("warming_delta"),
        ), "0.4"
    return ThermalConfig(
        decay_rates=_quad(doc, tc, "decay_rates", path, "f32"),
        promotion_thresholds=_quad(doc, tc, "promotion_thresholds", path, "f32"),
        demotion_thresholds=_quad(doc, tc, "demotion_thresholds", path, "f32"),
        min_observations=_quad(doc, tc, "min_observations", path, "uint"),
        allow_demotion=_quad(doc, tc, "allow_demotion", path, "bool"),
        prune_threshold=f32("prune_threshold"),
        crystallization_threshold=f32("crystallization_threshold"),
        allow_warming=flag("allow_warming"),
        warming_delta=f32("warming_delta"),
    ), "0.5"


def _plasticity(doc: Document, value: Any, path: str) -> PlasticityRule:
    rule = doc.obj(value, path)
    name = doc.text(doc.req(rule, "policy", path), join(path, "policy"))
    if name not in _POLICIES:
        raise doc.error(
            join(path, "policy"),
            f"unknown policy {quote(name)} (expected STDP, Replace, EMA, Bayesian or WTA)",
        )
    nums = {field: doc.f32(doc.req(rule, field, path), join(path, field)) for field in _RULE_FIELDS}
    return PlasticityRule(policy=_POLICIES[name], **nums)


def _trigger(doc: Document, value: Any, path: str) -> Trigger:
    """serde's externally tagged enum: ``"Manual"`` or a one-member object."""
    if value == "Manual":
        return Manual()
    if type(value) is not dict or len(value) != 1:
        raise doc.error(
            path,
            f'expected "Manual" or a one-member object such as {{"DeltaCount": 1000}}, '
            f"got {doc.describe(value)}",
        )
    ((tag, body),) = value.items()
    p = join(path, tag)
    if tag == "DeltaCount":
        return DeltaCount(doc.uint(body, p))
    if tag == "TimePeriod":
        return TimePeriod(doc.uint(doc.req(doc.obj(body, p), "hours", p), join(p, "hours")))
    if tag == "DirtySize":
        return DirtySize(doc.uint(doc.req(doc.obj(body, p), "bytes", p), join(p, "bytes")))
    if tag == "Manual" and body is None:
        return Manual()
    raise doc.error(
        path, f"unknown trigger {quote(tag)} (expected DeltaCount, TimePeriod, DirtySize or Manual)"
    )


def _consolidation(doc: Document, value: Any, path: str) -> ConsolidationPolicy:
    pol = doc.obj(value, path)
    tp = join(path, "triggers")
    triggers = doc.arr(doc.req(pol, "triggers", path), tp)
    return ConsolidationPolicy(
        triggers=tuple(_trigger(doc, t, f"{tp}[{i}]") for i, t in enumerate(triggers)),
        enable_pruning=doc.boolean(doc.req(pol, "enable_pruning", path), join(path, "enable_pruning")),
        enable_merging=doc.boolean(doc.req(pol, "enable_merging", path), join(path, "enable_merging")),
    )


def _metadata(doc: Document, value: Any, path: str) -> Metadata:
    meta = doc.obj(value, path)
    return Metadata(
        created_at_ns=doc.time(doc.req(meta, "created_at", path), join(path, "created_at")),
        last_consolidation_ns=doc.time(
            doc.req(meta, "last_consolidation", path), join(path, "last_consolidation")
        ),
        total_deltas=doc.uint(doc.req(meta, "total_deltas", path), join(path, "total_deltas")),
        total_consolidations=doc.uint(
            doc.req(meta, "total_consolidations", path), join(path, "total_consolidations")
        ),
        custom=doc.custom(meta.get("custom"), join(path, "custom")),
    )


# --- entries and deltas -------------------------------------------------------------------


def _entries(doc: Document, value: Any, path: str) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for map_key, raw in doc.obj(value, path).items():
        p = join_key(path, map_key)
        e = doc.obj(raw, p)
        key = doc.key(doc.req(e, "key", p), join(p, "key"))
        if key != map_key:
            raise doc.error(
                join(p, "key"), f"entry key {quote(key)} differs from its map key {quote(map_key)}"
            )
        out[key] = Entry(
            key=key,
            value=doc.byte_array(doc.req(e, "value", p), join(p, "value")),
            strength=doc.f32(doc.req(e, "strength", p), join(p, "strength")),
            updated_at_ns=doc.time(doc.req(e, "updated_at", p), join(p, "updated_at")),
            update_count=doc.uint(doc.req(e, "update_count", p), join(p, "update_count")),
            ternary=doc.ternary(e.get("ternary_strength"), join(p, "ternary_strength")),
        )
    return out


def _delta(doc: Document, value: Any, path: str) -> Delta:
    d = doc.obj(value, path)
    delta_type = doc.delta_type(doc.req(d, "delta_type", path), join(path, "delta_type"))
    mp = join(path, "metadata")
    meta = doc.obj(doc.req(d, "metadata", path), mp)
    delta = Delta(
        delta_type=delta_type,
        key=doc.key(doc.req(d, "key", path), join(path, "key")),
        value=doc.byte_array(doc.req(d, "value", path), join(path, "value")),
        strength=doc.f32(doc.req(meta, "strength", mp), join(mp, "strength")),
        timestamp_ns=doc.time(doc.req(meta, "timestamp", mp), join(mp, "timestamp")),
        source=doc.text(doc.req(meta, "source", mp), join(mp, "source")),
        id=doc.text(doc.req(d, "id", path), join(path, "id")),
        ternary=doc.ternary(meta.get("ternary_strength"), join(mp, "ternary_strength")),
        observation_count=doc.opt_uint(meta.get("observation_count"), join(mp, "observation_count")),
        custom=doc.custom(meta.get("custom"), join(mp, "custom")),
        prev_hash=doc.opt_text(d.get("prev_hash"), join(path, "prev_hash")),
        hash=doc.text(doc.req(d, "hash", path), join(path, "hash")),
        scheme=HashScheme.LEGACY,
    )
    seal(delta)  # keeps the stored hash; caches the record bytes
    return delta


def _dirty_chain(doc: Document, value: Any, path: str) -> tuple[list[Delta], str | None]:
    chain = doc.obj(value, path)
    dp = join(path, "deltas")
    deltas = [_delta(doc, d, f"{dp}[{i}]") for i, d in enumerate(doc.arr(doc.req(chain, "deltas", path), dp))]
    head = doc.opt_text(chain.get("head_hash"), join(path, "head_hash"))
    return deltas, head
