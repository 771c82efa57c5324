"""Helpers that craft safetensors bytes by hand (for malformed-input tests)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

LIB_NAMES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "I16": "int16",
    "U16": "uint16",
    "I32": "int32",
    "U32": "uint32",
    "I64": "int64",
    "U64": "uint64",
    "F16": "float16",
    "F32": "float32",
    "F64": "float64",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E4M3FNUZ": "float8_e4m3fnuz",
    "F8_E5M2": "float8_e5m2",
    "F8_E5M2FNUZ": "float8_e5m2fnuz",
    "F8_E8M0": "float8_e8m0fnu",
    "C64": "complex64",
}
"""safetensors codes → the names ``safetensors.TensorSpec`` accepts (F4/F6 are left out:
F4 takes a packed storage shape and F6 cannot be written by the library)."""


def craft(
    header: Any = None, data: bytes = b"", *, raw_header: bytes | None = None, header_len: int | None = None
) -> bytes:
    """8-byte little-endian length + header bytes + data, each part overridable."""
    hb = raw_header if raw_header is not None else json.dumps(header).encode("utf-8")
    n = len(hb) if header_len is None else header_len
    return struct.pack("<Q", n) + hb + data


def write(path: Path, blob: bytes) -> Path:
    path.write_bytes(blob)
    return path


def f32(name: str, begin: int, n: int) -> dict[str, Any]:
    return {name: {"dtype": "F32", "shape": [n], "data_offsets": [begin, begin + 4 * n]}}
