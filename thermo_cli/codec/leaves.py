"""Canonical bytes of a state-digest leaf: one entry of one layer, its value as a SHA-256.

Binding a state hashes one leaf per entry, millions of times on a large file, so the
leaf map is written directly from precomputed canonical CBOR items instead of through a
generic encoder; :func:`entry_map` is the same map for the strict encoder, and a
property test checks the two agree byte for byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from thermo_cli.codec import cbor
from thermo_cli.codec.records import tensor_to_map
from thermo_cli.model import Entry, Layer


def entry_map(layer: Layer | int, entry: Entry, value_sha256: bytes | None = None) -> dict[str, Any]:
    """The map an entry's leaf encodes (the value appears only as its SHA-256).

    ``value_sha256`` lets a verifier that streamed the value bytes pass their digest
    instead of the bytes.
    """
    return {
        "layer": int(layer),
        "key": entry.key,
        "value_sha256": hashlib.sha256(entry.value).digest() if value_sha256 is None else value_sha256,
        "strength": float(entry.strength),
        "ternary": None if entry.ternary is None else int(entry.ternary),
        "updated_at": int(entry.updated_at_ns),
        "update_count": int(entry.update_count),
        "tensor": tensor_to_map(entry.tensor),
    }


# The entry map's keys in canonical (RFC 8949 §4.2) order: shorter encoded key first, then
# bytewise — key, layer, tensor, ternary, strength, updated_at, update_count, value_sha256.
_K_KEY = cbor.text_item("key")
_K_LAYER = tuple(cbor.text_item("layer") + cbor.int_item(n) for n in range(len(Layer)))
_K_TENSOR = cbor.text_item("tensor")
_K_TENSOR_NULL = _K_TENSOR + cbor.NULL
_K_TERN: dict[int | None, bytes] = {
    None: cbor.text_item("ternary") + cbor.NULL,
    **{t: cbor.text_item("ternary") + cbor.int_item(t) for t in (-1, 0, 1)},
}
_K_STRENGTH = cbor.text_item("strength")
_K_UPDATED_AT = cbor.text_item("updated_at")
_K_UPDATE_COUNT = cbor.text_item("update_count")
_K_VALUE_SHA = cbor.text_item("value_sha256") + cbor.head(2, 32)
_MAP8 = b"\xa8"
LEAF_HASH_PREFIX = b"\x00" + _MAP8
"""What :func:`leaf_bytes` starts with to give the RFC 9162 leaf-hash input directly."""

_SHORT = cbor.SHORT
_TEXT_HEADS = cbor.TEXT_HEADS
_UINT_ITEMS = cbor.UINT_ITEMS
_FLOAT_ITEMS = cbor.FLOAT_ITEMS
_float = cbor.float_item_cached
_int = cbor.int_item
_U32 = 0x100000000
_U64 = 2**64


ColumnFields = tuple[Sequence[float], Sequence[int], Sequence[int], Sequence[int], Sequence[int]]
"""(strength, ternary code, update time, update count, tensor index) columns of entries."""

_TENSOR_ITEMS: dict[Any, bytes] = {}
_TENSOR_ITEMS_MAX = 4096


def _tensor_item(tensor: Any) -> bytes:
    """``"tensor"`` and the tensor map's CBOR, cached per (immutable) description: a layer
    of same-shaped weights shares a few, and encoding one per leaf dominated binding."""
    item = _TENSOR_ITEMS.get(tensor)
    if item is None:
        item = _K_TENSOR + cbor.encode(tensor_to_map(tensor))
        if len(_TENSOR_ITEMS) >= _TENSOR_ITEMS_MAX:
            _TENSOR_ITEMS.clear()
        _TENSOR_ITEMS[tensor] = item
    return item


def leaf_bytes(start: bytes, layer: int, key_utf8: bytes, entry: Entry, value_sha256: bytes) -> bytes:
    """``start`` followed by the rest of an entry's leaf after the map header.

    ``start`` is the map header (:func:`entry_leaf`) or the RFC 9162 leaf prefix and the
    header (:data:`LEAF_HASH_PREFIX`, for hashing without another copy).
    """
    tensor = entry.tensor
    strength = entry.strength
    at = entry.updated_at_ns
    count = entry.update_count
    nk = len(key_utf8)
    return b"".join(
        (
            start,
            _K_KEY,
            _TEXT_HEADS[nk] if nk < _SHORT else cbor.head(3, nk),
            key_utf8,
            _K_LAYER[layer],
            _K_TENSOR_NULL if tensor is None else _tensor_item(tensor),
            _K_TERN[entry.ternary],
            _K_STRENGTH,
            _FLOAT_ITEMS.get(strength) or _float(float(strength)),
            _K_UPDATED_AT,
            b"\x1b" + at.to_bytes(8, "big") if _U32 <= at < _U64 else _int(int(at)),
            _K_UPDATE_COUNT,
            _UINT_ITEMS[count] if 0 <= count < _SHORT else _int(int(count)),
            _K_VALUE_SHA,
            value_sha256,
        )
    )


def entry_leaf(layer: Layer | int, entry: Entry, value_sha256: bytes | None = None) -> bytes:
    """Leaf data of one entry: canonical CBOR of :func:`entry_map`, written directly."""
    digest = hashlib.sha256(entry.value).digest() if value_sha256 is None else value_sha256
    return leaf_bytes(_MAP8, int(layer), entry.key.encode("utf-8"), entry, digest)


def tensor_items(tensors: Sequence[Any]) -> list[bytes]:
    """``"tensor"`` and each description's CBOR (for :func:`column_leaf_hashes`)."""
    return [_tensor_item(t) for t in tensors]


