"""Write a container: a complete new file (rewrite), or an O(delta) append commit.

A rewrite lays out, after the prefix: the layers' data and directory chunks, the index
block, the meta block, the log segments, the log table, the trailer and the footer. An
append adds, after the last committed footer: the new records' segments, a new meta
block only if the meta map changed, and a trailer pointing back at the previous one —
nothing already written is touched, so its cost depends on the delta, not the file.

Format 2.1 frames each commit: a 32-byte commit header (length, seq) comes first, and the
trailer records where it starts and the SHA-256 of every byte between it and the trailer,
hashed while the bytes are written. A rewrite knows the commit's length only at the end,
so it patches the header in the temporary file before it is synced and renamed; an
append builds its bytes in memory and knows it up front.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from thermo_cli.codec import cbor, records
from thermo_cli.codec.cborscan import needs_scan
from thermo_cli.codec.fastrecords import SealedRun, decode_log_record
from thermo_cli.config.limits import MiB, current_limits
from thermo_cli.container import chunks as ck
from thermo_cli.container.blocks import BlockRef
from thermo_cli.container.directory import chunk_map, estimate_row_size, split_map
from thermo_cli.container.index import (
    ChunkTable,
    DataChunk,
    DirChunk,
    DirTable,
    LayerIndex,
    Stream,
    index_to_map,
)
from thermo_cli.container.keyindex import (
    PART_KEYS,
    block_map,
    newest_deltas,
    newest_of_keys,
    part_maps,
    split_block_map,
)
from thermo_cli.container.layout import COMMIT_HEADER_SIZE, is_framed, pack_commit_header, pack_footer
from thermo_cli.container.lazy import LazyLayer
from thermo_cli.container.logseg import SegmentRef, frames, group
from thermo_cli.container.metablock import meta_to_map
from thermo_cli.container.reader import Reader
from thermo_cli.container.trailer import Trailer
from thermo_cli.errors import ChainError, LimitExceededError, ValidationError
from thermo_cli.integrity.merkle import CompactRange, leaf_hashes_of
from thermo_cli.model import Delta, Entry, HashScheme, Layer, LogRecord, TensorSpec

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from thermo_cli.engine.thermogram import LogTail
    from thermo_cli.integrity.merkle_worker import RangeWorker

DATA_CHUNK = 1 * MiB
"""Raw size of data chunks: small enough that reading one key decompresses ~1 MiB."""
DIR_CHUNK_TARGET = 64 * 1024
"""Raw size directory chunks are cut at (a key lookup decodes one of them)."""
MAX_DIR_CHUNK = 4 * MiB
INLINE_SEGMENTS = 64
"""An append carries up to this many segment rows in its trailer, then moves them to a log table."""
_SAMPLE = 256 * 1024
_IN_FLIGHT = 8


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class Sink:
    """A binary file being appended to, tracking the offset of each write."""

    def __init__(self, f: BinaryIO, pos: int) -> None:
        self.f = f
        self.pos = pos
        self._body: Any = None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        off = self.pos
        self.f.write(data)
        self.pos += len(data)
        if self._body is not None:
            self._body.update(data)
        return off

    def open_commit(self) -> int:
        """Write a placeholder commit header and hash everything after it; returns its offset.

        The header's length is known only when the trailer is written, and the body
        digest leaves the header out, so hashing as we go needs no second pass.
        """
        start = self.write(bytes(COMMIT_HEADER_SIZE))
        self._body = hashlib.sha256()
        return start

    def body_digest(self) -> bytes:
        """SHA-256 of the bytes written since :meth:`open_commit` (and stop hashing)."""
        digest = self._body.digest()
        self._body = None
        return bytes(digest)


# --- records ----------------------------------------------------------------------------


def records_bytes(recs: list[LogRecord]) -> list[bytes]:
    """:func:`record_bytes` of each record; sealed records (the usual case) in two list passes."""
    out = [r.encoded for r in recs]
    if None in out or None in [r.hash for r in recs]:
        return [record_bytes(r) for r in recs]
    return out  # type: ignore[return-value]


def record_bytes(rec: LogRecord) -> bytes:
    """The stored bytes of a sealed record (encoding it if the reader did not keep them)."""
    if rec.hash is None:
        raise ValidationError(f"log record {_describe(rec)} is not sealed (no hash)")
    if rec.encoded is not None:
        return rec.encoded
    data = records.encode_record(rec)
    if not (isinstance(rec, Delta) and rec.scheme is HashScheme.LEGACY) and records.v2_hash(data) != rec.hash:
        raise ChainError(f"log record {_describe(rec)}: its hash does not match its fields")
    rec.encoded = data
    return data


def _describe(rec: LogRecord) -> str:
    return f"{rec.kind!r} event" if not isinstance(rec, Delta) else f"delta on {rec.key!r}"


def check_links(recs: Iterable[LogRecord], head: str | None, first_index: int) -> str | None:
    """Each record must name the previous one's hash; returns the new head."""
    recs = recs if isinstance(recs, list) else list(recs)
    hashes = [r.hash for r in recs]
    if [r.prev_hash for r in recs] == [head, *hashes[:-1]]:  # all linked: one comparison in C
        return hashes[-1] if hashes else head
    for i, rec in enumerate(recs):
        if rec.prev_hash != head:
            raise ChainError(
                f"log record {first_index + i}: prev_hash {rec.prev_hash} does not link to head {head}"
            )
        head = rec.hash
    return head


