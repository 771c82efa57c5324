"""Every genuine crate file reads back exactly what the crate's own read() returned."""

from __future__ import annotations

import hashlib

import pytest

from tests.formats.legacy._fixtures import TAMPERED, fixture_bytes, fixture_ids, manifest_entries
from thermo_cli.codec.timestamps import parse_rfc3339
from thermo_cli.config.engine import (
    ConsolidationPolicy,
    DeltaCount,
    DirtySize,
    Manual,
    PlasticityPolicy,
    ThermalConfig,
    TimePeriod,
)
from thermo_cli.formats.legacy import format_z, load_legacy
from thermo_cli.formats.legacy.writer import dump_legacy
from thermo_cli.model import U64_MAX, Delta, DeltaType, HashScheme, Layer, Ternary, f32

CASES = manifest_entries()
IDS = fixture_ids()


def _load(version: str, name: str):
    return load_legacy(fixture_bytes(version, name), source=f"{version}/{name}")


def _triggers(raw: list) -> tuple:
    out = []
    for t in raw:
        if t == "Manual":
            out.append(Manual())
        elif "DeltaCount" in t:
            out.append(DeltaCount(t["DeltaCount"]))
        elif "TimePeriod" in t:
            out.append(TimePeriod(t["TimePeriod"]["hours"]))
        else:
            out.append(DirtySize(t["DirtySize"]["bytes"]))
    return tuple(out)


@pytest.mark.parametrize(("version", "info"), CASES, ids=IDS)
def test_layers_chain_and_metadata_match_manifest(version, info):
    tg = _load(version, info["file"])
    for label, count in info["layers"].items():
        assert len(tg.layers[Layer.parse(label)]) == count
    if version == "v0.4":
        assert not tg.layers[Layer.WARM] and not tg.layers[Layer.COOL]
    deltas = [r for r in tg.records if isinstance(r, Delta)]
    assert len(tg.records) == len(deltas) == info["chain_len"]
    assert all(d.scheme is HashScheme.LEGACY and d.encoded for d in deltas)
    assert tg.dirty_start == 0 and tg.log_base == 0
    assert tg.dirty_count == info["chain_len"]
    assert tg.extras["legacy"]["head_hash"] == info["head_hash"]
    assert tg.head_hash == info["head_hash"]
    assert tg.meta.total_deltas == info["total_deltas"]
    assert tg.meta.total_consolidations == info["total_consolidations"]
    assert tg.plasticity.policy.value == info["plasticity_policy"]
    assert tg.policy.triggers == _triggers(info["consolidation_triggers"])
    types: dict[str, int] = {}
    for d in deltas:
        types[d.delta_type.legacy_name] = types.get(d.delta_type.legacy_name, 0) + 1
    assert types == info["delta_types"]
    assert tg.extras["legacy"]["version"] == version[1:]


@pytest.mark.parametrize(("version", "info"), CASES, ids=IDS)
def test_reads_return_the_manifest_bytes(version, info):
    tg = _load(version, info["file"])
    for key, expected in info["reads"].items():
        got = tg.read_entry(key)
        if expected is None:
            assert got is None, key
            continue
        assert got is not None, key
        assert len(got.value) == expected["len"]
        assert hashlib.sha256(got.value).hexdigest() == expected["sha256"], key
        if "hex" in expected:
            assert got.value.hex() == expected["hex"]
        assert got.source == expected["from"], key
        assert got.strength == expected["strength"], key


@pytest.mark.parametrize(("version", "info"), CASES, ids=IDS)
def test_keys_omit_keys_deleted_in_the_dirty_chain(version, info):
    tg = _load(version, info["file"])
    visible = {k for k, r in info["reads"].items() if r is not None}
    deleted = {k for k, r in info["reads"].items() if r is None}
    assert set(tg.keys()) == visible
    # the crate's keys() listed deleted keys too; ours is the manifest minus those
    assert set(tg.keys()) == set(info["keys_visible"]) - deleted


@pytest.mark.parametrize(
    ("version", "info"),
    [c for c in CASES if c[1]["file"] not in TAMPERED],
    ids=[i for i, c in zip(IDS, CASES, strict=True) if c[1]["file"] not in TAMPERED],
)
def test_consolidate_works_on_legacy_deltas_and_reads_agree(version, info):
    tg = _load(version, info["file"])
    tg.consolidate()
    assert tg.dirty_count == 0
    for key, expected in info["reads"].items():
        value = tg.read(key)
        prune = tg.plasticity.prune_threshold
        pruned = value is None and expected is not None and expected["strength"] < prune
        if expected is None or pruned:
            assert value is None, key
        else:
            assert hashlib.sha256(value).hexdigest() == expected["sha256"], key
    # the legacy deltas are still in the log, followed by the consolidation event
    assert sum(isinstance(r, Delta) for r in tg.records) == info["chain_len"]
    assert tg.records[-1].kind == "consolidate"
    assert tg.records[-1].prev_hash == (info["head_hash"] if info["chain_len"] else None)


