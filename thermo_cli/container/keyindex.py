"""Per-commit key index of the uncommitted deltas, so a read decodes one record (spec §9.7).

Reading a key must find its newest delta after the consolidation point; decoding every
record of the tail for that (events included) made a read cost the tail. Each commit that
adds records writes a small block: the keys of the deltas among them, sorted, with the log
index of each key's newest delta, and a link to the previous commit's block while that one
still covers records after ``dirty_start``. A read binary-searches the blocks newest first
and decodes only the record it names; records no block covers (a file from an older
writer) are scanned as before. A commit of more than :data:`PART_KEYS` keys splits its block
into parts of that many keys, listed by their last key, so a read costs one small part.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Any

from thermo_cli.config.limits import Limits, check_cap
from thermo_cli.container.blocks import BlockRef, le_bytes, le_column
from thermo_cli.errors import CorruptError
from thermo_cli.model import Delta, LogRecord
from thermo_cli.model.fields import as_bytes, as_list, as_map, as_uint, field_of
from thermo_cli.model.valueclass import FrozenValue


def newest_deltas(recs: Iterable[LogRecord], first: int) -> dict[str, int]:
    """Key → log index of its newest delta among ``recs`` (record ``first`` onwards)."""
    recs = recs if isinstance(recs, list) else list(recs)
    if set(map(type, recs)) == {Delta}:  # deltas only (a batch of applies): keys in C
        return newest_of_keys(list(map(_key_of, recs)), first)
    return newest_of_keys([rec.key if isinstance(rec, Delta) else None for rec in recs], first)


_key_of = attrgetter("key")


def newest_of_keys(keys: list[str | None], first: int) -> dict[str, int]:
    """Key → log index of its newest delta, given each record's key (None for an event)
    from record ``first`` onwards: :func:`newest_deltas` without the record objects."""
    latest = dict(zip(keys, range(first, first + len(keys)), strict=True))
    latest.pop(None, None)
    return latest  # type: ignore[return-value]  # the None key is gone


PART_KEYS = 2048
"""Keys per part of a split key index block: a read hashes and decodes one part (tens of
KiB) whatever the number of uncommitted deltas, instead of the keys of all of them."""


def _table_map(keys: list[bytes], latest: dict[str, int]) -> dict[str, Any]:
    """``keys`` (sorted UTF-8) as the concatenated bytes, their ends and record indexes:
    byte strings and columns, so a reader decodes them in a few calls and binary-searches
    without building a key object per entry."""
    ends, pos = [], 0
    for k in keys:
        pos += len(k)
        ends.append(pos)
    return {
        "keys": b"".join(keys),
        "end": le_bytes(ends, "<u8"),
        "rec": le_bytes([latest[k.decode("utf-8")] for k in keys], "<u8"),
    }


def sorted_keys(latest: dict[str, int]) -> list[bytes]:
    """The keys' UTF-8 bytes in the order a block lists them."""
    return sorted(k.encode("utf-8") for k in latest)


def block_map(latest: dict[str, int], first: int, prev: BlockRef | None) -> dict[str, Any]:
    """A flat key index block's map (for at most :data:`PART_KEYS` keys)."""
    return {
        "first": first,
        **_table_map(sorted_keys(latest), latest),
        "prev": None if prev is None else prev.to_map(),
    }


def part_maps(latest: dict[str, int], per_part: int = PART_KEYS) -> list[tuple[bytes, dict[str, Any]]]:
    """(last key, part block map) of a split block, in key order, ``per_part`` keys each."""
    keys = sorted_keys(latest)
    runs = [keys[a : a + per_part] for a in range(0, len(keys), per_part)]
    return [(run[-1], _table_map(run, latest)) for run in runs]


def split_block_map(first: int, parts: list[tuple[bytes, BlockRef]], prev: BlockRef | None) -> dict[str, Any]:
    """A split key index block's map: each part's last key and block, in key order."""
    return {
        "first": first,
        "parts": [{"last": last, "block": ref.to_map()} for last, ref in parts],
        "prev": None if prev is None else prev.to_map(),
    }


class KeyTable(FrozenValue):
    """Sorted keys with the log index of each one's newest delta (a flat block or one part)."""

    blob: bytes
    end: Any
    rec: Any

    __slots__ = ("blob", "end", "rec")

    def __init__(self, blob: bytes, end: Any, rec: Any) -> None:
        _set = object.__setattr__
        _set(self, "blob", blob)
        _set(self, "end", end)
        _set(self, "rec", rec)

    def __len__(self) -> int:
        return len(self.end)

    def key(self, i: int) -> bytes:
        return self.blob[self.end[i - 1] if i else 0 : self.end[i]]

    def find(self, kb: bytes) -> int | None:
        """The record index listed for the UTF-8 key ``kb``, or None."""
        i = bisect_left(range(len(self)), kb, key=self.key)
        if i >= len(self) or self.key(i) != kb:
            return None
        return int(self.rec[i])

    def keys(self) -> list[bytes]:
        return [self.key(i) for i in range(len(self))]


PartLoader = Callable[[BlockRef], KeyTable]
"""Reads, checks and decodes one part block of a split key index block."""


