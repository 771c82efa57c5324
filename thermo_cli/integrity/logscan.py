"""One streaming pass over a log's stored record bytes: hashes, links and the Merkle tree.

Verification must keep pace with the Rust crate's plain chain check, so this pass never
re-encodes a record and avoids decoding the common case. Records are taken in blocks of
:data:`BLOCK` (a power of two); per block it hashes each record twice (its chain hash
SHA-256(record) and its RFC 9162 leaf hash SHA-256(0x00 || record)) in list
comprehensions and builds the block's perfect subtrees level by level.

Links are checked without decoding: in a v2 delta's canonical CBOR the ``prev`` field is
the text key ``"prev"`` (``64 70 72 65 76``) followed by a 32-byte string head
(``58 20``) and the hash. If a record holds that key followed by the expected hash, and
the key occurs exactly once in the record, it can only be the map key itself (the real
key always exists, so a look-alike inside a string would make the count two) — so the
link is proved. Everything else — events, legacy deltas, broken links, look-alikes —
takes the slow path: a strict canonical decode.

Legacy deltas (migrated from the Rust crate) must form a prefix of the log; they keep
their crate hash, recomputed here with the crate's recipe, and the first v2 record links
to the last of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from thermo_cli.codec.fastrecords import links_to
from thermo_cli.codec.records import decode_record, legacy_delta_hash
from thermo_cli.errors import FormatError
from thermo_cli.integrity import merkle
from thermo_cli.model import Delta, Event, HashScheme

BLOCK = 1 << 14
"""Records per block; a power of two so block subtrees are aligned perfect subtrees."""

_sha256 = hashlib.sha256


@dataclass(slots=True)
class ScannedEvent:
    """An event record, decoded, with the log root of the records before it.

    ``block_nodes`` are the perfect subtrees from the start of its block up to it, which
    is what a parallel scan needs to finish ``prefix_root`` once earlier blocks are known.
    """

    index: int
    event: Event
    prefix_root: bytes
    block_nodes: tuple[bytes, ...] = ()


@dataclass(slots=True)
class ChainFailure:
    index: int
    reason: str
    key: str | None = None


@dataclass(slots=True)
class LogScan:
    """What one pass over the log found."""

    size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    head: bytes | None = None
    failure: ChainFailure | None = None
    events: list[ScannedEvent] = field(default_factory=list)
    legacy: int = 0
    deltas: int = 0
    decoded: int = 0
    bytes_hashed: int = 0
    leaves: merkle.PackedHashes | None = None
    probe_roots: dict[int, bytes] = field(default_factory=dict)
    """Roots of the log prefixes of the sizes asked for with ``probes``."""

    @property
    def head_hex(self) -> str | None:
        return None if self.head is None else self.head.hex()

    def prefix_root(self, size: int) -> bytes:
        """Root of the first ``size`` records (needs ``keep_leaves``)."""
        if self.leaves is None:
            raise ValueError("prefix roots of arbitrary sizes need keep_leaves=True")
        if size == 0:
            return merkle.EMPTY_ROOT
        return merkle.subtree_root(self.leaves, 0, size)


_UNKNOWN = b"unknown"  # the first prev of a range not read yet: never equal to a hash


class _Scanner:
    """Scans blocks in order. ``open_start``: the range starts after records this scanner
    never sees (a parallel worker's range), so its first link is returned, not judged."""

    def __init__(
        self, keep_leaves: bool, deep: bool, probes: Iterable[int] = (), open_start: bool = False
    ) -> None:
        self.out = LogScan()
        self.probes = sorted(set(probes))
        self.keep_leaves = keep_leaves
        self.deep = deep
        self.blocks = merkle.CompactRange()  # over block roots (each BLOCK leaves)
        self.block_roots: list[bytes] = []
        self.packed: list[bytes] = []
        self.prev_chain: bytes | None = None  # chain hash of the last record seen
        self.open_start = open_start
        self.first_prev: bytes | None = _UNKNOWN
        self.tail_levels: list[list[bytes]] = []
        self.tail_len = 0
        self.probe_nodes: dict[int, tuple[bytes, ...]] = {}

    def fail(self, index: int, reason: str, key: str | None = None) -> None:
        """Keep the failure with the lowest record index (blocks are checked in order)."""
        if self.out.failure is None or index < self.out.failure.index:
            self.out.failure = ChainFailure(index, reason, key)

    def link_broken(
        self, i: int, prevs: dict[int, bytes | None], linked: list[bool], chain: list[bytes], base: int
    ) -> None:
        """Name the likelier culprit of a broken link into record ``base + i``.

        If the next link holds, record i-1's content changed (its hash moved); if the next
        link breaks too, record i itself changed (its prev, or it and more).
        """
        index = base + i
        if index == 0:
            self.fail(0, "record 0: the first record links to a previous hash")
            return
        nxt = i + 1
        next_ok = nxt < len(linked) and (linked[nxt] or (nxt in prevs and prevs[nxt] == chain[i]))
        if next_ok:
            self.fail(
                index - 1,
                f"record {index - 1}: altered — its hash no longer matches "
                f"the prev link stored in record {index}",
            )
        else:
            self.fail(index, f"record {index}: prev link does not match the hash of record {index - 1}")

    def block(self, recs: list[bytes], base: int) -> None:
        n = len(recs)
        chain = [_sha256(r).digest() for r in recs]
        leaves = [_sha256(b"\x00" + r).digest() for r in recs]
        self.out.bytes_hashed += sum(map(len, recs))
        if self.deep:
            linked = [False] * n
        elif self.prev_chain is None:
            linked = [False, *links_to(recs[1:], chain[:-1])]
        else:
            linked = links_to(recs, [self.prev_chain, *chain[:-1]])
        events: list[tuple[int, Event]] = []
        prevs: dict[int, bytes | None] = {}
        todo = [i for i, ok in enumerate(linked) if not ok]
        while todo:  # a record after a legacy delta links to its crate hash: re-check it
            again = []
            for i in todo:
                if self.slow(recs[i], base + i, i, prevs, chain, events) and i + 1 < n and linked[i + 1]:
                    linked[i + 1] = False
                    again.append(i + 1)
            todo = again
        self.out.deltas += sum(linked)
        expected = [self.prev_chain, *chain[:-1]]
        if self.open_start and self.first_prev is _UNKNOWN:
            self.first_prev = expected[0] = prevs.get(0)
        if self.out.failure is None or self.out.failure.index >= base:
            for i in sorted(prevs):
                if prevs[i] != expected[i]:
                    self.link_broken(i, prevs, linked, chain, base)
                    break
        self.prev_chain = chain[-1]
        levels = self.levels(leaves)
        for i, ev in sorted(events, key=lambda t: t[0]):
            nodes = block_nodes(levels, i)
            prefix = merkle.fold([*self.blocks.nodes, *nodes])
            self.out.events.append(ScannedEvent(base + i, ev, prefix, nodes))
        for size in self.probes:
            if base < size <= base + n:
                nodes = block_nodes(levels, size - base)
                self.probe_nodes[size] = nodes
                self.out.probe_roots[size] = merkle.fold([*self.blocks.nodes, *nodes])
        if self.keep_leaves:
            self.packed.append(b"".join(leaves))
        if n == BLOCK:
            self.blocks.append(levels[-1][0])
            self.block_roots.append(levels[-1][0])
        else:
            self.tail_levels, self.tail_len = levels, n

    def slow(
        self,
        rec: bytes,
        index: int,
        i: int,
        prevs: dict[int, bytes | None],
        chain: list[bytes],
        events: list[tuple[int, Event]],
    ) -> bool:
        """Strictly decode one record and check what the fast path could not.

        Returns True when the record is a legacy delta (its chain hash is its crate hash).
        """
        self.out.decoded += 1
        try:
            decoded = decode_record(rec, what=f"record {index}")
        except FormatError as exc:
            self.fail(index, f"record {index}: not a valid record ({exc})")
            prevs[i] = self.prev_chain if i == 0 else chain[i - 1]  # report one failure, not two
            return False
        if isinstance(decoded, Delta) and decoded.scheme is HashScheme.LEGACY:
            self.legacy(decoded, index, i, prevs, chain)
            return True
        if isinstance(decoded, Delta):
            self.out.deltas += 1
        else:
            events.append((i, decoded))
        prevs[i] = None if decoded.prev_hash is None else bytes.fromhex(decoded.prev_hash)
        return False

    def legacy(
        self, d: Delta, index: int, i: int, prevs: dict[int, bytes | None], chain: list[bytes]
    ) -> None:
        """A migrated crate delta: recompute its crate hash; it chains by that hash."""
        if index != self.out.legacy:
            self.fail(index, f"record {index}: legacy delta after the legacy segment ended", d.key)
        self.out.legacy += 1
        recomputed = legacy_delta_hash(d)
        if d.hash != recomputed:
            self.fail(
                index,
                f"record {index}: legacy hash mismatch (stored {d.hash}, recomputed {recomputed})",
                d.key,
            )
        try:
            chain[i] = bytes.fromhex(d.hash or "")
            prevs[i] = None if d.prev_hash is None else bytes.fromhex(d.prev_hash)
        except ValueError:
            self.fail(index, f"record {index}: legacy hash or prev is not hex text", d.key)
            prevs[i] = self.prev_chain if i == 0 else chain[i - 1]

    @staticmethod
    def levels(leaves: list[bytes]) -> list[list[bytes]]:
        """Aligned perfect subtree roots of a block, level by level (odd tails dropped)."""
        out = [leaves]
        level = leaves
        while len(level) > 1:
            pairs = zip(level[0::2], level[1::2], strict=False)
            level = [_sha256(b"\x01" + a + b).digest() for a, b in pairs]
            out.append(level)
        return out

    def finish(self) -> LogScan:
        out = self.out
        tail = block_nodes(self.tail_levels, self.tail_len) if self.tail_len else ()
        out.root = merkle.fold([*self.blocks.nodes, *tail])
        out.head = self.prev_chain
        if 0 in self.probes:
            out.probe_roots[0] = merkle.EMPTY_ROOT
        if self.keep_leaves:
            out.leaves = merkle.PackedHashes(b"".join(self.packed))
        return out


def block_nodes(levels: list[list[bytes]], p: int) -> tuple[bytes, ...]:
    """Perfect subtrees covering the first ``p`` leaves of a block, largest first."""
    nodes = []
    start = 0
    for b in range(p.bit_length() - 1, -1, -1):
        if p >> b & 1:
            nodes.append(levels[b][start >> b])
            start += 1 << b
    return tuple(nodes)


def _blocks(records: Iterable[bytes], batches: Iterable[list[bytes]] | None) -> Iterator[list[bytes]]:
    """Regroup records (one by one, or in lists such as log segments) into BLOCK-sized lists."""
    if batches is None:
        if isinstance(records, list):
            for i in range(0, len(records), BLOCK):
                yield records[i : i + BLOCK]
            return
        batches = ([r] for r in records)
    buf: list[bytes] = []
    for batch in batches:
        buf.extend(batch)
        if len(buf) >= BLOCK:
            full = len(buf) - len(buf) % BLOCK
            for i in range(0, full, BLOCK):
                yield buf[i : i + BLOCK]
            buf = buf[full:]
    if buf:
        yield buf


def scan_log(
    records: Iterable[bytes] = (),
    *,
    batches: Iterable[list[bytes]] | None = None,
    keep_leaves: bool = False,
    deep: bool = False,
    probes: Iterable[int] = (),
) -> LogScan:
    """Hash, link-check and Merkle-hash a log given as its stored record bytes, in order.

    The records come one by one (``records``) or in lists (``batches``, e.g. one per log
    segment, which saves a Python step per record).

    ``deep`` strictly decodes every record (slower; also rejects malformed deltas that a
    consistent re-hash would otherwise carry). ``keep_leaves`` keeps the leaf hashes
    (32 bytes each) for consistency proofs and prefix roots of any size; ``probes`` asks
    for the roots of a few prefix sizes (e.g. those earlier commits recorded).
    """
    scanner = _Scanner(keep_leaves, deep, probes)
    base = 0
    for recs in _blocks(records, batches):
        scanner.block(recs, base)
        base += len(recs)
    out = scanner.finish()
    out.size = base
    return out


@dataclass(slots=True)
class RangeScan:
    """What a scan of records [start, end) found, for :func:`merge_ranges`."""

    start: int
    end: int
    scan: LogScan
    first_prev: bytes | None
    last_chain: bytes | None
    block_roots: list[bytes]
    tail_nodes: tuple[bytes, ...]
    probe_nodes: dict[int, tuple[bytes, ...]]


def scan_range(
    batches: Iterable[list[bytes]],
    start: int,
    *,
    keep_leaves: bool = False,
    deep: bool = False,
    probes: Iterable[int] = (),
) -> RangeScan:
    """Scan records [start, …) of a log, ``start`` a multiple of :data:`BLOCK`.

    The link into ``start`` cannot be judged here: the record's own prev is returned as
    ``first_prev`` for the caller to compare with the previous range's last hash.
    """
    if start % BLOCK:
        raise ValueError(f"scan_range: start {start} is not a multiple of BLOCK ({BLOCK})")
    scanner = _Scanner(keep_leaves, deep, probes, open_start=start > 0)
    base = start
    for recs in _blocks((), batches):
        scanner.block(recs, base)
        base += len(recs)
    out = scanner.finish()
    out.size = base - start
    tail = block_nodes(scanner.tail_levels, scanner.tail_len) if scanner.tail_len else ()
    first = None if start == 0 else scanner.first_prev
    return RangeScan(
        start, base, out, first, scanner.prev_chain, scanner.block_roots, tail, scanner.probe_nodes
    )


def merge_ranges(parts: list[RangeScan]) -> LogScan | None:
    """Join the scans of consecutive ranges into the scan of the whole log.

    Returns None when the simple join cannot give the sequential answer — a failure, a
    broken link between ranges, or legacy records (whose rules span the whole log) — so
    the caller rescans sequentially and reports exactly what a sequential scan would.
    """
    out = LogScan()
    blocks = merkle.CompactRange()
    prev_last: bytes | None = None
    packed = []
    for k, part in enumerate(parts):
        sc = part.scan
        if sc.failure is not None or sc.legacy or (k and part.first_prev != prev_last):
            return None
        if part.start != (parts[k - 1].end if k else 0):
            return None
        events = iter(sc.events)
        ev = next(events, None)
        probes = sorted(part.probe_nodes)
        pi = 0
        block_start = part.start
        for root in [*part.block_roots, None]:
            block_end = block_start + BLOCK
            while ev is not None and ev.index < block_end:
                prefix = merkle.fold([*blocks.nodes, *ev.block_nodes])
                out.events.append(ScannedEvent(ev.index, ev.event, prefix, ev.block_nodes))
                ev = next(events, None)
            while pi < len(probes) and probes[pi] <= block_end:
                size = probes[pi]
                out.probe_roots[size] = merkle.fold([*blocks.nodes, *part.probe_nodes[size]])
                pi += 1
            if root is None:
                break
            blocks.append(root)
            block_start = block_end
        out.deltas += sc.deltas
        out.decoded += sc.decoded
        out.bytes_hashed += sc.bytes_hashed
        out.size += sc.size
        out.probe_roots.update({s: r for s, r in sc.probe_roots.items() if s == 0})
        if sc.leaves is not None:
            packed.append(sc.leaves.data)
        prev_last = part.last_chain
        if part.tail_nodes and k != len(parts) - 1:
            return None  # only the last range may end inside a block
    out.root = merkle.fold([*blocks.nodes, *(parts[-1].tail_nodes if parts else ())])
    out.head = prev_last
    if packed:
        out.leaves = merkle.PackedHashes(b"".join(packed))
    return out
