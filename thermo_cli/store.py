"""The file API every command and feature uses: sniff, load, create, commit, read.

``.thermo`` containers (format v2, :mod:`thermo_cli.container`) are opened lazily: the
layers decompress one chunk per key looked up and only the log's tail (the records since
the last consolidation) is decoded, so working on a 1 GiB file costs what the change
costs. The Rust crate's JSON save files and Engram exports are read through
:mod:`thermo_cli.formats.legacy` and become the same :class:`Thermogram`.

Writing: :func:`commit` appends the new log records (and the meta block if it changed)
in O(delta) when the layers did not change, and otherwise rewrites the file atomically.
Both :func:`commit` and :func:`create` first bind the layer state into the log
(:meth:`Thermogram.bind_state`) when engine operations changed it since the last binding,
so every committed layer state is covered by a digest.
Writers hold :func:`locked` around load → change → commit; readers never lock.
:func:`edit` is that transaction in one ``with`` block: lock, load (or start a new
file), yield the thermogram, commit on success, write nothing on an exception.
"""

from __future__ import annotations

import _thread  # threading's locks without importing threading (start-up)
import contextlib
import os
import weakref
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Literal

from thermo_cli.codec import cbor
from thermo_cli.codec.sha256 import digest as sha256_digest
from thermo_cli.config.limits import DEFAULT_LIMITS, DEFAULT_LOCK_TIMEOUT, Limits
from thermo_cli.config.remote import is_url, refuse_url
from thermo_cli.container.layout import (
    FOOTER_SIZE,
    MAGIC,
    MAJOR,
    MINOR,
    damage_reason,
    looks_like_container,
    new_prefix,
)
from thermo_cli.errors import (
    BadMagicError,
    ChainError,
    FormatError,
    IntegrityError,
    LockError,
    NewerMinorRefusedError,
    NotFoundError,
    RefusedError,
    ValidationError,
)
from thermo_cli.model import Delta, DeltaType, Entry, Layer, LogRecord, ReadResult
from thermo_cli.model.valueclass import FrozenValue, Value

# Imported inside the functions that use them, for start-up time (``thermo get`` loads this
# module): the engine, the container's reader, lazy layers, meta block and writer
# (zstandard), the locking and atomic-write code (``container.fileops``: a read waits for a
# writer only when the file's tail is torn), and the Rust crate's formats (orjson), so a
# command loads only what the file it opens needs.
if TYPE_CHECKING:
    from thermo_cli.container.reader import Reader
    from thermo_cli.engine.thermogram import Thermogram
    from thermo_cli.integrity.merkle_worker import RangeWorker

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "Origin",
    "check_writable",
    "commit",
    "compact",
    "create",
    "edit",
    "info",
    "iter_log",
    "keys",
    "load",
    "locked",
    "open_reader",
    "read",
    "sniff",
]

Kind = Literal["thermo", "legacy", "engram"]
_SNIFF_BYTES = 64 * 1024


class Origin(Value):
    """Where a loaded thermogram came from; kept beside it (not in it) by the store.

    ``torn_tail_bytes`` > 0 means the file ended in an interrupted commit that was ignored
    (``thermo verify`` reports it; the next commit or ``thermo repair`` drops it).
    """

    path: str
    kind: str
    reader: Reader | None
    torn_tail_bytes: int
    source_sha256: bytes | None
    """SHA-256 of a crate JSON file as loaded: an upgrade refuses a file changed since."""

    __slots__ = ("kind", "path", "reader", "source_sha256", "torn_tail_bytes")

    def __init__(
        self,
        path: str,
        kind: str,
        reader: Reader | None = None,
        torn_tail_bytes: int = 0,
        source_sha256: bytes | None = None,
    ) -> None:
        self.path = path
        self.kind = kind
        self.reader = reader
        self.torn_tail_bytes = torn_tail_bytes
        self.source_sha256 = source_sha256


_origins: weakref.WeakKeyDictionary[Thermogram, Origin] = weakref.WeakKeyDictionary()


