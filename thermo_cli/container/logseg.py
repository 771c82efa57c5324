"""Log segments: runs of length-prefixed records, exactly the bytes that were hashed.

A segment is a sequence of frames ``u32 little-endian length || record bytes``; the record
bytes are the canonical CBOR produced by :func:`thermo_cli.codec.records.encode_record` (for v2
records, the very bytes whose SHA-256 is the record hash and whose RFC 9162 leaf hash
enters the log's Merkle tree). Segments are about 1 MiB so a reader of the log's tail
touches only the last few.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from thermo_cli.config.limits import Limits, check_cap
from thermo_cli.container.blocks import check_span
from thermo_cli.errors import CorruptError
from thermo_cli.model.fields import as_bytes, as_list, as_uint
from thermo_cli.model.valueclass import FrozenValue

SEGMENT_TARGET = 1 << 20
"""Records are grouped into segments of about this many bytes (a bigger record gets its own)."""

_LEN = struct.Struct("<I")


class SegmentRef(FrozenValue):
    off: int
    len: int
    first: int
    count: int
    sha256: bytes

    __slots__ = ("count", "first", "len", "off", "sha256")

    def __init__(self, off: int, len: int, first: int, count: int, sha256: bytes) -> None:
        _set = object.__setattr__
        _set(self, "off", off)
        _set(self, "len", len)
        _set(self, "first", first)
        _set(self, "count", count)
        _set(self, "sha256", sha256)

    def to_row(self) -> list[Any]:
        return [self.off, self.len, self.first, self.count, self.sha256]

    @classmethod
    def from_row(cls, v: Any, what: str, lo: int, hi: int, limits: Limits) -> SegmentRef:
        row = as_list(v, what)
        if len(row) < 5:
            raise CorruptError(f"{what}: segment row needs 5 items, has {len(row)}")
        ref = cls(
            as_uint(row[0], f"{what}[0] (offset)"),
            as_uint(row[1], f"{what}[1] (length)"),
            as_uint(row[2], f"{what}[2] (first index)"),
            as_uint(row[3], f"{what}[3] (count)"),
            as_bytes(row[4], f"{what}[4] (sha256)", 32),
        )
        check_span(ref.off, ref.len, lo, hi, what)
        check_cap(ref.len, limits.max_segment_bytes, "max_segment_bytes", what)
        if ref.count == 0 or ref.len < 4 * ref.count:
            raise CorruptError(f"{what}: {ref.count} records cannot fill {ref.len} bytes")
        return ref


def frame(record: bytes) -> bytes:
    return _LEN.pack(len(record)) + record


def frames(records: list[bytes]) -> bytes:
    """``b"".join(map(frame, records))``: every length packed in one call, then interleaved."""
    n = len(records)
    lengths = struct.pack(f"<{n}I", *map(len, records))
    parts: list[bytes] = [b""] * (2 * n)
    parts[0::2] = [lengths[i : i + 4] for i in range(0, 4 * n, 4)]
    parts[1::2] = records
    return b"".join(parts)


def group(records: list[bytes], target: int = SEGMENT_TARGET) -> list[list[bytes]]:
    """Split records (in order) into runs of about ``target`` framed bytes each.

    Greedy: a record joins the current run while the run's framed bytes stay within
    ``target`` (a record larger than that is a run of its own). The run ends are found by
    binary search in the running total of framed sizes, not by a Python step per record.
    """
    ends = list(accumulate(map((4).__add__, map(len, records))))
    runs: list[list[bytes]] = []
    start, base, n = 0, 0, len(records)
    while start < n:
        stop = max(bisect_right(ends, base + target, start), start + 1)
        runs.append(records[start:stop])
        base, start = ends[stop - 1], stop
    return runs


def iter_frames(
    data: bytes | memoryview, count: int, limits: Limits, what: str
) -> Iterator[tuple[int, memoryview]]:
    """(offset within the segment, record bytes) of exactly ``count`` frames filling ``data``."""
    view = memoryview(data)
    pos = 0
    end = len(view)
    for i in range(count):
        if pos + 4 > end:
            raise CorruptError(f"{what}: record {i} of {count} starts past the segment's end")
        (n,) = _LEN.unpack_from(view, pos)
        check_cap(n, limits.max_record_bytes, "max_record_bytes", f"{what} record {i}")
        if pos + 4 + n > end:
            raise CorruptError(f"{what}: record {i} ({n} bytes) runs past the segment's end")
        yield pos, view[pos + 4 : pos + 4 + n]
        pos += 4 + n
    if pos != end:
        raise CorruptError(f"{what}: {end - pos} bytes follow the last of its {count} records")
