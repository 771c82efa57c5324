"""2-bit packing of ternary weights, bit-exact to the Rust crate (ENGINE.md, "Ternary weights").

Layout: four weights per byte; weight ``i`` sits in bits ``2*(i%4)`` and ``2*(i%4)+1`` of
byte ``i//4``; codes ``00`` = 0, ``01`` = +1, ``10`` = -1, ``11`` reserved (reads as 0);
the unused high bits of the last byte are zero. Other implementations must agree byte for
byte, so golden vectors live in ``format/vectors/ternary/``.

Everything is vectorized: packing turns four one-byte codes (read as one little-endian
uint32) into one byte with a single multiply (the product's top byte is the packed byte),
and unpacking looks each byte up in a 256-entry table that holds its four decoded values.
Work is done in cache-sized chunks so temporaries never grow with the tensor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from thermo_cli.codec.ternary import parallel
from thermo_cli.errors import CorruptError, ValidationError
from thermo_cli.model import Ternary

CHUNK = 1 << 16
"""Weights handled per step: 64 Ki float32 = 256 KiB, so a step's temporaries stay in L2."""

_PACK_MUL = np.uint32((1 << 24) | (1 << 18) | (1 << 12) | (1 << 6))
"""Multiplying the uint32 ``c0 | c1<<8 | c2<<16 | c3<<24`` (codes <= 3) by this puts
``c0 | c1<<2 | c2<<4 | c3<<6`` in the top byte: the wanted terms land on bits 24, 26, 28, 30,
the cross terms either overflow past bit 31 or sum to less than 2**24 (no carry)."""

CODE_ZERO, CODE_POS, CODE_NEG, CODE_RESERVED = 0, 1, 2, 3
_VALUE_OF_CODE = np.array([0, 1, -1, 0], dtype=np.int8)


def packed_size(length: int) -> int:
    """Bytes needed for ``length`` weights (the last byte zero-padded)."""
    return (length + 3) // 4


def _build_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    byte = np.arange(256, dtype=np.uint8)
    codes = (byte[:, None] >> np.array([0, 2, 4, 6], dtype=np.uint8)) & 3  # (256, 4)
    values = _VALUE_OF_CODE[codes]  # (256, 4) int8
    canonical = codes.copy()
    canonical[codes == CODE_RESERVED] = CODE_ZERO
    active = (values != 0).sum(axis=1).astype(np.uint8)
    return values, active, canonical


_VALUES_LUT, _ACTIVE_LUT, _CODES_LUT = _build_tables()
_VALUES_LUT32 = np.ascontiguousarray(_VALUES_LUT).view("<u4").ravel()  # 4 int8 values per entry
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


# --- codes <-> bytes ------------------------------------------------------------------------


def pack_codes_into(codes: np.ndarray, out: np.ndarray) -> None:
    """Pack ``codes`` (uint8, 0..3, length a multiple of 4, 4-byte aligned) into ``out``."""
    product = codes.view("<u4") * _PACK_MUL
    np.right_shift(product, 24, out=product)
    out[...] = product


