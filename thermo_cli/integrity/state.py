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

:mod:`thermo_cli.codec.leaves` owns the leaf bytes (:func:`~thermo_cli.codec.leaves.entry_map`
is the definition, :func:`~thermo_cli.codec.leaves.entry_leaf` writes the same bytes
directly); this module orders leaves and builds the tree. The engine's incremental
digester (:class:`thermo_cli.integrity.digest.StateDigester`) hashes the same leaves.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from thermo_cli.codec import cbor
from thermo_cli.codec.leaves import entry_leaf
from thermo_cli.errors import NotFoundError
from thermo_cli.integrity import merkle
from thermo_cli.model import Entry, Layer

Layers = Mapping[Layer, Mapping[str, Entry]]

BIND_KIND = "bind"
"""Kind of the event that binds the layer state at a commit after engine layer changes
(:meth:`thermo_cli.engine.thermogram.Thermogram.bind_state`)."""
CONFIGURE_KIND = "configure"
"""Event of a configuration change: ``thermal``, ``plasticity`` and/or ``policy`` fields
hold the new maps (config/maps.py encoding, as in the meta block)."""
RENAME_KIND = "rename"
"""Event of a name change: fields ``name`` (new) and ``previous``."""
EXTENSION_KIND = "extension"
"""Event of an extension-state change: fields ``key`` and ``sha256`` (SHA-256 of the new
value's deterministic CBOR; null when the key was removed)."""
META_KINDS = frozenset({CONFIGURE_KIND, RENAME_KIND, EXTENSION_KIND})
"""Event kinds that change the bound meta (spec §9.2.2), never the layers."""
NON_LAYER_KINDS = frozenset({"checkpoint", "signature"}) | META_KINDS
"""Event kinds that never change the layers; any other event may, and must be followed by
a binding record before its commit ends (so must a meta change)."""


def is_binding(fields: Mapping[str, Any]) -> bool:
    """The event fields bind a state: ``log_size`` (int), ``log_root`` and ``state_digest`` (bytes)."""
    size = fields.get("log_size")
    return (
        isinstance(fields.get("state_digest"), bytes)
        and isinstance(fields.get("log_root"), bytes)
        and isinstance(size, int)
        and not isinstance(size, bool)
    )


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