def check_run_links(runs: list[SealedRun], head: str | None, first_index: int) -> str | None:
    """Each sealed run must start from the previous record's hash (inside a run the links
    hold by construction: :func:`~thermo_cli.codec.fastrecords.seal_plain` made them)."""
    for run in runs:
        if run.prev != head:
            raise ChainError(f"log record {first_index}: prev_hash {run.prev} does not link to head {head}")
        head = run.head
        first_index += len(run)
    return head


# --- blocks -----------------------------------------------------------------------------


def write_block(sink: Sink, obj: Any, *, compress: bool = True) -> tuple[BlockRef, bytes]:
    """Encode ``obj`` as deterministic CBOR, optionally compress, write; returns (ref, raw)."""
    raw = cbor.encode(obj)
    stored = ck.compress(raw, ck.BLOCK_LEVEL) if compress else raw
    off = sink.write(stored)
    return BlockRef(
        off, len(stored), len(raw), "zstd" if compress else "none", hashlib.sha256(stored).digest()
    ), raw


def check_meta_size(raw_len: int) -> None:
    """Refuse to commit a meta block readers would refuse: one over ``max_meta_bytes``.

    Checked before anything is written (a rewrite's temporary file is discarded, an append
    builds in memory), so the file stays as it was. The cap is the current limits', as a
    reader's would be; a caller that raised it for its readers raises it here too.
    """
    cap = current_limits().max_meta_bytes
    if raw_len > cap:
        raise LimitExceededError(
            f"meta block: {raw_len} bytes exceeds max_meta_bytes ({cap}); readers refuse it by "
            "default: keep extension state smaller, or raise it with limits=Limits(max_meta_bytes=…)"
        )


def check_readable(new: list[LogRecord], new_bytes: list[bytes], first: int) -> None:
    """Refuse to commit a record readers would refuse (spec §10): longer than
    ``max_record_bytes``, or over ``max_cbor_items`` or the depth cap once decoded.

    ``new`` holds the objects of the first records of ``new_bytes``; the records after
    them are plain deltas given only as bytes (sealed runs). Called before anything is
    written. Plain deltas are flat, so only their length can matter; every other record
    (events carry caller-given fields) is decoded exactly as a reader decodes it, which
    costs microseconds per event.
    """
    limits = current_limits()
    if max(map(len, new_bytes), default=0) <= min(limits.max_record_bytes, limits.max_cbor_items):
        # every record is within both caps: only events need decoding (the common case)
        suspects = [i for i, rec in enumerate(new) if type(rec) is not Delta]
    else:
        suspects = list(range(len(new_bytes)))
    for i in suspects:
        rec, data, index = new[i] if i < len(new) else None, new_bytes[i], first + i
        if len(data) > limits.max_record_bytes:
            raise LimitExceededError(
                f"log record {index}: {len(data)} bytes exceeds max_record_bytes "
                f"({limits.max_record_bytes}); readers refuse it by default, so it is not written"
            )
        if (rec is not None and type(rec) is not Delta) or needs_scan(len(data), limits.max_cbor_items):
            try:
                decode_log_record(data, index)
            except LimitExceededError as exc:
                raise LimitExceededError(
                    f"{exc}; readers would refuse this record, so it is not written"
                ) from None