def pack_codes(codes: np.ndarray) -> np.ndarray:
    """Pack uint8 codes (0..3, any length) into bytes; the tail is zero-padded."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8).ravel()
    n = codes.size
    out = np.empty(packed_size(n), dtype=np.uint8)
    full = n - n % 4
    step = CHUNK
    for start in range(0, full, step):
        stop = min(start + step, full)
        pack_codes_into(codes[start:stop], out[start // 4 : stop // 4])
    if full < n:
        tail = np.zeros(4, dtype=np.uint8)
        tail[: n - full] = codes[full:]
        pack_codes_into(tail, out[full // 4 :])
    return out


def values_to_codes(values: np.ndarray) -> np.ndarray:
    """-1/0/+1 integers → codes: 0 → 00, +1 → 01, -1 → 10 (two's complement trick)."""
    u = values.astype(np.int8, copy=False).view(np.uint8)
    return (u & 3) ^ (u >> 7)  # 0→0, 1→1, 255 → 3^1 = 2


def check_values(values: Any, what: str = "values") -> np.ndarray:
    """Validate ternary values (-1/0/+1 in any integer or float dtype) → flat int8 array."""
    arr = np.asarray(values)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValidationError(f"{what}: expected -1, 0 or +1 numbers, got dtype {arr.dtype}")
    flat = arr.ravel()
    if arr.dtype.kind == "b":
        return flat.astype(np.int8)
    bad = (flat != 0) & (flat != 1) & (flat != -1)
    if bad.any():
        idx = int(np.flatnonzero(bad)[0])
        raise ValidationError(
            f"{what}: {int(np.count_nonzero(bad))} values are not -1, 0 or +1, first at index {idx} "
            f"({flat[idx]!r})"
        )
    return flat.astype(np.int8)


def pack(values: Any) -> np.ndarray:
    """Ternary values (-1/0/+1) → packed bytes (uint8 array of ``packed_size(n)``)."""
    return pack_codes(values_to_codes(check_values(values)))


GATHER_STEP = 1 << 16
"""Packed bytes per gather step: 1 MiB of float32 output, which stays in cache."""


def _gather(table: np.ndarray, raw: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = table[raw[i]]`` in cache-sized steps, on several threads when large.

    ``mode="clip"`` skips numpy's bounds check (uint8 indices are always in range), which
    doubles the speed.
    """
    starts = range(0, raw.size, GATHER_STEP)

    def one(start: int) -> None:
        np.take(table, raw[start : start + GATHER_STEP], out=out[start : start + GATHER_STEP], mode="clip")

    parallel.run(one, starts, 4 * raw.size)


def unpack(data: Any, length: int) -> np.ndarray:
    """Packed bytes → ``length`` int8 values (-1/0/+1); reserved code 11 reads as 0."""
    raw = _as_packed_bytes(data, length)
    words = np.empty(raw.size, dtype="<u4")
    _gather(_VALUES_LUT32, raw, words)
    return words.view(np.int8)[:length]


def unpack_codes(data: Any, length: int) -> np.ndarray:
    """Packed bytes → ``length`` canonical codes (uint8 0/1/2; reserved 11 becomes 00)."""
    raw = _as_packed_bytes(data, length)
    words = np.empty(raw.size, dtype="<u4")
    _gather(np.ascontiguousarray(_CODES_LUT).view("<u4").ravel(), raw, words)
    return words.view(np.uint8)[:length]


def _float_table(scale: float) -> np.ndarray:
    """The 256 entries of four float32 values ``value * scale``, each as one complex128 so
    that ``take`` copies 16 bytes per packed byte."""
    table = _VALUES_LUT.astype(np.float32) * np.float32(scale)
    return np.ascontiguousarray(table, dtype=np.float32).view(np.complex128).ravel()


def output_buffer(out: np.ndarray, length: int) -> np.ndarray:
    """The flat float32 view of a caller's ``out`` array for ``length`` weights (checked):
    unpacking into an array the caller already has skips mapping and zeroing new pages,
    which costs about as much as the unpacking itself."""
    if not isinstance(out, np.ndarray) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValidationError("out: expected a C-contiguous float32 numpy array")
    if not out.flags.writeable:
        raise ValidationError("out: the array is read-only")
    if out.size != length:
        raise ValidationError(f"out: {length} weights need an array of {length} elements, got {out.size}")
    return out.reshape(-1)


def unpack_scaled(data: Any, length: int, scale: float = 1.0, out: np.ndarray | None = None) -> np.ndarray:
    """Packed bytes → float32 ``value * scale`` for ``length`` weights: one gather per byte.

    ``out``: a float32 array of ``length`` elements to fill (and return) instead of a new one.
    """
    raw = _as_packed_bytes(data, length)
    table = _float_table(scale)
    if out is None:
        buf = np.empty(raw.size, dtype=np.complex128)
        _gather(table, raw, buf)
        return buf.view(np.float32)[:length]
    flat = output_buffer(out, length)
    whole = length // 4
    _gather(table, raw[:whole], flat[: 4 * whole].view(np.complex128))
    if whole < raw.size:  # the last byte holds fewer than four weights
        flat[4 * whole :] = np.take(table, raw[whole:], mode="clip").view(np.float32)[: length - 4 * whole]
    return out


def unpack_rows_scaled(
    data: Any, rows: int, cols: int, scales: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Packed bytes of a (rows, cols) tensor → float32 ``value * scales[row]``, flat.

    Rows go in groups of about :data:`UNPACK_GROUP` weights; a group must start on a byte
    boundary, so it holds a multiple of ``4 / gcd(cols, 4)`` rows. Each group is gathered
    into a small per-thread buffer and scaled from there into the output, so the output is
    written once (gathering into it and scaling it in place wrote it twice: 1.04–1.16x
    slower). Rows too long for a group are gathered into the output and scaled in place.
    ``out``: a float32 array of ``rows * cols`` elements to fill (and return) instead.
    """
    length = rows * cols
    raw = _as_packed_bytes(data, length)
    flat = np.empty(raw.size * 4, dtype=np.float32) if out is None else output_buffer(out, length)
    if length == 0:
        return flat[:0] if out is None else out
    scales = np.asarray(scales, dtype=np.float32).ravel()
    group = _row_group(cols, UNPACK_GROUP)
    table = _float_table(1.0)
    if group * cols > 4 * UNPACK_GROUP:
        _unpack_long_rows(table, raw, rows, cols, scales, flat)
        return flat[:length] if out is None else out
    scratch = parallel.Scratch()
    room = (group * cols + 3) // 4

    def one(r0: int) -> None:
        r1 = min(rows, r0 + group)
        b0, b1 = r0 * cols // 4, (r1 * cols + 3) // 4
        gathered = scratch.get("gathered", room, np.complex128)[: b1 - b0]
        np.take(table, raw[b0:b1], out=gathered, mode="clip")
        n = r1 - r0
        values = gathered.view(np.float32)[: n * cols].reshape(n, cols)
        np.multiply(values, scales[r0:r1, None], out=flat[r0 * cols : r1 * cols].reshape(n, cols))

    parallel.run(one, range(0, rows, group), length, row_length=cols)
    return flat[:length] if out is None else out


UNPACK_GROUP = 1 << 16
"""Weights per group of :func:`unpack_rows_scaled`: a 256 KiB float32 buffer that stays in
the L2 cache between the gather and the scaling (1 << 15 and 1 << 17 measured the same,
1 << 14 lost to numpy's per-call cost)."""


def _unpack_long_rows(
    table: np.ndarray, raw: np.ndarray, rows: int, cols: int, scales: np.ndarray, flat: np.ndarray
) -> None:
    """Rows longer than a group: gathered straight into ``flat`` (padded to whole bytes, or
    staged for the last bytes of a caller's exact-length array), then scaled in place."""
    group = _row_group(cols, 4 * GATHER_STEP)

    def one(r0: int) -> None:
        r1 = min(rows, r0 + group)
        b0, b1 = r0 * cols // 4, (r1 * cols + 3) // 4
        target = flat[4 * b0 : 4 * b1]
        if target.size == 4 * (b1 - b0):
            _unpack_rows_into(table, raw[b0:b1], cols, scales[r0:r1], target)
        else:  # the last group of an ``out`` whose length is not a multiple of 4
            staged = np.empty(4 * (b1 - b0), dtype=np.float32)
            _unpack_rows_into(table, raw[b0:b1], cols, scales[r0:r1], staged)
            target[...] = staged[: target.size]

    parallel.run(one, range(0, rows, group), rows * cols)


def _row_group(cols: int, weights: int) -> int:
    """Rows per group of about ``weights`` weights, a multiple of ``4 / gcd(cols, 4)`` so
    that every group starts on a byte boundary."""
    align = 4 // math.gcd(cols, 4)
    return max(align, (weights // max(cols, 1)) // align * align)


def _unpack_rows_into(
    table: np.ndarray, raw: np.ndarray, cols: int, scales: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """Whole rows starting on a byte boundary → ``value * scales[row]`` in ``out`` (float32,
    ``4 * raw.size`` long); returns the ``scales.size * cols`` weights as a 2-D view."""
    np.take(table, raw, out=out.view(np.complex128), mode="clip")
    view = out[: scales.size * cols].reshape(scales.size, cols)
    with parallel.row_broadcasts(cols):
        view *= scales[:, None]
    return view


UNPACK_CHUNK = 1 << 18
"""Weights per piece of :func:`iter_unpacked`: 1 MiB of float32, written out while in cache."""


def iter_unpacked(
    data: Any, rows: int, cols: int, scales: np.ndarray, chunk: int | None = None
) -> Iterator[np.ndarray]:
    """The float32 ``value * scale`` of a packed (rows, cols) tensor as consecutive flat pieces.

    ``scales`` holds one value per row, or a single value for the whole tensor. The pieces
    concatenate to exactly what :func:`unpack_rows_scaled` / :func:`unpack_scaled` return,
    but only one cache-sized buffer is ever allocated: a consumer that writes each piece
    to a file saves a pass over memory and the page faults of a whole-tensor array. Each
    piece is a view of that buffer, valid until the next one is requested.
    """
    length = rows * cols
    raw = _as_packed_bytes(data, length)
    scales = np.asarray(scales, dtype=np.float32).ravel()
    if length == 0:
        return
    chunk = max(4, int(UNPACK_CHUNK if chunk is None else chunk)) // 4 * 4
    if scales.size == 1 and rows == 1:  # one scale: any byte range will do
        table = _float_table(float(scales[0]))
        buf = np.empty(chunk // 4, dtype=np.complex128)
        for b0 in range(0, raw.size, chunk // 4):
            part = raw[b0 : b0 + chunk // 4]
            np.take(table, part, out=buf[: part.size], mode="clip")
            yield buf.view(np.float32)[: min(4 * part.size, length - 4 * b0)]
        return
    if scales.size != rows:
        raise ValidationError(f"scales: {rows} rows need {rows} scales, got {scales.size}")
    group = _row_group(cols, chunk)
    if group * cols > 4 * chunk:  # rows too long for one piece: scale them whole-row-wise
        for r in range(rows):
            yield from _iter_one_row(raw, r, cols, scales[r], chunk)
        return
    table = _float_table(1.0)
    buf = np.empty((group * cols + 3) // 4 + 1, dtype=np.complex128).view(np.float32)
    for r0 in range(0, rows, group):
        r1 = min(rows, r0 + group)
        b0, b1 = r0 * cols // 4, (r1 * cols + 3) // 4
        yield _unpack_rows_into(table, raw[b0:b1], cols, scales[r0:r1], buf[: 4 * (b1 - b0)]).reshape(-1)


def _iter_one_row(raw: np.ndarray, r: int, cols: int, scale: np.float32, chunk: int) -> Iterator[np.ndarray]:
    """One long row (its start need not be byte-aligned) in pieces of ``value * scale``."""
    table = _float_table(1.0)
    buf = np.empty(chunk // 4 + 2, dtype=np.complex128).view(np.float32)
    start = r * cols
    for w0 in range(start, start + cols, chunk):
        w1 = min(start + cols, w0 + chunk)
        b0, b1 = w0 // 4, (w1 + 3) // 4
        np.take(table, raw[b0:b1], out=buf.view(np.complex128)[: b1 - b0], mode="clip")
        piece = buf[w0 - 4 * b0 : w1 - 4 * b0]
        piece *= scale
        yield piece


def _as_packed_bytes(data: Any, length: int) -> np.ndarray:
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or length < 0:
        raise ValidationError(f"length: expected a non-negative integer, got {length!r}")
    if isinstance(data, bytes | bytearray | memoryview):
        raw = np.frombuffer(data, dtype=np.uint8)
    elif isinstance(data, np.ndarray) and data.dtype == np.uint8:
        raw = data.ravel()
    else:
        raise ValidationError(f"packed data: expected bytes or a uint8 array, got {type(data).__name__}")
    need = packed_size(int(length))
    if raw.size != need:
        raise CorruptError(f"packed ternary data: {int(length)} weights need {need} bytes, got {raw.size}")
    return raw


# --- the packed array ------------------------------------------------------------------------


class PackedTernary:
    """A fixed-length array of ternary weights stored 2 bits each (ENGINE.md layout).

    Indexing returns :class:`~thermo_cli.model.Ternary`; bulk access goes through
    :meth:`unpack` / :meth:`to_float`. Two arrays are equal when their weights are equal
    (reserved codes compare as 0).
    """

    __slots__ = ("_data", "_length")

    def __init__(self, data: Any, length: int) -> None:
        raw = _as_packed_bytes(data, length)
        self._data = np.array(raw, dtype=np.uint8, copy=True)
        self._length = int(length)

    # construction
    @classmethod
    def zeros(cls, length: int) -> PackedTernary:
        if isinstance(length, bool) or not isinstance(length, int | np.integer) or length < 0:
            raise ValidationError(f"length: expected a non-negative integer, got {length!r}")
        return cls._wrap(np.zeros(packed_size(int(length)), dtype=np.uint8), int(length))

    @classmethod
    def from_values(cls, values: Iterable[Any] | np.ndarray) -> PackedTernary:
        """From -1/0/+1 numbers or :class:`Ternary` members."""
        if not isinstance(values, np.ndarray):
            values = [int(v) if isinstance(v, Ternary) else v for v in values]
        flat = check_values(values)
        return cls._wrap(pack_codes(values_to_codes(flat)), flat.size)

    @classmethod
    def from_bytes(cls, data: bytes, length: int) -> PackedTernary:
        return cls(data, length)

    @classmethod
    def _wrap(cls, data: np.ndarray, length: int) -> PackedTernary:
        obj = cls.__new__(cls)
        obj._data = data
        obj._length = length
        return obj

    # size and raw access
    def __len__(self) -> int:
        return self._length

    @property
    def nbytes(self) -> int:
        return int(self._data.size)

    @property
    def data(self) -> np.ndarray:
        """The packed bytes as a read-only uint8 view."""
        view = self._data.view()
        view.flags.writeable = False
        return view

    def to_bytes(self) -> bytes:
        return self._data.tobytes()

    # element access
    def _index(self, i: Any) -> int:
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise ValidationError(f"index: expected an integer, got {type(i).__name__}")
        j = int(i) + self._length if i < 0 else int(i)
        if not 0 <= j < self._length:
            raise IndexError(f"index {int(i)} out of range for {self._length} weights")
        return j

    def get(self, i: int) -> Ternary:
        j = self._index(i)
        code = (int(self._data[j >> 2]) >> (2 * (j & 3))) & 3
        return Ternary(int(_VALUE_OF_CODE[code]))

    def set(self, i: int, value: Any) -> None:
        j = self._index(i)
        v = Ternary.coerce(value.value if isinstance(value, Ternary) else value, "value")
        code = {1: CODE_POS, 0: CODE_ZERO, -1: CODE_NEG}[int(v)]
        shift = 2 * (j & 3)
        byte = int(self._data[j >> 2])
        self._data[j >> 2] = (byte & ~(3 << shift) & 0xFF) | (code << shift)

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return self.unpack()[i]
        return self.get(i)

    def __setitem__(self, i: int, value: Any) -> None:
        self.set(i, value)

    def __iter__(self) -> Iterator[Ternary]:  # the values as Ternary members (bulk work should use unpack())
        return (Ternary(int(v)) for v in self.unpack())

    # bulk views
    def unpack(self) -> np.ndarray:
        """All weights as an int8 array of -1/0/+1."""
        return unpack(self._data, self._length)

    def codes(self) -> np.ndarray:
        return unpack_codes(self._data, self._length)

    def to_float(self, scale: float = 1.0) -> np.ndarray:
        """All weights as float32 ``value * scale``."""
        return unpack_scaled(self._data, self._length, scale)

    # statistics
    def count_active(self) -> int:
        """Number of non-zero weights (reserved codes and padding count as zero)."""
        return int(np.take(_ACTIVE_LUT, self._data).sum(dtype=np.int64))

    def sparsity(self) -> float:
        """Fraction of weights that are zero (0.0 for an empty array)."""
        if self._length == 0:
            return 0.0
        return 1.0 - self.count_active() / self._length

    def dot(self, other: PackedTernary | Any) -> int | float:
        """Dot product with another packed array (exact integer) or a float vector."""
        if isinstance(other, PackedTernary):
            if len(other) != self._length:
                raise ValidationError(f"dot: lengths differ ({self._length} vs {len(other)})")
            a_pos, a_neg = _planes(self._data)
            b_pos, b_neg = _planes(other._data)
            same = (a_pos & b_pos) | (a_neg & b_neg)
            diff = (a_pos & b_neg) | (a_neg & b_pos)
            return int(np.take(_POPCOUNT, same).sum(dtype=np.int64)) - int(
                np.take(_POPCOUNT, diff).sum(dtype=np.int64)
            )
        vec = np.asarray(other)
        if vec.dtype.kind not in "biuf":
            raise ValidationError(f"dot: expected a numeric vector, got dtype {vec.dtype}")
        vec = vec.ravel()
        if vec.size != self._length:
            raise ValidationError(f"dot: lengths differ ({self._length} vs {vec.size})")
        if vec.dtype.kind == "f":
            return parallel.sum_of_products(self.to_float().astype(vec.dtype, copy=False), vec)
        return int(np.dot(self.unpack().astype(np.int64), vec.astype(np.int64)))

    # comparison and display
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PackedTernary):
            return NotImplemented
        return self._length == other._length and bool(
            np.array_equal(np.take(_CODES_LUT, self._data, axis=0), np.take(_CODES_LUT, other._data, axis=0))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, the standard idiom

    def __repr__(self) -> str:
        shown = self.unpack()[:8].tolist() if self._length else []
        more = ", …" if self._length > 8 else ""
        return (
            f"PackedTernary(length={self._length}, bytes={self.nbytes}, "
            f"values=[{', '.join(f'{v:+d}' if v else '0' for v in shown)}{more}])"
        )


def _planes(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bit planes of +1 and -1 weights, each in the low bit of its 2-bit field."""
    lo = data & 0x55
    hi = (data >> 1) & 0x55
    return lo & ~hi, hi & ~lo


def compression_ratio(length: int, itemsize: int = 4) -> float:
    """How many times smaller the packed form is than ``itemsize``-byte floats."""
    return math.inf if length == 0 else (length * itemsize) / max(1, packed_size(length))