def column_leaf_hashes(
    layer: int,
    keys: Sequence[str],
    columns: ColumnFields,
    tensor_items_by_index: Sequence[bytes],
    value_shas: bytes,
) -> list[bytes]:
    """RFC 9162 leaf hashes of a run of entries given by columns (a directory chunk's).

    The same bytes as :func:`leaf_bytes` per entry, built from the columns with every
    constant piece looked up once: a chunk of a thousand entries costs one hash each and
    no object per entry. ``columns`` are (strength, ternary code with 2 for none, update
    time, update count, tensor index with -1 for none), one number per entry.
    """
    strength, ternary, updated, count, tensor_ix = columns
    layer_item = _K_LAYER[layer]
    tern_items = (_K_TERN[0], _K_TERN[1], _K_TERN[None], _K_TERN[-1])  # indexed by code (-1 → [3])
    tensor_of = [*tensor_items_by_index, _K_TENSOR_NULL]  # index -1 → null
    floats, float_of = _FLOAT_ITEMS, _float
    sha, short = hashlib.sha256, _SHORT
    out: list[bytes] = []
    append = out.append
    for i, key in enumerate(keys):
        kb = key.encode("utf-8")
        nk = len(kb)
        s, at, n = strength[i], updated[i], count[i]
        append(
            sha(
                b"".join(
                    (
                        LEAF_HASH_PREFIX,
                        _K_KEY,
                        _TEXT_HEADS[nk] if nk < short else cbor.head(3, nk),
                        kb,
                        layer_item,
                        tensor_of[tensor_ix[i]],
                        tern_items[ternary[i]],
                        _K_STRENGTH,
                        floats.get(s) or float_of(float(s)),
                        _K_UPDATED_AT,
                        b"\x1b" + at.to_bytes(8, "big") if _U32 <= at < _U64 else _int(int(at)),
                        _K_UPDATE_COUNT,
                        _UINT_ITEMS[n] if n < short else _int(int(n)),
                        _K_VALUE_SHA,
                        value_shas[32 * i : 32 * i + 32],
                    )
                )
            ).digest()
        )
    return out