def write_segments(sink: Sink, recs: list[bytes], first: int) -> list[SegmentRef]:
    refs = []
    for run in group(recs):
        data = frames(run)
        off = sink.write(data)
        refs.append(SegmentRef(off, len(data), first, len(run), hashlib.sha256(data).digest()))
        first += len(run)
    return refs


def write_commit(sink: Sink, t: Trailer, start: int | None = None) -> Trailer:
    """Write trailer and footer; with ``start`` (format 2.1) the trailer frames the commit
    that began there with :meth:`Sink.open_commit`."""
    if start is not None:
        t.start = start
        t.body_sha256 = sink.body_digest()
    data = t.encode()
    t.sha256 = hashlib.sha256(data).digest()
    t.off = sink.write(data)
    t.len = len(data)
    footer = pack_footer(len(data), t.sha256)
    t.commit_sha256 = hashlib.sha256(data + footer).digest()
    sink.write(footer)
    return t


# --- layers -----------------------------------------------------------------------------


@dataclass
class _StreamPlan:
    elem: int
    entries: list[Entry] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    size: int = 0
    shas: list[bytes] = field(default_factory=list)
    """Each value's SHA-256, filled in as the value is read (for the ``value_sha256`` column)."""


def _value_size(e: Entry) -> int:
    """``len(e.value)``, without reading a value that lives in another file.

    An entry backed by a file (a streamed safetensors import) states its size as
    ``value_size``; its value is then read exactly once, while its chunks are cut.
    A plain entry's value is already in memory, so asking for it costs nothing.
    """
    size = getattr(e, "value_size", None)
    if type(size) is int:
        return size
    value = e.value
    if type(value) is not bytes:
        raise ValidationError(f"entry {e.key!r}: value must be bytes, got {type(value).__name__}")
    return len(value)


def _stream_elem(e: Entry, size: int, cache: dict[TensorSpec, tuple[int, int]]) -> int:
    """Element size of the stream an entry's value goes to (1 = unshuffled bytes)."""
    t = e.tensor
    if t is None or t.encoding != "raw":
        return 1
    known = cache.get(t)
    if known is None:  # one dtype/numel lookup per distinct tensor description
        width = ck.dtype_size(t.dtype)
        known = cache[t] = (width, width * t.numel) if width in ck.SHUFFLE_ELEMS and t.numel else (1, -1)
    return known[0] if size == known[1] else 1


_RELEASE = None
"""Yielded by :func:`_stream_pieces` before it reads a large value: the consumer waits for
the pieces in flight, so the previous large value can be freed before the next is read."""


def _read_once(e: Entry, size: int) -> bytes:
    value = e.value
    if type(value) is not bytes:
        raise ValidationError(f"entry {e.key!r}: value must be bytes, got {type(value).__name__}")
    if len(value) != size:
        raise ValidationError(
            f"entry {e.key!r}: value changed size while being written ({size} then {len(value)} bytes)"
        )
    return value


def _stream_pieces(plan: _StreamPlan, chunk: int) -> Iterator[list[bytes | memoryview] | None]:
    """The concatenated values as ``chunk``-byte pieces, each a list of parts to join.

    Each value is read once. Joining (and shuffling) happens in the worker threads, off
    the main thread. Peak memory stays near one value: a leftover shorter than a chunk
    is copied rather than kept as a view of its value, and :data:`_RELEASE` is yielded
    before the next large value is read, so no view of the previous one survives it.
    """
    parts: list[bytes | memoryview] = []
    size = 0
    big_pending = False
    for e, expected in zip(plan.entries, plan.sizes, strict=True):
        if expected >= chunk and big_pending:
            yield _RELEASE
            big_pending = False
        value = _read_once(e, expected)
        plan.shas.append(hashlib.sha256(value).digest())
        if size + len(value) < chunk:
            parts.append(value)
            size += len(value)
            continue
        view = memoryview(value)
        del value
        while size + len(view) >= chunk:
            take = chunk - size
            parts.append(view[:take])
            yield parts
            parts, size = [], 0
            view = view[take:]
        if len(view):
            parts.append(bytes(view))  # a copy: a view would keep the whole value alive
            size += len(view)
        view.release()
        del view
        big_pending = True
    if size:
        yield parts


def _pack_parts(parts: list[bytes | memoryview], filt: str, elem: int) -> ck.Packed:
    return ck.pack(
        parts[0] if len(parts) == 1 else b"".join(parts), filter=filt, elem=elem, level=ck.DATA_LEVEL
    )


