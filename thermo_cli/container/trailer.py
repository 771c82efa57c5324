"""The trailer: the root of one committed state, written last (before the footer).

It repeats the file's prefix, numbers the commit, points at the meta and index blocks and
the previous trailer (each by offset, length and SHA-256), and describes the log: size,
head hash, first record after the last consolidation (``dirty_start``), the RFC 9162
compact range (right-edge subtree hashes, so the log root after an append costs
O(log n)), the newest segments inline, and the newest log table block, which lists the
segments before them and points at the table before it. Finding the log's tail therefore
takes one table read per ~64 commits, never a walk over every trailer.

In format 2.1 it also frames its commit: ``start`` is the offset of the commit header
and ``body_sha256`` the SHA-256 of every byte between that header and the trailer, so
bytes that no block references (padding, a stray copy, a zeroed gap) are covered too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from thermo_cli.codec import cbor
from thermo_cli.config.limits import Limits, check_cap
from thermo_cli.container.blocks import BlockRef
from thermo_cli.container.layout import COMMIT_HEADER_SIZE, FOOTER_SIZE, PREFIX_SIZE, is_framed
from thermo_cli.container.logseg import SegmentRef
from thermo_cli.errors import CorruptError
from thermo_cli.model.fields import as_bytes, as_list, as_map, as_uint, field_of
from thermo_cli.model.valueclass import Value

if TYPE_CHECKING:
    from thermo_cli.integrity.merkle import CompactRange  # hashlib: only writers and verifiers need it


class Trailer(Value):
    prefix: bytes
    seq: int
    prev: BlockRef | None
    meta: BlockRef
    index: BlockRef
    log_size: int
    head: bytes | None
    dirty_start: int
    range_nodes: list[bytes]
    segments: list[SegmentRef]
    table: BlockRef | None
    start: int | None
    """Offset of this commit's header (format 2.1; None in 2.0 files)."""
    body_sha256: bytes | None
    """SHA-256 of the bytes between the commit header and this trailer (format 2.1)."""
    keys: BlockRef | None
    """The newest key index block of the uncommitted deltas (optional ``log.keys``, §9.7)."""
    # where this trailer itself lies (not encoded)
    off: int
    len: int
    sha256: bytes
    commit_sha256: bytes
    """SHA-256 of the trailer followed by its footer: what the next commit's ``prev`` names."""

    __slots__ = (
        "body_sha256",
        "commit_sha256",
        "dirty_start",
        "head",
        "index",
        "keys",
        "len",
        "log_size",
        "meta",
        "off",
        "prefix",
        "prev",
        "range_nodes",
        "segments",
        "seq",
        "sha256",
        "start",
        "table",
    )

    def __init__(
        self,
        prefix: bytes,
        seq: int,
        prev: BlockRef | None,
        meta: BlockRef,
        index: BlockRef,
        log_size: int,
        head: bytes | None,
        dirty_start: int,
        range_nodes: list[bytes],
        segments: list[SegmentRef] | None = None,
        table: BlockRef | None = None,
        start: int | None = None,
        body_sha256: bytes | None = None,
        keys: BlockRef | None = None,
        off: int = 0,
        len: int = 0,
        sha256: bytes = b"",
        commit_sha256: bytes = b"",
    ) -> None:
        self.prefix = prefix
        self.seq = seq
        self.prev = prev
        self.meta = meta
        self.index = index
        self.log_size = log_size
        self.head = head
        self.dirty_start = dirty_start
        self.range_nodes = range_nodes
        self.segments = [] if segments is None else segments
        self.table = table
        self.start = start
        self.body_sha256 = body_sha256
        self.keys = keys
        self.off = off
        self.len = len
        self.sha256 = sha256
        self.commit_sha256 = commit_sha256

    @property
    def head_hex(self) -> str | None:
        return None if self.head is None else self.head.hex()

    def compact_range(self) -> CompactRange:
        from thermo_cli.integrity.merkle import CompactRange

        return CompactRange(self.log_size, self.range_nodes)

    def ref(self) -> BlockRef:
        """Reference to this trailer and its footer, as the next commit's ``prev``."""
        n = self.len + FOOTER_SIZE
        return BlockRef(self.off, n, n, "none", self.commit_sha256)

    @property
    def body_start(self) -> int:
        """First byte after the commit header: where ``body_sha256`` starts."""
        assert self.start is not None
        return self.start + COMMIT_HEADER_SIZE

    def to_map(self) -> dict[str, Any]:
        m = self._map()
        if self.start is not None:
            m["start"] = self.start
            m["body_sha256"] = self.body_sha256
        return m

    def _map(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "seq": self.seq,
            "prev": None if self.prev is None else self.prev.to_map(),
            "meta": self.meta.to_map(),
            "index": self.index.to_map(),
            "log": {
                "size": self.log_size,
                "head": self.head,
                "dirty_start": self.dirty_start,
                "range": list(self.range_nodes),
                "segments": [s.to_row() for s in self.segments],
                "table": None if self.table is None else self.table.to_map(),
                **({} if self.keys is None else {"keys": self.keys.to_map()}),
            },
        }

    def encode(self) -> bytes:
        return cbor.encode(self.to_map())


