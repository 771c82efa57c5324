"""Copy-on-write layer commits: a layer change appends what changed, never the whole file.

A commit whose layers changed appends, after the last committed footer (spec §12.5): the
changed values as one new data stream per changed layer, the directory chunks that hold
changed, added or deleted keys (rewritten whole, with their unchanged entries pointing at
their old bytes), a new index block in which every other row keeps its old span, then the
records, the meta block if it changed, the trailer and the footer — the append path of
§12.2. Spans only ever point back at earlier committed bytes, which the digests of the
index (and so of every trailer since) already cover.

Its cost is the changed chunks, the index (one row per chunk) and the records. The bytes
it leaves behind (replaced directory chunks, old index blocks, values nobody lists any
more) are counted in the index's ``garbage`` estimate; when they dominate the file, or a
layer would exceed ``max_streams``, or the changed values are too big to stage in memory,
:func:`plan_cow` returns None and the caller rewrites the file (§12.1), which compacts it.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from thermo_cli.codec import cbor
from thermo_cli.config.limits import MiB
from thermo_cli.container import chunks as ck
from thermo_cli.container.blocks import BlockRef
from thermo_cli.container.directory import chunk_map, split_map
from thermo_cli.container.index import DirChunk, DirTable, LayerIndex, index_to_map
from thermo_cli.container.lazy import LazyLayer
from thermo_cli.container.reader import Reader, read_value
from thermo_cli.container.trailer import Trailer
from thermo_cli.container.writer import (
    EMPTY_SHA,
    Placed,
    Sink,
    _dir_groups,
    _StreamPlan,
    _workers,
    _write_dir_chunk,
    _write_stream,
    plan_append_parts,
    write_block,
)
from thermo_cli.model import Entry, Layer

MAX_STAGED_BYTES = 64 * MiB
"""New value bytes a copy-on-write commit stages in memory; above it the file is rewritten."""
COMPACT_MIN_GARBAGE = 64 * MiB
"""Garbage a file must hold before a writer compacts it by rewriting (spec §8.4) …"""
COMPACT_RATIO = 0.5
"""… and the share of the file it must exceed."""

_NEW = (-1, -1)
"""Location placeholder of a value the commit writes into the layer's new stream."""


@dataclass
class _LayerPlan:
    """What one changed layer's commit writes: the rewritten chunks' entries and new values."""

    li: LayerIndex
    groups: dict[int, list[Placed]] = field(default_factory=dict)
    """Directory row position → its entries after the change (-1: a layer with no rows)."""
    new: list[Entry] = field(default_factory=list)
    dead: int = 0
    """Value bytes no entry will list any more."""

    @property
    def staged(self) -> int:
        return sum(len(e.value) for e in self.new)


def should_compact(source: Reader, garbage: int) -> bool:
    """Whether ``garbage`` bytes are enough to rewrite rather than append (spec §8.4)."""
    return garbage > COMPACT_MIN_GARBAGE and garbage > COMPACT_RATIO * source.committed_end


def plan_cow(tg: Any, source: Reader) -> tuple[list[bytes], Trailer] | None:
    """The bytes of a copy-on-write commit of ``tg`` after ``source`` (its parts, in order,
    as :func:`~thermo_cli.container.writer.plan_append_parts` gives them), or None to rewrite.

    No parts (with the current trailer) mean that nothing changed at all.

    Every layer must be a :class:`LazyLayer` over exactly ``source``'s state (its changes
    are tracked relative to it); a plain mapping or an older base means rewriting.
    """
    if not source.framed:
        return None
    plans: dict[Layer, _LayerPlan] = {}
    for layer in Layer:
        lazy = tg.layers[layer]
        if not _based_on(lazy, source):
            return None
        plan = _plan_layer(lazy, source.index[layer])
        if plan is not None:
            plans[layer] = plan
    if not plans:  # marked as changed, yet every layer is as read: an ordinary append
        return plan_append_parts(tg, source) or ([], source.trailer)
    if any(len(p.li.streams) + 1 > source.limits.max_streams for p in plans.values() if p.new):
        return None
    if sum(p.staged for p in plans.values()) > MAX_STAGED_BYTES:
        return None
    garbage = source.garbage + source.trailer.index.len + sum(_replaced(p) for p in plans.values())
    if should_compact(source, garbage):
        return None

    def write_index(sink: Sink) -> BlockRef:
        idx = dict(source.index)
        with ThreadPoolExecutor(_workers()) as pool:
            for layer, plan in plans.items():
                idx[layer] = _write_layer_change(sink, plan, pool)
        return write_block(sink, index_to_map(idx, garbage))[0]

    return plan_append_parts(tg, source, index_writer=write_index)


def _based_on(mapping: Any, source: Reader) -> bool:
    return (
        isinstance(mapping, LazyLayer)
        and mapping.reader.inode == source.inode
        and mapping.reader.trailer.sha256 == source.trailer.sha256
    )


def _replaced(plan: _LayerPlan) -> int:
    """Bytes the layer's change stops referencing: the rewritten chunks and dead values."""
    return plan.dead + sum(plan.li.dirs[i].len for i in plan.groups if i >= 0)