def _write_stream(sink: Sink, plan: _StreamPlan, pool: ThreadPoolExecutor) -> Stream:
    chunks: list[DataChunk] = []
    pending: list[Future[ck.Packed]] = []
    filt = ck.NO_FILTER
    elem = 1

    def drain(limit: int) -> None:
        while len(pending) > limit:
            p = pending.pop(0).result()
            chunks.append(DataChunk(sink.write(p.stored), len(p.stored), p.sha256))

    first = True
    for parts in _stream_pieces(plan, DATA_CHUNK):
        if parts is _RELEASE:
            drain(0)
            continue
        if first:  # the filter is chosen on the stream's first bytes (the first piece)
            first = False
            if plan.elem > 1:
                filt = ck.choose_filter(b"".join(parts)[:_SAMPLE], plan.elem)
                elem = plan.elem if filt == ck.SHUFFLE else 1
        pending.append(pool.submit(_pack_parts, parts, filt, elem))
        del parts
        drain(_IN_FLIGHT)
    drain(0)
    return Stream(filt, elem, plan.size, DATA_CHUNK, ChunkTable.of(chunks))


Placed = tuple[Any, tuple[int, int], int, bytes]
"""An entry (or an unchanged directory Row), where its value went (stream, offset), the
value's length and its SHA-256."""

EMPTY_SHA = hashlib.sha256(b"").digest()


def _dir_groups(placed: list[Placed]) -> Iterator[list[Placed]]:
    cur: list[Placed] = []
    size = 0
    for item in placed:
        est = estimate_row_size(item[0])
        if cur and size + est > DIR_CHUNK_TARGET:
            yield cur
            cur, size = [], 0
        cur.append(item)
        size += est
    if cur:
        yield cur


def _write_dir_chunk(sink: Sink, group_: list[Placed], out: list[DirChunk], split: bool = False) -> None:
    """One directory chunk of ``group_`` (halved until it fits); with ``split``, a state chunk
    and its identity chunk (§8.5), so the next pass over strengths writes only state."""
    entries = [p[0] for p in group_]
    m = chunk_map(entries, [p[1] for p in group_], [p[2] for p in group_], [p[3] for p in group_])
    raw = cbor.encode(m)
    if len(raw) > MAX_DIR_CHUNK:
        if len(group_) == 1:
            raise ValidationError(f"entry {entries[0].key!r}: its description exceeds {MAX_DIR_CHUNK} bytes")
        half = len(group_) // 2
        _write_dir_chunk(sink, group_[:half], out, split)
        _write_dir_chunk(sink, group_[half:], out, split)
        return
    ident_ref = None
    if split:
        state, ident = split_map(m)
        ident_raw = cbor.encode(ident)
        ip = ck.pack(ident_raw, level=ck.BLOCK_LEVEL)
        ident_ref = (sink.write(ip.stored), len(ip.stored), len(ident_raw), ip.sha256)
        raw = cbor.encode(state)
    p = ck.pack(raw, level=ck.BLOCK_LEVEL)
    out.append(
        DirChunk(
            sink.write(p.stored),
            len(p.stored),
            len(raw),
            len(group_),
            entries[0].key,
            entries[-1].key,
            p.sha256,
            ident_ref,
        )
    )


def write_layer(
    sink: Sink, layer: Mapping[str, Entry], pool: ThreadPoolExecutor, *, split: bool = False
) -> LayerIndex:
    """Write one layer's data streams and directory chunks; each value is read once. With
    ``split`` the directory chunks are written as state and identity chunks (§8.5), so a
    pass over strengths after a compaction writes a few bytes per entry."""
    items = sorted(layer.items(), key=lambda kv: kv[0].encode("utf-8"))
    plans: dict[int, _StreamPlan] = {}
    placed: list[tuple[Entry, int, int, int, int]] = []
    cache: dict[TensorSpec, tuple[int, int]] = {}
    for key, e in items:
        if key != e.key:
            raise ValidationError(f"layer entry stored under {key!r} has key {e.key!r}")
        size = _value_size(e)
        elem = _stream_elem(e, size, cache) if size else 1
        plan = plans.setdefault(elem, _StreamPlan(elem))
        placed.append((e, elem, plan.size, size, len(plan.entries)))
        if size:
            plan.entries.append(e)
            plan.sizes.append(size)
            plan.size += size
    order = sorted(elem for elem, p in plans.items() if p.size)
    stream_no = {elem: i for i, elem in enumerate(order)}
    streams = [_write_stream(sink, plans[elem], pool) for elem in order]
    located = [
        (e, (stream_no.get(elem, 0), off if size else 0), size, plans[elem].shas[pos] if size else EMPTY_SHA)
        for e, elem, off, size, pos in placed
    ]
    dirs: list[DirChunk] = []
    for g in _dir_groups(located):
        _write_dir_chunk(sink, g, dirs, split)
    return LayerIndex(count=len(items), dirs=DirTable.of(dirs), streams=streams)


