"""Directory chunks: the description of each entry of a layer, in key order, by column.

A directory chunk is a zstd frame of one CBOR map of columns: the keys as a text array and
every numeric field as one little-endian byte string (strength f64, update count u64,
update time i64, ternary i8, tensor-description index i32, value stream u16, value
offset and length u64). Each column is a zero-copy typed view of its byte string (no
numpy: importing it would cost more than a whole key lookup), so opening a chunk of a
thousand entries costs a few hundred microseconds and looking one key up builds one row.
Tensor descriptions are deduplicated (a layer of same-shaped weights stores one).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from thermo_cli.codec import cbor
from thermo_cli.codec.records import tensor_from_map, tensor_to_map
from thermo_cli.container.blocks import COLUMN_FORMATS, le_bytes, le_column
from thermo_cli.container.index import DirChunk, Stream
from thermo_cli.errors import CorruptError
from thermo_cli.model import MAX_KEY_BYTES, Entry, TensorSpec, Ternary
from thermo_cli.model.fields import as_bytes, as_list, as_map, field_of
from thermo_cli.model.valueclass import Value

VALUE_SHA = "value_sha256"
"""Optional column (format 2.1): n × 32 bytes, each entry's value SHA-256."""
NO_TERNARY = 2
"""Value of the ternary column for an entry without a ternary strength."""

# column name → numpy dtype (all little-endian)
COLUMNS: dict[str, str] = {
    "strength": "<f8",
    "count": "<u8",
    "updated": "<i8",
    "ternary": "i1",
    "tensor": "<i4",
    "stream": "<u2",
    "offset": "<u8",
    "length": "<u8",
}


class Row(Value):
    """An entry as listed in a directory chunk, its value not yet read."""

    key: str
    strength: float
    ternary: Ternary | None
    update_count: int
    updated_at_ns: int
    tensor: TensorSpec | None
    stream: int
    off: int
    length: int
    value_sha256: bytes | None
    """SHA-256 of the value when the chunk has the ``value_sha256`` column (format 2.1
    writers add it, so the state digest needs no value bytes); None in older chunks."""

    __slots__ = (
        "key",
        "length",
        "off",
        "stream",
        "strength",
        "tensor",
        "ternary",
        "update_count",
        "updated_at_ns",
        "value_sha256",
    )

    def __init__(
        self,
        key: str,
        strength: float,
        ternary: Ternary | None,
        update_count: int,
        updated_at_ns: int,
        tensor: TensorSpec | None,
        stream: int,
        off: int,
        length: int,
        value_sha256: bytes | None = None,
    ) -> None:
        self.key = key
        self.strength = strength
        self.ternary = ternary
        self.update_count = update_count
        self.updated_at_ns = updated_at_ns
        self.tensor = tensor
        self.stream = stream
        self.off = off
        self.length = length
        self.value_sha256 = value_sha256

    def entry(self, value: bytes) -> Entry:
        return Entry(
            key=self.key,
            value=value,
            strength=self.strength,
            updated_at_ns=self.updated_at_ns,
            update_count=self.update_count,
            ternary=self.ternary,
            tensor=self.tensor,
        )


# --- encoding -----------------------------------------------------------------------------


def chunk_map(
    entries: Sequence[Any],
    locs: list[tuple[int, int]],
    lengths: list[int] | None = None,
    value_shas: list[bytes] | None = None,
) -> dict[str, Any]:
    """The column map of a directory chunk; ``locs`` holds each value's (stream, offset).

    ``entries`` are Entries or :class:`Row`s (a copy-on-write commit re-lists unchanged
    rows without reading their values). ``lengths`` are the values' sizes when the caller
    knows them: the writer passes them so a value streamed from another file is not read
    again just to be measured. ``value_shas`` (the values' SHA-256, in entry order) adds
    the ``value_sha256`` column.
    """
    specs: list[dict[str, Any]] = []
    spec_ix: dict[TensorSpec, int] = {}
    tix = []
    for e in entries:
        if e.tensor is None:
            tix.append(-1)
            continue
        i = spec_ix.get(e.tensor)
        if i is None:
            i = spec_ix[e.tensor] = len(specs)
            specs.append(tensor_to_map(e.tensor))  # type: ignore[arg-type]
        tix.append(i)
    cols: dict[str, Sequence[int] | Sequence[float]] = {
        "strength": [e.strength for e in entries],
        "count": [e.update_count for e in entries],
        "updated": [e.updated_at_ns for e in entries],
        "ternary": [NO_TERNARY if e.ternary is None else int(e.ternary) for e in entries],
        "tensor": tix,
        "stream": [s for s, _ in locs],
        "offset": [o for _, o in locs],
        "length": lengths if lengths is not None else [len(e.value) for e in entries],
    }
    out: dict[str, Any] = {"keys": [e.key for e in entries], "tensors": specs}
    for name, dtype in COLUMNS.items():
        out[name] = le_bytes(cols[name], dtype)
    if value_shas is not None:
        out[VALUE_SHA] = b"".join(value_shas)
    return out


