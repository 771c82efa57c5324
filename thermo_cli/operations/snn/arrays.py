"""NumPy arrays as CBOR-encodable maps: raw little-endian bytes, a dtype name and a shape.

The network's state is stored in ``Thermogram.extras["snn"]``, which the container writes
as deterministic CBOR, so arrays travel as ``{"dtype", "shape", "data"}`` maps. Bytes are
always little-endian and C-ordered, so a file written on any machine restores bit-exactly.
Decoding is strict: an unknown dtype, a shape that does not match the byte count, or a
non-finite float is refused, because a damaged state must never reach the network.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from thermo_cli.errors import CorruptError

DTYPES: dict[str, np.dtype[Any]] = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
    "int64": np.dtype("<i8"),
    "int8": np.dtype("i1"),
    "bool": np.dtype("?"),
}
"""The dtypes a state array may have, by their stored name."""

_MAX_DIMS = 4


def encode_array(array: np.ndarray, dtype: str) -> dict[str, Any]:
    """``array`` converted to ``dtype`` as a CBOR-ready map."""
    target = DTYPES[dtype]
    data = np.ascontiguousarray(array, dtype=target)
    return {"dtype": dtype, "shape": list(data.shape), "data": data.tobytes()}


def decode_array(obj: Any, what: str, *, dtype: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A writable array from :func:`encode_array` output, checked against ``dtype``/``shape``."""
    if not isinstance(obj, dict) or set(obj) != {"dtype", "shape", "data"}:
        raise CorruptError(f"{what}: expected a map with dtype, shape and data")
    if obj["dtype"] != dtype:
        raise CorruptError(f"{what}: dtype must be {dtype}, got {obj['dtype']!r}")
    dims = obj["shape"]
    if (
        not isinstance(dims, list)
        or len(dims) > _MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims)
    ):
        raise CorruptError(f"{what}: shape must be a list of at most {_MAX_DIMS} non-negative integers")
    if shape is not None and tuple(dims) != shape:
        raise CorruptError(f"{what}: shape {tuple(dims)} does not match the network's {shape}")
    data = obj["data"]
    if not isinstance(data, bytes):
        raise CorruptError(f"{what}: data must be a byte string")
    target = DTYPES[dtype]
    expected = math.prod(dims) * target.itemsize
    if len(data) != expected:
        raise CorruptError(f"{what}: {len(data)} data bytes, expected {expected} for shape {tuple(dims)}")
    array = np.frombuffer(data, dtype=target).reshape(dims).astype(target.newbyteorder("="), copy=True)
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise CorruptError(f"{what}: contains NaN or infinite values")
    if dtype == "bool" and data and np.frombuffer(data, dtype=np.uint8).max() > 1:
        raise CorruptError(f"{what}: boolean bytes must be 0 or 1")
    return array
