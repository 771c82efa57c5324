"""Open a container: find the last committed state, decode its blocks, read chunks and log.

Opening reads the prefix, the footer at the end of the file and the trailer it points at:
three small reads whatever the file's size. If the file does not end in a valid commit
because a writer was killed mid-append, the reader scans backwards for the last valid
footer/trailer of this file, opens that state, and reports the ignored bytes as
``torn_tail_bytes`` — it never guesses at the torn part. A file that ends in a complete
footer (end magic in place) whose commit does not check out is *damaged*, not torn: an
interrupted append never leaves a whole footer (it is written last, after a sync), so
falling back would hide damage and let the next commit cut a real commit away. That is an
IntegrityError unless the caller (``thermo repair --force``) asks for the fallback.

Format 2.1 files frame every commit (a commit header with its length and seq, and the
trailer's ``start``), which makes that decision exact (spec §11): the last commit must
start where its predecessor ends and end at the end of the file, and whatever follows the
last valid commit is a torn tail only if it is the beginning of the next commit that is
not all on disk yet. Anything else — a complete commit that does not check out, an older
commit appended, bytes that no commit covers — is an IntegrityError.

:class:`Reader` is also the low-level API for verification: raw record bytes with their
offsets, every chunk's digest, the trailer chain.
"""

from __future__ import annotations

import _thread  # threading's locks without importing threading (start-up)
import contextlib
import functools
import itertools
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

from thermo_cli.codec import cbor, records
from thermo_cli.codec.sha256 import digest as sha256_digest
from thermo_cli.config.limits import Limits, check_cap, current_limits
from thermo_cli.container import chunks as ck
from thermo_cli.container.blocks import BlockRef
from thermo_cli.container.directory import DirData, Row, decode_chunk
from thermo_cli.container.index import LayerIndex, Stream, garbage_from_map, index_from_map
from thermo_cli.container.keyindex import KeyIndex, KeyTable, key_index_from_map, key_table_from_map
from thermo_cli.container.layout import (
    COMMIT_HEADER_SIZE,
    END_MAGIC,
    FOOTER_SIZE,
    PREFIX_SIZE,
    Prefix,
    is_framed,
    parse_prefix,
    unpack_commit_header,
    unpack_footer,
)
from thermo_cli.container.logseg import SegmentRef, iter_frames
from thermo_cli.container.source import ByteSource, open_source
from thermo_cli.container.trailer import Trailer, trailer_from_bytes
from thermo_cli.errors import CorruptError, FormatError, IntegrityError, TruncatedError
from thermo_cli.model import Layer, LogRecord
from thermo_cli.model.fields import as_list, as_map, field_of
from thermo_cli.model.valueclass import FrozenValue

_SCAN_WINDOW = 1 << 20
_F = TypeVar("_F", bound=Callable[..., Any])
_CO_GENERATOR = 0x20
"""``inspect.CO_GENERATOR``: the flag of a generator function's code (``inspect``, with
``ast`` and ``dis``, would cost every read's start-up more than the rest of this module)."""


@contextlib.contextmanager
def naming_file(path: str) -> Iterator[None]:
    """Make every FormatError raised inside start with ``path``.

    The decoders name the structure at fault (``index.layers.hot.dir.raw: …``) but not
    the file, which only the reader knows; this adds it once, here, instead of in every
    raise. A message that already starts with the path is left alone, so nested calls
    never repeat it.
    """
    try:
        yield
    except FormatError as e:
        if e.args and isinstance(e.args[0], str) and not e.args[0].startswith(f"{path}: "):
            e.args = (f"{path}: {e.args[0]}", *e.args[1:])
        raise


def _names_file(fn: _F) -> _F:
    """Decorate a :class:`Reader` method so its FormatErrors name the reader's file."""
    if fn.__code__.co_flags & _CO_GENERATOR:

        @functools.wraps(fn)
        def gen(self: Reader, *args: Any, **kwargs: Any) -> Any:
            with naming_file(self.path):
                yield from fn(self, *args, **kwargs)

        return cast(_F, gen)

    @functools.wraps(fn)
    def call(self: Reader, *args: Any, **kwargs: Any) -> Any:
        with naming_file(os.fspath(self.path if hasattr(self, "path") else args[0])):
            return fn(self, *args, **kwargs)

    return cast(_F, call)


