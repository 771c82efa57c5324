"""The index: per layer, a key-range table of directory chunks and the data streams.

Entries of a layer are sorted by key (UTF-8 bytes). Their descriptions (key, strength,
counts, tensor spec, where the value lies) go into *directory chunks* of about 64 KiB; the
index keeps one row per directory chunk with its first and last key, so finding a key is a
binary search over rows plus one small decompression — the index grows with the number of
chunks, never with the number of entries. Values go into *data streams*, one per filter
class (unshuffled bytes, or shuffled with element size 2, 4 or 8), cut into fixed-size
chunks, so a value is read by decompressing only the chunks its byte range touches.

Row tables are stored by column (offsets, lengths, digests as packed little-endian byte
strings), so opening the index of a 1 GiB file casts a handful of byte strings to
integer views (no copy, no numpy import) instead of decoding thousands of small CBOR
arrays.
"""

from __future__ import annotations

from abc import abstractmethod
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any, TypeVar, overload

from thermo_cli.config.limits import Limits, check_cap
from thermo_cli.container.blocks import le_bytes, le_column
from thermo_cli.container.chunks import FILTERS, SHUFFLE, SHUFFLE_ELEMS
from thermo_cli.errors import CorruptError
from thermo_cli.model import Layer
from thermo_cli.model.fields import as_bytes, as_list, as_map, as_text, as_uint, field_of
from thermo_cli.model.valueclass import FrozenValue, Value


class DirChunk(FrozenValue):
    """Row of the key-range table: one directory chunk."""

    off: int
    len: int
    raw: int
    count: int
    first: str
    last: str
    sha256: bytes
    ident: tuple[int, int, int, bytes] | None
    """(off, len, raw, sha256) of the row's identity chunk when the entries' state columns
    and identity columns are stored apart (spec §8.5); None for a combined chunk."""

    __slots__ = ("count", "first", "ident", "last", "len", "off", "raw", "sha256")

    def __init__(
        self,
        off: int,
        len: int,
        raw: int,
        count: int,
        first: str,
        last: str,
        sha256: bytes,
        ident: tuple[int, int, int, bytes] | None = None,
    ) -> None:
        _set = object.__setattr__
        _set(self, "off", off)
        _set(self, "len", len)
        _set(self, "raw", raw)
        _set(self, "count", count)
        _set(self, "first", first)
        _set(self, "last", last)
        _set(self, "sha256", sha256)
        _set(self, "ident", ident)


class DataChunk(FrozenValue):
    off: int
    len: int
    sha256: bytes

    __slots__ = ("len", "off", "sha256")

    def __init__(self, off: int, len: int, sha256: bytes) -> None:
        _set = object.__setattr__
        _set(self, "off", off)
        _set(self, "len", len)
        _set(self, "sha256", sha256)


Column = Sequence[int]
"""A u64 column: a view of its packed little-endian bytes (see ``blocks.le_column``)."""


def _column(m: dict[str, Any], name: str, n: int | None, what: str) -> Column:
    data = as_bytes(field_of(m, name, what), f"{what}.{name}")
    if len(data) % 8 or (n is not None and len(data) != 8 * n):
        raise CorruptError(f"{what}.{name}: {len(data)} bytes do not hold the row count's u64 values")
    return le_column(data, "<u8")


def _u64(values: list[int]) -> Column:
    return le_column(le_bytes(values, "<u8"), "<u8")


def _digests(m: dict[str, Any], n: int, what: str) -> bytes:
    data = as_bytes(field_of(m, "sha256", what), f"{what}.sha256")
    if len(data) != 32 * n:
        raise CorruptError(f"{what}.sha256: {len(data)} bytes for {n} digests")
    return data


def _check_spans(off: Column, length: Column, lo: int, hi: int, what: str) -> None:
    """Every (offset, length) lies within ``lo..hi`` (one row per chunk, not per entry)."""
    if not len(off) or (
        min(off) >= lo
        and max(off) <= hi
        and max(length) <= hi
        and all(o + n <= hi for o, n in zip(off, length, strict=True))
    ):
        return
    for i, (o, n) in enumerate(zip(off, length, strict=True)):
        if o < lo or o + n > hi:
            raise CorruptError(f"{what}[{i}]: bytes {o}..{o + n} lie outside the file's data {lo}..{hi}")


