"""Chunk codec: the byte-shuffle filter and zstd frames with bounded decompression.

Shuffling groups the k-th byte of every element together (all exponent bytes, then all
high mantissa bytes …), which lets zstd find the redundancy of float data; on float32
weights it turns ratio ~0.93 into ~0.84 and decompresses faster. Every frame is written
with its content size; a reader refuses frames without one, frames claiming another
size than the index says, frames bigger than the cap, and trailing bytes after a frame.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from thermo_cli.codec.sha256 import digest as sha256_digest
from thermo_cli.config.limits import check_cap
from thermo_cli.errors import CorruptError, IntegrityError
from thermo_cli.model.valueclass import FrozenValue

if TYPE_CHECKING:
    import zstandard
# zstandard (and the ``platform`` module it loads) is imported by the functions that
# compress or decompress: ``thermo get`` of a value still in the log never needs it.

SHUFFLE = "shuffle"
NO_FILTER = "none"
FILTERS = (NO_FILTER, SHUFFLE)
SHUFFLE_ELEMS = (2, 4, 8)

DATA_LEVEL = 1
"""zstd level of data chunks: level 1 compresses shuffled floats as well as level 3, 3x faster."""
BLOCK_LEVEL = 3
"""zstd level of directory chunks and meta/index blocks (small, structured)."""


_UINT = {2: "<u2", 4: "<u4", 8: "<u8"}


def shuffle(raw: bytes | memoryview, elem: int) -> memoryview:
    """Byte-transpose: element i's byte k moves to position k*n + i (n = element count).

    Done as one shift-and-truncate pass per byte plane over a little-endian integer view,
    which is several times faster than copying a transposed uint8 view.
    """
    import numpy as np

    a = np.frombuffer(raw, dtype=_UINT[elem])
    n = a.size
    out = np.empty(n * elem, dtype=np.uint8)
    for k in range(elem):
        out[k * n : (k + 1) * n] = a >> (8 * k) if k else a
    return out.data


PURE_UNSHUFFLE_BYTES = 16 << 20
"""Bytes a process unshuffles without numpy before importing it. Python's strided slice
assignment runs at ~1.6 ms/MiB against numpy's ~0.5, but importing numpy costs ~45 ms:
reading one key (a chunk or two) is faster without it, a whole file faster with it."""

_pure_left = [PURE_UNSHUFFLE_BYTES]


def unshuffle(raw: bytes | memoryview, elem: int, out: memoryview | None = None) -> memoryview:
    """Inverse of :func:`shuffle`, into ``out`` (a writable buffer) or a new buffer.

    Each byte plane is written into a strided column of the destination: one pass over
    the chunk whatever the element size (shifting and or-ing wide integers costs a pass
    per plane, ~30x slower for 8-byte elements), and no copy to hand the result out.
    """
    if "numpy" not in sys.modules and len(raw) <= _pure_left[0]:
        _pure_left[0] -= len(raw)
        return _unshuffle_pure(raw, elem, out)
    import numpy as np

    planes = np.frombuffer(raw, dtype=np.uint8).reshape(elem, -1)
    dest = np.empty(planes.size, dtype=np.uint8) if out is None else np.frombuffer(out, dtype=np.uint8)
    cols = dest.reshape(-1, elem)
    for k in range(elem):
        cols[:, k] = planes[k]
    return memoryview(dest)  # type: ignore[arg-type]  # numpy stubs: ndarray.__buffer__ only on 3.12+


def _unshuffle_pure(raw: bytes | memoryview, elem: int, out: memoryview | None) -> memoryview:
    """:func:`unshuffle` with strided slice assignment (C loops, no numpy import)."""
    src = memoryview(raw).cast("B")
    n = len(src) // elem
    dest = memoryview(bytearray(len(src))) if out is None else memoryview(out).cast("B")
    for k in range(elem):
        dest[k::elem] = src[k * n : (k + 1) * n]
    return dest


def compress(raw: bytes | memoryview, level: int) -> bytes:
    """One zstd frame that records its content size (readers require it)."""
    import zstandard

    return zstandard.ZstdCompressor(level=level, write_content_size=True).compress(raw)


class Packed(FrozenValue):
    stored: bytes
    sha256: bytes
    raw_len: int

    __slots__ = ("raw_len", "sha256", "stored")

    def __init__(self, stored: bytes, sha256: bytes, raw_len: int) -> None:
        _set = object.__setattr__
        _set(self, "stored", stored)
        _set(self, "sha256", sha256)
        _set(self, "raw_len", raw_len)


def pack(
    raw: bytes | memoryview, *, filter: str = NO_FILTER, elem: int = 1, level: int = DATA_LEVEL
) -> Packed:
    """Filter, compress and digest one chunk (the digest is over the stored bytes)."""
    body = shuffle(raw, elem) if filter == SHUFFLE else raw
    stored = compress(body, level)
    return Packed(stored, sha256_digest(stored), len(raw))


def check_digest(stored: bytes | memoryview, expected: bytes, what: str) -> None:
    if sha256_digest(stored) != expected:
        raise IntegrityError(f"{what}: SHA-256 does not match the digest recorded for it")


def decompress(
    stored: bytes | memoryview,
    raw_len: int,
    *,
    cap: int,
    cap_name: str,
    what: str,
    dctx: zstandard.ZstdDecompressor | None = None,
) -> bytes:
    """Decompress exactly one frame of exactly ``raw_len`` bytes, never more than ``cap``.

    One call into zstd with the output bounded by ``raw_len`` and trailing input refused,
    straight from ``stored`` (no copy); ``dctx`` lets a thread reuse its decompressor.
    """
    import zstandard

    check_cap(raw_len, cap, cap_name, what)
    try:
        declared = zstandard.frame_content_size(stored)
    except zstandard.ZstdError:
        raise CorruptError(f"{what}: not a zstd frame") from None
    if declared < 0:
        raise CorruptError(f"{what}: zstd frame does not declare its content size")
    check_cap(declared, cap, cap_name, what)
    if declared != raw_len:
        raise CorruptError(f"{what}: zstd frame holds {declared} bytes, the index says {raw_len}")
    if raw_len == 0:
        return _decompress_empty(bytes(stored), what)
    try:
        out = (dctx or zstandard.ZstdDecompressor()).decompress(
            stored, max_output_size=raw_len, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        if "unused data" in str(exc):
            raise CorruptError(f"{what}: bytes follow the zstd frame ({exc})") from None
        raise CorruptError(f"{what}: zstd decompression failed ({exc})") from None
    if len(out) != raw_len:
        raise CorruptError(f"{what}: decompressed to {len(out)} bytes, expected {raw_len}")
    return out


def _decompress_empty(data: bytes, what: str) -> bytes:
    """An empty frame, by the streaming decoder: the one-shot call does not refuse bytes
    after a frame of no content."""
    import zstandard

    dobj = zstandard.ZstdDecompressor().decompressobj()
    try:
        out = dobj.decompress(data)
    except zstandard.ZstdError as exc:
        raise CorruptError(f"{what}: zstd decompression failed ({exc})") from None
    if not dobj.eof:
        raise CorruptError(f"{what}: zstd frame is incomplete")
    if dobj.unused_data or out:
        raise CorruptError(f"{what}: bytes follow the zstd frame")
    return b""


class Scratch:
    """Buffers one thread reuses to check and unpack chunk after chunk.

    Verifying a large file unpacks thousands of chunks; allocating fresh megabyte buffers
    for each made the allocator map and zero pages for every one (about half the time in
    some runs). A scratch's buffers grow to the largest chunk and are reused; what
    :func:`unpack` returns through one is valid until its next use.
    """

    __slots__ = ("_bufs", "dctx")

    def __init__(self) -> None:
        import zstandard

        self._bufs: dict[str, bytearray] = {}
        self.dctx = zstandard.ZstdDecompressor()

    def buffer(self, name: str, size: int) -> memoryview:
        """A writable view of ``size`` bytes of the buffer ``name``."""
        buf = self._bufs.get(name)
        if buf is None or len(buf) < size:
            buf = self._bufs[name] = bytearray(size)
        return memoryview(buf)[:size]


def unpack(
    stored: bytes | memoryview,
    raw_len: int,
    sha256: bytes,
    *,
    filter: str,
    elem: int,
    cap: int,
    cap_name: str,
    what: str,
    out: memoryview | None = None,
    scratch: Scratch | None = None,
) -> bytes | memoryview:
    """Verify the digest of a stored chunk, then decompress and unfilter it.

    A shuffled chunk comes back as a memoryview of its unshuffled buffer (slice it and
    copy what you keep). With ``out`` (a writable buffer of ``raw_len`` bytes) the result
    is written there instead and b"" is returned, saving a copy when a whole stream is
    assembled. With ``scratch`` a shuffled chunk is unshuffled into the scratch's buffer.
    """
    check_digest(stored, sha256, what)
    dctx = None if scratch is None else scratch.dctx
    raw = decompress(stored, raw_len, cap=cap, cap_name=cap_name, what=what, dctx=dctx)
    if filter == SHUFFLE and out is None and scratch is not None:
        return unshuffle(raw, elem, scratch.buffer("unshuffled", raw_len))
    if filter == SHUFFLE:
        view = unshuffle(raw, elem, out)
        return view if out is None else b""
    if out is not None:
        out[:] = raw
        return b""
    return raw


def dtype_size(dtype: str) -> int:
    """Bytes per element of a safetensors dtype name (0 if unknown)."""
    return _DTYPE_SIZES.get(dtype, 0)


def shuffle_elem_for(dtype: str | None, nbytes: int, numel: int | None) -> int:
    """Element size to shuffle a tensor value with (1 = leave unshuffled)."""
    if dtype is None or numel is None or numel == 0:
        return 1
    size = _DTYPE_SIZES.get(dtype)
    if size is None or size == 1 or size * numel != nbytes:
        return 1
    return size


_DTYPE_SIZES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}


def choose_filter(sample: bytes | memoryview, elem: int) -> str:
    """Shuffle only where it helps: compress a sample both ways and keep the smaller."""
    if elem == 1 or len(sample) < 64:
        return NO_FILTER
    plain = len(compress(sample, DATA_LEVEL))
    shuffled = len(compress(shuffle(sample, elem), DATA_LEVEL))
    return SHUFFLE if shuffled < plain else NO_FILTER
