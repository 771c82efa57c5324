"""The crate's Engram exports read as an import source; thermo's own exports too."""

from __future__ import annotations

import io
import json

import pytest

from tests.formats.legacy._fixtures import fixture_bytes
from thermo_cli.codec.timestamps import parse_rfc3339
from thermo_cli.errors import LegacyFormatError
from thermo_cli.formats.legacy import load_legacy, verify_legacy
from thermo_cli.formats.legacy.engram import load_engram
from thermo_cli.model import Event, Layer


@pytest.mark.parametrize("version", ["v0.4", "v0.5"])
def test_crate_export_imports_every_state_item(version):
    data = fixture_bytes(version, "export_small.json")
    doc = json.loads(data)
    tg = load_engram(data, source="export_small.json")
    assert tg.id == doc["thermogram_id"] and tg.name == "small"
    assert len(tg.layers[Layer.HOT]) == len(doc["state"]) == doc["metadata"]["total_entries"]
    for item in doc["state"]:
        e = tg.layers[Layer.HOT][item["key"]]
        assert e.value == bytes(item["value"])
        assert e.strength == item["strength"] and e.update_count == item["update_count"]
        assert e.ternary is None
        assert e.updated_at_ns == parse_rfc3339(doc["metadata"]["last_consolidation"])
    meta = doc["metadata"]
    assert tg.meta.created_at_ns == parse_rfc3339(meta["thermogram_created_at"])
    assert (tg.meta.total_deltas, tg.meta.total_consolidations) == (
        meta["total_deltas"],
        meta["total_consolidations"],
    )
    (event,) = tg.records
    assert isinstance(event, Event) and event.kind == "import" and event.prev_hash is None
    assert event.fields["exported_at_ns"] == parse_rfc3339(meta["exported_at"])
    assert event.fields["history"] == [] and len(event.fields["source_sha256"]) == 32
    assert tg.head_hash == event.hash and tg.dirty_count == 0


@pytest.mark.parametrize("version", ["v0.4", "v0.5"])
def test_export_matches_the_crates_consolidated_file_keys(version):
    tg = load_engram(fixture_bytes(version, "export_small.json"))
    small = load_legacy(fixture_bytes(version, "small.thermo"))
    # the crate exported a consolidated clone: the same visible keys
    assert tg.keys() == small.keys()


def test_key_listed_twice_is_hot_then_cold():
    doc = json.loads(fixture_bytes("v0.5", "export_small.json"))
    first = dict(doc["state"][0])
    second = dict(first, value=[1, 2, 3], strength=0.9)
    doc["state"] = [first, second]
    tg = load_engram(json.dumps(doc).encode())
    key = first["key"]
    assert tg.layers[Layer.HOT][key].value == bytes(first["value"])
    assert tg.layers[Layer.COLD][key].value == b"\x01\x02\x03"
    assert tg.read(key) == bytes(first["value"])
    doc["state"] = [first] * 5
    with pytest.raises(LegacyFormatError, match=r"state\[0\]\.key.*listed 5 times"):
        load_engram(json.dumps(doc).encode())


def test_history_rows_are_kept_whole():
    doc = json.loads(fixture_bytes("v0.5", "export_small.json"))
    row = {
        "timestamp": "2026-11-22T16:06:30.5+00:00",
        "delta_type": "Merge",
        "key": "k",
        "strength": 0.5,
        "ternary_strength": "Neg",
        "hash": "ab" * 32,
        "extra": {"kept": [1]},
    }
    doc["history"] = [row]
    tg = load_engram(json.dumps(doc).encode())
    assert tg.records[0].fields["history"] == [row]
    doc["history"] = [dict(row, delta_type="Rename")]
    with pytest.raises(LegacyFormatError, match=r"history\[0\]\.delta_type"):
        load_engram(json.dumps(doc).encode())


def test_thermos_own_export_round_trips_all_layers():
    exchange = pytest.importorskip("thermo_cli.formats.dump")
    tg = load_legacy(fixture_bytes("v0.5", "fourtemp.thermo"))
    buf = io.BytesIO()
    exchange.export_engram(tg, tg.records, buf)
    back = load_engram(buf.getvalue())
    for layer in Layer:
        assert dict(back.layers[layer]) == dict(tg.layers[layer])
    assert len(back.records[0].fields["history"]) == len(tg.records)


@pytest.mark.parametrize(
    ("edit", "path"),
    [
        (lambda d: d.pop("thermogram_id"), "thermogram_id"),
        (lambda d: d["state"][1].__setitem__("value", [1, 256]), "state[1].value[1]"),
        (lambda d: d["state"][0].__setitem__("update_count", -1), "state[0].update_count"),
        (lambda d: d["metadata"].__setitem__("exported_at", "now"), "metadata.exported_at"),
        (lambda d: d["state"][0].__setitem__("layer", "lukewarm"), "state[0].layer"),
        (lambda d: d.__setitem__("history", None), "history"),
    ],
)
def test_bad_exports_name_the_path(edit, path):
    doc = json.loads(fixture_bytes("v0.5", "export_small.json"))
    edit(doc)
    with pytest.raises(LegacyFormatError) as info:
        load_engram(json.dumps(doc).encode(), source="export.json")
    assert info.value.path == path


def test_verify_of_an_engram_import_says_there_is_no_chain():
    report = verify_legacy(load_engram(fixture_bytes("v0.4", "export_small.json")), path="e.json")
    assert report.ok and report.format.startswith("Engram")
    assert "no hash chain" in report.notes[0]
