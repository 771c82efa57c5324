"""The state digest: one RFC 9162 Merkle root over every entry of the four layers.

The Rust crate hashed only its deltas, so the layers themselves could be edited without
trace. Here the layer state has a digest that the log binds at every consolidation and
checkpoint. It is a Merkle tree rather than a flat hash so that a single entry can be
proved (inclusion proof, :func:`entry_proof`) without revealing the others.

Leaves are ordered by (key as UTF-8 bytes, layer number) — the same key may sit in
several layers — and each leaf's data is the canonical CBOR of the entry map::

    {"layer": uint, "key": text, "value_sha256": bytes(32), "strength": float,
     "ternary": -1|0|1|null, "updated_at": int ns, "update_count": uint,
     "tensor": map|null}

The value enters through its SHA-256, so an entry's leaf stays small whatever the value
size, and a proof of one entry carries the value's digest: whoever holds the bytes can
check them against it.

:func:`entry_map` is the definition; :func:`entry_leaf` writes the same bytes directly
in that map's canonical layout (the digest is recomputed at every consolidation and
layer change, and cbor2's canonical mode costs ~10 µs a leaf against ~1 µs). A property
test keeps the two byte-identical. The engine's incremental digester
(:class:`thermo_cli.integrity.digest.StateDigester`) hashes leaves from :func:`leaf_bytes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from thermo_cli.codec import cbor
from thermo_cli.codec.records import tensor_to_map
from thermo_cli.errors import NotFoundError
from thermo_cli.integrity import merkle
from thermo_cli.model import Entry, Layer

Layers = Mapping[Layer, Mapping[str, Entry]]

BIND_KIND = "bind"
"""Kind of the event that binds the layer state at a commit after engine layer changes
(:meth:`thermo_cli.engine.thermogram.Thermogram.bind_state`)."""
NON_LAYER_KINDS = frozenset({"checkpoint", "signature"})
"""Event kinds that never change the layers; any other event may, and must be followed by
a binding record before its commit ends."""


def is_binding(fields: Mapping[str, Any]) -> bool:
    """The event fields bind a state: ``log_size`` (int), ``log_root`` and ``state_digest`` (bytes)."""
    size = fields.get("log_size")
    return (
        isinstance(fields.get("state_digest"), bytes)
        and isinstance(fields.get("log_root"), bytes)
        and isinstance(size, int)
        and not isinstance(size, bool)
    )


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
            _K_TENSOR_NULL if tensor is None else _K_TENSOR + cbor.encode(tensor_to_map(tensor)),
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


def digest_of_leaves(leaves: list[tuple[bytes, int, bytes]]) -> bytes:
    """State digest from (key UTF-8 bytes, layer number, leaf data) triples in any order."""
    leaves.sort(key=lambda t: (t[0], t[1]))
    return merkle.root_from_leaf_hashes([merkle.leaf_hash(leaf) for _, _, leaf in leaves])


def ordered_entries(layers: Layers) -> list[tuple[Layer, Entry]]:
    """Every (layer, entry) in leaf order: key UTF-8 bytes, then layer number.

    Each layer's keys are sorted on their own, then the four sorted runs are merged,
    so a lazy layer mapping is iterated once and only keys (not values) are sorted.
    """
    tagged: list[tuple[bytes, int, str]] = []
    for layer in Layer:
        mapping = layers.get(layer)
        if not mapping:
            continue
        tagged.extend((key.encode("utf-8"), int(layer), key) for key in mapping)
    tagged.sort()
    return [(Layer(lnum), layers[Layer(lnum)][key]) for _, lnum, key in tagged]


def iter_leaves(layers: Layers) -> Iterator[tuple[Layer, Entry, bytes]]:
    for layer, entry in ordered_entries(layers):
        yield layer, entry, entry_leaf(layer, entry)


def leaf_hashes(layers: Layers) -> list[bytes]:
    return [merkle.leaf_hash(leaf) for _, _, leaf in iter_leaves(layers)]


def state_digest(layers: Layers) -> bytes:
    """RFC 9162 Merkle Tree Hash over every entry of every layer (32 bytes).

    The empty state has the digest of the empty tree, SHA-256 of nothing.
    """
    return merkle.root_from_leaf_hashes(leaf_hashes(layers))


# --- proving one entry ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryProof:
    """An entry's leaf, its position among ``tree_size`` leaves and its audit path."""

    layer: Layer
    key: str
    leaf: bytes
    index: int
    tree_size: int
    path: tuple[bytes, ...]
    root: bytes

    @property
    def entry(self) -> dict[str, Any]:
        """The decoded leaf map (what the proof shows about the entry)."""
        leaf: dict[str, Any] = cbor.decode(self.leaf, what="entry leaf")
        return leaf


def entry_proof(layers: Layers, key: str, layer: Layer | None = None) -> EntryProof:
    """Inclusion proof of ``key`` (in ``layer``, or the hottest layer holding it).

    Raises NotFoundError when no layer (or not the given one) holds the key.
    """
    ordered = ordered_entries(layers)
    index = None
    for i, (lay, entry) in enumerate(ordered):
        if entry.key == key and (layer is None or lay == layer):
            index = i
            break
    if index is None:
        where = f" in the {layer.label} layer" if layer is not None else ""
        raise NotFoundError(f"key {key!r} not found{where}")
    leaves = [entry_leaf(lay, entry) for lay, entry in ordered]
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    lay, _ = ordered[index]
    return EntryProof(
        layer=lay,
        key=key,
        leaf=leaves[index],
        index=index,
        tree_size=len(hashes),
        path=tuple(merkle.inclusion_proof(hashes, index)),
        root=merkle.root_from_leaf_hashes(hashes),
    )


def verify_entry_proof(
    leaf: bytes, index: int, tree_size: int, path: list[bytes] | tuple[bytes, ...], digest: bytes
) -> bool:
    """True when ``leaf`` is entry ``index`` of a state whose digest is ``digest``."""
    return merkle.verify_inclusion(merkle.leaf_hash(leaf), index, tree_size, path, digest)
