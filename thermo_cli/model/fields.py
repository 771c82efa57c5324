"""Typed accessors for decoded maps: every decoder reads untrusted fields through them.

Each accessor checks the type and range of one field of a decoded CBOR (or JSON) map and
raises :class:`~thermo_cli.errors.CorruptError` naming the structure and the field, so no
decoder indexes into untrusted data unchecked. They sit in the data model's layer because
the configuration's map encoding, the codecs and the container all decode with them.
"""

from __future__ import annotations

import math
from typing import Any

from thermo_cli.errors import CorruptError


def field_of(m: dict[str, Any], name: str, what: str) -> Any:
    if name not in m:
        raise CorruptError(f"{what}: missing field {name!r}")
    return m[name]


def as_map(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise CorruptError(f"{what}: expected a map, got {type(v).__name__}")
    return v


def as_list(v: Any, what: str) -> list[Any]:
    if not isinstance(v, list):
        raise CorruptError(f"{what}: expected an array, got {type(v).__name__}")
    return v


_U64 = 2**64 - 1
_I64 = 2**63


def as_uint(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _U64:
        raise CorruptError(f"{what}: expected an unsigned integer, got {v!r:.40}")
    return v


def as_int(v: Any, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not -_I64 <= v < _I64:
        raise CorruptError(f"{what}: expected an integer, got {v!r:.40}")
    return v


def as_text(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise CorruptError(f"{what}: expected text, got {type(v).__name__}")
    return v


def as_bytes(v: Any, what: str, size: int | None = None) -> bytes:
    if not isinstance(v, bytes):
        raise CorruptError(f"{what}: expected a byte string, got {type(v).__name__}")
    if size is not None and len(v) != size:
        raise CorruptError(f"{what}: expected {size} bytes, got {len(v)}")
    return v


def as_bool(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise CorruptError(f"{what}: expected true or false, got {v!r:.40}")
    return v


def as_float(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise CorruptError(f"{what}: expected a finite number, got {v!r:.40}")
    return float(v)
