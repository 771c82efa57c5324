"""The golden packing vectors in format/vectors/ternary/ hold, and agree with a bit loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from thermo_cli.codec.ternary.packing import PackedTernary, pack, unpack
from thermo_cli.codec.ternary.quantize import adaptive_threshold, packed_from_float

VECTORS = json.loads(
    (Path(__file__).parents[3] / "format" / "vectors" / "ternary" / "packing.json").read_text()
)


def bit_loop_pack(values: list[int]) -> bytes:
    """Independent one-weight-at-a-time reference of the layout."""
    out = bytearray((len(values) + 3) // 4)
    for i, v in enumerate(values):
        out[i // 4] |= {0: 0b00, 1: 0b01, -1: 0b10}[v] << (2 * (i % 4))
    return bytes(out)


def bit_loop_unpack(data: bytes, length: int) -> list[int]:
    return [{0b00: 0, 0b01: 1, 0b10: -1, 0b11: 0}[(data[i // 4] >> (2 * (i % 4))) & 3] for i in range(length)]


@pytest.mark.parametrize("vec", VECTORS["pack"], ids=lambda v: v["name"])
def test_pack_vectors(vec):
    expected = bytes.fromhex(vec["packed_hex"])
    assert len(expected) == (vec["length"] + 3) // 4
    assert bit_loop_pack(vec["values"]) == expected
    assert pack(np.array(vec["values"], dtype=np.int8)).tobytes() == expected
    assert PackedTernary.from_values(vec["values"]).to_bytes() == expected
    assert unpack(expected, vec["length"]).tolist() == vec["values"]


@pytest.mark.parametrize("vec", VECTORS["unpack"], ids=lambda v: v["name"])
def test_unpack_vectors(vec):
    data = bytes.fromhex(vec["packed_hex"])
    assert bit_loop_unpack(data, vec["length"]) == vec["values"]
    assert unpack(data, vec["length"]).tolist() == vec["values"]
    assert [int(PackedTernary(data, vec["length"]).get(i)) for i in range(vec["length"])] == vec["values"]


@pytest.mark.parametrize("vec", VECTORS["quantize"], ids=lambda v: v["name"])
def test_quantize_vectors(vec):
    weights = np.array(vec["weights"], dtype=np.float32)
    if vec["threshold"] is None:
        assert adaptive_threshold(weights) == pytest.approx(vec["adaptive_threshold"], rel=1e-7)
    packed = packed_from_float(weights, vec["threshold"])
    assert packed.unpack().tolist() == vec["values"]
    assert packed.to_bytes() == bit_loop_pack(vec["values"])


def test_crate_written_packed_values_round_trip(fixtures_dir):
    """Values the Rust crate wrote into its ternary fixture are packed weights: they use
    no reserved code and re-pack to the very same bytes."""
    doc = json.loads((fixtures_dir / "legacy" / "v0.5" / "ternary.thermo").read_text())
    blobs = [bytes(e["value"]) for layer in ("hot_entries", "cold_entries") for e in doc[layer].values()]
    blobs += [bytes(d["value"]) for d in doc["dirty_chain"]["deltas"] if len(d["value"]) == 8]
    assert len(blobs) >= 3
    for blob in blobs:
        values = unpack(blob, 4 * len(blob))
        assert bit_loop_unpack(blob, 4 * len(blob)) == values.tolist()
        assert pack(values).tobytes() == blob


DEQUANTIZE = json.loads(
    (Path(__file__).parents[3] / "format" / "vectors" / "ternary" / "dequantize.json").read_text()
)


@pytest.mark.parametrize("case", DEQUANTIZE["cases"], ids=[c["name"] for c in DEQUANTIZE["cases"]])
def test_dequantize_vectors(case):
    from thermo_cli.codec.tensors import value_to_array
    from thermo_cli.model import TensorSpec

    packed = bytes.fromhex(case["packed_hex"])
    assert packed == pack(np.array(case["codes"], dtype=np.int8)).tobytes()
    spec = TensorSpec(
        case["dtype"],
        tuple(case["shape"]),
        "ternary",
        bytes.fromhex(case["scales_f32le_hex"]),
        case["per_row"],
        "reference",
    )
    out = np.ascontiguousarray(value_to_array(packed, spec))
    assert out.astype(out.dtype.newbyteorder("<")).tobytes().hex() == case["expected_le_hex"]


def test_dequantize_vectors_decide_each_rounding_rule():
    """The vectors are not all trivially exact: the BF16 ties and the F8 overflows must be there."""
    expected = {c["name"]: c["expected_le_hex"] for c in DEQUANTIZE["cases"]}
    assert expected["BF16: 1 + 2^-8 is a tie, to the even 1.0"].startswith("803f")
    assert expected["F8_E4M3: 300 rounds to 288; 500 overflows to NaN (no infinities)"] == "79f97f7f"
    assert expected["F8_E5M2: 60000 rounds to 57344; 70000 overflows to +-inf"] == "7bfb7cfc"