def info(tg: Thermogram) -> Origin | None:
    """The :class:`Origin` of a thermogram returned by :func:`load` (None if not loaded)."""
    return _origins.get(tg)


# --- sniffing ---------------------------------------------------------------------------


def sniff(path: str | os.PathLike[str]) -> Kind:
    """ "thermo", "legacy" (a crate save file) or "engram" (a crate export), by content.

    A URL is taken as a container without a request: remote reads take ``.thermo``
    containers only, and opening one checks its magic (BadMagicError otherwise).
    """
    p = os.fspath(path)
    if is_url(p):
        return "thermo"
    try:
        with open(p, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except FileNotFoundError:
        raise NotFoundError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise FormatError(f"{p}: is a directory, not a thermogram file") from None
    return sniff_bytes(head, p)


def sniff_bytes(head: bytes, what: str = "data") -> Kind:
    if looks_like_container(head) or (head and MAGIC.startswith(head)):
        return "thermo"
    reason = damage_reason(head)
    if reason is not None:
        raise BadMagicError(f"{what}: damaged .thermo magic ({reason}; was it transferred in text mode?)")
    from thermo_cli.formats.legacy import sniff_engram, sniff_legacy

    if sniff_legacy(head):
        return "legacy"
    if sniff_engram(head):
        return "engram"
    if not head:
        raise FormatError(f"{what}: empty file, not a thermogram")
    raise BadMagicError(f"{what}: not a thermogram (neither a .thermo container nor a crate JSON file)")


# --- reading ------------------------------------------------------------------------------


def open_reader(path: str | os.PathLike[str], *, limits: Limits | None = None) -> Reader:
    """Open a container's last committed state (waiting out a commit in progress).

    The returned :class:`thermo_cli.container.reader.Reader` is the low-level API:
    ``torn_tail_bytes``, ``trailer``, ``iter_raw_records()``, ``all_chunks()`` …
    """
    from thermo_cli.container.reader import Reader

    p = os.fspath(path)
    if is_url(p):  # a remote object is never written in place: no commit to wait out
        return Reader(p, limits=limits)
    if not os.path.exists(p):
        raise NotFoundError(f"{p}: no such file")
    try:
        reader = Reader(p, limits=limits)
    except IntegrityError:
        if not _writer_was_active(p):  # a commit finishing under our eyes would look damaged once
            raise
        reader = Reader(p, limits=limits)
    if reader.torn_tail_bytes and _writer_was_active(p):
        reader.close()
        reader = Reader(p, limits=limits)
    return reader


def _writer_was_active(path: str) -> bool:
    """``fileops.wait_for_writer``, imported only when a read finds a torn or damaged tail."""
    from thermo_cli.container.fileops import wait_for_writer

    return wait_for_writer(path)


def load(
    path: str | os.PathLike[str],
    *,
    layers: Literal["lazy", "full"] = "lazy",
    log: Literal["tail", "full"] = "tail",
    limits: Limits | None = None,
) -> Thermogram:
    """Load any thermogram file as one :class:`Thermogram`.

    ``layers="lazy"`` (containers only) gives mappings that read chunks on demand;
    ``"full"`` decodes every entry now. ``log="tail"`` keeps the records from the last
    consolidation point on (``tg.log_base``; the rest stays in the file and is covered by
    ``tg.log_range``); ``"full"`` loads the whole history.
    """
    if layers not in ("lazy", "full"):
        raise ValidationError(f"layers: expected 'lazy' or 'full', got {layers!r}")
    if log not in ("tail", "full"):
        raise ValidationError(f"log: expected 'tail' or 'full', got {log!r}")
    p = os.fspath(path)
    kind = sniff(p)
    if kind != "thermo":
        data = _read_json_file(p)
        tg = _load_json(data, p, kind)
        _origins[tg] = Origin(os.path.abspath(p), kind, source_sha256=sha256_digest(data))
        return tg
    reader = open_reader(p, limits=limits)
    tg = thermogram_from_reader(reader, layers=layers, log=log)
    _origins[tg] = Origin(p if is_url(p) else os.path.abspath(p), kind, reader, reader.torn_tail_bytes)
    return tg


def _checked_log(reader: Reader, start: int) -> list[LogRecord]:
    """The decoded log records from ``start`` on, checked against the trailer (count and
    head hash), after which the layer index is decoded and checked too (about 1 ms for a
    1 GiB file): what every load checks before it works on a file, not mid-operation."""
    t = reader.trailer
    recs: list[LogRecord] = list(reader.iter_records(start))
    if len(recs) != t.log_size - start:
        raise FormatError(
            f"{reader.path}: log holds {start + len(recs)} records, the trailer says {t.log_size}"
        )
    if recs and recs[-1].hash != t.head_hex:
        raise IntegrityError(f"{reader.path}: the last log record's hash differs from the trailer's head")
    _ = reader.index
    return recs


def keys(
    path: str | os.PathLike[str], layer: Layer | str | None = None, *, limits: Limits | None = None
) -> list[str]:
    """Sorted keys a read of ``path`` finds — ``load(path).keys(layer)`` — without building a
    :class:`Thermogram`: a container's layers list their directories and only the deltas
    since the last consolidation are decoded, so ``thermo keys`` does not import the engine.
    The file is checked as :func:`load` checks it (meta block, log tail, index)."""
    p = os.fspath(path)
    if sniff(p) != "thermo":
        return load(p, limits=limits).keys(layer)
    from thermo_cli.container.lazy import LazyLayer

    reader = open_reader(p, limits=limits)
    try:
        reader.meta_fields()
        recs = _checked_log(reader, reader.trailer.dirty_start)
        if layer is not None:
            chosen = layer if isinstance(layer, Layer) else Layer.parse(layer)
            return sorted(LazyLayer(reader, chosen).keys())
        found: set[str] = set()
        for each in Layer:
            found.update(LazyLayer(reader, each).keys())
        for rec in recs:  # in log order: a key's newest delta decides whether it is there
            if type(rec) is Delta:
                if rec.delta_type is DeltaType.DELETE:
                    found.discard(rec.key)
                else:
                    found.add(rec.key)
        return sorted(found)
    finally:
        reader.close()


def _read_json_file(p: str) -> bytes:
    """A crate JSON file's bytes, refused by size before it is read into memory."""
    from thermo_cli.formats.legacy import read_legacy_file

    return read_legacy_file(p)


def _load_json(data: bytes, p: str, kind: str) -> Thermogram:
    if kind == "legacy":
        from thermo_cli.formats.legacy import load_legacy

        return load_legacy(data, source=p)
    from thermo_cli.formats.legacy.engram import load_engram

    return load_engram(data, source=p)


def thermogram_from_reader(reader: Reader, *, layers: str = "lazy", log: str = "tail") -> Thermogram:
    from thermo_cli.container.lazy import LazyLayer
    from thermo_cli.engine.thermogram import Thermogram

    t = reader.trailer
    fields = reader.meta_fields()
    start = 0 if log == "full" else t.dirty_start
    recs = _checked_log(reader, start)
    maps: dict[Layer, MutableMapping[str, Entry]]
    if layers == "full":
        from thermo_cli.container.materialize import materialize_layer  # (thread pool: its imports)

        maps = {layer: materialize_layer(reader, layer) for layer in Layer}
    else:
        maps = {layer: LazyLayer(reader, layer) for layer in Layer}
    return Thermogram(
        **fields,
        layers=maps,
        records=recs,
        log_base=start,
        head_hash=t.head_hex,
        dirty_start=t.dirty_start,
        persisted=t.log_size,
        layers_modified=False,
        log_range=t.compact_range(),
    )


def read(path: str | os.PathLike[str], key: str, *, limits: Limits | None = None) -> ReadResult | None:
    """What ``key`` reads as: the newest uncommitted delta, else the hottest layer holding it.

    Decompresses at most one directory chunk and the value's data chunk(s) per layer tried.
    """
    p = os.fspath(path)
    if sniff(p) != "thermo":
        return load(p).read_entry(key)
    from thermo_cli.container.lazy import LazyLayer

    reader = open_reader(p, limits=limits)
    try:
        t = reader.trailer
        if t.dirty_start < t.log_size:
            latest = _newest_dirty_delta(reader, key)
            if latest is not None:
                if latest.delta_type is DeltaType.DELETE:
                    return None
                return ReadResult(
                    key=key,
                    value=latest.value,
                    strength=latest.strength,
                    source="dirty",
                    ternary=latest.ternary,
                    tensor=latest.tensor,
                )
        for layer in Layer:
            lazy = LazyLayer(reader, layer)
            if key in lazy:
                e = lazy[key]
                return ReadResult(
                    key=key,
                    value=e.value,
                    strength=e.strength,
                    source=layer.label,
                    ternary=e.ternary,
                    tensor=e.tensor,
                    update_count=e.update_count,
                )
        return None
    finally:
        reader.close()


def _newest_dirty_delta(reader: Reader, key: str) -> Delta | None:
    """The newest delta of ``key`` after the consolidation point: found through the key
    indexes (one record decoded, spec §9.7), scanning only records they do not cover."""
    found, covered = reader.newest_dirty_delta(key)
    if found is not None:
        rec = reader.record_at(found)
        if not isinstance(rec, Delta) or rec.key != key:
            raise IntegrityError(
                f"{reader.path}: the key index names record {found} for {key!r}, which is not its delta"
            )
        return rec
    latest: Delta | None = None
    start = reader.trailer.dirty_start
    if covered > start:  # records no key index covers (an older writer's): rare, loaded here
        from thermo_cli.codec.fastrecords import decode_log_record

        for raw in reader.iter_raw_records(start):
            if raw.index >= covered:
                break
            rec = decode_log_record(raw.data, raw.index)
            if isinstance(rec, Delta) and rec.key == key:
                latest = rec
    return latest


def iter_log(
    path: str | os.PathLike[str], *, start: int = 0, limits: Limits | None = None
) -> Iterator[LogRecord]:
    """Every log record from index ``start`` on, oldest first (decoded, hashes set)."""
    p = os.fspath(path)
    if sniff(p) != "thermo":
        yield from load(p, log="full").records[start:]
        return
    reader = open_reader(p, limits=limits)
    try:
        yield from reader.iter_records(start)
    finally:
        reader.close()


# --- writing -----------------------------------------------------------------------------


def _locked(
    path: str | os.PathLike[str], *, timeout: float | None = DEFAULT_LOCK_TIMEOUT
) -> contextlib.AbstractContextManager[None]:
    """``fileops.locked``, imported when a writer first locks (a read never does)."""
    from thermo_cli.container.fileops import locked as fileops_locked

    return fileops_locked(path, timeout=timeout)


def locked(
    path: str | os.PathLike[str], *, timeout: float | None = DEFAULT_LOCK_TIMEOUT
) -> contextlib.AbstractContextManager[None]:
    """Exclusive writer lock of ``path`` (re-entrant in-process); use around load → commit."""
    return _locked(path, timeout=timeout)


def create(path: str | os.PathLike[str], tg: Thermogram, *, overwrite: bool = False) -> None:
    """Write ``tg`` as a complete new container at ``path`` (atomically).

    Refuses (RefusedError) to replace an existing file unless ``overwrite``. A thermogram
    loaded with only its log tail copies the older records from the file it came from.
    """
    refuse_url(path)
    p = os.path.abspath(os.fspath(path))
    if os.path.isdir(p):
        raise RefusedError(f"{p}: is a directory")
    if not overwrite and os.path.exists(p):
        raise RefusedError(f"{p}: already exists (use overwrite to replace it)")
    _write_new(p, tg, overwrite=overwrite)


def _write_new(path: str, tg: Thermogram, *, overwrite: bool) -> None:
    from thermo_cli.container.fileops import atomic_write
    from thermo_cli.container.writer import write_full

    p = os.path.abspath(path)
    origin = _origins.get(tg)
    source = origin.reader if origin is not None and origin.kind == "thermo" else None
    with _locked(p):
        tg.bind_state()
        atomic_write(
            p, lambda f: write_full(f, tg, prefix=new_prefix(), seq=0, source=source), overwrite=overwrite
        )
        _after_commit(p, tg)


def commit(
    path: str | os.PathLike[str],
    tg: Thermogram,
    *,
    upgrade: bool = False,
    range_worker: RangeWorker | None = None,
) -> str:
    """Persist ``tg``'s changes to ``path``; returns "append", "cow", "rewrite" or "unchanged".

    Appends when only the log (or the meta block) changed; appends the changed layer
    chunks ("cow", spec §12.5) when the layers changed and every layer is read lazily from
    this file; otherwise rewrites atomically: layers that are plain mappings, a file whose
    garbage calls for compaction, or a crate JSON file (only with ``upgrade=True``, and
    only with the state loaded from that file). Upgrading a crate save file in place is
    ``thermo migrate`` in place: the legacy chain is verified and a ``migrate`` event is
    logged (:func:`thermo_cli.operations.migrate.record_migration`). Raises ChainError if the
    file was committed (or, for a crate file, changed) by someone else after ``tg`` was
    loaded. ``range_worker``: see :func:`edit`; an append takes the log's Merkle range from
    it when it hashed exactly the appended records.
    """
    refuse_url(path)
    p = os.path.abspath(os.fspath(path))
    with _locked(p):
        if not os.path.exists(p):
            create(p, tg)
            return "rewrite"
        kind = sniff(p)
        if kind != "thermo":
            if not upgrade:
                raise RefusedError(
                    f"{p}: is a Rust-crate {kind} JSON file; writing would convert it to the "
                    ".thermo container format (pass upgrade=True to convert it)"
                )
            _upgrade(p, tg, kind)
            return "rewrite"
        origin = _origins.get(tg)
        current = open_reader(p)
        try:
            refuse_newer_minor(p, current.prefix.minor)
            same_file = (
                origin is not None
                and origin.reader is not None
                and origin.path == p
                and origin.reader.prefix.file_id == current.prefix.file_id
            )
            if not same_file:
                raise RefusedError(
                    f"{p}: is a different thermogram file than the one this state was loaded "
                    "from (use create with overwrite to replace it)"
                )
            assert origin is not None and origin.reader is not None  # same_file checked both
            src = origin.reader
            if current.trailer.sha256 != src.trailer.sha256:
                raise ChainError(
                    f"{p}: the file was changed by another writer since it was loaded "
                    "(load it again under the lock)"
                )
            tg.bind_state()
            if tg.layers_modified or not _layers_unchanged(tg, src):
                done = _copy_on_write(p, tg, current)
                if done is not None:
                    return done
                _rewrite(p, tg, source=current, file_id=current.prefix.file_id, seq=current.trailer.seq + 1)
                return "rewrite"
            return _append(p, tg, current, range_worker)
        finally:
            current.close()


def refuse_newer_minor(path: str, minor: int) -> None:
    """A file of a newer minor version is read, never written: rewriting or appending with
    this version's writer would drop or misframe what the newer writer stored there."""
    if minor > MINOR:
        raise NewerMinorRefusedError(
            f"{path}: is .thermo format {MAJOR}.{minor}, newer than this thermo writes ({MAJOR}.{MINOR}): "
            "it can be read and verified but not changed; upgrade thermo to write it"
        )


def _upgrade(p: str, tg: Thermogram, kind: str) -> None:
    """Replace the crate JSON file ``p`` by the container of ``tg``, loaded from it."""
    origin = _origins.get(tg)
    if origin is None or origin.path != p or origin.kind != kind:
        raise RefusedError(
            f"{p}: is a different file than the one this state was loaded from "
            "(use create with overwrite to replace it)"
        )
    data = _read_json_file(p)
    if origin.source_sha256 is not None and sha256_digest(data) != origin.source_sha256:
        raise ChainError(
            f"{p}: the file was changed by another writer since it was loaded (load it again under the lock)"
        )
    if kind == "legacy" and "legacy" in tg.extras:
        from thermo_cli.formats.legacy.upgrade import record_migration

        record_migration(tg, data, source=p)
    _rewrite(p, tg, source=None, file_id=None, seq=0)


def _layers_unchanged(tg: Thermogram, src: Reader) -> bool:
    """Cheap safety net behind ``layers_modified``: a sign that a layer changed anyway."""
    from thermo_cli.container.lazy import LazyLayer

    for layer in Layer:
        mapping = tg.layers[layer]
        if isinstance(mapping, LazyLayer):
            if mapping.reader.prefix.file_id != src.prefix.file_id or not mapping.pristine():
                return False
        elif len(mapping) != src.index[layer].count:
            return False
    return True


def _rewrite(
    p: str, tg: Thermogram, *, source: Reader | None, file_id: bytes | None, seq: int, compact: bool = False
) -> None:
    from thermo_cli.container.fileops import atomic_write
    from thermo_cli.container.writer import write_full

    origin = _origins.get(tg)
    if source is None and origin is not None and origin.kind == "thermo":
        source = origin.reader
    tg.bind_state()
    atomic_write(
        p,
        lambda f: write_full(f, tg, prefix=new_prefix(file_id), seq=seq, source=source, compact=compact),
        overwrite=True,
    )
    _after_commit(p, tg)


class CompactResult(FrozenValue):
    """File sizes before and after :func:`compact`, and the garbage estimate it dropped."""

    before: int
    after: int
    garbage: int

    __slots__ = ("after", "before", "garbage")

    def __init__(self, before: int, after: int, garbage: int) -> None:
        _set = object.__setattr__
        _set(self, "before", before)
        _set(self, "after", after)
        _set(self, "garbage", garbage)


def compact(path: str | os.PathLike[str], *, timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> CompactResult:
    """Rewrite a container without the bytes its state no longer references (spec §8.4).

    Copy-on-write commits leave replaced chunks and values behind; a rewrite (§12.1,
    atomic, same file id, seq + 1) keeps the whole log and every entry and writes each
    layer afresh, so only referenced bytes remain. Writers also do this on their own when
    garbage dominates the file.
    """
    refuse_url(path)
    p = os.path.abspath(os.fspath(path))
    _require_file(p)
    if sniff(p) != "thermo":
        raise RefusedError(f"{p}: is not a .thermo container (nothing to compact; migrate it first)")
    _refuse_newer_minor_unlocked(p)
    with _serialized(p, timeout), _locked(p, timeout=timeout):
        tg = load(p)
        reader = _origins[tg].reader
        assert reader is not None
        refuse_newer_minor(p, reader.prefix.minor)
        before, garbage = os.path.getsize(p), reader.garbage
        _rewrite(
            p, tg, source=reader, file_id=reader.prefix.file_id, seq=reader.trailer.seq + 1, compact=True
        )
        return CompactResult(before, os.path.getsize(p), garbage)


def _copy_on_write(p: str, tg: Thermogram, current: Reader) -> str | None:
    """Append the layers' changed chunks (spec §12.5): "cow", or "unchanged" when nothing
    differs after all; None when the file must be rewritten instead (a layer not read
    lazily from this state, too much garbage, a 2.0 file …)."""
    from thermo_cli.container.cow import plan_cow

    planned = plan_cow(tg, current)
    if planned is None:
        return None
    if not planned[0]:
        tg.mark_persisted()
        return "unchanged"
    _durable(p, current, planned[0])
    _after_commit(p, tg)
    return "append" if planned[1].index == current.trailer.index else "cow"


def _durable(p: str, current: Reader, parts: list[bytes]) -> None:
    """Append one commit after ``current``'s end: everything, a sync, the footer.

    ``parts`` are the commit's bytes in order (the last one ends with the footer), written
    without being copied into one string first.
    """
    from thermo_cli.container.fileops import durable_append

    last = memoryview(parts[-1])
    body: list[bytes | memoryview] = [*parts[:-1], last[:-FOOTER_SIZE]]
    fd = os.open(p, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        durable_append(fd, current.committed_end, body, last[-FOOTER_SIZE:])
    finally:
        os.close(fd)


def _append(p: str, tg: Thermogram, current: Reader, range_worker: RangeWorker | None = None) -> str:
    from thermo_cli.container.writer import plan_append_parts

    planned = plan_append_parts(tg, current, range_worker=range_worker)
    if planned is None:
        return "unchanged"
    if not current.framed:  # format 2.0: the first write upgrades the whole file to 2.1 (spec §12)
        _rewrite(p, tg, source=current, file_id=current.prefix.file_id, seq=current.trailer.seq + 1)
        return "rewrite"
    _durable(p, current, planned[0])
    _after_commit(p, tg)
    return "append"


def _after_commit(p: str, tg: Thermogram) -> None:
    """Point the thermogram at the file's new state so the next commit appends to it."""
    from thermo_cli.container.lazy import LazyLayer
    from thermo_cli.container.reader import Reader

    reader = Reader(p)
    tg.mark_persisted()
    _origins[tg] = Origin(p, "thermo", reader, 0)
    for layer in Layer:  # later changes are tracked against the state just written
        mapping = tg.layers[layer]
        if isinstance(mapping, LazyLayer):
            mapping.rebase(reader)


# --- transactions -------------------------------------------------------------------------

_thread_locks: dict[str, _thread.RLock] = {}
_thread_locks_guard = _thread.allocate_lock()


@contextlib.contextmanager
def edit(
    path: str | os.PathLike[str],
    *,
    upgrade: bool = False,
    create: Thermogram | None = None,
    log: Literal["tail", "full"] = "tail",
    timeout: float | None = DEFAULT_LOCK_TIMEOUT,
    dry_run: bool = False,
    range_worker: RangeWorker | None = None,
) -> Iterator[Thermogram]:
    """Lock ``path``, load it, yield the thermogram; commit it when the block succeeds.

    The one way to change a file, so every writer gets the same checks and guarantees:

    * the writer lock is held from before the load to after the commit (serializing
      writers in other processes and in other threads) and always released;
    * an exception inside the block writes nothing: the file stays byte-identical;
    * a thermogram the block did not change writes nothing at all; otherwise the commit
      appends (only records or meta changed) or rewrites (layers changed), as :func:`commit`;
    * ``create``: when ``path`` does not exist, the block starts from this thermogram and
      the file is created on success; without it a missing file is NotFoundError (raised
      before locking, so no lock file is left beside it);
    * a Rust-crate save file is refused (RefusedError) unless ``upgrade``; with it the
      crate chain is verified and the ``migrate`` event logged before the block runs, and
      the file becomes a ``.thermo`` container in place on success. A crate Engram export
      is always refused: it is an import source, not a file to change;
    * ``dry_run`` runs the block under the lock with every check but writes nothing;
    * ``range_worker`` (:mod:`thermo_cli.integrity.merkle_worker`): given the loaded file's
      Merkle range here, and the block's sealed runs by the caller (``sync``); the commit
      then takes the range from it instead of hashing the new records itself.
    """
    p = os.fspath(path)
    refuse_url(p)
    if create is None:
        _require_file(p)
        _refuse_newer_minor_unlocked(p)
    with _serialized(p, timeout), _locked(p, timeout=timeout):
        if create is not None and not os.path.exists(p):
            yield create
            if not dry_run:
                _write_new(p, create, overwrite=False)
            return
        tg, fingerprint = _load_for_edit(p, upgrade=upgrade, log=log)
        origin = _origins.get(tg)
        reader = origin.reader if origin is not None and fingerprint is None else None
        if range_worker is not None and reader is not None:
            range_worker.begin(reader.trailer.compact_range())
        yield tg
        if not dry_run and (fingerprint is None or fingerprint != _fingerprint(tg)):
            commit(p, tg, upgrade=upgrade, range_worker=range_worker)


def _refuse_newer_minor_unlocked(p: str) -> None:
    """The newer-minor refusal before any lock is taken, so refusing leaves no lock file
    either (checked again under the lock, where it counts)."""
    with contextlib.suppress(OSError), open(p, "rb") as f:
        head = f.read(16)
        if looks_like_container(head) and len(head) > 10 and head[9] == MAJOR:
            refuse_newer_minor(p, head[10])


def _require_file(p: str) -> None:
    """Fail before taking a lock, so no lock file is left beside a path that does not exist."""
    refuse_url(p)
    if not os.path.exists(p):
        raise NotFoundError(f"{p}: no such file")
    if os.path.isdir(p):
        raise FormatError(f"{p}: is a directory, not a thermogram file")


@contextlib.contextmanager
def _serialized(p: str, timeout: float | None) -> Iterator[None]:
    """Serialize the threads of this process editing ``p``: the file lock is re-entrant
    within a process, so on its own it would let two threads interleave their edits."""
    key = os.path.realpath(p)
    with _thread_locks_guard:
        lock = _thread_locks.setdefault(key, _thread.RLock())
    if not lock.acquire(timeout=-1 if timeout is None else timeout):
        raise LockError(f"{p}: another thread holds the lock (waited {timeout:g} s)")
    try:
        yield
    finally:
        lock.release()


def check_writable(path: str | os.PathLike[str], *, upgrade: bool = False) -> Kind:
    """The file's kind, once it is known that a writer may change it.

    Refuses (RefusedError) a crate Engram export always and a crate save file unless
    ``upgrade``: writing converts it to the ``.thermo`` container format.
    """
    p = os.fspath(path)
    refuse_url(p)
    kind = sniff(p)
    if kind == "engram":
        raise RefusedError(
            f"{p}: is a Rust-crate Engram export, which is an import source only "
            "(import it into a new container instead)"
        )
    if kind == "legacy" and not upgrade:
        raise RefusedError(
            f"{p}: is a Rust-crate legacy file; writing would convert it to .thermo: "
            "pass upgrade=True to convert it in place, or migrate it to a new file"
        )
    return kind


_Fingerprint = tuple[int, str | None, int, bool, tuple[int, ...], bytes]
"""What :func:`_fingerprint` returns."""


def _load_for_edit(
    p: str, *, upgrade: bool, log: Literal["tail", "full"]
) -> tuple[Thermogram, _Fingerprint | None]:
    """Load under the lock; a crate file being upgraded logs its migration first.

    The ``migrate`` event comes right after the crate's deltas and before the edit's
    changes, so the log reads in the order things happened. Returns the thermogram and,
    for a crate file, its fingerprint after the migration (the upgrade alone is not a
    change); None for a container, whose :func:`commit` itself writes nothing unchanged.
    """
    kind = check_writable(p, upgrade=upgrade)
    tg = load(p, layers="lazy", log=log)
    if kind != "legacy":
        origin = _origins.get(tg)
        if origin is not None and origin.reader is not None:
            refuse_newer_minor(p, origin.reader.prefix.minor)  # before the block does any work
        return tg, None
    if "legacy" in tg.extras:
        from thermo_cli.formats.legacy.upgrade import record_migration

        record_migration(tg, _read_json_file(p), source=p)
    return tg, _fingerprint(tg)


def _fingerprint(tg: Thermogram) -> _Fingerprint:
    """What a commit would write differently if it changed: log, layer sizes, meta block."""
    from thermo_cli.container.metablock import meta_to_map

    meta = sha256_digest(cbor.encode(meta_to_map(tg)))
    sizes = tuple(len(tg.layers[layer]) for layer in Layer)
    return (tg.log_length, tg.head_hash, tg.dirty_start, tg.layers_modified, sizes, meta)
