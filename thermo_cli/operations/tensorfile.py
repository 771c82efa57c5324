"""Dicts of arrays in a thermogram, the way ``safetensors.numpy`` users expect them.

``save_file(tensors, path, metadata)`` / ``load_file(path)`` keep the signatures and meaning of
``safetensors.numpy.save_file`` / ``load_file``: a ``dict[str, numpy.ndarray]`` in, the same
dict out, every dtype, shape and bit unchanged, and the text-to-text metadata kept beside it
(where ``thermo export-safetensors`` also finds it). The file is an ordinary ``.thermo``
container: each array is one hot-layer tensor entry, the save is one bound ``import`` event,
so ``thermo verify``, ``get``, ``history`` and every other command work on it.

``load(path, keys=[...])`` reads only the named arrays (one chunk lookup each, the rest of the
file is never decompressed), and ``open_view(path)`` — ``thermo_cli.open`` — is a read-only
mapping over any thermogram that decodes an entry only when it is looked up.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from thermo_cli import store
from thermo_cli.engine import Thermogram
from thermo_cli.errors import NotFoundError, ValidationError
from thermo_cli.formats.safetensors.format import check_metadata
from thermo_cli.model import Entry, Layer, ReadResult, check_key
from thermo_cli.operations.safetensors.importer import EXTRAS_KEY, saved_metadata

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TensorView", "load", "load_file", "open_view", "save_file"]

SOURCE = "save_file"
"""``source`` field of the event a :func:`save_file` logs."""


def save_file(
    tensors: Mapping[str, np.ndarray],
    filename: str | os.PathLike[str],
    metadata: dict[str, str] | None = None,
) -> None:
    """Write ``tensors`` as a new thermogram at ``filename``, replacing any file there.

    Like ``safetensors.numpy.save_file``: every value must be a numpy array (any dtype the
    safetensors format has; ``ml_dtypes`` bfloat16/float8 arrays too), ``metadata`` maps text
    to text. The file is written atomically, so on an error an existing file is untouched.
    """
    import numpy as np

    from thermo_cli.codec.tensors import array_to_value

    check_metadata(metadata)
    if not isinstance(tensors, Mapping):
        raise ValidationError(f"tensors: expected a dict of name → numpy array, got {type(tensors).__name__}")
    tg = Thermogram(name=Path(filename).stem or "tensors")
    stamp = tg.now_ns()
    entries: dict[str, Entry] = {}
    for key in sorted(tensors):
        check_key(key)
        array = tensors[key]
        if not isinstance(array, np.ndarray):
            raise ValidationError(f"{key}: expected a numpy array, got {type(array).__name__}")
        try:
            value, spec = array_to_value(array)
        except ValidationError as exc:
            raise ValidationError(f"{key}: {exc}") from None
        entries[key] = Entry(key=key, value=value, strength=1.0, updated_at_ns=stamp, tensor=spec)
    tg.replace_layer(Layer.HOT, entries)
    tg.set_extra(EXTRAS_KEY, {"metadata": metadata, "files": [], "index_metadata": None})
    tg.append_event("import", {"source": SOURCE, "entries": len(entries)}, bind=True, timestamp_ns=stamp)
    store.create(filename, tg, overwrite=True)


def load_file(filename: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every key of the thermogram at ``filename`` → a writable numpy array, in key order.

    Tensor entries come back with their dtype and shape (BF16/F8 as ``ml_dtypes`` types when
    that package is installed, else their raw uint16/uint8 bits; ternary entries dequantized);
    an entry that is not a tensor comes back as a 1-D uint8 array of its bytes.
    """
    return load(filename)


def load(filename: str | os.PathLike[str], keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Like :func:`load_file`, but with ``keys`` only those arrays (in the order given), each
    read on its own: the other entries' chunks are never decompressed. A key the file does
    not hold raises NotFoundError (a KeyError) naming it."""
    wanted = None if keys is None else _keys_argument(keys)
    with store.load(filename) as tg:
        names = tg.keys() if wanted is None else wanted
        return {key: _owned_array(tg, key, filename) for key in names}


def _keys_argument(keys: Iterable[str]) -> list[str]:
    if isinstance(keys, str | bytes):
        raise ValidationError("keys: expected a list of key names, got a single string")
    wanted = list(keys)
    for key in wanted:
        check_key(key)
    return wanted


def _owned_array(tg: Thermogram, key: str, filename: str | os.PathLike[str]) -> np.ndarray:
    """A writable copy of the key's array (the file's bytes are read-only views)."""
    import numpy as np

    try:
        value = tg[key]
    except NotFoundError:
        raise NotFoundError(f"{os.fspath(filename)}: no key {key!r}") from None
    if isinstance(value, bytes):
        return np.frombuffer(value, dtype=np.uint8).copy()
    return value.copy()


def open_view(filename: str | os.PathLike[str]) -> TensorView:
    """A read-only mapping over the thermogram at ``filename`` (``thermo_cli.open``)."""
    return TensorView(filename)


class TensorView(Mapping[str, "np.ndarray | bytes"]):
    """A thermogram file as a read-only ``Mapping[str, ndarray | bytes]``.

    ``view[key]`` is a tensor entry's array (read-only, zero-copy where the dtype allows) or
    a plain entry's bytes; ``len``, ``in`` and iteration (keys in sorted order) work without
    decoding any value. :meth:`entry` tells where a key's value comes from and how strong it
    is. The view holds the file open for lazy reads: use it in a ``with`` block, or call
    :meth:`close`.
    """

    def __init__(self, filename: str | os.PathLike[str]) -> None:
        self.path = os.fspath(filename)
        self._tg = store.load(filename)
        self._keys: list[str] | None = None

    def _names(self) -> list[str]:
        if self._keys is None:
            self._keys = self._tg.keys()
        return self._keys

    def __getitem__(self, key: str) -> np.ndarray | bytes:
        try:
            return self._tg[key]
        except NotFoundError:
            raise NotFoundError(f"{self.path}: no key {key!r}") from None

    def __contains__(self, key: object) -> bool:
        return key in self._tg

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def entry(self, key: str) -> ReadResult:
        """The key's read: ``source`` (its layer, or "dirty" for an uncommitted delta),
        ``strength``, ``ternary``, ``tensor`` spec and ``update_count``."""
        found = self._tg.read_entry(key)
        if found is None:
            raise NotFoundError(f"{self.path}: no key {key!r}")
        return found

    @property
    def metadata(self) -> dict[str, str] | None:
        """The text-to-text metadata :func:`save_file` (or an import) kept, else None."""
        return saved_metadata(self._tg)

    @property
    def thermogram(self) -> Thermogram:
        """The loaded :class:`Thermogram` behind the view (for history, stats …)."""
        return self._tg

    def close(self) -> None:
        """Release the file (idempotent); looking values up afterwards fails."""
        self._tg.close()

    def __enter__(self) -> TensorView:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        self.close()
        return False

    def __repr__(self) -> str:
        return f"TensorView({self.path!r}, {len(self)} keys)"
