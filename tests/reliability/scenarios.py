"""The writing commands the crash harness kills, each with inputs built here from a seed.

Sizes are chosen so that each command holds the writer lock for a few hundred
milliseconds (long enough for random kills to land while it writes) and so that
snapshots stay cheap; ``scale`` multiplies them for the slow suite.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import orjson

from tests.reliability.harness import Scenario
from thermo_cli import store
from thermo_cli.config.engine import ConsolidationPolicy
from thermo_cli.engine.thermogram import Thermogram

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def _delta_line(i: int, rng: np.random.Generator, keys: int) -> dict[str, object]:
    doc: dict[str, object] = {
        "op": "update" if i % 7 else "create",
        "key": f"k{i % keys:05d}",
        "strength": round(float(rng.uniform(0.05, 1.0)), 4),
        "source": "crash",
        "id": f"00000000-0000-4000-8000-{i:012d}",
        "timestamp": T0 + i * 1_000_000,
    }
    if i % 5 == 0:
        data = [round(float(x), 5) for x in rng.normal(size=16)]
        doc["value"] = {"dtype": "f32", "shape": [16], "data": data}
    else:
        doc["value"] = f"value {i} " + "x" * int(rng.integers(0, 120))
    return doc


def write_deltas(path: Path, n: int, *, seed: int, start: int = 0, keys: int = 997) -> Path:
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        for i in range(start, start + n):
            f.write(orjson.dumps(_delta_line(i, rng, keys)) + b"\n")
    return path


def base_thermogram(path: Path, *, entries: int, dirty: int, policy: str, seed: int) -> Path:
    """A file with ``entries`` consolidated entries and ``dirty`` deltas after the last consolidation."""
    from thermo_cli.formats.jsonl import DeltaParser

    tg = Thermogram(name="crash", policy=ConsolidationPolicy.preset("manual"))
    parser = DeltaParser(source="base")
    rng = np.random.default_rng(seed)
    tg.apply_many(parser.from_obj(i, _delta_line(10_000_000 + i, rng, entries)) for i in range(entries))
    tg.consolidate()
    tg.apply_many(parser.from_obj(i, _delta_line(20_000_000 + i, rng, entries)) for i in range(dirty))
    tg.set_policy(ConsolidationPolicy.preset(policy))
    store.create(path, tg)
    return path


def apply_scenario(scale: float = 1.0) -> Scenario:
    def prep(d: Path) -> tuple[Path, list[str]]:
        target = base_thermogram(d / "apply.thermo", entries=300, dirty=100, policy="manual", seed=1)
        batch = write_deltas(d / "batch.jsonl", int(6000 * scale), seed=2)
        return target, ["apply", str(target), str(batch), "--no-auto-consolidate"]

    return Scenario("apply", prep, deterministic=True)


def apply_autoconsolidate_scenario(scale: float = 1.0) -> Scenario:
    def prep(d: Path) -> tuple[Path, list[str]]:
        target = base_thermogram(d / "auto.thermo", entries=300, dirty=400, policy="default", seed=3)
        batch = write_deltas(d / "batch.jsonl", int(2500 * scale), seed=4)
        return target, ["apply", str(target), str(batch)]

    return Scenario("apply+auto-consolidate", prep)


def consolidate_scenario(scale: float = 1.0) -> Scenario:
    def prep(d: Path) -> tuple[Path, list[str]]:
        target = base_thermogram(
            d / "cons.thermo", entries=500, dirty=int(5000 * scale), policy="manual", seed=5
        )
        return target, ["consolidate", str(target)]

    return Scenario("consolidate", prep)


def write_checkpoint(path: Path, *, tensors: int, rows: int, cols: int, seed: int) -> Path:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    for i in range(tensors):
        data[f"layers.{i}.weight"] = (rng.normal(size=(rows, cols)) * 0.05).astype(np.float32)
        data[f"layers.{i}.bias"] = rng.normal(size=(cols,)).astype(np.float16)
    data["embed.ids"] = rng.integers(0, 1000, size=(rows,), dtype=np.int64)
    save_file(data, str(path), metadata={"model": "crash-test", "seed": str(seed)})
    return path


def import_scenario(scale: float = 1.0) -> Scenario:
    def prep(d: Path) -> tuple[Path, list[str]]:
        model = write_checkpoint(d / "model.safetensors", tensors=int(24 * scale), rows=256, cols=256, seed=6)
        out = d / "imported.thermo"
        return out, ["import-safetensors", str(model), str(out)]

    return Scenario("import-safetensors", prep, creates=True)


def quantize_scenario(scale: float = 1.0) -> Scenario:
    def prep(d: Path) -> tuple[Path, list[str]]:
        from thermo_cli.operations.safetensors import import_safetensors

        model = write_checkpoint(d / "q.safetensors", tensors=int(24 * scale), rows=256, cols=256, seed=7)
        target = d / "quant.thermo"
        import_safetensors([model], target)
        return target, ["quantize", str(target), "--layer", "cool", "--force"]

    return Scenario("quantize", prep)


def snn_available() -> bool:
    return importlib.util.find_spec("thermo_cli.cli.snn") is not None


def snn_scenario(scale: float = 1.0) -> Scenario:
    def prep(d: Path) -> tuple[Path, list[str]]:
        from thermo_cli.operations.snn.config import SNNConfig
        from thermo_cli.operations.snn.runner import attach_network

        dim = 256
        tg = Thermogram(name="snn", policy=ConsolidationPolicy.preset("manual"))
        attach_network(tg, SNNConfig(num_neurons=100, input_dim=dim), seed=11)
        target = d / "snn.thermo"
        store.create(target, tg)
        rng = np.random.default_rng(12)
        centres = rng.normal(size=(6, dim))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        n = int(3000 * scale)
        acts = centres[rng.integers(0, 6, size=n)] + rng.normal(scale=0.3 / np.sqrt(dim), size=(n, dim))
        np.save(d / "acts.npy", acts.astype(np.float32))
        return target, ["snn", "run", str(target), "--input", str(d / "acts.npy")]

    return Scenario("snn run", prep)


def all_scenarios(scale: float = 1.0) -> list[Scenario]:
    out = [
        apply_scenario(scale),
        apply_autoconsolidate_scenario(scale),
        consolidate_scenario(scale),
        import_scenario(scale),
        quantize_scenario(scale),
    ]
    if snn_available():
        out.append(snn_scenario(scale))
    return out