def trailer_from_bytes(data: bytes, off: int, sha: bytes, limits: Limits, commit_sha: bytes = b"") -> Trailer:
    """Decode and check a trailer found at ``off`` (its referenced blocks lie before it)."""
    what = f"trailer at {off}"
    m = as_map(cbor.decode_canonical(data, what=what, max_items=limits.max_cbor_items), what)
    lo, hi = PREFIX_SIZE, off

    def ref(v: Any, name: str) -> BlockRef | None:
        return None if v is None else BlockRef.from_map(v, f"{what}.{name}", lo, hi)

    log = as_map(field_of(m, "log", what), f"{what}.log")
    size = as_uint(field_of(log, "size", what), f"{what}.log.size")
    head = field_of(log, "head", what)
    head = None if head is None else as_bytes(head, f"{what}.log.head", 32)
    if (head is None) != (size == 0):
        raise CorruptError(f"{what}.log: head must be null exactly when the log is empty")
    dirty_start = as_uint(field_of(log, "dirty_start", what), f"{what}.log.dirty_start")
    if dirty_start > size:
        raise CorruptError(f"{what}.log: dirty_start {dirty_start} is past the log size {size}")
    nodes = as_list(field_of(log, "range", what), f"{what}.log.range")
    if len(nodes) != bin(size).count("1"):
        raise CorruptError(f"{what}.log.range: {len(nodes)} nodes do not fit a log of {size} records")
    nodes = [as_bytes(n, f"{what}.log.range", 32) for n in nodes]
    rows = as_list(field_of(log, "segments", what), f"{what}.log.segments")
    check_cap(len(rows), limits.max_segments, "max_segments", f"{what}.log.segments")
    segments = [
        SegmentRef.from_row(r, f"{what}.log.segments[{i}]", lo, hi, limits) for i, r in enumerate(rows)
    ]
    prev = ref(field_of(m, "prev", what), "prev")
    t = Trailer(
        prefix=as_bytes(field_of(m, "prefix", what), f"{what}.prefix", PREFIX_SIZE),
        seq=as_uint(field_of(m, "seq", what), f"{what}.seq"),
        prev=prev,
        meta=ref(field_of(m, "meta", what), "meta"),  # type: ignore[arg-type]
        index=ref(field_of(m, "index", what), "index"),  # type: ignore[arg-type]
        log_size=size,
        head=head,
        dirty_start=dirty_start,
        range_nodes=nodes,
        segments=segments,
        table=ref(field_of(log, "table", what), "log.table"),
        keys=ref(log.get("keys"), "log.keys"),
        off=off,
        len=len(data),
        sha256=sha,
        commit_sha256=commit_sha,
    )
    if is_framed(t.prefix[10]):
        _read_framing(t, m, what)
    if t.meta is None or t.index is None:
        raise CorruptError(f"{what}: meta and index references are required")
    pos = size
    for s in reversed(segments):
        if s.first + s.count != pos:
            raise CorruptError(f"{what}.log.segments: segments are not contiguous up to the log size")
        pos = s.first
    return t


def _read_framing(t: Trailer, m: dict[str, Any], what: str) -> None:
    """The 2.1 fields: ``start`` lies after the prefix, with room for its header before the trailer."""
    start = as_uint(field_of(m, "start", what), f"{what}.start")
    if start < PREFIX_SIZE or start + COMMIT_HEADER_SIZE > t.off:
        raise CorruptError(f"{what}.start: {start} leaves no room for a commit header before the trailer")
    t.start = start
    t.body_sha256 = as_bytes(field_of(m, "body_sha256", what), f"{what}.body_sha256", 32)
