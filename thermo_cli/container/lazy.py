"""Lazy layers: a mutable mapping over a layer's chunks that decompresses on demand.

Looking a key up decompresses one directory chunk (found by binary search over key
ranges) and the data chunk(s) of its value. Every Entry handed out is remembered, so the
engine can change it in place like a dict entry; set and deleted keys are kept in an
overlay. ``pristine()`` tells a writer whether the on-disk chunks can be copied as they are.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, MutableMapping, ValuesView
from typing import TYPE_CHECKING, Any, cast

from thermo_cli.container.directory import DirData, Row
from thermo_cli.container.index import LayerIndex
from thermo_cli.container.reader import ChunkCache, Reader, read_value
from thermo_cli.model import Entry, Layer

if TYPE_CHECKING:  # not imported at run time: ``thermo get`` loads this module
    from thermo_cli.engine.select import StrengthTest

LeafItem = tuple[str, bytes | None, Entry | None, bytes | None]
"""(key, leaf hash of an entry unchanged since the chunks were read, or the changed entry
and, when its value is still the one on disk, that value's SHA-256)."""

_VALUE_SLOT: Any = Entry.__dict__["value"]
_DIR_CHUNKS_KEPT = 1024
"""Decoded directory chunks a layer keeps (tens of KiB each): a whole-layer pass (pruning,
promotion, binding the state) reads every chunk, and a commit runs several such passes."""


class LazyEntry(Entry):
    """An Entry whose value is read from the file only when it is first used.

    Engine passes over a whole layer (decay, transitions, pruning, consolidation's prune)
    look at strengths and counts only; reading every value for them made a one-key change
    cost the whole file. The value is read on first access and kept; assigning a value
    replaces it without reading the old one.
    """

    __slots__ = ("_base", "_length", "_load")

    def __init__(self, row: Row, load: Callable[[], bytes]) -> None:
        super().__init__(
            row.key, b"", row.strength, row.updated_at_ns, row.update_count, row.ternary, row.tensor
        )
        self._load: Callable[[], bytes] | None = load
        self._base: bytes | None = None
        self._length = row.length

    @property
    def value(self) -> bytes:
        load = self._load
        if load is not None:
            data = load()
            _VALUE_SLOT.__set__(self, data)
            self._base = data
            self._load = None
        return cast(bytes, _VALUE_SLOT.__get__(self))

    @value.setter
    def value(self, data: bytes) -> None:
        _VALUE_SLOT.__set__(self, data)
        self._load = None

    @property
    def value_size(self) -> int:
        """The value's length without reading it (a writer sizes its streams first)."""
        if self._load is not None:
            return self._length
        return len(_VALUE_SLOT.__get__(self))

    def value_is_base(self) -> bool:
        """Whether the value is still the one in the file (unread, or read and not replaced)."""
        return self._load is not None or _VALUE_SLOT.__get__(self) is self._base

    def settle(self) -> None:
        """Make the current value the base (it was just committed)."""
        if self._load is None:
            self._base = _VALUE_SLOT.__get__(self)


def _value_same(entry: Entry, value: bytes | None) -> bool:
    if isinstance(entry, LazyEntry):
        return entry.value_is_base()
    return entry.value is value


def _same(entry: Entry, row: Row, value: bytes | None) -> bool:
    return (
        entry.key == row.key
        and _value_same(entry, value)
        and entry.strength == row.strength
        and entry.updated_at_ns == row.updated_at_ns
        and entry.update_count == row.update_count
        and entry.ternary == row.ternary
        and entry.tensor == row.tensor
    )


class LazyLayer(MutableMapping[str, Entry]):
    """One thermal layer of a container, read on demand."""

    def __init__(self, reader: Reader, layer: Layer) -> None:
        self.reader = reader
        self.layer = layer
        self._index_cache: LayerIndex | None = None
        self._dirs = ChunkCache(_DIR_CHUNKS_KEPT)
        self._data = ChunkCache(4)
        self._handed: dict[str, tuple[Entry, Row, bytes | None]] = {}
        self._added: dict[str, Entry] = {}
        self._deleted: set[str] = set()
        self._delta_len = 0  # entries added minus entries deleted, relative to the chunks
        self._leaf_cache: dict[bytes, list[tuple[str, bytes]]] = {}
        """Leaf hashes of a directory chunk's entries, by the chunk's SHA-256: chunks are
        immutable, so they stay valid across commits (:meth:`rebase`)."""

    @property
    def _index(self) -> LayerIndex:
        """The layer's index, decoded on first use: an append never needs it."""
        if self._index_cache is None:
            self._index_cache = self.reader.index[self.layer]
        return self._index_cache

    # --- base (on disk) -------------------------------------------------------------------

    def _chunk(self, i: int) -> DirData:
        chunk: DirData = self._dirs.get(i, lambda: self.reader.dir_chunk(self.layer, i))
        return chunk

    def _row(self, key: str) -> Row | None:
        i = self._index.find_dir(key)
        if i is None:
            return None
        chunk = self._chunk(i)
        j = chunk.find(key)
        return None if j is None else chunk.row(j)

    def _in_base(self, key: str) -> bool:
        return key in self._handed or self._row(key) is not None

    def _materialize(self, row: Row) -> Entry:
        reader, layer, cache = self.reader, self.layer, self._data
        entry = LazyEntry(row, lambda: read_value(reader, layer, row, cache))
        self._handed[row.key] = (entry, row, None)
        return entry

    def base_rows(self) -> Iterator[Row]:
        for i in range(len(self._index.dirs)):
            yield from self._chunk(i).rows()

    # --- mapping --------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Entry:
        if key in self._added:
            return self._added[key]
        if key in self._deleted:
            raise KeyError(key)
        if key in self._handed:
            return self._handed[key][0]
        if not isinstance(key, str):
            raise KeyError(key)
        row = self._row(key)
        if row is None:
            raise KeyError(key)
        return self._materialize(row)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        if key in self._added:
            return True
        if key in self._deleted:
            return False
        return self._in_base(key)

    def __setitem__(self, key: str, entry: Entry) -> None:
        if key not in self:
            self._delta_len += 1
        self._added[key] = entry

    def __delitem__(self, key: str) -> None:
        if key in self._added:
            del self._added[key]
            if self._in_base(key) and key not in self._deleted:
                self._deleted.add(key)
            self._delta_len -= 1
            return
        if key in self._deleted or not self._in_base(key):
            raise KeyError(key)
        self._deleted.add(key)
        self._delta_len -= 1

    def __len__(self) -> int:
        return self._index.count + self._delta_len

    def __iter__(self) -> Iterator[str]:
        deleted, added = self._deleted, self._added
        for i in range(len(self._index.dirs)):
            for key in self._chunk(i).keys:
                if key not in deleted and key not in added:
                    yield key
        yield from list(added)

    def items_in_order(self) -> Iterator[tuple[str, Entry]]:
        """(key, entry) pairs, chunk by chunk: no per-key lookup, no value read (entries
        read their value on first use), which is what a pass over a whole layer needs."""
        deleted, added, handed = self._deleted, self._added, self._handed
        for i in range(len(self._index.dirs)):
            chunk = self._chunk(i)
            for j, key in enumerate(chunk.keys):
                if key in deleted or key in added:
                    continue
                hit = handed.get(key)
                yield key, (hit[0] if hit is not None else self._materialize(chunk.row(j)))
        yield from list(added.items())

    def select_keys(self, test: StrengthTest) -> list[str]:
        """Keys whose entries pass ``test``, in :meth:`items_in_order`'s order, answered from
        each chunk's columns: no entry is built for a key that does not pass.

        Keys handed out, set or deleted since the chunks were read are judged by their
        current entry (or dropped from their chunk position), exactly as iterating would.
        """
        import numpy as np

        if 8 * (len(self._handed) + len(self._added) + len(self._deleted)) > self._index.count:
            # most entries are already objects (a pass touched them all): ask them directly
            return [k for k, e in self.items_in_order() if test.passes(e)]
        overlay = self._overlay_positions()
        out: list[str] = []
        for i in range(len(self._index.dirs)):
            chunk = self._chunk(i)
            c = chunk.cols
            mask = test.mask(np.asarray(c["strength"]), np.asarray(c["count"]), np.asarray(c["ternary"]))
            for j, key in overlay.get(i, ()):
                hit = self._handed.get(key)
                live = hit is not None and key not in self._deleted and key not in self._added
                mask[j] = live and test.passes(hit[0])  # type: ignore[index]  # live: hit is set
            keys = chunk.keys
            out.extend([keys[j] for j in np.flatnonzero(mask).tolist()])
        out.extend([k for k, e in self._added.items() if test.passes(e)])
        return out

    def _overlay_positions(self) -> dict[int, list[tuple[int, str]]]:
        """Chunk → (row, key) of every on-disk key whose entry no longer reads as its row."""
        by_chunk: dict[int, list[tuple[int, str]]] = {}
        for key in sorted({*self._handed, *self._added, *self._deleted}):  # chunk by chunk
            i = self._index.find_dir(key)
            if i is None:
                continue
            j = self._chunk(i).find(key)
            if j is not None:
                by_chunk.setdefault(i, []).append((j, key))
        return by_chunk

    def items(self) -> ItemsView[str, Entry]:
        return _Items(self)

    def values(self) -> ValuesView[Entry]:
        return _Values(self)

    # --- for writers ----------------------------------------------------------------------

    def pristine(self) -> bool:
        """True when every entry is still exactly what the chunks hold."""
        if self._added or self._deleted:
            return False
        return all(_same(e, r, v) for e, r, v in self._handed.values())

    def changes(self) -> tuple[dict[str, Entry], set[str]]:
        """(entries set or changed since the chunks were read, keys deleted): what a
        copy-on-write commit must write. A handed-out entry counts as changed as soon as
        any field differs from its row (its value by identity)."""
        changed = dict(self._added)
        for key, (e, r, v) in self._handed.items():
            if key not in changed and key not in self._deleted and not _same(e, r, v):
                changed[key] = e
        return changed, set(self._deleted) - set(changed)

    def value_unchanged(self, key: str, entry: Entry) -> bool:
        """Whether ``entry`` (handed out for ``key``) still holds the value in the chunks: a
        writer then keeps the old value bytes, and the digest their SHA-256."""
        hit = self._handed.get(key)
        return hit is not None and hit[0] is entry and _value_same(entry, hit[2])

    def leaf_items(self, lnum: int) -> list[LeafItem] | None:
        """Every entry's state-digest leaf in key order, without reading unchanged values.

        Unchanged entries give their leaf hash, computed from the directory chunk (its
        ``value_sha256`` column) and cached per chunk; changed or added entries are given
        as Entries for the caller to hash. None when a chunk lacks the column (a file
        written before it): the caller then reads the values.
        """
        changed, deleted = self.changes()
        skip = deleted | set(changed)
        out: list[LeafItem] = []
        for i in range(len(self._index.dirs)):
            hashes = self._chunk_leaves(i, lnum)
            if hashes is None:
                return None
            out.extend((k, h, None, None) for k, h in hashes if k not in skip)
        if changed:
            for k, e in changed.items():
                hit = self._handed.get(k)
                sha = hit[1].value_sha256 if hit is not None and self.value_unchanged(k, e) else None
                out.append((k, None, e, sha))
            out.sort(key=lambda t: t[0])
        return out

    def _chunk_leaves(self, i: int, lnum: int) -> list[tuple[str, bytes]] | None:
        sha = self._index.dirs[i].sha256
        hit = self._leaf_cache.get(sha)
        if hit is not None:
            return hit
        chunk = self._chunk(i)
        if chunk.value_shas is None:
            return None
        c = chunk.cols
        columns = (c["strength"], c["ternary"], c["updated"], c["count"], c["tensor"])
        from thermo_cli.codec.leaves import column_leaf_hashes, tensor_items

        hashes = column_leaf_hashes(lnum, chunk.keys, columns, tensor_items(chunk.tensors), chunk.value_shas)
        out = list(zip(chunk.keys, hashes, strict=True))
        self._leaf_cache[sha] = out
        return out

    def rebase(self, reader: Reader) -> None:
        """Make ``reader`` (the file just committed, holding exactly this layer) the base.

        Entries handed out stay tracked by identity: each is compared from now on with a
        snapshot of its fields as committed, so a later change to it is still seen.
        """
        handed: dict[str, tuple[Entry, Row, bytes | None]] = {}
        for key, (e, _, _) in self._handed.items():
            if key not in self._deleted and key not in self._added:
                handed[key] = _settled(e)
        for key, e in self._added.items():
            handed[key] = _settled(e)
        self.reader = reader
        self._index_cache = None
        self._dirs = ChunkCache(_DIR_CHUNKS_KEPT)
        self._data = ChunkCache(4)
        self._handed = handed
        self._added = {}
        self._deleted = set()
        self._delta_len = 0

    def close(self) -> None:
        """Close the file this layer reads (shared with the other layers and the store's
        origin; idempotent): what ``Thermogram.close`` and its ``with`` block call."""
        self.reader.close()

    def __repr__(self) -> str:
        return f"<LazyLayer {self.layer.label} of {self.reader.path!r}: {len(self)} entries>"


class _Items(ItemsView[str, Entry]):
    """A lazy layer's items view, iterated chunk by chunk (:meth:`LazyLayer.items_in_order`)."""

    _mapping: LazyLayer

    def __iter__(self) -> Iterator[tuple[str, Entry]]:
        return self._mapping.items_in_order()


class _Values(ValuesView[Entry]):
    _mapping: LazyLayer

    def __iter__(self) -> Iterator[Entry]:
        return (e for _, e in self._mapping.items_in_order())


def _settled(e: Entry) -> tuple[Entry, Row, bytes | None]:
    """``e`` as just committed: a Row snapshot of its fields (its location is not needed to
    compare), and its value as the base, without reading a value still in the file."""
    row = Row(e.key, e.strength, e.ternary, e.update_count, e.updated_at_ns, e.tensor, 0, 0, 0)
    if isinstance(e, LazyEntry):
        e.settle()
        return e, row, None
    return e, row, e.value
