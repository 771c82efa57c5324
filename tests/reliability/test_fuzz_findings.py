"""Inputs the fuzzers found that broke the error contract, kept as regression tests.

Each test states the contract (only ``thermo_cli.errors`` classes escape; the CLI exits 3
with one short line, never 70). They were strict xfails while the bugs were open.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from fuzz.targets import safetensors_bytes
from tests.reliability.conftest import LEGACY, Thermo
from thermo_cli.errors import LegacyFormatError, ThermoError
from thermo_cli.formats.jsonl import DeltaParser

MiB = 1 << 20
LAYERS = ("hot_entries", "warm_entries", "cool_entries", "cold_entries")


def test_jsonl_integer_tensor_holding_an_object_is_a_clean_error() -> None:
    line = b'{"op": "create", "key": "0", "value": {"dtype": "i8", "shape": [], "data": [{}]}}'
    with pytest.raises(ThermoError):
        DeltaParser().parse_line(1, line)


def _year_1013_engram() -> bytes:
    doc = orjson.loads((LEGACY / "v0.5" / "export_small.json").read_bytes())
    doc["metadata"]["last_consolidation"] = "1013-11-22T16:06:30.479889352+00:00"
    return orjson.dumps(doc)


def test_engram_with_a_year_1013_timestamp_is_a_clean_error() -> None:
    from thermo_cli.formats.legacy.engram import load_engram

    with pytest.raises(LegacyFormatError) as info:
        load_engram(_year_1013_engram(), source="fuzz").state_digest()
    assert info.value.path == "metadata.last_consolidation"
    assert "outside the supported range 1677-09-21..2262-04-11" in str(info.value)


def test_import_engram_of_a_year_1013_timestamp_exits_3(tmp_path: Path) -> None:
    src = tmp_path / "export.json"
    src.write_bytes(_year_1013_engram())
    run = Thermo()("import-engram", src, tmp_path / "new.thermo")
    assert run.code == 3 and "metadata.last_consolidation" in run.err, run.err
    assert not (tmp_path / "new.thermo").exists()


def test_migrate_of_an_entry_updated_in_1013_exits_cleanly(tmp_path: Path) -> None:
    doc = orjson.loads((LEGACY / "v0.5" / "consolidated.thermo").read_bytes())
    layer = next(name for name in LAYERS if doc[name])
    next(iter(doc[layer].values()))["updated_at"] = "1013-01-01T00:00:00Z"
    src = tmp_path / "old.thermo"
    src.write_bytes(orjson.dumps(doc))
    run = Thermo()("migrate", src, tmp_path / "new.thermo")
    assert run.code == 3 and "outside the supported range 1677-09-21..2262-04-11" in run.err, run.err
    assert not (tmp_path / "new.thermo").exists()


def test_safetensors_error_for_a_megabyte_name_is_short(tmp_path: Path) -> None:
    from thermo_cli.operations.safetensors import import_safetensors

    src = tmp_path / "in.safetensors"
    src.write_bytes(
        safetensors_bytes({"k" * MiB: {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(16))
    )
    with pytest.raises(ThermoError) as info:
        import_safetensors([src], tmp_path / "out.thermo")
    assert len(str(info.value)) < 1000


def test_legacy_error_for_a_megabyte_key_is_short() -> None:
    from thermo_cli.formats.legacy import load_legacy

    doc = orjson.loads((LEGACY / "v0.5" / "consolidated.thermo").read_bytes())
    layer = next(name for name in LAYERS if doc[name])
    entry = doc[layer].pop(next(iter(doc[layer])))
    entry["key"] = "k" * MiB
    doc[layer]["k" * MiB] = entry
    with pytest.raises(ThermoError) as info:
        load_legacy(orjson.dumps(doc))
    assert len(str(info.value)) < 1000
