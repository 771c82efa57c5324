"""The layer-state digest, recomputed incrementally at every layer change.

The definition is :func:`thermo_cli.integrity.state.state_digest` (RFC 9162 Merkle root over
every entry, leaves in (key UTF-8 bytes, layer) order, leaf data from
:func:`thermo_cli.codec.leaves.leaf_bytes`). Every consolidation and every layer-changing
operation binds it into the log, so it must not cost a full pass of hashing each time:
:class:`StateDigester` gives the same 32 bytes while remembering, per (layer, key), the
entry fields its leaf covers and the leaf hash. An entry that did not change since the
last digest costs a few comparisons; one that only moved to another layer reuses its
value's SHA-256 and costs one leaf hash.

Leaves are ordered by key text, then layer number: for valid (surrogate-free) keys,
code-point order is UTF-8 byte order, so no key needs encoding just to be sorted.

A layer mapping may offer ``leaf_items(layer_number)`` (a lazily read container layer
does): every entry in key order as (key, leaf hash, None, None) when the leaf is known
without its value — computed from the value SHA-256 its directory chunk stores — or
(key, None, entry, value SHA-256 or None) for entries to hash here (with the digest when
only their other fields changed). Then binding a state reads no unchanged value at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, MutableMapping
from typing import Any, cast

from thermo_cli.codec.leaves import LEAF_HASH_PREFIX, leaf_bytes
from thermo_cli.integrity.merkle import root_from_leaf_hashes
from thermo_cli.model import Entry, Layer

_sha256 = hashlib.sha256
_LAYERS = tuple(Layer)

# A cached leaf is (value, strength, ternary, updated_at, update_count, tensor, value SHA-256,
# leaf hash): the entry fields it covers, then what was computed from them.
_VALUE, _VALUE_SHA = 0, 6


class StateDigester:
    """Computes ``state_digest(layers)``, reusing leaf hashes of unchanged entries."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: list[dict[str, tuple[Any, ...]]] = [{} for _ in _LAYERS]

    def digest(self, layers: Mapping[Layer, MutableMapping[str, Entry]]) -> bytes:
        maps = [layers.get(layer) or {} for layer in _LAYERS]
        order: list[tuple[str, int]] = []
        known: dict[tuple[str, int], bytes] = {}
        for lnum, mapping in enumerate(maps):
            items = _leaf_items(mapping, lnum)
            if items is None:
                order.extend([(key, lnum) for key in mapping])
                continue
            for key, h, e, vsha in items:
                order.append((key, lnum))
                if h is None and vsha is not None:  # changed fields, same value: no value read
                    leaf = leaf_bytes(LEAF_HASH_PREFIX, lnum, key.encode("utf-8"), e, vsha)
                    h = _sha256(leaf).digest()
                if h is not None:
                    known[(key, lnum)] = h
        order.sort()
        old = self._cache
        warm = any(old)
        new: list[dict[str, tuple[Any, ...]]] = [{} for _ in _LAYERS]
        by_id: dict[int, bytes] = {}  # value digests by object: each tuple in ``new`` keeps its value alive
        hashes: list[bytes] = []
        append = hashes.append
        for key, lnum in order:
            if known:
                kh = known.get((key, lnum))
                if kh is not None:
                    append(kh)
                    continue
            e = maps[lnum][key]
            value, strength, tern, at, count, tensor = (
                e.value,
                e.strength,
                e.ternary,
                e.updated_at_ns,
                e.update_count,
                e.tensor,
            )
            hit = old[lnum].get(key)
            if hit is not None and hit[0] is value:
                if (
                    hit[1] == strength
                    and strength != 0.0
                    and hit[2] is tern
                    and hit[3] == at
                    and hit[4] == count
                    and hit[5] is tensor
                ):
                    new[lnum][key] = hit
                    append(hit[7])
                    continue
                value_sha = hit[6]
            else:
                value_sha = _moved_value_sha(old, key, value) if warm else None
                if value_sha is None:
                    value_sha = by_id.get(id(value))
                    if value_sha is None:
                        value_sha = by_id[id(value)] = _sha256(value).digest()
            h = _sha256(leaf_bytes(LEAF_HASH_PREFIX, lnum, key.encode("utf-8"), e, value_sha)).digest()
            new[lnum][key] = (value, strength, tern, at, count, tensor, value_sha, h)
            append(h)
        self._cache = new
        return root_from_leaf_hashes(hashes)


_LeafItem = tuple[str, "bytes | None", Any, "bytes | None"]


def _leaf_items(mapping: Any, lnum: int) -> list[_LeafItem] | None:
    """The mapping's own leaf listing (see the module docstring), or None."""
    fn = getattr(mapping, "leaf_items", None)
    return None if fn is None else cast("list[_LeafItem] | None", fn(lnum))


def _moved_value_sha(cache: list[dict[str, tuple[Any, ...]]], key: str, value: bytes) -> bytes | None:
    """The SHA-256 remembered for this very value object under ``key`` in another layer
    (the entry moved), or None."""
    for by_key in cache:
        hit = by_key.get(key)
        if hit is not None and hit[_VALUE] is value:
            return cast(bytes, hit[_VALUE_SHA])
    return None