def _plan_layer(lazy: LazyLayer, li: LayerIndex) -> _LayerPlan | None:
    """Group a layer's changes by the directory row whose key range takes them."""
    changed, deleted = lazy.changes()
    if not changed and not deleted:
        return None
    plan = _LayerPlan(li)
    first = [k.encode("utf-8") for k in li.dirs.first]
    touched: dict[int, list[str]] = {}
    for key in [*changed, *deleted]:
        pos = max(0, bisect_right(first, key.encode("utf-8")) - 1) if first else -1
        touched.setdefault(pos, []).append(key)
    for pos in sorted(touched):
        plan.groups[pos] = _merge_chunk(lazy, pos, changed, deleted, touched[pos], plan)
    return plan


def _merge_chunk(
    lazy: LazyLayer,
    pos: int,
    changed: dict[str, Entry],
    deleted: set[str],
    keys: list[str],
    plan: _LayerPlan,
) -> list[Placed]:
    """The entries of directory row ``pos`` after the change, in key order.

    Unchanged rows keep their value's place (and digest: from the column, or hashed from
    the value in an older chunk without it); a changed entry keeps it too while it holds
    the very value object read from the file; other values go to the new stream.
    """
    rows = lazy._chunk(pos).rows() if pos >= 0 else []
    out: list[Placed] = []
    seen = set()
    for r in rows:
        seen.add(r.key)
        if r.key in deleted:
            plan.dead += r.length
            continue
        e = changed.get(r.key)
        if e is None:
            sha = (
                r.value_sha256 or hashlib.sha256(read_value(lazy.reader, lazy.layer, r, lazy._data)).digest()
            )
            out.append((r, (r.stream, r.off), r.length, sha))
        elif lazy.value_unchanged(r.key, e):
            sha = r.value_sha256 or hashlib.sha256(e.value).digest()
            out.append((e, (r.stream, r.off), r.length, sha))
        else:
            plan.dead += r.length
            out.append(_placed_new(e, plan))
    for key in keys:
        if key not in seen and key in changed:
            out.append(_placed_new(changed[key], plan))
    out.sort(key=lambda p: p[0].key.encode("utf-8"))
    return out


def _placed_new(e: Entry, plan: _LayerPlan) -> Placed:
    if not e.value:
        return (e, (0, 0), 0, EMPTY_SHA)
    plan.new.append(e)
    return (e, _NEW, len(e.value), b"")


def _write_layer_change(sink: Sink, plan: _LayerPlan, pool: ThreadPoolExecutor) -> LayerIndex:
    """Write the layer's new stream and rewritten directory chunks; the rest keeps its spans."""
    li = plan.li
    streams = list(li.streams)
    where: dict[int, tuple[int, int, bytes]] = {}
    if plan.new:
        sp = _StreamPlan(
            1, list(plan.new), [len(e.value) for e in plan.new], sum(len(e.value) for e in plan.new)
        )
        streams.append(_write_stream(sink, sp, pool))
        off = 0
        for e, sha in zip(plan.new, sp.shas, strict=True):
            where[id(e)] = (len(streams) - 1, off, sha)
            off += len(e.value)
    rows: list[DirChunk] = []
    for pos in range(-1, len(li.dirs)):
        group = plan.groups.get(pos)
        if group is None:
            if pos >= 0:
                rows.append(li.dirs[pos])
            continue
        placed = [_located(p, where) for p in group]
        old = li.dirs[pos] if pos >= 0 else None
        if old is not None and _same_keys(placed, old):
            rows.append(_write_state_chunk(sink, placed, old))
            continue
        for g in _dir_groups(placed):
            _write_dir_chunk(sink, g, rows)
    dirs = DirTable.of(rows)
    return LayerIndex(count=dirs.total(), dirs=dirs, streams=streams)


def _same_keys(placed: list[Placed], old: DirChunk) -> bool:
    """Whether a rewritten chunk keeps the old row's count and key range: then it is written
    split (§8.5), and its identity chunk is reused when its identity columns did not change."""
    return len(placed) == old.count and placed[0][0].key == old.first and placed[-1][0].key == old.last


def _write_state_chunk(sink: Sink, placed: list[Placed], old: DirChunk) -> DirChunk:
    """Write the row's entries as a state chunk (§8.5), reusing the old identity chunk when
    the identity columns (keys, tensors, value places and digests) did not change: a pass
    that only changes strengths, counts and times writes ~21 bytes per entry."""
    m = chunk_map(
        [p[0] for p in placed], [p[1] for p in placed], [p[2] for p in placed], [p[3] for p in placed]
    )
    state, ident = split_map(m)
    ident_raw = cbor.encode(ident)
    packed = ck.pack(ident_raw, level=ck.BLOCK_LEVEL)
    if old.ident is not None and old.ident[3] == packed.sha256 and old.ident[2] == len(ident_raw):
        ident_ref = old.ident
    else:
        ident_ref = (sink.write(packed.stored), len(packed.stored), len(ident_raw), packed.sha256)
    raw = cbor.encode(state)
    p = ck.pack(raw, level=ck.BLOCK_LEVEL)
    return DirChunk(
        sink.write(p.stored), len(p.stored), len(raw), old.count, old.first, old.last, p.sha256, ident_ref
    )


def _located(p: Placed, where: dict[int, tuple[int, int, bytes]]) -> Placed:
    if p[1] != _NEW:
        return p
    stream, off, sha = where[id(p[0])]
    return (p[0], (stream, off), p[2], sha)
