"""The index: per layer, a key-range table of directory chunks and the data streams.

Entries of a layer are sorted by key (UTF-8 bytes). Their descriptions (key, strength,
counts, tensor spec, where the value lies) go into *directory chunks* of about 64 KiB; the
index keeps one row per directory chunk with its first and last key, so finding a key is a
binary search over rows plus one small decompression — the index grows with the number of
chunks, never with the number of entries. Values go into *data streams*, one per filter
class (unshuffled bytes, or shuffled with element size 2, 4 or 8), cut into fixed-size
chunks, so a value is read by decompressing only the chunks its byte range touches.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from thermo_cli.container.blocks import (
    as_bytes,
    as_list,
    as_map,
    as_text,
    as_uint,
    check_span,
    field_of,
)
from thermo_cli.container.chunks import FILTERS, SHUFFLE, SHUFFLE_ELEMS
from thermo_cli.container.limits import Limits, check_cap
from thermo_cli.errors import CorruptError
from thermo_cli.model import Layer


@dataclass(frozen=True, slots=True)
class DirChunk:
    """Row of the key-range table: one directory chunk."""

    off: int
    len: int
    raw: int
    count: int
    first: str
    last: str
    sha256: bytes

    def to_row(self) -> list[Any]:
        return [self.off, self.len, self.raw, self.count, self.first, self.last, self.sha256]


@dataclass(frozen=True, slots=True)
class DataChunk:
    off: int
    len: int
    sha256: bytes

    def to_row(self) -> list[Any]:
        return [self.off, self.len, self.sha256]


@dataclass(frozen=True, slots=True)
class Stream:
    """A layer's values of one filter class, concatenated and cut into ``chunk``-byte chunks."""

    filter: str
    elem: int
    size: int
    chunk: int
    chunks: tuple[DataChunk, ...]

    def chunk_raw_len(self, i: int) -> int:
        return min(self.chunk, self.size - i * self.chunk)

    def to_map(self) -> dict[str, Any]:
        return {"filter": self.filter, "elem": self.elem, "size": self.size, "chunk": self.chunk,
                "chunks": [c.to_row() for c in self.chunks]}


@dataclass(slots=True)
class LayerIndex:
    count: int = 0
    dirs: list[DirChunk] = field(default_factory=list)
    streams: list[Stream] = field(default_factory=list)
    _firsts: list[bytes] | None = None

    def to_map(self) -> dict[str, Any]:
        return {"count": self.count, "dir": [d.to_row() for d in self.dirs],
                "streams": [s.to_map() for s in self.streams]}

    def find_dir(self, key: str) -> int | None:
        """Position of the directory chunk whose key range may hold ``key``."""
        if self._firsts is None:
            self._firsts = [d.first.encode("utf-8") for d in self.dirs]
        kb = key.encode("utf-8")
        i = bisect_right(self._firsts, kb) - 1
        if i < 0 or kb > self.dirs[i].last.encode("utf-8"):
            return None
        return i


def index_to_map(layers: dict[Layer, LayerIndex]) -> dict[str, Any]:
    return {"layers": {layer.label: layers[layer].to_map() for layer in Layer}}


# --- decoding ------------------------------------------------------------------------------


def _dir_from_row(v: Any, what: str, lo: int, hi: int, limits: Limits) -> DirChunk:
    row = as_list(v, what)
    if len(row) < 7:
        raise CorruptError(f"{what}: directory row needs 7 items, has {len(row)}")
    d = DirChunk(
        off=as_uint(row[0], f"{what}[0] (offset)"),
        len=as_uint(row[1], f"{what}[1] (length)"),
        raw=as_uint(row[2], f"{what}[2] (raw size)"),
        count=as_uint(row[3], f"{what}[3] (count)"),
        first=as_text(row[4], f"{what}[4] (first key)"),
        last=as_text(row[5], f"{what}[5] (last key)"),
        sha256=as_bytes(row[6], f"{what}[6] (sha256)", 32),
    )
    check_span(d.off, d.len, lo, hi, what)
    check_cap(d.raw, limits.max_chunk_bytes, "max_chunk_bytes", what)
    check_cap(d.count, limits.max_entries_per_chunk, "max_entries_per_chunk", what)
    if d.count == 0:
        raise CorruptError(f"{what}: directory chunk with no entries")
    if d.first.encode("utf-8", "surrogatepass") > d.last.encode("utf-8", "surrogatepass"):
        raise CorruptError(f"{what}: first key sorts after last key")
    return d


