"""Engram JSON export and the lossless JSONL dump, as a library (no CLI)."""

from __future__ import annotations

import io
import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.config.engine import ConsolidationPolicy, DirtySize, Manual, ThermalConfig, TimePeriod
from thermo_cli.engine.thermogram import Thermogram
from thermo_cli.errors import FormatError, ThermoError, ValidationError
from thermo_cli.formats import dump as exchange
from thermo_cli.formats import jsonl
from thermo_cli.model import Entry, HashScheme, Layer, TensorSpec, Ternary


def sample() -> Thermogram:
    """A thermogram with entries in all four layers, consolidated and dirty deltas, events."""
    policy = ConsolidationPolicy((DirtySize(10_000_000), TimePeriod(48), Manual()), False, True)
    extras = {"snn": {"weights": b"\x00\x01", "nan": float("nan"), "$odd": 1}}
    tg = Thermogram(name="sample", thermal=ThermalConfig.organic(), policy=policy, extras=extras)
    tg.create("text", "héllo".encode(), source="test")
    tg.create("bin", bytes(range(10)), strength=0.5)
    tg.create("tern", b"\x01", ternary=Ternary.NEG, observation_count=3, custom={"why": ["x", 1.5]})
    tg.create("vec", b"\x00\x00\x80\x3f" * 3, tensor=TensorSpec("F32", (3,)))
    tg.consolidate()
    tg.update("text", b"again", strength=0.7)
    tg.delete("bin")
    layers = tg.layers
    layers[Layer.WARM]["w"] = Entry("w", b"warm", 0.8, 1_000, 12)
    layers[Layer.COOL]["c"] = Entry("c", b"", 0.9, 2_000, 60, Ternary.POS)
    packed = TensorSpec("F32", (2, 2), "ternary", b"\x00\x00\x80\x3f" * 2, True, "absmean")
    layers[Layer.COLD]["t"] = Entry("t", b"\x05", 1.0, 3_000, 99, None, packed)
    tg.reinforce("w", 0.1)
    tg.meta.custom = {"owner": "me", "n": [1, 2]}
    return tg


def dump_of(tg: Thermogram) -> bytes:
    out = io.BytesIO()
    exchange.export_jsonl(tg, tg.records, out, log_length=tg.log_length, head_hash=tg.head_hash)
    return out.getvalue()


def load_dump(data: bytes) -> Thermogram:
    return exchange.import_dump(jsonl.iter_lines([data]))


# --- Engram JSON --------------------------------------------------------------------------------


def test_engram_export_has_every_layer_and_the_whole_history():
    tg = sample()
    out = io.BytesIO()
    counts = exchange.export_engram(tg, tg.records, out, exported_at_ns=5 * 10**9)
    doc = orjson.loads(out.getvalue())
    assert set(doc) == {"thermogram_id", "name", "state", "history", "events", "metadata"}
    assert doc["thermogram_id"] == tg.id and doc["name"] == "sample"
    layers = {(s["layer"], s["key"]) for s in doc["state"]}
    assert layers == {(L.label, k) for L in Layer for k in tg.layers[L]}
    assert counts["entries"] == len(doc["state"]) == doc["metadata"]["total_entries"]
    by_key = {s["key"]: s for s in doc["state"]}
    assert bytes(by_key["text"]["value"]) == "héllo".encode()
    assert by_key["c"]["ternary_strength"] == "Pos" and by_key["c"]["update_count"] == 60
    assert by_key["t"]["tensor"]["encoding"] == "ternary" and by_key["t"]["tensor"]["per_row"] is True
    # every delta, consolidated or not, in order, with the crate's field names and spellings
    assert [h["delta_type"] for h in doc["history"]] == ["Create"] * 4 + ["Update", "Delete"]
    assert [h["index"] for h in doc["history"]] == [0, 1, 2, 3, 5, 6]
    assert doc["history"][2]["ternary_strength"] == "Neg"
    assert all(h["timestamp"].endswith("+00:00") for h in doc["history"])
    assert {e["kind"] for e in doc["events"]} == {"consolidate", "reinforce"}
    assert doc["metadata"]["exported_at"] == "1970-01-01T00:00:05+00:00"
    assert doc["metadata"]["total_deltas"] == 6 and doc["metadata"]["total_consolidations"] == 1


def test_engram_export_of_empty_thermogram_is_valid_json():
    tg = Thermogram(name="empty")
    out = io.BytesIO()
    exchange.export_engram(tg, [], out)
    doc = orjson.loads(out.getvalue())
    assert doc["state"] == [] and doc["history"] == [] and doc["events"] == []


# --- JSONL dump -----------------------------------------------------------------------------------


def test_dump_round_trip_is_exact():
    tg = sample()
    data = dump_of(tg)
    back = load_dump(data)
    assert back.head_hash == tg.head_hash
    assert [r.hash for r in back.records] == [r.hash for r in tg.records]
    assert back.dirty_start == tg.dirty_start and back.name == tg.name and back.id == tg.id
    assert back.thermal == tg.thermal and back.plasticity == tg.plasticity and back.policy == tg.policy
    assert back.meta == tg.meta
    assert orjson.dumps(exchange.to_tagged(back.extras)) == orjson.dumps(exchange.to_tagged(tg.extras))
    assert math.isnan(back.extras["snn"]["nan"]) and back.extras["snn"]["weights"] == b"\x00\x01"
    for layer in Layer:
        assert dict(back.layers[layer]) == dict(tg.layers[layer])
    assert back.read("text") == b"again" and back.read("bin") is None
    assert back.verify_chain().ok
    assert dump_of(back) == data