def copy_layer(sink: Sink, lazy: LazyLayer) -> LayerIndex:
    """Copy an unchanged layer's chunks verbatim (digests checked while copying)."""
    src = lazy.reader
    li = src.index[lazy.layer]

    def copy(off: int, n: int, sha256: bytes, what: str) -> int:
        data = src.pread(off, n)
        ck.check_digest(data, sha256, f"{lazy.layer.label} {what}")
        return sink.write(data)

    dirs = [
        DirChunk(
            copy(d.off, d.len, d.sha256, f"directory chunk {i}"),
            d.len,
            d.raw,
            d.count,
            d.first,
            d.last,
            d.sha256,
            None
            if d.ident is None
            else (copy(d.ident[0], d.ident[1], d.ident[3], f"identity chunk {i}"), *d.ident[1:]),
        )
        for i, d in enumerate(li.dirs)
    ]
    streams = []
    for s, st in enumerate(li.streams):
        out = [
            DataChunk(copy(c.off, c.len, c.sha256, f"stream {s} chunk {i}"), c.len, c.sha256)
            for i, c in enumerate(st.chunks)
        ]
        streams.append(Stream(st.filter, st.elem, st.size, st.chunk, ChunkTable.of(out)))
    return LayerIndex(count=li.count, dirs=DirTable.of(dirs), streams=streams)


# --- whole files ---------------------------------------------------------------------------


def _head_bytes(head: str | None) -> bytes | None:
    return None if head is None else bytes.fromhex(head)


def _check_state(tg: Any) -> None:
    if not 0 <= tg.log_base <= tg.log_length:
        raise ValidationError(f"log_base {tg.log_base} is out of range")
    if not 0 <= tg.dirty_start <= tg.log_length:
        raise ValidationError(f"dirty_start {tg.dirty_start} is outside the log (0..{tg.log_length})")
    if tg.log_length > tg.log_base and tg.head_hash != tg.last_record_hash():
        raise ChainError(f"head_hash {tg.head_hash} is not the hash of the last record")
    if tg.log_length == 0 and tg.head_hash is not None:
        raise ChainError("head_hash is set but the log is empty")
    if not tg.log_base <= tg.persisted <= tg.log_length:
        raise ValidationError(f"persisted {tg.persisted} is outside the records held in memory")


def _merged_old_segments(source: Reader, upto: int) -> Iterator[tuple[bytes, int, int]]:
    """Old segments covering records [0, upto), merged into runs of ~1 MiB (bytes, first, count)."""
    buf: list[bytes] = []
    first = count = size = 0
    for s in source.segments(0):
        if s.first >= upto:
            break
        data = source.segment_bytes(s)
        if buf and size + len(data) > DATA_CHUNK:
            yield b"".join(buf), first, count
            buf, size = [], 0
            first = s.first
        buf.append(data)
        size += len(data)
        count = s.first + s.count - first
    if buf:
        yield b"".join(buf), first, count