def _stream_from_map(v: Any, what: str, lo: int, hi: int, limits: Limits) -> Stream:
    m = as_map(v, what)
    filt = as_text(field_of(m, "filter", what), f"{what}.filter")
    elem = as_uint(field_of(m, "elem", what), f"{what}.elem")
    size = as_uint(field_of(m, "size", what), f"{what}.size")
    chunk = as_uint(field_of(m, "chunk", what), f"{what}.chunk")
    rows = as_list(field_of(m, "chunks", what), f"{what}.chunks")
    if filt not in FILTERS:
        raise CorruptError(f"{what}: unknown filter {filt!r}")
    if filt == SHUFFLE and elem not in SHUFFLE_ELEMS:
        raise CorruptError(f"{what}: shuffle element size must be 2, 4 or 8, got {elem}")
    if elem < 1 or chunk < 1:
        raise CorruptError(f"{what}: element and chunk sizes must be positive")
    check_cap(chunk, limits.max_chunk_bytes, "max_chunk_bytes", f"{what}.chunk")
    check_cap(len(rows), limits.max_chunks, "max_chunks", f"{what}.chunks")
    if chunk % elem or size % elem:
        raise CorruptError(f"{what}: chunk and stream sizes must be multiples of the element size")
    if len(rows) != -(-size // chunk):
        raise CorruptError(f"{what}: {len(rows)} chunks cannot hold {size} bytes in {chunk}-byte chunks")
    chunks = []
    for i, r in enumerate(rows):
        row = as_list(r, f"{what}.chunks[{i}]")
        if len(row) < 3:
            raise CorruptError(f"{what}.chunks[{i}]: data row needs 3 items, has {len(row)}")
        c = DataChunk(as_uint(row[0], f"{what}.chunks[{i}][0]"), as_uint(row[1], f"{what}.chunks[{i}][1]"),
                      as_bytes(row[2], f"{what}.chunks[{i}][2]", 32))
        check_span(c.off, c.len, lo, hi, f"{what}.chunks[{i}]")
        chunks.append(c)
    return Stream(filt, elem, size, chunk, tuple(chunks))


def layer_index_from_map(v: Any, what: str, lo: int, hi: int, limits: Limits) -> LayerIndex:
    m = as_map(v, what)
    count = as_uint(field_of(m, "count", what), f"{what}.count")
    rows = as_list(field_of(m, "dir", what), f"{what}.dir")
    streams = as_list(field_of(m, "streams", what), f"{what}.streams")
    check_cap(len(rows), limits.max_chunks, "max_chunks", f"{what}.dir")
    check_cap(len(streams), limits.max_streams, "max_streams", f"{what}.streams")
    dirs = [_dir_from_row(r, f"{what}.dir[{i}]", lo, hi, limits) for i, r in enumerate(rows)]
    for i in range(1, len(dirs)):
        if dirs[i - 1].last.encode("utf-8", "surrogatepass") >= dirs[i].first.encode("utf-8", "surrogatepass"):
            raise CorruptError(f"{what}.dir[{i}]: key ranges overlap or are out of order")
    if sum(d.count for d in dirs) != count:
        raise CorruptError(f"{what}: directory chunks hold {sum(d.count for d in dirs)} entries, count says {count}")
    return LayerIndex(
        count=count, dirs=dirs,
        streams=[_stream_from_map(s, f"{what}.streams[{i}]", lo, hi, limits) for i, s in enumerate(streams)],
    )


def index_from_map(v: Any, lo: int, hi: int, limits: Limits) -> dict[Layer, LayerIndex]:
    m = as_map(v, "index")
    layers = as_map(field_of(m, "layers", "index"), "index.layers")
    out = {}
    for layer in Layer:
        out[layer] = layer_index_from_map(
            field_of(layers, layer.label, "index.layers"), f"index.layers.{layer.label}", lo, hi, limits)
    return out