def test_dump_keeps_legacy_deltas_and_their_hashes():
    from tests.conftest import FIXTURES
    from thermo_cli.formats.legacy import load_legacy

    tg = load_legacy((FIXTURES / "legacy" / "v0.5" / "ternary.thermo").read_bytes(), source="t")
    assert any(r.scheme is HashScheme.LEGACY for r in tg.records)
    back = load_dump(dump_of(tg))
    assert [(r.hash, r.scheme) for r in back.records] == [(r.hash, r.scheme) for r in tg.records]
    assert [r.strength for r in back.records] == [r.strength for r in tg.records]


def _rows(tg: Thermogram) -> list[dict]:
    return [orjson.loads(line) for line in dump_of(tg).splitlines()]


def _join(rows: list[dict]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda rows: rows[-1].update(hash="0" * 64), "hash does not match"),
        (lambda rows: rows[8].update(key="other"), "hash does not match"),
        (lambda rows: rows[9].update(prev_hash="1" * 64), "prev_hash does not link"),
        (lambda rows: rows[9].update(index=99), "index: expected record"),
        (lambda rows: rows[9].update(kind="mystery"), '"kind": expected'),
        (lambda rows: rows[1].update(layer="tepid"), "layer: expected hot"),
        (lambda rows: rows[1].update(strength=2), "strength: expected a number in [-1, 1]"),
        (lambda rows: rows[1].update(extra=1), "unknown field"),
        (lambda rows: rows.insert(2, dict(rows[1])), "appears twice"),
        (lambda rows: rows.append(dict(rows[1])), "entry lines must come before"),
        (lambda rows: rows[9].update(scheme="v3"), "scheme"),
        (lambda rows: rows[0].update(version=2), "version 2 is not supported"),
        (lambda rows: rows[0].update(format="other"), '"format": expected'),
        (lambda rows: rows[0]["meta"].pop("thermal"), "missing field 'thermal'"),
    ],
)
def test_altered_dumps_are_refused_naming_the_line(edit, message):
    rows = _rows(sample())
    edit(rows)
    with pytest.raises(ThermoError) as info:
        load_dump(_join(rows))
    assert message in str(info.value)
    assert str(info.value).startswith("line ")


def test_truncated_dump_is_refused():
    rows = _rows(sample())
    with pytest.raises(FormatError, match="truncated"):
        load_dump(_join(rows[:-1]))
    with pytest.raises(FormatError, match="empty input"):
        load_dump(b"")
    with pytest.raises(ValidationError, match="line 1: expected the export header"):
        load_dump(_join(rows[1:]))


# --- tagged JSON --------------------------------------------------------------------------------

_cbor_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64) + 1, 2**64 - 1)
    | st.floats()
    | st.text(max_size=6)
    | st.binary(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3),
    max_leaves=12,
)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(_cbor_values)
def test_tagged_json_round_trip(value):
    text = orjson.dumps(exchange.to_tagged(value))
    assert _same(exchange.from_tagged(orjson.loads(text)), value)


def test_tagged_json_escapes_dollar_maps():
    value = {"$b64": "not bytes"}
    assert exchange.to_tagged(value) == {"$map": {"$b64": "not bytes"}}
    assert exchange.from_tagged(exchange.to_tagged(value)) == value
    with pytest.raises(ValidationError):
        exchange.from_tagged({"$float": "many"})


def test_dump_round_trip_keeps_times_before_1970_and_packed_tensors():
    """A migrated crate file may hold any instant of signed 64-bit nanoseconds; F4/F6 tensors
    are exported as bytes: both must read back (they were refused before)."""
    tg = Thermogram(name="old")
    tg.create("w4", bytes(range(8)), tensor=TensorSpec("F4", (2, 8)))
    tg.layers[Layer.COLD]["e"] = Entry("e", b"x", 1.0, -(2**63), 1)
    tg.append_event("import", {"n": 1}, timestamp_ns=-2208988800 * 10**9)
    tg.meta.created_at_ns = -1
    back = load_dump(dump_of(tg))
    assert back.head_hash == tg.head_hash and back.meta.created_at_ns == -1
    assert back.records[-1].timestamp_ns == -2208988800 * 10**9
    assert back.layers[Layer.COLD]["e"].updated_at_ns == -(2**63)
    assert back.read("w4") == bytes(range(8))


@pytest.mark.clock
def test_an_engram_export_is_dated_by_the_thermogram_clock():
    from thermo_cli.config.clock import fixed_clock

    tg = Thermogram(clock=fixed_clock(5 * 10**9))
    out = io.BytesIO()
    exchange.export_engram(tg, [], out)
    assert orjson.loads(out.getvalue())["metadata"]["exported_at"] == "1970-01-01T00:00:05+00:00"