def estimate_row_size(e: Entry) -> int:
    """Upper estimate of an entry's share of a directory chunk, used to cut chunks."""
    size = 48 + len(e.key) * 3
    if e.tensor is not None:
        size += 96 + 9 * len(e.tensor.shape) + len(e.tensor.scales or b"") + len(e.tensor.dtype)
    return size


# --- decoding -----------------------------------------------------------------------------


class DirData:
    """A decoded, checked directory chunk; rows are built on demand."""

    __slots__ = ("_key_bytes", "cols", "keys", "tensors", "value_shas")

    def __init__(
        self,
        keys: list[str],
        cols: dict[str, Sequence[Any]],
        tensors: list[TensorSpec],
        value_shas: bytes | None = None,
    ) -> None:
        self.keys = keys
        self.cols = cols
        self.tensors = tensors
        self.value_shas = value_shas
        self._key_bytes: list[bytes] | None = None

    def value_sha(self, i: int) -> bytes | None:
        """Entry ``i``'s value SHA-256 from the ``value_sha256`` column (None without it)."""
        v = self.value_shas
        return None if v is None else v[32 * i : 32 * i + 32]

    def __len__(self) -> int:
        return len(self.keys)

    def find(self, key: str) -> int | None:
        if self._key_bytes is None:
            self._key_bytes = [k.encode("utf-8") for k in self.keys]
        kb = key.encode("utf-8")
        i = bisect_left(self._key_bytes, kb)
        return i if i < len(self.keys) and self._key_bytes[i] == kb else None

    def row(self, i: int) -> Row:
        c = self.cols
        tern = int(c["ternary"][i])
        tix = int(c["tensor"][i])
        return Row(
            key=self.keys[i],
            strength=float(c["strength"][i]),
            ternary=None if tern == NO_TERNARY else Ternary(tern),
            update_count=int(c["count"][i]),
            updated_at_ns=int(c["updated"][i]),
            tensor=None if tix < 0 else self.tensors[tix],
            stream=int(c["stream"][i]),
            off=int(c["offset"][i]),
            length=int(c["length"][i]),
            value_sha256=self.value_sha(i),
        )

    def rows(self) -> list[Row]:
        c = {name: list(col) for name, col in self.cols.items()}
        tensors = self.tensors
        sha = self.value_sha
        out = []
        for i, key in enumerate(self.keys):
            tern = c["ternary"][i]
            tix = c["tensor"][i]
            out.append(
                Row(
                    key,
                    c["strength"][i],
                    None if tern == NO_TERNARY else Ternary(tern),
                    c["count"][i],
                    c["updated"][i],
                    None if tix < 0 else tensors[tix],
                    c["stream"][i],
                    c["offset"][i],
                    c["length"][i],
                    sha(i),
                )
            )
        return out


STATE_COLUMNS = ("strength", "count", "updated", "ternary")
"""The columns of a state chunk (§8.5): what engine passes change; the rest is identity."""


