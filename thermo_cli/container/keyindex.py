"""Per-commit key index of the uncommitted deltas, so a read decodes one record (spec §9.7).

Reading a key must find its newest delta after the consolidation point; decoding every
record of the tail for that (events included) made a read cost the tail. Each commit that
adds records writes a small block: the keys of the deltas among them, sorted, with the log
index of each key's newest delta, and a link to the previous commit's block while that one
still covers records after ``dirty_start``. A read binary-searches the blocks newest first
and decodes only the record it names; records no block covers (a file from an older
writer) are scanned as before.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from thermo_cli.config.limits import Limits, check_cap
from thermo_cli.container.blocks import BlockRef, le_bytes, le_column
from thermo_cli.errors import CorruptError
from thermo_cli.model import Delta, LogRecord
from thermo_cli.model.fields import as_bytes, as_map, as_uint, field_of


def newest_deltas(recs: Iterable[LogRecord], first: int) -> dict[str, int]:
    """Key → log index of its newest delta among ``recs`` (record ``first`` onwards)."""
    out: dict[str, int] = {}
    for i, rec in enumerate(recs):
        if isinstance(rec, Delta):
            out[rec.key] = first + i
    return out


def block_map(latest: dict[str, int], first: int, prev: BlockRef | None) -> dict[str, Any]:
    """The key index block's map: the keys' UTF-8 bytes concatenated in sorted order, where
    each ends, and their record indexes — byte strings and columns, so a reader decodes a
    block of 100,000 keys in a few calls and binary-searches it without building them."""
    keys = sorted(k.encode("utf-8") for k in latest)
    ends, pos = [], 0
    for k in keys:
        pos += len(k)
        ends.append(pos)
    return {
        "first": first,
        "keys": b"".join(keys),
        "end": le_bytes(ends, "<u8"),
        "rec": le_bytes([latest[k.decode("utf-8")] for k in keys], "<u8"),
        "prev": None if prev is None else prev.to_map(),
    }


@dataclass(frozen=True, slots=True)
class KeyIndex:
    """One decoded key index block: it covers records from ``first`` to its commit's end."""

    first: int
    blob: bytes
    end: Any
    rec: Any
    prev: BlockRef | None
    log_size: int

    def __len__(self) -> int:
        return len(self.end)

    def key(self, i: int) -> bytes:
        return self.blob[self.end[i - 1] if i else 0 : self.end[i]]

    def find(self, key: str) -> int | None:
        """Log index of the newest delta of ``key`` in this block's records, or None.

        Only the entries the search touches are checked (the whole block is checked by
        ``thermo verify``): a read of a 100,000-key block stays a few microseconds.
        """
        kb = key.encode("utf-8")
        i = bisect_left(range(len(self)), kb, key=self.key)
        if i >= len(self) or self.key(i) != kb:
            return None
        rec = int(self.rec[i])
        if not self.first <= rec < self.log_size:
            raise CorruptError(
                f"key index: record {rec} of {key!r} lies outside {self.first}..{self.log_size}"
            )
        return rec

    def items(self) -> dict[str, int]:
        """Every key with its record index (for verification)."""
        return {self.key(i).decode("utf-8"): int(self.rec[i]) for i in range(len(self))}


def key_index_from_map(v: Any, what: str, off: int, log_size: int, limits: Limits) -> KeyIndex:
    """Decode and check a key index block found at ``off`` for a log of ``log_size`` records."""
    m = as_map(v, what)
    first = as_uint(field_of(m, "first", what), f"{what}.first")
    blob = as_bytes(field_of(m, "keys", what), f"{what}.keys")
    p = field_of(m, "prev", what)
    prev = None if p is None else BlockRef.from_map(p, f"{what}.prev", 32, off)
    end = _u64(m, "end", what)
    rec = _u64(m, "rec", what)
    n = len(end)
    check_cap(n, limits.max_chunks, "max_chunks", f"{what}.keys")
    if len(rec) != n:
        raise CorruptError(f"{what}.rec: {len(rec)} record indexes for {n} keys")
    if (end[-1] if n else 0) != len(blob):
        raise CorruptError(f"{what}.end: key ends do not cover the {len(blob)} key bytes")
    if first > log_size:
        raise CorruptError(f"{what}.first: {first} is past the log size {log_size}")
    return KeyIndex(first, blob, end, rec, prev, log_size)


def _u64(m: dict[str, Any], name: str, what: str) -> Any:
    data = as_bytes(field_of(m, name, what), f"{what}.{name}")
    if len(data) % 8:
        raise CorruptError(f"{what}.{name}: {len(data)} bytes are not u64 values")
    return le_column(data, "<u8")
