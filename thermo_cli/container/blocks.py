"""References to stored blocks and packed little-endian columns.

A block reference says where a block lies (offset, stored length), how big it is once
decompressed, how it is compressed and its SHA-256 over the stored bytes. The typed field
accessors are :mod:`thermo_cli.model.fields`'s, re-exported for the container's decoders.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from typing import Any

from thermo_cli.errors import CorruptError
from thermo_cli.model.fields import as_bytes, as_map, as_text, as_uint, field_of
from thermo_cli.model.valueclass import FrozenValue

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
        return memoryview(data).cast(fmt)  # type: ignore[call-overload,no-any-return]  # typeshed: literal formats only
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


def check_span(off: int, length: int, lo: int, hi: int, what: str) -> None:
    """``[off, off+length)`` must lie inside ``[lo, hi)`` of the committed file."""
    if off < lo or off + length > hi:
        raise CorruptError(f"{what}: bytes {off}..{off + length} lie outside the file's data {lo}..{hi}")


# --- block references -------------------------------------------------------------------


class BlockRef(FrozenValue):
    off: int
    len: int
    raw: int
    codec: str
    sha256: bytes

    __slots__ = ("codec", "len", "off", "raw", "sha256")

    def __init__(self, off: int, len: int, raw: int, codec: str, sha256: bytes) -> None:
        _set = object.__setattr__
        _set(self, "off", off)
        _set(self, "len", len)
        _set(self, "raw", raw)
        _set(self, "codec", codec)
        _set(self, "sha256", sha256)

    def to_map(self) -> dict[str, Any]:
        return {"off": self.off, "len": self.len, "raw": self.raw, "codec": self.codec, "sha256": self.sha256}

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
