"""Stream a container's layers: check every chunk digest and compute the state digest.

Verification must not hold a 1 GiB file's values in memory, nor hash them twice. Each
layer's directory chunks are decoded into rows (key, strength, … and where the value
lies); each data stream is decompressed chunk by chunk — a few chunks ahead in worker
threads, since zstd, SHA-256 and numpy release the GIL — and every value's SHA-256 is
fed from the chunks its byte range touches. The rows and value digests then give the
state digest's leaves (:mod:`thermo_cli.integrity.state`) without materialising an Entry.
A chunk that fails its digest or does not decompress is reported with the keys whose
values it holds, and scanning goes on so the report can count what is intact.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from thermo_cli.codec.leaves import entry_leaf
from thermo_cli.container.chunks import Scratch
from thermo_cli.errors import FormatError
from thermo_cli.integrity import merkle
from thermo_cli.model import Layer

if TYPE_CHECKING:
    from thermo_cli.container.directory import Row
    from thermo_cli.container.index import LayerIndex, Stream
    from thermo_cli.container.reader import Reader

PREFETCH = 8
"""Data chunks unpacked ahead of the one being consumed: enough that the workers never wait
for the consuming thread (only chunks holding part of a value that spans chunks are kept)."""


def reason_of(exc: Exception, *prefixes: str) -> str:
    """``exc``'s message without the leading ``prefixes`` (file name, chunk name).

    The report's line already says which file and which chunk failed; the reader's
    errors start with both, and repeating them would read ``chunk 0: chunk 0: …``.
    """
    text = str(exc)
    for prefix in prefixes:
        text = text.removeprefix(f"{prefix}: ")
    return text


@dataclass(slots=True)
class ChunkFault:
    what: str
    reason: str
    key: str | None


@dataclass(slots=True)
class LayerScan:
    """What a pass over the layers found."""

    entries: int = 0
    chunks: int = 0
    value_bytes: int = 0
    stored_bytes: int = 0
    faults: list[ChunkFault] = field(default_factory=list)
    leaves: list[tuple[bytes, int, bytes]] = field(default_factory=list)
    """(key UTF-8 bytes, layer number, leaf data) of every readable entry, key order."""

    @property
    def ok(self) -> bool:
        return not self.faults

    def digest(self) -> bytes:
        return merkle.root_from_leaf_hashes([merkle.leaf_hash(leaf) for _, _, leaf in self.leaves])

    def find(self, key: str, layer: Layer | None = None) -> int | None:
        """Position of ``key``'s leaf (in ``layer``, or the hottest holding it)."""
        kb = key.encode("utf-8")
        lo, hi = 0, len(self.leaves)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.leaves[mid][0] < kb:
                lo = mid + 1
            else:
                hi = mid
        while lo < len(self.leaves) and self.leaves[lo][0] == kb:
            if layer is None or self.leaves[lo][1] == int(layer):
                return lo
            lo += 1
        return None


def scan_layers(
    reader: Reader, *, workers: int | None = None, progress: Callable[[int], None] | None = None
) -> LayerScan:
    """Check every layer chunk of a container Reader and collect the state leaves.

    ``progress`` is called with the number of value bytes hashed so far.
    """
    out = LayerScan()
    n = workers or max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(n) as pool:
        for layer in Layer:
            try:
                li = reader.index[layer]
            except FormatError as exc:
                out.faults.append(ChunkFault("index block", reason_of(exc, reader.path, "index block"), None))
                return out
            _scan_layer(reader, layer, li, pool, out, progress)
    out.leaves.sort(key=lambda t: (t[0], t[1]))
    return out


def _scan_layer(
    reader: Reader,
    layer: Layer,
    li: LayerIndex,
    pool: ThreadPoolExecutor,
    out: LayerScan,
    progress: Callable[[int], None] | None,
) -> None:
    rows: list[Row] = []
    for i, d in enumerate(li.dirs):
        out.chunks += 1
        out.stored_bytes += d.len
        try:
            rows.extend(reader.dir_chunk(layer, i).rows())
        except FormatError as exc:
            what = f"{layer.label} directory chunk {i}"
            out.faults.append(
                ChunkFault(
                    what,
                    f"{reason_of(exc, reader.path, what)} (entries {d.first!r} … {d.last!r} unreadable)",
                    d.first,
                )
            )
    digests: dict[int, bytes] = {}
    for s, st in enumerate(li.streams):
        members = sorted((r.off, j) for j, r in enumerate(rows) if r.stream == s and r.length)
        _hash_stream(reader, layer, s, st, rows, members, pool, digests, out, progress)
    empty = hashlib.sha256(b"").digest()
    for j, row in enumerate(rows):
        digest = digests.get(j, empty if not row.length else None)
        if digest is None:
            continue  # its data chunk is damaged: already reported
        if row.value_sha256 is not None and row.value_sha256 != digest:
            out.faults.append(
                ChunkFault(
                    f"{layer.label} value of {row.key!r}",
                    "its SHA-256 differs from the value_sha256 its directory chunk lists",
                    row.key,
                )
            )
            continue
        out.entries += 1
        out.leaves.append((row.key.encode("utf-8"), int(layer), entry_leaf(layer, row.entry(b""), digest)))


