"""References to stored blocks, and the typed field accessors every decoder uses.

A block reference says where a block lies (offset, stored length), how big it is once
decompressed, how it is compressed and its SHA-256 over the stored bytes. Accessors check
type and range of each field read from a decoded CBOR map and raise CorruptError naming
the structure and the field, so no decoder indexes into untrusted data unchecked.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from thermo_cli.errors import CorruptError

CODECS = ("none", "zstd")


# --- packed little-endian columns ------------------------------------------------------------

COLUMN_FORMATS = {"<f8": "d", "<u8": "Q", "<i8": "q", "i1": "b", "<i4": "i", "<u2": "H"}
"""Column dtypes of the container (numpy spelling) → struct/array format of the same width."""


def le_column(data: bytes, dtype: str) -> Sequence[Any]:
    """A packed little-endian column as an indexable sequence of Python numbers.

    A zero-copy ``memoryview`` cast on little-endian hosts (an ``array`` swapped into host
    order elsewhere), so the read-one-key path needs no numpy: importing it costs more
    than the whole lookup. ``len(data)`` must be a multiple of the element size.
    """
    fmt = COLUMN_FORMATS[dtype]
    if sys.byteorder == "little" or fmt == "b":
        return memoryview(data).cast(fmt)
    col = array(fmt, data)  # pragma: no cover - big-endian hosts
    col.byteswap()  # pragma: no cover
    return col  # pragma: no cover


def le_bytes(values: Sequence[int] | Sequence[float], dtype: str) -> bytes:
    """The packed little-endian bytes of ``values`` (inverse of :func:`le_column`)."""
    if isinstance(values, memoryview) and sys.byteorder == "little":
        return values.tobytes()
    col = array(COLUMN_FORMATS[dtype], values)
    if sys.byteorder != "little":  # pragma: no cover - big-endian hosts
        col.byteswap()
    return col.tobytes()


# --- typed accessors --------------------------------------------------------------------


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


def check_span(off: int, length: int, lo: int, hi: int, what: str) -> None:
    """``[off, off+length)`` must lie inside ``[lo, hi)`` of the committed file."""
    if off < lo or off + length > hi:
        raise CorruptError(f"{what}: bytes {off}..{off + length} lie outside the file's data {lo}..{hi}")


# --- block references -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockRef:
    off: int
    len: int
    raw: int
    codec: str
    sha256: bytes

    def to_map(self) -> dict[str, Any]:
        return {"off": self.off, "len": self.len, "raw": self.raw, "codec": self.codec,
                "sha256": self.sha256}

    @classmethod
    def from_map(cls, v: Any, what: str, lo: int, hi: int) -> BlockRef:
        m = as_map(v, what)
        ref = cls(
            off=as_uint(field_of(m, "off", what), f"{what}.off"),
            len=as_uint(field_of(m, "len", what), f"{what}.len"),
            raw=as_uint(field_of(m, "raw", what), f"{what}.raw"),
            codec=as_text(field_of(m, "codec", what), f"{what}.codec"),
            sha256=as_bytes(field_of(m, "sha256", what), f"{what}.sha256", 32),
        )
        if ref.codec not in CODECS:
            raise CorruptError(f"{what}: unknown codec {ref.codec!r}")
        if ref.codec == "none" and ref.raw != ref.len:
            raise CorruptError(f"{what}: uncompressed block with raw {ref.raw} != len {ref.len}")
        check_span(ref.off, ref.len, lo, hi, what)
        return ref