@pytest.mark.parametrize(("version", "info"), CASES, ids=IDS)
def test_writer_reproduces_the_crate_file_byte_for_byte(version, info):
    data = fixture_bytes(version, info["file"])
    tg = load_legacy(data)
    assert dump_legacy(tg, version=version[1:]) == data


@pytest.mark.parametrize("version", ["v0.4", "v0.5"])
def test_custom_metadata_fixture_every_field(version):
    tg = _load(version, "custom_metadata.thermo")
    assert tg.name == 'custom "quoted" ünïcode/name'
    assert tg.plasticity.policy is PlasticityPolicy.WTA
    assert tg.plasticity.novelty_threshold == f32(0.55)
    assert tg.plasticity.learning_rate == f32(0.3)
    assert tg.policy == ConsolidationPolicy((DirtySize(10_000_000), Manual()), False, True)
    assert tg.meta.custom == {
        "nested": {"deep": {"flag": True, "list": [1, [2, [3]]], "none": None, "x": -1.5}},
        "owner": {"name": "alice", "tags": ["a", "b", "c"]},
        "ratio": 0.125,
        "version": 3,
    }
    d0, d1, d2, d3 = tg.records
    assert d0.key == "ключ/🔑" and d0.custom == {"reason": "first", "score": 0.5}
    assert d0.value == "значение".encode()
    assert d1.key == 'path/with"quote\\and\\backslash' and d1.custom == ["array", "custom", 1]
    assert d2.delta_type is DeltaType.UPDATE and d2.observation_count == 5
    assert d2.custom == "plain string custom" and d2.value == bytes([0, 127, 128, 255])
    assert d2.strength == f32(0.7)
    assert d3.source == "s\x01ctrl\tsource\n" and d3.custom is None
    assert d0.prev_hash is None and d1.prev_hash == d0.hash


def test_thermal_config_04_scalar_form_is_mapped():
    tg = _load("v0.4", "custom_metadata.thermo")
    expected = ThermalConfig.from_legacy_04(
        crystallization_threshold=f32(0.5),
        min_observations=2,
        prune_threshold=f32(0.02),
        allow_warming=False,
        warming_delta=f32(0.125),
    )
    assert tg.thermal == expected
    assert tg.thermal.promotion_thresholds[2] == f32(0.5)
    assert tg.thermal.min_observations == (2, 10, 50, U64_MAX)


def test_thermal_config_05_arrays_and_usize_max():
    tg = _load("v0.5", "custom_metadata.thermo")
    assert tg.thermal.min_observations == (2, 4, 8, U64_MAX)
    assert tg.thermal.allow_demotion == (False, False, True, True)
    assert tg.thermal.decay_rates == tuple(f32(x) for x in (0.1, 0.01, 0.001, 0.0001))
    assert tg.thermal.crystallization_threshold == f32(0.5)
    four = _load("v0.5", "fourtemp.thermo")
    assert four.thermal.crystallization_threshold == f32(1.5)
    assert four.thermal.min_observations == (1, 2, 3, U64_MAX)


@pytest.mark.parametrize("version", ["v0.4", "v0.5"])
def test_ternary_strengths_and_observation_counts(version):
    tg = _load(version, "ternary.thermo")
    flip = tg.layers[Layer.HOT]["w/flip"]
    assert flip.ternary is Ternary.NEG and flip.strength == -1.0 and flip.update_count == 2
    assert tg.layers[Layer.COLD]["w/pos"].ternary is Ternary.POS
    new, upd, merge, plain = tg.records
    assert (new.ternary, new.observation_count, new.strength) == (Ternary.NEG, 3, -1.0)
    assert (upd.ternary, upd.observation_count) == (Ternary.ZERO, 0)
    assert merge.delta_type is DeltaType.MERGE and merge.observation_count is None
    assert plain.ternary is None and plain.strength == 0.5


@pytest.mark.parametrize(("version", "info"), CASES, ids=IDS)
def test_timestamps_keep_nanoseconds(version, info):
    data = fixture_bytes(version, info["file"])
    tg = load_legacy(data)
    for d in tg.records:
        assert format_z(d.timestamp_ns).encode() in data
    for layer in tg.layers.values():
        for e in layer.values():
            assert format_z(e.updated_at_ns).encode() in data
    assert format_z(tg.meta.created_at_ns).encode() in data


def test_nanosecond_timestamps_are_exact():
    tg = _load("v0.5", "ternary.thermo")
    assert tg.records[2].timestamp_ns == parse_rfc3339("2026-11-22T16:06:30Z") + 5
    assert tg.records[1].timestamp_ns % 1000 == 925  # …480190925Z


def test_fourtemp_all_four_layers():
    tg = _load("v0.5", "fourtemp.thermo")
    assert set(tg.layers[Layer.WARM]) == {"mem/c", "direct/warm"}
    assert set(tg.layers[Layer.COOL]) == {"direct/cool", "mem/b"}
    assert tg.layers[Layer.COLD]["direct/cold"].update_count == 80
    assert tg.layers[Layer.HOT]["shadow"].strength == f32(0.4)
    assert tg.layers[Layer.COLD]["shadow"].strength == f32(0.9)