def _hash_stream(
    reader: Reader,
    layer: Layer,
    s: int,
    st: Stream,
    rows: list[Row],
    members: list[tuple[int, int]],
    pool: ThreadPoolExecutor,
    digests: dict[int, bytes],
    out: LayerScan,
    progress: Callable[[int], None] | None,
) -> None:
    """Feed each value's SHA-256 from the chunks of stream ``s``, in order.

    A value that lies inside one chunk is hashed by the worker that unpacked the chunk,
    so on several cores the hashing runs beside decompression; a value spanning chunks is
    hashed here, chunk after chunk, while the workers unpack the next ones.
    """
    n = len(st.chunks)
    inside: list[list[int]] = [[] for _ in range(n)]
    spanning: list[tuple[int, int]] = []
    keep = [False] * n  # chunk holds part of a spanning value: its bytes come back here
    for off, j in members:
        first, last = off // st.chunk, (off + rows[j].length - 1) // st.chunk
        if first == last and first < n:
            inside[first].append(j)
        else:
            spanning.append((off, j))
            keep[first : last + 1] = [True] * (min(last, n - 1) + 1 - first)
    pending: deque[Future[_Unpacked]] = deque()
    nxt = 0
    active: dict[int, hashlib._Hash] = {}  # row position → running hash
    broken: set[int] = set()
    m = 0  # next spanning member (by offset) not yet started
    for i in range(n):
        while nxt < n and len(pending) < PREFETCH:
            args = (reader, layer, s, nxt, st.chunk, rows, inside[nxt], keep[nxt])
            pending.append(pool.submit(_unpack_and_hash, *args))
            nxt += 1
        fut = pending.popleft()
        c0 = i * st.chunk
        c1 = c0 + st.chunk_raw_len(i)
        out.chunks += 1
        out.stored_bytes += st.chunks[i].len
        while m < len(spanning) and spanning[m][0] < c1:
            active[spanning[m][1]] = hashlib.sha256()
            m += 1
        try:
            data, hashed = fut.result()
        except FormatError as exc:
            hit = inside[i] + list(active)
            lowest = min(hit, default=None)
            key = rows[lowest].key if lowest is not None else None
            keys = sorted(rows[j].key for j in hit)
            shown = ", ".join(repr(k) for k in keys[:3]) + (" …" if len(keys) > 3 else "")
            what = f"{layer.label} stream {s} chunk {i}"
            out.faults.append(
                ChunkFault(
                    what, f"{reason_of(exc, reader.path, what)} (values of {shown or 'no entry'})", key
                )
            )
            broken.update(active)
            data, hashed = None, {}
        for j, digest in hashed.items():
            digests[j] = digest
            out.value_bytes += rows[j].length
        done = []
        for j, h in active.items():
            row = rows[j]
            end = row.off + row.length
            if data is not None and j not in broken:
                h.update(data[max(row.off, c0) - c0 : min(end, c1) - c0])
            if end <= c1:
                done.append(j)
        for j in done:
            h = active.pop(j)
            if j not in broken:
                digests[j] = h.digest()
                out.value_bytes += rows[j].length
        if progress is not None:
            progress(out.value_bytes)


_local = threading.local()
"""Each worker thread's :class:`Scratch` (buffers reused chunk after chunk)."""

_Unpacked = tuple["bytes | memoryview | None", dict[int, bytes]]


def _unpack_and_hash(
    reader: Reader, layer: Layer, s: int, i: int, chunk: int, rows: list[Row], inside: list[int], keep: bool
) -> _Unpacked:
    """(chunk ``i`` of stream ``s`` checked and unpacked if ``keep``, else None; the SHA-256 of
    each value inside it)."""
    scratch = getattr(_local, "scratch", None)
    if scratch is None:
        scratch = _local.scratch = Scratch()
    data = reader.data_chunk(layer, s, i, scratch=scratch)
    view = memoryview(data)
    c0 = i * chunk
    hashed = {}
    for j in inside:
        row = rows[j]
        hashed[j] = hashlib.sha256(view[row.off - c0 : row.off - c0 + row.length]).digest()
    return (bytes(data) if keep else None), hashed  # scratch buffers are reused: keep a copy
