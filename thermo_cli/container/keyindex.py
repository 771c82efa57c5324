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

import itertools
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from thermo_cli.config.limits import Limits, check_cap
from thermo_cli.container.blocks import BlockRef, le_bytes, le_column
from thermo_cli.errors import CorruptError
from thermo_cli.model import Delta, LogRecord
from thermo_cli.model.fields import as_bytes, as_list, as_map, as_text, as_uint, field_of


def newest_deltas(recs: Iterable[LogRecord], first: int) -> dict[str, int]:
    """Key → log index of its newest delta among ``recs`` (record ``first`` onwards)."""
    out: dict[str, int] = {}
    for i, rec in enumerate(recs):
        if isinstance(rec, Delta):
            out[rec.key] = first + i
    return out


def block_map(latest: dict[str, int], first: int, prev: BlockRef | None) -> dict[str, Any]:
    """The key index block's map: keys sorted as UTF-8 bytes, their record indexes by column."""
    keys = sorted(latest, key=lambda k: k.encode("utf-8"))
    return {
        "first": first,
        "keys": keys,
        "rec": le_bytes([latest[k] for k in keys], "<u8"),
        "prev": None if prev is None else prev.to_map(),
    }


@dataclass(frozen=True, slots=True)
class KeyIndex:
    """One decoded key index block: it covers records from ``first`` to its commit's end."""

    first: int
    keys: list[bytes]
    rec: Any
    prev: BlockRef | None

    def find(self, key: str) -> int | None:
        """Log index of the newest delta of ``key`` in this block's records, or None."""
        kb = key.encode("utf-8")
        i = bisect_left(self.keys, kb)
        return int(self.rec[i]) if i < len(self.keys) and self.keys[i] == kb else None


def key_index_from_map(v: Any, what: str, off: int, log_size: int, limits: Limits) -> KeyIndex:
    """Decode and check a key index block found at ``off`` for a log of ``log_size`` records."""
    m = as_map(v, what)
    first = as_uint(field_of(m, "first", what), f"{what}.first")
    texts = as_list(field_of(m, "keys", what), f"{what}.keys")
    check_cap(len(texts), limits.max_chunks, "max_chunks", f"{what}.keys")
    raw = as_bytes(field_of(m, "rec", what), f"{what}.rec")
    if len(raw) != 8 * len(texts):
        raise CorruptError(f"{what}.rec: {len(raw)} bytes for {len(texts)} keys")
    rec = le_column(raw, "<u8")
    keys = [as_text(k, f"{what}.keys[{i}]").encode("utf-8") for i, k in enumerate(texts)]
    if any(a >= b for a, b in itertools.pairwise(keys)):
        raise CorruptError(f"{what}.keys: not strictly increasing")
    if first > log_size or (len(rec) and (min(rec) < first or max(rec) >= log_size)):
        raise CorruptError(f"{what}: record indexes outside {first}..{log_size}")
    p = field_of(m, "prev", what)
    prev = None if p is None else BlockRef.from_map(p, f"{what}.prev", 32, off)
    return KeyIndex(first, keys, rec, prev)
