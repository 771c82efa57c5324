"""Builders and comparisons shared by the container tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from thermo_cli.config.engine import ConsolidationPolicy, PlasticityRule, ThermalConfig
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.model import Entry, Layer, Metadata, TensorSpec, Ternary


def weights(n: int, seed: int = 0, dtype: Any = np.float32) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * 0.02).astype(dtype).tobytes()


def sample_thermogram(entries: int = 20, *, seed: int = 0) -> Thermogram:
    """A thermogram exercising every field: four layers, tensors, ternary, log, extras."""
    tg = Thermogram(
        name="sample",
        id="00000000-0000-4000-8000-000000000001",
        thermal=ThermalConfig.fast_learner(),
        plasticity=PlasticityRule.bayesian(),
        policy=ConsolidationPolicy.manual(),
        extras={"snn": {"neurons": 4, "weights": weights(16, seed), "nested": {"deep": [1, 2, {"x": True}]}}},
        meta=Metadata(
            created_at_ns=1_700_000_000_123_456_789,
            last_consolidation_ns=1_700_000_000_123_456_789,
            custom={"owner": "tests", "tags": ["a", "b"], "pi": 3.25, "n": None},
        ),
    )
    for i in range(entries):
        layer = Layer(i % 4)
        key = f"layer{i % 4}/w{i:03d}"
        if i % 3 == 0:
            value, spec = weights(64 + i, seed + i), TensorSpec("F32", (64 + i,))
        elif i % 3 == 1:
            value, spec = weights(8 * (i + 1), seed + i, np.float16), TensorSpec("F16", (8, i + 1))
        else:
            value, spec = f"text value {i} ✓".encode(), None
        tg.layers[layer][key] = Entry(
            key,
            value,
            (i % 10) / 10,
            1_700_000_000_000_000_000 + i,
            i + 1,
            Ternary((i % 3) - 1) if i % 5 == 0 else None,
            spec,
        )
    tg.layers[Layer.HOT]["empty"] = Entry("empty", b"", 0.25, 7, 1)
    tg.create("delta/a", b"alpha", timestamp_ns=1_700_000_001_000_000_000)
    tg.update("delta/a", b"alpha2", strength=0.5, timestamp_ns=1_700_000_002_000_000_000)
    tg.create("delta/b", b"beta", timestamp_ns=1_700_000_003_000_000_000)
    return tg


def entry_tuple(e: Entry) -> tuple[Any, ...]:
    return (e.key, e.value, e.strength, e.updated_at_ns, e.update_count, e.ternary, e.tensor)


def state(tg: Thermogram) -> dict[str, Any]:
    """Everything a thermogram persists, in comparable form."""
    return {
        "name": tg.name,
        "id": tg.id,
        "thermal": tg.thermal,
        "plasticity": tg.plasticity,
        "policy": tg.policy,
        "meta": tg.meta,
        "extras": tg.extras,
        "layers": {layer: sorted(entry_tuple(e) for e in tg.layers[layer].values()) for layer in Layer},
        "log_length": tg.log_length,
        "head": tg.head_hash,
        "dirty_start": tg.dirty_start,
        "tail": [r.encoded for r in tg.records[tg.dirty_start - tg.log_base :]],
    }
