"""Write (``--write``) or check the ternary dequantization vectors, format/vectors/ternary/dequantize.json.

Each case is a ternary tensor entry as spec §9.2.2 stores it — packed codes, shape,
per-row flag, float32 scales, dtype — and the exact little-endian bytes a reader returns
when it dequantizes: ``c × s`` in binary32, then rounded to the dtype. The expected bytes
come from the reference implementation; the cases are chosen so that each rounding rule
(ties to even in BF16, F16 subnormals, F8 overflow to ∞ or NaN, −0.0 from a negative
scale) decides at least one byte.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from thermo_cli.codec.tensors import value_to_array
from thermo_cli.codec.ternary.packing import pack
from thermo_cli.model import TensorSpec

OUT = Path(__file__).resolve().parent / "vectors" / "ternary" / "dequantize.json"

CASES = [
    ("per tensor, F32", [2, 3], [1, 0, -1, -1, 1, 0], False, [0.5], "F32"),
    ("per row, F32", [2, 3], [1, 0, -1, -1, 1, 0], True, [2.0, 0.25], "F32"),
    (
        "per row of a 3-D tensor; a negative scale makes code 0 into -0.0",
        [2, 2, 2],
        [1, 0, -1, 1, 0, 0, -1, 1],
        True,
        [1.5, -3.0],
        "F32",
    ),
    ("BF16: 1 + 2^-8 is a tie, to the even 1.0", [4], [1, -1, 0, 1], False, [1.00390625], "BF16"),
    ("BF16: 1 + 3*2^-8 is a tie, to the even 1.015625", [2], [1, -1], False, [1.01171875], "BF16"),
    ("F16: 3e-8 rounds to the smallest subnormal", [2], [1, -1], False, [3.0e-8], "F16"),
    ("F64: exact widening", [3], [1, 0, -1], False, [0.1], "F64"),
    (
        "F8_E4M3: 300 rounds to 288; 500 overflows to NaN (no infinities)",
        [2, 2],
        [1, -1, 1, -1],
        True,
        [300.0, 500.0],
        "F8_E4M3",
    ),
    (
        "F8_E5M2: 60000 rounds to 57344; 70000 overflows to +-inf",
        [2, 2],
        [1, -1, 1, -1],
        True,
        [60000.0, 70000.0],
        "F8_E5M2",
    ),
    ("per row with no rows", [0, 4], [], True, [], "F32"),
    ("a scalar", [], [-1], False, [7.0], "F32"),
]


def case_doc(
    name: str, shape: list[int], codes: list[int], per_row: bool, scales: list[float], dtype: str
) -> dict[str, object]:
    packed = pack(np.array(codes, dtype=np.int8)).tobytes()
    scale_bytes = np.array(scales, dtype="<f4").tobytes()
    spec = TensorSpec(dtype, tuple(shape), "ternary", scale_bytes, per_row, "reference")
    out = np.ascontiguousarray(value_to_array(packed, spec))
    return {
        "name": name,
        "dtype": dtype,
        "shape": shape,
        "per_row": per_row,
        "codes": codes,
        "packed_hex": packed.hex(),
        "scales_f32le_hex": scale_bytes.hex(),
        "expected_le_hex": out.astype(out.dtype.newbyteorder("<")).tobytes().hex(),
    }


def build() -> dict[str, object]:
    return {
        "description": "Ternary dequantization (spec/FORMAT.md §9.2.2): c × s in binary32, rounded to dtype.",
        "cases": [case_doc(*c) for c in CASES],
    }


def main(argv: list[str]) -> int:
    doc = build()
    text = json.dumps(doc, indent=1) + "\n"
    if argv[1:] == ["--write"]:
        OUT.write_text(text)
        print(f"wrote {OUT}")
        return 0
    if not OUT.exists() or OUT.read_text() != text:
        print(f"{OUT}: differs from what the implementation gives (run with --write after checking why)")
        return 1
    print("ok: ternary dequantization vectors match")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