def split_map(m: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A chunk's column map as (state map, identity map) for storing them apart (§8.5)."""
    state = {k: m[k] for k in STATE_COLUMNS}
    return state, {k: v for k, v in m.items() if k not in state}


def decode_chunk(
    raw: bytes | memoryview,
    d: DirChunk,
    streams: list[Stream],
    what: str,
    max_items: int | None = None,
    ident: bytes | memoryview | None = None,
) -> DirData:
    """Decode a decompressed directory chunk and check it against its index row.

    ``max_items`` (``max_cbor_items``) is counted before decoding only for chunks longer
    than it, which the writer's 64 KiB chunks never are: the lookup path pays nothing.
    With ``ident`` (the row's identity chunk, §8.5) ``raw`` is a state chunk: its state
    columns and the identity chunk's other columns make up the chunk.
    """
    m = as_map(cbor.decode_canonical(raw, what=what, max_items=max_items), what)
    if ident is not None:
        iwhat = f"{what} identity chunk"
        im = as_map(cbor.decode_canonical(ident, what=iwhat, max_items=max_items), iwhat)
        state = {k: field_of(m, k, what) for k in STATE_COLUMNS}
        m = {**{k: v for k, v in im.items() if k not in STATE_COLUMNS}, **state}
    keys = as_list(field_of(m, "keys", what), f"{what}.keys")
    n = len(keys)
    if n != d.count:
        raise CorruptError(f"{what}: holds {n} entries, the index says {d.count}")
    prev = b""
    for i, k in enumerate(keys):
        if not isinstance(k, str):
            raise CorruptError(f"{what}.keys[{i}]: expected text")
        kb = k.encode("utf-8")
        if not kb or len(kb) > MAX_KEY_BYTES:
            raise CorruptError(f"{what}.keys[{i}]: empty or longer than {MAX_KEY_BYTES} bytes")
        if i and kb <= prev:
            raise CorruptError(f"{what}.keys[{i}]: keys are not in strictly increasing order")
        prev = kb
    if keys[0] != d.first or keys[-1] != d.last:
        raise CorruptError(f"{what}: first/last keys differ from the index")
    specs = as_list(field_of(m, "tensors", what), f"{what}.tensors")
    tensors = [tensor_from_map(s, f"{what}.tensors[{i}]") for i, s in enumerate(specs)]
    if any(t is None for t in tensors):
        raise CorruptError(f"{what}.tensors: null is not a tensor description")
    cols: dict[str, Sequence[Any]] = {}
    for name, dtype in COLUMNS.items():
        data = as_bytes(field_of(m, name, what), f"{what}.{name}")
        size = _SIZES[dtype]
        if len(data) != n * size:
            raise CorruptError(f"{what}.{name}: {len(data)} bytes for {n} entries of {size} bytes")
        cols[name] = le_column(data, dtype)
    _check_columns(cols, len(tensors), streams, what)
    shas = m.get(VALUE_SHA)
    if shas is not None:
        shas = as_bytes(shas, f"{what}.{VALUE_SHA}")
        if len(shas) != 32 * n:
            raise CorruptError(f"{what}.{VALUE_SHA}: {len(shas)} bytes for {n} digests")
    return DirData(keys, cols, tensors, shas)  # type: ignore[arg-type]


_SIZES = {"<f8": 8, "<u8": 8, "<i8": 8, "i1": 1, "<i4": 4, "<u2": 2}
assert set(_SIZES) == set(COLUMN_FORMATS)


def _check_columns(cols: dict[str, Sequence[Any]], n_tensors: int, streams: list[Stream], what: str) -> None:
    """Range checks of a decoded chunk: min/max are C loops over the column views; the
    per-row bounds check of values runs only over a chunk's rows (about a thousand)."""
    s = cols["strength"]
    if not all(map(math.isfinite, s)):
        raise CorruptError(f"{what}.strength: not every strength is a finite number")
    t = cols["ternary"]
    if min(t) < -1 or max(t) > NO_TERNARY:
        raise CorruptError(f"{what}.ternary: values must be -1, 0, 1 or {NO_TERNARY} (none)")
    ti = cols["tensor"]
    if min(ti) < -1 or max(ti) >= n_tensors:
        raise CorruptError(f"{what}.tensor: index outside the tensor descriptions")
    sizes = [x.size for x in streams]
    n_streams = len(sizes)
    for st, off, ln in zip(cols["stream"], cols["offset"], cols["length"], strict=True):
        if ln:
            if st >= n_streams:
                raise CorruptError(f"{what}.stream: a value names a stream that does not exist")
            if off + ln > sizes[st]:
                raise CorruptError(f"{what}: a value's bytes lie outside its stream")
