"""Inputs the fuzzers found that still break the error contract, kept as strict xfails.

Each test states the contract (only ``thermo_cli.errors`` classes escape; the CLI exits 3
with one short line, never 70) and is marked ``xfail(strict=True)`` with the place of the
bug: it passes while the bug is there and fails as soon as the bug is fixed, so the
marker is removed then and the test guards the fix.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import orjson
import pytest

from fuzz.targets import safetensors_bytes
from tests.reliability.conftest import LEGACY, Thermo
from thermo_cli.errors import ThermoError
from thermo_cli.jsonl import DeltaParser

MiB = 1 << 20
LAYERS = ("hot_entries", "warm_entries", "cool_entries", "cold_entries")


@pytest.mark.xfail(strict=True, raises=TypeError,
                   reason="thermo_cli/jsonl.py _integer_bytes: flat.astype(np.float64) on an object array "
                          "holding a dict raises TypeError (thermo apply exits 70)")
def test_jsonl_integer_tensor_holding_an_object_is_a_clean_error() -> None:
    line = b'{"op": "create", "key": "0", "value": {"dtype": "i8", "shape": [], "data": [{}]}}'
    with pytest.raises(ThermoError):
        DeltaParser().parse_line(1, line)


def _year_1013_engram() -> bytes:
    doc = orjson.loads((LEGACY / "v0.5" / "export_small.json").read_bytes())
    doc["metadata"]["last_consolidation"] = "1013-11-22T16:06:30.479889352+00:00"
    return orjson.dumps(doc)


@pytest.mark.xfail(strict=True, raises=OverflowError,
                   reason="timestamps outside i64 nanoseconds (before 1677 or after 2262; the crate's "
                          "chrono accepts 0001..9999) reach thermo_cli/audit/state.py leaf_bytes -> "
                          "thermo_cli/cbor.py head(): OverflowError (thermo import-engram exits 70)")
def test_engram_with_a_year_1013_timestamp_is_a_clean_error() -> None:
    from thermo_cli.legacy.engram import load_engram

    with contextlib.suppress(ThermoError):
        load_engram(_year_1013_engram(), source="fuzz").state_digest()


@pytest.mark.xfail(strict=True, reason="as above: `thermo migrate` of a crate file whose entry was updated "
                                       "in 1013 exits 70 (OverflowError in the container writer)")
def test_migrate_of_an_entry_updated_in_1013_exits_cleanly(tmp_path: Path) -> None:
    doc = orjson.loads((LEGACY / "v0.5" / "consolidated.thermo").read_bytes())
    layer = next(name for name in LAYERS if doc[name])
    next(iter(doc[layer].values()))["updated_at"] = "1013-01-01T00:00:00Z"
    src = tmp_path / "old.thermo"
    src.write_bytes(orjson.dumps(doc))
    run = Thermo()("migrate", src, tmp_path / "new.thermo")
    assert run.code in (0, 3), run.err


@pytest.mark.xfail(strict=True, reason="thermo_cli/safetensors_io: the error names the whole 1 MiB tensor "
                                       "name, a 1 MiB 'one-line' message (truncate names in messages)")
def test_safetensors_error_for_a_megabyte_name_is_short(tmp_path: Path) -> None:
    from thermo_cli.safetensors_io import import_safetensors

    src = tmp_path / "in.safetensors"
    src.write_bytes(safetensors_bytes({"k" * MiB: {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
                                      bytes(16)))
    with pytest.raises(ThermoError) as info:
        import_safetensors([src], tmp_path / "out.thermo")
    assert len(str(info.value)) < 1000


@pytest.mark.xfail(strict=True, reason="thermo_cli/legacy/jsondoc.py: the JSON path in the error quotes the "
                                       "whole 1 MiB key (truncate keys in paths)")
def test_legacy_error_for_a_megabyte_key_is_short() -> None:
    from thermo_cli.legacy import load_legacy

    doc = orjson.loads((LEGACY / "v0.5" / "consolidated.thermo").read_bytes())
    layer = next(name for name in LAYERS if doc[name])
    entry = doc[layer].pop(next(iter(doc[layer])))
    entry["key"] = "k" * MiB
    doc[layer]["k" * MiB] = entry
    with pytest.raises(ThermoError) as info:
        load_legacy(orjson.dumps(doc))
    assert len(str(info.value)) < 1000