def write_full(
    f: BinaryIO, tg: Any, *, prefix: bytes, seq: int, source: Reader | None, compact: bool = False
) -> Trailer:
    """Write a complete container for ``tg`` to the empty file ``f``.

    An unchanged lazily read layer is copied chunk by chunk, unless ``compact`` is set or
    its file holds garbage (spec §8.4): then it is written afresh, so values no entry lists
    any more are dropped.

    Records ``[0, tg.persisted)`` are copied as stored bytes from ``source`` (the file the
    thermogram was loaded from) when it holds them, which is how a thermogram loaded with
    only its log tail is rewritten without losing history.
    """
    _check_state(tg)
    use_source = source is not None and source.trailer.log_size == tg.persisted and tg.persisted > 0
    if not use_source and tg.log_base != 0:
        raise ValidationError(
            "cannot write a thermogram that holds only its log tail without its source file"
        )
    sink = Sink(f, 0)
    sink.write(prefix)
    commit_start = sink.open_commit() if is_framed(prefix[10]) else None
    from concurrent.futures import ThreadPoolExecutor  # (logging, threading: not for an append)

    with ThreadPoolExecutor(_workers()) as pool:
        idx = {}
        for layer in Layer:
            mapping = tg.layers[layer]
            if (
                isinstance(mapping, LazyLayer)
                and mapping.pristine()
                and not compact
                and not mapping.reader.garbage
            ):
                idx[layer] = copy_layer(sink, mapping)
            else:
                # a layer rewritten from the file (a compaction) is written split (§8.5): the
                # next pass over its strengths then writes state chunks only
                split = isinstance(mapping, LazyLayer) and len(mapping) > 0
                idx[layer] = write_layer(sink, mapping, pool, split=split)
    index_ref, _ = write_block(sink, index_to_map(idx))
    meta_ref, _ = write_block(sink, meta_to_map(tg))
    check_meta_size(meta_ref.raw)

    segs: list[SegmentRef] = []
    if use_source:
        assert source is not None
        rng = source.trailer.compact_range().copy()
        for data, first, count in _merged_old_segments(source, tg.persisted):
            segs.append(SegmentRef(sink.write(data), len(data), first, count, hashlib.sha256(data).digest()))
        new = tg.records[tg.persisted - tg.log_base :]
        check_links(new, source.trailer.head_hex, tg.persisted)
        start = tg.persisted
    else:
        rng = CompactRange()
        new = tg.records
        check_links(new, None, 0)
        start = 0
    new_bytes = records_bytes(new)
    check_readable(new, new_bytes, start)
    rng.extend(leaf_hashes_of(new_bytes))  # whole subtrees at a time, not a Python call per node
    segs += write_segments(sink, new_bytes, start)
    table_ref = None
    if segs:
        table_ref = write_block(sink, {"prev": None, "segments": [s.to_row() for s in segs]})[0]
    keys_ref = None
    if tg.dirty_start < tg.log_length:  # one block over the whole tail (§9.7)
        tail = tg.records[tg.dirty_start - tg.log_base :]
        keys_ref = _write_key_index(sink, newest_deltas(tail, tg.dirty_start), tg.dirty_start, None)
    t = Trailer(
        prefix=prefix,
        seq=seq,
        prev=None,
        meta=meta_ref,
        index=index_ref,
        log_size=tg.log_length,
        head=_head_bytes(tg.head_hash),
        dirty_start=tg.dirty_start,
        range_nodes=list(rng.nodes),
        segments=[],
        table=table_ref,
        keys=keys_ref,
    )
    write_commit(sink, t, commit_start)
    if commit_start is not None:
        _patch_header(f, commit_start, pack_commit_header(sink.pos - commit_start, seq), sink.pos)
    return t


def _extended_range(
    old: CompactRange,
    records: list[LogRecord],
    runs: list[SealedRun],
    new_bytes: list[bytes],
    worker: RangeWorker | None,
) -> CompactRange:
    """``old`` extended by the leaves of ``new_bytes`` (the commit's records, ``records``
    then the sealed ``runs``): the worker's range when it hashed exactly these runs from
    ``old`` (asked last, so it had the most time), else hashed here."""
    if worker is not None:
        done = None if records else worker.finish(old, runs)  # (finish stops the worker)
        worker.close()
        if done is not None:
            return done
    rng = old.copy()
    rng.extend(leaf_hashes_of(new_bytes))  # whole subtrees at a time, not a Python call per node
    return rng


def _append_key_index(sink: Sink, tg: Any, old: Trailer, new: LogTail) -> BlockRef | None:
    """The key index an append's trailer names (§9.7): none once every record is history;
    the previous one when no record is added; else a block over the new records, linked to
    the previous block while that one still covers uncommitted records."""
    if tg.dirty_start >= tg.log_length:
        return None
    if not len(new):
        return old.keys
    prev = old.keys if tg.dirty_start < old.log_size else None
    first = max(old.log_size, tg.dirty_start)
    keys = new.delta_keys()[first - old.log_size :]
    return _write_key_index(sink, newest_of_keys(keys, first), first, prev)


def _write_key_index(sink: Sink, latest: dict[str, int], first: int, prev: BlockRef | None) -> BlockRef:
    """A flat key index block, or its parts then a split block once it lists more than
    :data:`PART_KEYS` keys (§9.7); stored uncompressed, so a read only hashes it."""
    if len(latest) <= PART_KEYS:
        return write_block(sink, block_map(latest, first, prev), compress=False)[0]
    parts = [(last, write_block(sink, m, compress=False)[0]) for last, m in part_maps(latest, PART_KEYS)]
    return write_block(sink, split_block_map(first, parts, prev), compress=False)[0]