_Row = TypeVar("_Row")


class _ColumnTable(Sequence[_Row]):
    """A table stored by column; a row object is built only when it is indexed."""

    __slots__ = ()
    _ROW_NAME = "row"

    @abstractmethod
    def _row(self, i: int) -> _Row:
        """Row ``i`` (already range-checked) built from the columns."""

    @overload
    def __getitem__(self, i: int) -> _Row: ...
    @overload
    def __getitem__(self, i: slice) -> list[_Row]: ...
    def __getitem__(self, i: int | slice) -> _Row | list[_Row]:
        if isinstance(i, slice):
            return [self._row(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"{self._ROW_NAME} out of range")
        return self._row(i)


class DirTable(_ColumnTable[DirChunk]):
    """The key-range table of a layer, by column; rows are made on demand."""

    __slots__ = ("_count", "_first_bytes", "_ident", "_len", "_off", "_raw", "_sha", "first", "last")
    _ROW_NAME = "directory row"

    def __init__(
        self,
        off: Column,
        length: Column,
        raw: Column,
        count: Column,
        first: list[str],
        last: list[str],
        sha: bytes,
        ident: tuple[Column, Column, Column, bytes] | None = None,
    ) -> None:
        self._off, self._len, self._raw, self._count = off, length, raw, count
        self.first, self.last = first, last
        self._sha = sha
        self._ident = ident
        self._first_bytes: list[bytes] | None = None

    @classmethod
    def of(cls, rows: Sequence[DirChunk]) -> DirTable:
        def col(name: str) -> Column:
            return _u64([getattr(r, name) for r in rows])

        ident = None
        if any(r.ident is not None for r in rows):
            parts = [r.ident or (0, 0, 0, bytes(32)) for r in rows]
            ident = (
                _u64([p[0] for p in parts]),
                _u64([p[1] for p in parts]),
                _u64([p[2] for p in parts]),
                b"".join(p[3] for p in parts),
            )
        return cls(
            col("off"),
            col("len"),
            col("raw"),
            col("count"),
            [r.first for r in rows],
            [r.last for r in rows],
            b"".join(r.sha256 for r in rows),
            ident,
        )

    def __len__(self) -> int:
        return len(self.first)

    def _row(self, i: int) -> DirChunk:
        return DirChunk(
            int(self._off[i]),
            int(self._len[i]),
            int(self._raw[i]),
            int(self._count[i]),
            self.first[i],
            self.last[i],
            self._sha[32 * i : 32 * i + 32],
            self._ident_of(i),
        )

    def _ident_of(self, i: int) -> tuple[int, int, int, bytes] | None:
        c = self._ident
        if c is None or not c[1][i]:
            return None
        return int(c[0][i]), int(c[1][i]), int(c[2][i]), c[3][32 * i : 32 * i + 32]

    def total(self) -> int:
        return sum(self._count)

    def find(self, key: str) -> int | None:
        """Position of the row whose key range may hold ``key``."""
        if self._first_bytes is None:
            self._first_bytes = [k.encode("utf-8") for k in self.first]
        kb = key.encode("utf-8")
        i = bisect_right(self._first_bytes, kb) - 1
        if i < 0 or kb > self.last[i].encode("utf-8"):
            return None
        return i

    def to_map(self) -> dict[str, Any]:
        m = {
            "off": le_bytes(self._off, "<u8"),
            "len": le_bytes(self._len, "<u8"),
            "raw": le_bytes(self._raw, "<u8"),
            "count": le_bytes(self._count, "<u8"),
            "first": list(self.first),
            "last": list(self.last),
            "sha256": self._sha,
        }
        if self._ident is not None:
            off, length, raw, sha = self._ident
            m.update(
                ident_off=le_bytes(off, "<u8"),
                ident_len=le_bytes(length, "<u8"),
                ident_raw=le_bytes(raw, "<u8"),
                ident_sha256=sha,
            )
        return m

    @classmethod
    def from_map(cls, v: Any, what: str, lo: int, hi: int, limits: Limits) -> DirTable:
        m = as_map(v, what)
        first = as_list(field_of(m, "first", what), f"{what}.first")
        last = as_list(field_of(m, "last", what), f"{what}.last")
        n = len(first)
        check_cap(n, limits.max_chunks, "max_chunks", what)
        if len(last) != n:
            raise CorruptError(f"{what}: {n} first keys but {len(last)} last keys")
        off, length = _column(m, "off", n, what), _column(m, "len", n, what)
        raw, count = _column(m, "raw", n, what), _column(m, "count", n, what)
        sha = _digests(m, n, what)
        _check_spans(off, length, lo, hi, what)
        if n:
            check_cap(max(raw), limits.max_chunk_bytes, "max_chunk_bytes", f"{what}.raw")
            check_cap(max(count), limits.max_entries_per_chunk, "max_entries_per_chunk", f"{what}.count")
            if min(count) == 0:
                raise CorruptError(f"{what}.count: a directory chunk with no entries")
        prev = b""
        for i in range(n):
            f = as_text(first[i], f"{what}.first[{i}]").encode("utf-8")
            la = as_text(last[i], f"{what}.last[{i}]").encode("utf-8")
            if f > la or (i and f <= prev):
                raise CorruptError(f"{what}[{i}]: key ranges are reversed, overlap or are out of order")
            prev = la
        return cls(off, length, raw, count, first, last, sha, _ident_from_map(m, n, what, lo, hi, limits))


def _ident_from_map(
    m: dict[str, Any], n: int, what: str, lo: int, hi: int, limits: Limits
) -> tuple[Column, Column, Column, bytes] | None:
    """The optional identity-chunk columns (§8.5); a row with length 0 has none."""
    if "ident_off" not in m:
        return None
    off, length = _column(m, "ident_off", n, what), _column(m, "ident_len", n, what)
    raw = _column(m, "ident_raw", n, what)
    sha = as_bytes(field_of(m, "ident_sha256", what), f"{what}.ident_sha256")
    if len(sha) != 32 * n:
        raise CorruptError(f"{what}.ident_sha256: {len(sha)} bytes for {n} digests")
    rows = [i for i in range(n) if length[i]]
    _check_spans([off[i] for i in rows], [length[i] for i in rows], lo, hi, f"{what}.ident")
    if rows:
        check_cap(max(raw), limits.max_chunk_bytes, "max_chunk_bytes", f"{what}.ident_raw")
    return off, length, raw, sha


class ChunkTable(_ColumnTable[DataChunk]):
    """The chunk rows of one data stream, by column."""

    __slots__ = ("_len", "_off", "_sha")
    _ROW_NAME = "data chunk"

    def __init__(self, off: Column, length: Column, sha: bytes) -> None:
        self._off, self._len, self._sha = off, length, sha

    @classmethod
    def of(cls, rows: Sequence[DataChunk]) -> ChunkTable:
        return cls(_u64([r.off for r in rows]), _u64([r.len for r in rows]), b"".join(r.sha256 for r in rows))

    def __len__(self) -> int:
        return len(self._off)

    def _row(self, i: int) -> DataChunk:
        return DataChunk(int(self._off[i]), int(self._len[i]), self._sha[32 * i : 32 * i + 32])

    def to_map(self) -> dict[str, Any]:
        return {"off": le_bytes(self._off, "<u8"), "len": le_bytes(self._len, "<u8"), "sha256": self._sha}

    @classmethod
    def from_map(cls, v: Any, what: str, lo: int, hi: int, limits: Limits) -> ChunkTable:
        m = as_map(v, what)
        off = _column(m, "off", None, what)
        n = len(off)
        check_cap(n, limits.max_chunks, "max_chunks", what)
        length = _column(m, "len", n, what)
        sha = _digests(m, n, what)
        _check_spans(off, length, lo, hi, what)
        return cls(off, length, sha)


class Stream(FrozenValue):
    """A layer's values of one filter class, concatenated and cut into ``chunk``-byte chunks."""

    filter: str
    elem: int
    size: int
    chunk: int
    chunks: ChunkTable

    __slots__ = ("chunk", "chunks", "elem", "filter", "size")

    def __init__(self, filter: str, elem: int, size: int, chunk: int, chunks: ChunkTable) -> None:
        _set = object.__setattr__
        _set(self, "filter", filter)
        _set(self, "elem", elem)
        _set(self, "size", size)
        _set(self, "chunk", chunk)
        _set(self, "chunks", chunks)

    def chunk_raw_len(self, i: int) -> int:
        return min(self.chunk, self.size - i * self.chunk)

    def to_map(self) -> dict[str, Any]:
        return {
            "filter": self.filter,
            "elem": self.elem,
            "size": self.size,
            "chunk": self.chunk,
            "chunks": self.chunks.to_map(),
        }


class LayerIndex(Value):
    count: int
    dirs: DirTable
    streams: list[Stream]

    __slots__ = ("count", "dirs", "streams")

    def __init__(
        self, count: int = 0, dirs: DirTable | None = None, streams: list[Stream] | None = None
    ) -> None:
        self.count = count
        self.dirs = DirTable.of([]) if dirs is None else dirs
        self.streams = [] if streams is None else streams

    def to_map(self) -> dict[str, Any]:
        return {"count": self.count, "dir": self.dirs.to_map(), "streams": [s.to_map() for s in self.streams]}

    def find_dir(self, key: str) -> int | None:
        """Position of the directory chunk whose key range may hold ``key``."""
        return self.dirs.find(key)


def index_to_map(layers: dict[Layer, LayerIndex], garbage: int = 0) -> dict[str, Any]:
    """The index block's map; ``garbage`` (bytes no longer referenced, §8.4) only when > 0."""
    out: dict[str, Any] = {"layers": {layer.label: layers[layer].to_map() for layer in Layer}}
    if garbage:
        out["garbage"] = garbage
    return out


def garbage_from_map(v: Any) -> int:
    """The index's optional ``garbage`` estimate (0 when absent, as in files before it)."""
    m = as_map(v, "index")
    g = m.get("garbage")
    return 0 if g is None else as_uint(g, "index.garbage")


# --- decoding ------------------------------------------------------------------------------


def _stream_from_map(v: Any, what: str, lo: int, hi: int, limits: Limits) -> Stream:
    m = as_map(v, what)
    filt = as_text(field_of(m, "filter", what), f"{what}.filter")
    elem = as_uint(field_of(m, "elem", what), f"{what}.elem")
    size = as_uint(field_of(m, "size", what), f"{what}.size")
    chunk = as_uint(field_of(m, "chunk", what), f"{what}.chunk")
    if filt not in FILTERS:
        raise CorruptError(f"{what}: unknown filter {filt!r}")
    if filt == SHUFFLE and elem not in SHUFFLE_ELEMS:
        raise CorruptError(f"{what}: shuffle element size must be 2, 4 or 8, got {elem}")
    if elem < 1 or chunk < 1:
        raise CorruptError(f"{what}: element and chunk sizes must be positive")
    check_cap(chunk, limits.max_chunk_bytes, "max_chunk_bytes", f"{what}.chunk")
    if chunk % elem or size % elem:
        raise CorruptError(f"{what}: chunk and stream sizes must be multiples of the element size")
    chunks = ChunkTable.from_map(field_of(m, "chunks", what), f"{what}.chunks", lo, hi, limits)
    if len(chunks) != -(-size // chunk):
        raise CorruptError(f"{what}: {len(chunks)} chunks cannot hold {size} bytes in {chunk}-byte chunks")
    return Stream(filt, elem, size, chunk, chunks)


def layer_index_from_map(v: Any, what: str, lo: int, hi: int, limits: Limits) -> LayerIndex:
    m = as_map(v, what)
    count = as_uint(field_of(m, "count", what), f"{what}.count")
    streams = as_list(field_of(m, "streams", what), f"{what}.streams")
    check_cap(len(streams), limits.max_streams, "max_streams", f"{what}.streams")
    dirs = DirTable.from_map(field_of(m, "dir", what), f"{what}.dir", lo, hi, limits)
    if dirs.total() != count:
        raise CorruptError(f"{what}: directory chunks hold {dirs.total()} entries, count says {count}")
    return LayerIndex(
        count=count,
        dirs=dirs,
        streams=[_stream_from_map(s, f"{what}.streams[{i}]", lo, hi, limits) for i, s in enumerate(streams)],
    )


def index_from_map(v: Any, lo: int, hi: int, limits: Limits) -> dict[Layer, LayerIndex]:
    m = as_map(v, "index")
    layers = as_map(field_of(m, "layers", "index"), "index.layers")
    out = {}
    for layer in Layer:
        out[layer] = layer_index_from_map(
            field_of(layers, layer.label, "index.layers"), f"index.layers.{layer.label}", lo, hi, limits
        )
    return out
