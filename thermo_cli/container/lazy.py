"""Lazy layers: a mutable mapping over a layer's chunks that decompresses on demand.

Looking a key up decompresses one directory chunk (found by binary search over key
ranges) and the data chunk(s) of its value. Every Entry handed out is remembered, so the
engine can change it in place like a dict entry; set and deleted keys are kept in an
overlay. ``pristine()`` tells a writer whether the on-disk chunks can be copied as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

from thermo_cli.container.directory import DirData, Row
from thermo_cli.container.index import LayerIndex
from thermo_cli.container.reader import ChunkCache, Reader, read_value
from thermo_cli.model import Entry, Layer


def _same(entry: Entry, row: Row, value: bytes) -> bool:
    return (
        entry.key == row.key
        and entry.value is value
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
        self._dirs = ChunkCache(4)
        self._data = ChunkCache(4)
        self._handed: dict[str, tuple[Entry, Row, bytes]] = {}
        self._added: dict[str, Entry] = {}
        self._deleted: set[str] = set()
        self._delta_len = 0  # entries added minus entries deleted, relative to the chunks

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
        value = read_value(self.reader, self.layer, row, self._data)
        entry = row.entry(value)
        self._handed[row.key] = (entry, row, value)
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
        for row in self.base_rows():
            if row.key not in self._deleted and row.key not in self._added:
                yield row.key
        yield from list(self._added)

    def items_in_order(self) -> Iterator[tuple[str, Entry]]:
        for key in self:
            yield key, self[key]

    # --- for writers ----------------------------------------------------------------------

    def pristine(self) -> bool:
        """True when every entry is still exactly what the chunks hold."""
        if self._added or self._deleted:
            return False
        return all(_same(e, r, v) for e, r, v in self._handed.values())

    def __repr__(self) -> str:
        return f"<LazyLayer {self.layer.label} of {self.reader.path!r}: {len(self)} entries>"