class KeyIndex(FrozenValue):
    """One decoded key index block: it covers records from ``first`` to its commit's end.

    A flat block holds its one table; a split block holds its parts' last keys and blocks,
    and reads the one part a lookup needs through ``load``.
    """

    first: int
    prev: BlockRef | None
    log_size: int
    table: KeyTable | None
    lasts: tuple[bytes, ...]
    parts: tuple[Any, ...]
    """The parts' ``block`` maps, decoded to a BlockRef when the part is read."""
    off: int
    load: PartLoader | None

    __slots__ = ("first", "lasts", "load", "log_size", "off", "parts", "prev", "table")

    def __init__(
        self,
        first: int,
        prev: BlockRef | None,
        log_size: int,
        table: KeyTable | None = None,
        lasts: tuple[bytes, ...] = (),
        parts: tuple[Any, ...] = (),
        off: int = 0,
        load: PartLoader | None = None,
    ) -> None:
        _set = object.__setattr__
        _set(self, "first", first)
        _set(self, "prev", prev)
        _set(self, "log_size", log_size)
        _set(self, "table", table)
        _set(self, "lasts", lasts)
        _set(self, "parts", parts)
        _set(self, "off", off)
        _set(self, "load", load)

    def find(self, key: str) -> int | None:
        """Log index of the newest delta of ``key`` in this block's records, or None.

        Only the entries the search touches are checked (the whole block is checked by
        ``thermo verify``): a read stays a few microseconds whatever the block's size.
        """
        kb = key.encode("utf-8")
        table = self.table
        if table is None:
            i = bisect_left(self.lasts, kb)
            if i >= len(self.parts):
                return None
            table = self._part(i)
        rec = table.find(kb)
        if rec is not None and not self.first <= rec < self.log_size:
            raise CorruptError(
                f"key index: record {rec} of {key!r} lies outside {self.first}..{self.log_size}"
            )
        return rec

    def _part(self, i: int) -> KeyTable:
        assert self.load is not None  # a split block is always built with its loader
        what = f"key index at {self.off}.parts[{i}].block"
        return self.load(BlockRef.from_map(self.parts[i], what, 32, self.off))

    def tables(self) -> list[tuple[bytes | None, KeyTable]]:
        """Every table with the last key it may hold (None for a flat block): for verification."""
        if self.table is not None:
            return [(None, self.table)]
        return [(last, self._part(i)) for i, last in enumerate(self.lasts)]

    def items(self) -> dict[str, int]:
        """Every key with its record index (for verification)."""
        out: dict[str, int] = {}
        for _, table in self.tables():
            out.update({table.key(i).decode("utf-8"): int(table.rec[i]) for i in range(len(table))})
        return out


def key_index_from_map(
    v: Any, what: str, off: int, log_size: int, limits: Limits, load: PartLoader | None = None
) -> KeyIndex:
    """Decode and check a key index block found at ``off`` for a log of ``log_size`` records;
    ``load`` reads a part of a split block (required for one)."""
    m = as_map(v, what)
    first = as_uint(field_of(m, "first", what), f"{what}.first")
    p = field_of(m, "prev", what)
    prev = None if p is None else BlockRef.from_map(p, f"{what}.prev", 32, off)
    if first > log_size:
        raise CorruptError(f"{what}.first: {first} is past the log size {log_size}")
    if "parts" not in m:
        return KeyIndex(first, prev, log_size, table=key_table_from_map(m, what, limits))
    if load is None:
        raise CorruptError(f"{what}: a split key index block needs its parts' reader")
    entries = as_list(m["parts"], f"{what}.parts")
    check_cap(len(entries), limits.max_chunks, "max_chunks", f"{what}.parts")
    lasts: list[bytes] = []
    refs: list[Any] = []
    for i, e in enumerate(entries):
        pw = f"{what}.parts[{i}]"
        pm = as_map(e, pw)
        last = as_bytes(field_of(pm, "last", pw), f"{pw}.last")
        if lasts and last <= lasts[-1]:
            raise CorruptError(f"{pw}.last: parts are not in strictly increasing key order")
        lasts.append(last)
        refs.append(field_of(pm, "block", pw))  # checked when read: a lookup reads one part
    return KeyIndex(first, prev, log_size, lasts=tuple(lasts), parts=tuple(refs), off=off, load=load)


def key_table_from_map(v: Any, what: str, limits: Limits) -> KeyTable:
    """A flat block's or a part's ``keys``/``end``/``rec``, with their sizes checked."""
    m = as_map(v, what)
    blob = as_bytes(field_of(m, "keys", what), f"{what}.keys")
    end = _u64(m, "end", what)
    rec = _u64(m, "rec", what)
    n = len(end)
    check_cap(n, limits.max_chunks, "max_chunks", f"{what}.keys")
    if len(rec) != n:
        raise CorruptError(f"{what}.rec: {len(rec)} record indexes for {n} keys")
    if (end[-1] if n else 0) != len(blob):
        raise CorruptError(f"{what}.end: key ends do not cover the {len(blob)} key bytes")
    return KeyTable(blob, end, rec)


def _u64(m: dict[str, Any], name: str, what: str) -> Any:
    data = as_bytes(field_of(m, name, what), f"{what}.{name}")
    if len(data) % 8:
        raise CorruptError(f"{what}.{name}: {len(data)} bytes are not u64 values")
    return le_column(data, "<u8")