class RawRecord(FrozenValue):
    """One stored log record: its index in the log, file offset of its bytes, the bytes."""

    index: int
    offset: int
    data: bytes

    __slots__ = ("data", "index", "offset")

    def __init__(self, index: int, offset: int, data: bytes) -> None:
        _set = object.__setattr__
        _set(self, "index", index)
        _set(self, "offset", offset)
        _set(self, "data", data)


class Reader:
    """A read-only view of one committed state of a container file.

    The byte source (a local file's descriptor, or a remote object read by range
    requests) stays open for lazy reads; committed bytes never change in place (appends
    add after them, rewrites replace the file by rename), so a Reader keeps seeing the
    state it opened even while writers work.
    """

    @_names_file
    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        limits: Limits | None = None,
        allow_damaged_tail: bool = False,
        source: ByteSource | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.limits = limits or current_limits()  # captured: worker threads use this one
        self._allow_damaged_tail = allow_damaged_tail
        self._source: ByteSource = source if source is not None else open_source(self.path)
        """Where the bytes come from: a local file (``os.pread``) or a URL (range requests)."""
        self.pread: Callable[[int, int], bytes] = self._source.pread
        """``pread(off, n)``: the ``n`` bytes at ``off`` (TruncatedError if the file ends
        first). The source's own method, bound here: no extra call on the hot path."""
        self.pread_into: Callable[[int, memoryview], memoryview] = self._source.pread_into
        """``pread_into(off, buf)``: fill ``buf`` from ``off`` without allocating; returns it."""
        self._lock = _thread.allocate_lock()
        try:
            self.inode = self._source.identity
            self.file_size = self._source.size
            self.prefix: Prefix = parse_prefix(
                self.pread(0, min(PREFIX_SIZE, self.file_size)), what=self.path
            )
            self.framed = is_framed(self.prefix.minor)
            self.tail_fault: str | None = None
            """Why the bytes after the last valid commit are damage, not a torn tail (only
            set when ``allow_damaged_tail`` let the reader fall back past them)."""
            self.trailer: Trailer = self._locate_commit()
            self.committed_end = self.trailer.off + self.trailer.len + FOOTER_SIZE
            self.torn_tail_bytes = self.file_size - self.committed_end
            self._meta: dict[str, Any] | None = None
            self.meta_raw_sha: bytes | None = None
            self._index: dict[Layer, LayerIndex] | None = None
            self._garbage = 0
        except BaseException:
            self.close()
            raise

    # --- low level --------------------------------------------------------------------

    @property
    def source(self) -> ByteSource:
        """The byte source this reader reads (``source.local`` is False for a URL)."""
        return self._source

    def close(self) -> None:
        """Close the file (idempotent). Prefer ``with Reader(...)``; a reader left open is
        closed when it is garbage-collected or at exit."""
        self._source.close()

    @property
    def closed(self) -> bool:
        return self._source.closed

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @_names_file
    def read_block(
        self, ref: BlockRef, what: str, cap: int | None = None, cap_name: str = "max_block_bytes"
    ) -> bytes:
        """The decompressed bytes of a block, after checking its digest."""
        cap = self.limits.max_block_bytes if cap is None else cap
        check_cap(ref.raw, cap, cap_name, what)
        stored = self.pread(ref.off, ref.len)
        ck.check_digest(stored, ref.sha256, what)
        if ref.codec == "none":
            return stored
        return ck.decompress(stored, ref.raw, cap=cap, cap_name=cap_name, what=what)

    # --- finding the commit ----------------------------------------------------------

    def _trailer_at(self, end: int, *, strict: bool = False) -> Trailer | None:
        """The commit whose footer ends at ``end``, or None if there is none there.

        A footer and trailer whose digest matches but whose content is invalid cannot come
        from an interrupted write; with ``strict`` that raises instead of returning None.
        """
        if end < PREFIX_SIZE + FOOTER_SIZE:
            return None
        footer = self.pread(end - FOOTER_SIZE, FOOTER_SIZE)
        parsed = unpack_footer(footer)
        if parsed is None:
            return None
        tlen, tsha = parsed
        toff = end - FOOTER_SIZE - tlen
        if tlen == 0 or tlen > self.limits.max_trailer_bytes or toff < PREFIX_SIZE:
            return None
        data = self.pread(toff, tlen)
        if sha256_digest(data) != tsha:
            return None
        try:
            t = trailer_from_bytes(data, toff, tsha, self.limits, sha256_digest(data + footer))
            if t.prefix != self.prefix.raw:
                raise CorruptError(f"trailer at {toff}: its copy of the prefix differs from the file's")
        except FormatError:
            if strict:
                raise
            return None
        fault = self._framing_fault(t, end) if self.framed else None
        if fault is None:
            return t
        if strict:
            raise IntegrityError(
                f"{self.path}: the commit at the end of the file is not framed ({fault}): its commit "
                "header is damaged, an older commit was appended (a rollback) or bytes lie outside any "
                "commit. "
                "Run `thermo verify`; `thermo repair` with force=True drops them after a backup"
            )
        return None

    def _framing_fault(self, t: Trailer, end: int) -> str | None:
        """Why the 2.1 commit of trailer ``t``, whose footer ends at ``end``, is not framed, or None.

        Its header must be at ``t.start``, span exactly to ``end`` and carry the same seq;
        the first commit starts right after the prefix, every other right where the
        previous commit (``prev``) ends. A trailer copied to another place fails this.
        """
        assert t.start is not None
        header = unpack_commit_header(self.pread(t.start, COMMIT_HEADER_SIZE))
        if header is None:
            return f"no valid commit header at its start {t.start}"
        if t.start + header.length != end:
            return f"its commit at {t.start} ends at {t.start + header.length}, not at {end}"
        if header.seq != t.seq:
            return f"its commit header has seq {header.seq}, the trailer {t.seq}"
        if t.prev is None:
            return (
                None
                if t.start == PREFIX_SIZE
                else f"a first commit must start at {PREFIX_SIZE}, not {t.start}"
            )
        if t.prev.off + t.prev.len != t.start:
            return f"its previous commit ends at {t.prev.off + t.prev.len}, not at its start {t.start}"
        return None

    def _locate_commit(self) -> Trailer:
        if not self.framed:
            return self._locate_unframed()
        size = self.file_size
        try:
            t = self._trailer_at(size, strict=True)
        except IntegrityError:
            if not self._allow_damaged_tail:
                raise
            t = None
        if t is None:
            t = self._locate_after_tail(size)
        if t.prev is not None:
            self._prev_trailer(t)  # the predecessor's digest and seq, one small read
        return t

    def _locate_after_tail(self, size: int) -> Trailer:
        """The last valid commit before a tail that did not check out (2.1 files)."""
        found = self._scan_back(size)
        end = PREFIX_SIZE if found is None else found.off + found.len + FOOTER_SIZE
        fault = self._tail_fault(end, size, None if found is None else found.seq + 1)
        if fault is not None:
            if not self._allow_damaged_tail:
                raise IntegrityError(
                    f"{self.path}: {fault}; this is not an interrupted write. Run `thermo verify`; "
                    "`thermo repair` with force=True drops the damaged bytes after a backup"
                )
            self.tail_fault = fault
        if found is None:
            if fault is not None:
                raise IntegrityError(f"{self.path}: {fault}, and no earlier commit exists")
            raise TruncatedError(f"{self.path}: no committed state found (file cut short or damaged)")
        return found

    def _tail_fault(self, end: int, size: int, seq: int | None) -> str | None:
        """Why the bytes ``[end, size)`` after the last valid commit are damage; None if torn.

        A torn append is the beginning of the next commit: shorter than its header, a
        header that never reached the disk (zeros), or a valid header whose commit
        reaches past the end of the file. The footer is written last, after a sync, so a
        file ending in the end magic, or holding every byte its header announces, is a
        complete commit that is damaged; other bytes belong to no commit.
        """
        n = size - end
        after = "the prefix" if end == PREFIX_SIZE else f"the last valid commit (at {end})"
        if n >= len(END_MAGIC) and self.pread(size - len(END_MAGIC), len(END_MAGIC)) == END_MAGIC:
            return (
                f"the last commit is damaged (the file ends in a complete footer, but the {n} bytes "
                f"after {after} do not check out)"
            )
        if n < COMMIT_HEADER_SIZE:
            return None
        raw = self.pread(end, COMMIT_HEADER_SIZE)
        if not any(raw):
            return None
        header = unpack_commit_header(raw)
        if header is None:
            return f"the {n} bytes after {after} do not start with a commit header: bytes outside any commit"
        if seq is not None and header.seq != seq:
            return (
                f"the commit header at {end} has seq {header.seq}, not {seq}: it is not the next "
                "commit (an older commit appended?)"
            )
        stop = end + header.length
        if stop > size:
            return None
        if stop == size:
            return f"the last commit ({end}..{size}) is complete but damaged (its trailer or footer is wrong)"
        return f"the commit at {end} ends at {stop} but does not check out, and {size - stop} bytes follow it"

    def _locate_unframed(self) -> Trailer:
        """Format 2.0: the last valid footer; a complete footer at the end that fails is damage."""
        size = self.file_size
        t = self._trailer_at(size, strict=True)
        if t is not None:
            return t
        tail = self.pread(size - len(END_MAGIC), len(END_MAGIC)) if size >= PREFIX_SIZE + FOOTER_SIZE else b""
        damaged = tail == END_MAGIC
        if damaged and not self._allow_damaged_tail:
            raise IntegrityError(
                f"{self.path}: the last commit is damaged (its footer is complete but the trailer does not "
                "match it); this is not an interrupted write. Run `thermo verify`; `thermo repair` "
                "with force=True drops the damaged commit after a backup"
            )
        if damaged:
            self.tail_fault = "the file ends in a complete footer that does not match its trailer"
        found = self._scan_back(size)
        if found is not None:
            return found
        if damaged:
            raise IntegrityError(f"{self.path}: the last commit's trailer does not match its footer's digest")
        raise TruncatedError(f"{self.path}: no committed state found (file cut short or damaged)")

    def _scan_back(self, end: int) -> Trailer | None:
        """Search backwards for the newest valid footer before ``end``.

        Not over a URL: that search may read the whole object, and a remote object is never
        mid-commit (nothing appends to it in place), so one not ending in a commit is cut
        short or damaged: TruncatedError, before anything more is fetched.
        """
        if not self._source.local:
            raise TruncatedError(
                f"{self.path}: does not end in a complete commit (the object was cut short or damaged); "
                "remote reads do not search back for an earlier commit: download it, then run "
                "`thermo verify` or `thermo repair`"
            )
        hi = end - 1  # exclude a footer ending exactly at ``end`` (already tried)
        tried = 0
        while hi > PREFIX_SIZE:
            check_cap(
                end - hi,
                self.limits.max_tail_scan_bytes,
                "max_tail_scan_bytes",
                f"{self.path}: bytes searched back from the end for the last commit",
            )
            lo = max(PREFIX_SIZE, hi - _SCAN_WINDOW)
            window = self.pread(lo, hi - lo)
            pos = len(window)
            while True:
                pos = window.rfind(END_MAGIC, 0, pos)
                if pos < 0:
                    break
                tried += 1
                check_cap(
                    tried,
                    self.limits.max_scan_candidates,
                    "max_scan_candidates",
                    f"{self.path}: searching for the last commit",
                )
                t = self._trailer_at(lo + pos + len(END_MAGIC))
                if t is not None:
                    return t
                pos += len(END_MAGIC) - 1
            if lo == PREFIX_SIZE:
                break
            hi = lo + len(END_MAGIC) - 1
        return None

    # --- blocks ------------------------------------------------------------------------

    @property
    @_names_file
    def meta_map(self) -> dict[str, Any]:
        if self._meta is None:
            lim = self.limits
            raw = self.read_block(self.trailer.meta, "meta block", lim.max_meta_bytes, "max_meta_bytes")
            self._meta = cbor.decode_canonical(raw, what="meta block", max_items=self.limits.max_cbor_items)
            self.meta_raw_sha = sha256_digest(raw)
        return self._meta

    @_names_file
    def meta_fields(self) -> dict[str, Any]:
        from thermo_cli.container.metablock import meta_fields_from_map  # engine config: not for a get

        return meta_fields_from_map(self.meta_map)

    @property
    @_names_file
    def index(self) -> dict[Layer, LayerIndex]:
        if self._index is None:
            raw = self.read_block(self.trailer.index, "index block")
            m = cbor.decode_canonical(raw, what="index block", max_items=self.limits.max_cbor_items)
            self._index = index_from_map(m, PREFIX_SIZE, self.trailer.off, self.limits)
            self._garbage = garbage_from_map(m)
        return self._index

    @property
    def garbage(self) -> int:
        """Bytes of the file the current state no longer references, as the index estimates
        them (spec §8.4); a writer compacts when they dominate the file."""
        _ = self.index
        return self._garbage

    # --- chunks ------------------------------------------------------------------------

    @_names_file
    def dir_chunk(self, layer: Layer, i: int) -> DirData:
        li = self.index[layer]
        d = li.dirs[i]
        what = f"{layer.label} directory chunk {i}"
        raw = self._small_chunk(d.off, d.len, d.raw, d.sha256, what)
        ident = None
        if d.ident is not None:
            ident = self._small_chunk(*d.ident, f"{what} identity chunk")
        return decode_chunk(raw, d, li.streams, what, self.limits.max_cbor_items, ident)

    def _small_chunk(self, off: int, n: int, raw: int, sha: bytes, what: str) -> bytes | memoryview:
        return ck.unpack(
            self.pread(off, n),
            raw,
            sha,
            filter=ck.NO_FILTER,
            elem=1,
            cap=self.limits.max_chunk_bytes,
            cap_name="max_chunk_bytes",
            what=what,
        )

    @_names_file
    def data_chunk(
        self, layer: Layer, s: int, i: int, out: memoryview | None = None, scratch: ck.Scratch | None = None
    ) -> bytes | memoryview:
        """Data chunk ``i`` of stream ``s``, digest-checked and unfiltered (written into ``out``
        when given). A shuffled chunk is a memoryview of its own buffer: copy the slices you
        keep. Safe to call from several threads (zstd, SHA-256 and numpy release the GIL).
        With ``scratch`` (one per thread) the stored bytes and a shuffled chunk's bytes go
        into its buffers: the result is valid until the scratch's next use."""
        st = self.index[layer].streams[s]
        c = st.chunks[i]
        stored = (
            self.pread(c.off, c.len)
            if scratch is None
            else self.pread_into(c.off, scratch.buffer("stored", c.len))
        )
        return ck.unpack(
            stored,
            st.chunk_raw_len(i),
            c.sha256,
            filter=st.filter,
            elem=st.elem,
            cap=self.limits.max_chunk_bytes,
            cap_name="max_chunk_bytes",
            what=f"{layer.label} stream {s} chunk {i}",
            out=out,
            scratch=scratch,
        )

    @_names_file
    def check_value_size(self, row: Row) -> None:
        check_cap(row.length, self.limits.max_value_bytes, "max_value_bytes", f"value of {row.key!r}")

    def raw_chunk(self, off: int, n: int) -> bytes:
        return self.pread(off, n)

    # --- log ----------------------------------------------------------------------------

    @_names_file
    def _prev_trailer(self, t: Trailer) -> Trailer:
        ref = t.prev
        assert ref is not None
        what = f"trailer at {ref.off}"
        if ref.len <= FOOTER_SIZE:
            raise CorruptError(f"{what}: a previous commit must span a trailer and its footer")
        both = self.pread(ref.off, ref.len)
        if sha256_digest(both) != ref.sha256:
            raise IntegrityError(f"{what}: SHA-256 does not match the digest recorded by the next trailer")
        data = both[:-FOOTER_SIZE]
        tsha = sha256_digest(data)
        if unpack_footer(both[-FOOTER_SIZE:]) != (len(data), tsha):
            raise CorruptError(f"{what}: its footer does not describe it")
        p = trailer_from_bytes(data, ref.off, tsha, self.limits, ref.sha256)
        if p.prefix != t.prefix or p.seq + 1 != t.seq:
            raise CorruptError(f"{what}: does not precede trailer {t.seq} (sequence or prefix differ)")
        if p.log_size > t.log_size:
            raise CorruptError(f"{what}: its log is longer than the next commit's")
        return p

    @_names_file
    def table(self, ref: BlockRef, hi: int) -> tuple[list[SegmentRef], BlockRef | None]:
        """Segments listed by a log table block, and the table before it."""
        raw = self.read_block(ref, "log table")
        what = f"log table at {ref.off}"
        m = as_map(cbor.decode_canonical(raw, what=what, max_items=self.limits.max_cbor_items), what)
        rows = as_list(field_of(m, "segments", what), f"{what}.segments")
        check_cap(len(rows), self.limits.max_segments, "max_segments", what)
        prev = field_of(m, "prev", what)
        prev_ref = None if prev is None else BlockRef.from_map(prev, f"{what}.prev", PREFIX_SIZE, ref.off)
        segs = [
            SegmentRef.from_row(r, f"{what}.segments[{i}]", PREFIX_SIZE, hi, self.limits)
            for i, r in enumerate(rows)
        ]
        for a, b in itertools.pairwise(segs):
            if a.first + a.count != b.first:
                raise CorruptError(f"{what}: segments are not contiguous")
        return segs, prev_ref

    @_names_file
    def segments(self, start: int = 0) -> list[SegmentRef]:
        """Segments, oldest first, covering the log from the one holding record ``start``.

        The trailer lists the newest segments; each log table lists older ones and points
        at the table before it, back to the rewrite's table that starts at record 0.
        """
        t = self.trailer
        out: list[SegmentRef] = []
        if start >= t.log_size:
            return out
        for s in reversed(t.segments):
            out.append(s)
            if s.first <= start:
                return out[::-1]
        end = t.segments[0].first if t.segments else t.log_size
        ref = t.table
        hops = 0
        while ref is not None:
            hops += 1
            check_cap(hops, self.limits.max_trailer_chain, "max_trailer_chain", "log table chain")
            segs, prev = self.table(ref, t.off)
            stop = segs[-1].first + segs[-1].count if segs else end
            if stop != end:
                raise CorruptError(
                    f"log table at {ref.off}: ends at record {stop}, the next segments start at {end}"
                )
            for s in reversed(segs):
                out.append(s)
                if s.first <= start:
                    return out[::-1]
            if segs:
                end = segs[0].first
            if prev is not None and prev.off >= ref.off:
                raise CorruptError(f"log table at {ref.off}: its previous table does not precede it")
            ref = prev
        if end != 0:
            raise CorruptError(f"log: the segments listed reach back to record {end}, not to record 0")
        return out[::-1]

    @_names_file
    def trailers(self) -> Iterator[Trailer]:
        """Every trailer of the current file, newest first (the chain of commits)."""
        t = self.trailer
        yield t
        while t.prev is not None:
            t = self._prev_trailer(t)
            yield t

    @_names_file
    def segment_bytes(self, s: SegmentRef) -> bytes:
        data = self.pread(s.off, s.len)
        ck.check_digest(data, s.sha256, f"log segment at {s.off}")
        return data

    @_names_file
    def iter_raw_records(self, start: int = 0) -> Iterator[RawRecord]:
        """Stored bytes of every record from index ``start`` on, checked against segment digests."""
        for s in self.segments(start):
            data = self.segment_bytes(s)
            frames = iter_frames(data, s.count, self.limits, f"log segment at {s.off}")
            for k, (pos, rec) in enumerate(frames):
                idx = s.first + k
                if idx >= start:
                    yield RawRecord(idx, s.off + pos + 4, bytes(rec))

    @_names_file
    def record_at(self, index: int) -> LogRecord:
        """Decode the one record at log ``index`` (its segment is read and checked, and only
        this record's frame is decoded).

        One record goes through the strict decoder itself (the one ``decode_log_record``
        falls back to, same result): the fast decoder's module, built for loading whole
        logs, would cost a one-key read more start-up than it saves.
        """
        for raw in self.iter_raw_records(index):
            cap = current_limits().max_cbor_items
            return records.decode_record(raw.data, what=f"log record {raw.index}", max_items=cap)
        raise CorruptError(f"log: no record {index} (the log holds {self.trailer.log_size})")

    @_names_file
    def key_index(self, ref: BlockRef) -> KeyIndex:
        """A key index block (§9.7), digest-checked and decoded (a split block's parts are
        read when a lookup or a verifier needs them)."""
        raw = self.read_block(ref, "key index")
        what = f"key index at {ref.off}"
        return key_index_from_map(
            cbor.decode_canonical(raw, what=what),
            what,
            ref.off,
            self.trailer.log_size,
            self.limits,
            load=self._key_index_part,
        )

    @_names_file
    def _key_index_part(self, ref: BlockRef) -> KeyTable:
        raw = self.read_block(ref, "key index part")
        what = f"key index part at {ref.off}"
        return key_table_from_map(cbor.decode_canonical(raw, what=what), what, self.limits)

    @_names_file
    def newest_dirty_delta(self, key: str) -> tuple[int | None, int]:
        """(log index of ``key``'s newest delta at or after ``dirty_start`` per the key
        indexes, or None; the first record they cover). Records from ``dirty_start`` up to
        that point are not covered (an older writer's commits): the caller scans them."""
        t = self.trailer
        covered = t.log_size
        ref = t.keys
        hops = 0
        while ref is not None and covered > t.dirty_start:
            hops += 1
            check_cap(hops, self.limits.max_trailer_chain, "max_trailer_chain", "key index chain")
            block = self.key_index(ref)
            if block.first >= covered:
                raise CorruptError(f"key index at {ref.off}: does not precede the block after it")
            hit = block.find(key)
            if hit is not None and hit >= t.dirty_start:
                return hit, block.first
            covered = block.first
            if ref.off <= (block.prev.off if block.prev is not None else -1):
                raise CorruptError(f"key index at {ref.off}: its previous block does not precede it")
            ref = block.prev
        return None, max(covered, t.dirty_start)

    @_names_file
    def iter_records(self, start: int = 0) -> Iterator[LogRecord]:
        """Decoded records from index ``start`` on, strictly (see :func:`decode_log_record`)."""
        from thermo_cli.codec.fastrecords import decode_log_record

        for raw in self.iter_raw_records(start):
            yield decode_log_record(raw.data, raw.index, self.limits.max_cbor_items)

    # --- chunk inventory (for verification and copying) ---------------------------------

    @_names_file
    def all_chunks(self) -> Iterator[tuple[str, int, int, int, bytes]]:
        """(description, offset, stored length, raw length, sha256) of every layer chunk."""
        for layer, li in self.index.items():
            for i, d in enumerate(li.dirs):
                yield f"{layer.label} directory chunk {i}", d.off, d.len, d.raw, d.sha256
                if d.ident is not None:
                    yield f"{layer.label} directory chunk {i} identity chunk", *d.ident
            for s, st in enumerate(li.streams):
                for i, c in enumerate(st.chunks):
                    yield f"{layer.label} stream {s} chunk {i}", c.off, c.len, st.chunk_raw_len(i), c.sha256


class ChunkCache:
    """A tiny LRU of decompressed chunks: sequential scans and repeated keys hit it."""

    def __init__(self, capacity: int = 8) -> None:
        self.capacity = capacity
        self._items: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any, load: Any) -> Any:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = load()
        self._items[key] = value
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return value


def read_value(reader: Reader, layer: Layer, row: Row, cache: ChunkCache) -> bytes:
    """Assemble a value from the data chunks its byte range touches."""
    if row.length == 0:
        return b""
    reader.check_value_size(row)
    st: Stream = reader.index[layer].streams[row.stream]
    first = row.off // st.chunk
    last = (row.off + row.length - 1) // st.chunk
    if first == last:
        data = cache.get(("d", layer, row.stream, first), lambda: reader.data_chunk(layer, row.stream, first))
        a = row.off - first * st.chunk
        return bytes(data[a : a + row.length])
    parts = []
    for i in range(first, last + 1):
        data = reader.data_chunk(layer, row.stream, i)
        a = max(row.off, i * st.chunk) - i * st.chunk
        b = min(row.off + row.length, (i + 1) * st.chunk) - i * st.chunk
        parts.append(data[a:b])
    return b"".join(parts)