def _patch_header(f: BinaryIO, start: int, header: bytes, end: int) -> None:
    """Fill in the commit header of a file being rewritten (not yet synced or visible)."""
    f.seek(start)
    f.write(header)
    f.seek(end)


IndexWriter = Callable[[Sink], BlockRef]
"""Writes a copy-on-write commit's changed layer chunks and its index block; returns the index ref."""


def plan_append(
    tg: Any, source: Reader, *, index_writer: IndexWriter | None = None
) -> tuple[bytes, Trailer] | None:
    """The bytes to append after ``source``'s committed end for ``tg``, or None if nothing changed.

    With ``index_writer`` (a copy-on-write commit, :mod:`thermo_cli.container.cow`) the
    commit also holds the layers' changed chunks and a new index block, written first.
    """
    planned = plan_append_parts(tg, source, index_writer=index_writer)
    return None if planned is None else (b"".join(planned[0]), planned[1])


def plan_append_parts(
    tg: Any,
    source: Reader,
    *,
    index_writer: IndexWriter | None = None,
    range_worker: RangeWorker | None = None,
) -> tuple[list[bytes], Trailer] | None:
    """:func:`plan_append` as the list of byte strings to write in order, the last one the
    footer: a writer hands them to the file one by one instead of copying a commit of
    records (tens of MB after a big apply) into one more string first.

    ``range_worker``: a worker that was given this commit's sealed runs as they were made
    (:mod:`thermo_cli.integrity.merkle_worker`); its Merkle range is used when it covers
    exactly the new records from the file's range, and the range is hashed here otherwise.
    """
    _check_state(tg)
    old = source.trailer
    if tg.persisted != old.log_size:
        raise ChainError(f"the file holds {old.log_size} records, the thermogram expects {tg.persisted}")
    tail = tg.log_tail(tg.persisted)
    new = tail.records
    head = check_links(new, old.head_hex, tg.persisted)
    check_run_links(tail.runs, head, tg.persisted + len(new))
    meta_raw = cbor.encode(meta_to_map(tg))
    check_meta_size(len(meta_raw))
    _ = source.meta_map  # loads meta_raw_sha
    meta_changed = hashlib.sha256(meta_raw).digest() != source.meta_raw_sha
    if index_writer is None and not len(tail) and not meta_changed and tg.dirty_start == old.dirty_start:
        return None

    class _Buf:
        def __init__(self) -> None:
            self.parts: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.parts.append(bytes(data))

    buf = _Buf()
    sink = Sink(buf, source.committed_end)  # type: ignore[arg-type]
    start = sink.open_commit() if source.framed else None
    index_ref = old.index if index_writer is None else index_writer(sink)
    new_bytes = records_bytes(new) + tail.encoded_runs()
    check_readable(new, new_bytes, old.log_size)
    segs = write_segments(sink, new_bytes, old.log_size)
    meta_ref = old.meta
    if meta_changed:
        stored = ck.compress(meta_raw, ck.BLOCK_LEVEL)
        meta_ref = BlockRef(
            sink.write(stored), len(stored), len(meta_raw), "zstd", hashlib.sha256(stored).digest()
        )
    inline, table = old.segments + segs, old.table
    if len(inline) > INLINE_SEGMENTS:
        table = write_block(
            sink,
            {"prev": None if table is None else table.to_map(), "segments": [s.to_row() for s in inline]},
        )[0]
        inline = []
    keys_ref = _append_key_index(sink, tg, old, tail)
    rng = _extended_range(old.compact_range(), new, tail.runs, new_bytes, range_worker)
    t = Trailer(
        prefix=old.prefix,
        seq=old.seq + 1,
        prev=old.ref(),
        meta=meta_ref,
        index=index_ref,
        log_size=tg.log_length,
        head=_head_bytes(tg.head_hash),
        dirty_start=tg.dirty_start,
        range_nodes=list(rng.nodes),
        segments=inline,
        table=table,
        keys=keys_ref,
    )
    write_commit(sink, t, start)
    if start is not None:
        buf.parts[0] = pack_commit_header(sink.pos - start, t.seq)
    return buf.parts, t
