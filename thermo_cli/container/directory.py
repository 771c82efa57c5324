"""Directory chunks: the description of each entry of a layer, in key order.

A directory chunk is a zstd frame of one CBOR array of entry rows. A row holds every
field of an Entry except the value bytes, plus ``v`` = [stream, offset, length]: where the
value lies in the layer's data streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from thermo_cli import cbor
from thermo_cli.container.blocks import as_int, as_list, as_map, as_text, as_uint, field_of
from thermo_cli.container.index import DirChunk, Stream
from thermo_cli.errors import CorruptError
from thermo_cli.model import MAX_KEY_BYTES, Entry, TensorSpec, Ternary
from thermo_cli.records import tensor_from_map, tensor_to_map


@dataclass(slots=True)
class Row:
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

    def entry(self, value: bytes) -> Entry:
        return Entry(key=self.key, value=value, strength=self.strength, updated_at_ns=self.updated_at_ns,
                     update_count=self.update_count, ternary=self.ternary, tensor=self.tensor)


def row_map(e: Entry, stream: int, off: int) -> dict[str, Any]:
    return {
        "key": e.key,
        "s": e.strength,
        "tern": None if e.ternary is None else int(e.ternary),
        "n": e.update_count,
        "ts": e.updated_at_ns,
        "tensor": tensor_to_map(e.tensor),
        "v": [stream, off, len(e.value)],
    }


def estimate_row_size(e: Entry) -> int:
    """Upper estimate of a row's encoded size, used to cut directory chunks."""
    size = 96 + len(e.key) * 3
    if e.tensor is not None:
        size += 96 + 9 * len(e.tensor.shape) + len(e.tensor.scales or b"") + len(e.tensor.dtype)
    return size


def _row_from(v: Any, what: str, streams: list[Stream]) -> Row:
    m = as_map(v, what)
    key = as_text(field_of(m, "key", what), f"{what}.key")
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise CorruptError(f"{what}.key: empty or longer than {MAX_KEY_BYTES} bytes")
    s = field_of(m, "s", what)
    if isinstance(s, bool) or not isinstance(s, int | float) or not math.isfinite(s):
        raise CorruptError(f"{what}.s: strength must be a finite number")
    tern = field_of(m, "tern", what)
    if tern is not None and (isinstance(tern, bool) or tern not in (-1, 0, 1)):
        raise CorruptError(f"{what}.tern: must be -1, 0, 1 or null")
    loc = as_list(field_of(m, "v", what), f"{what}.v")
    if len(loc) != 3:
        raise CorruptError(f"{what}.v: expected [stream, offset, length]")
    stream, off, length = (as_uint(x, f"{what}.v") for x in loc)
    if length:
        if stream >= len(streams):
            raise CorruptError(f"{what}.v: stream {stream} does not exist")
        if off + length > streams[stream].size:
            raise CorruptError(f"{what}.v: value bytes {off}..{off + length} lie outside stream {stream}")
    return Row(
        key=key,
        strength=float(s),
        ternary=None if tern is None else Ternary(tern),
        update_count=as_uint(field_of(m, "n", what), f"{what}.n"),
        updated_at_ns=as_int(field_of(m, "ts", what), f"{what}.ts"),
        tensor=tensor_from_map(field_of(m, "tensor", what), what),
        stream=stream,
        off=off,
        length=length,
    )


def rows_from_chunk(raw: bytes, d: DirChunk, streams: list[Stream], what: str) -> list[Row]:
    """Decode a decompressed directory chunk and check it against its index row."""
    items = as_list(cbor.decode_canonical(raw, what=what), what)
    if len(items) != d.count:
        raise CorruptError(f"{what}: holds {len(items)} entries, the index says {d.count}")
    rows = [_row_from(v, f"{what}[{i}]", streams) for i, v in enumerate(items)]
    prev = None
    for r in rows:
        kb = r.key.encode("utf-8")
        if prev is not None and kb <= prev:
            raise CorruptError(f"{what}: keys are not in strictly increasing order at {r.key!r}")
        prev = kb
    if rows[0].key != d.first or rows[-1].key != d.last:
        raise CorruptError(f"{what}: first/last keys differ from the index")
    return rows
