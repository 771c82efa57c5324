"""The layer-state digest at every consolidation, computed incrementally.

The definition is :func:`thermo_cli.audit.state.state_digest` (RFC 9162 Merkle root over
every entry, leaves in (key UTF-8 bytes, layer) order, leaf data = canonical CBOR of the
entry map). Consolidation runs it after every 1,000 deltas by default, and computing it
from scratch costs ~10 µs per entry (cbor2's canonical mode sorting each map), which
alone would exceed the 5 ms budget for consolidating 1,000 deltas and grows with the
thermogram. :class:`StateDigester` gives the same 32 bytes faster:

* each leaf is written directly in its canonical byte layout (like
  :func:`thermo_cli.engine.chain.encode_delta`), ~1.5 µs;
* leaf hashes are remembered per (layer, key) together with the entry fields they cover,
  so entries that did not change since the last digest cost a comparison, not a hash.

Before first use the fast leaf encoder is compared with the audit module's
:func:`~thermo_cli.audit.state.entry_leaf` on sample entries; if the two ever disagree
(the definition moved on), the reference encoder is used for every leaf, so the digest
is always the audit module's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, MutableMapping

from thermo_cli import cbor, records
from thermo_cli.audit import merkle
from thermo_cli.audit import state as _state
from thermo_cli.engine.chain import _FLOAT_CACHE, _SHORT, _TEXT_HEADS, _head, _int, _strength
from thermo_cli.model import Entry, Layer, TensorSpec, Ternary

_sha256 = hashlib.sha256
_LAYERS = tuple(Layer)


def _t(s: str) -> bytes:
    return _head(3, len(s)) + s.encode()


# Canonical (RFC 8949 §4.2) key order of the entry map: shorter encoded key first, then bytewise.
_MAP8 = b"\xa8"
_K_KEY = _t("key")
_K_LAYER = [_t("layer") + bytes((n,)) for n in range(4)]
_K_TENSOR_NULL = _t("tensor") + b"\xf6"
_K_TENSOR = _t("tensor")
_K_TERN = {None: _t("ternary") + b"\xf6", -1: _t("ternary") + b"\x20", 0: _t("ternary") + b"\x00",
           1: _t("ternary") + b"\x01"}
_K_STRENGTH = _t("strength")
_K_UPDATED_AT = _t("updated_at")
_K_UPDATE_COUNT = _t("update_count")
_K_VALUE_SHA = _t("value_sha256") + _head(2, 32)


_UINTS = [_int(n) for n in range(4096)]
_LEAF_PREFIX = b"\x00" + _MAP8  # RFC 9162 leaf-hash prefix, then the map header


def _prefixed_leaf(layer: int, key_utf8: bytes, entry: Entry) -> bytes:
    """0x00 followed by the entry's leaf data (what its leaf hash is taken over)."""
    tensor = entry.tensor
    strength = entry.strength
    at = entry.updated_at_ns
    count = entry.update_count
    nk = len(key_utf8)
    return b"".join((
        _LEAF_PREFIX,
        _K_KEY, _TEXT_HEADS[nk] if nk < _SHORT else _head(3, nk), key_utf8,
        _K_LAYER[layer],
        _K_TENSOR_NULL if tensor is None else _K_TENSOR + cbor.encode(records.tensor_to_map(tensor)),
        _K_TERN[entry.ternary],
        _K_STRENGTH, _FLOAT_CACHE.get(strength) or _strength(float(strength)),
        _K_UPDATED_AT, b"\x1b" + at.to_bytes(8, "big") if 0x100000000 <= at < 2**64 else _int(int(at)),
        _K_UPDATE_COUNT, _UINTS[count] if 0 <= count < 4096 else _int(int(count)),
        _K_VALUE_SHA, _sha256(entry.value).digest(),
    ))


def fast_entry_leaf(layer: int, key_utf8: bytes, entry: Entry) -> bytes:
    """Leaf data of one entry, byte-identical to ``audit.state.entry_leaf``."""
    return _prefixed_leaf(layer, key_utf8, entry)[1:]


def _samples() -> list[tuple[Layer, Entry]]:
    spec = TensorSpec("F32", (2, 3), "ternary", b"\x00\x00\x80?", True, "absmean")
    return [
        (Layer.HOT, Entry("k", b"v", 0.5, 1_700_000_000_000_000_000, 3)),
        (Layer.COLD, Entry("ключ/" + "x" * 40, b"\x00" * 300, 0.30000001192092896, 5, 70000,
                           Ternary.NEG, spec)),
        (Layer.WARM, Entry("w", b"", -1.0, 0, 1, Ternary.POS, TensorSpec("BF16", ()))),
    ]


def _fast_path_agrees() -> bool:
    return all(fast_entry_leaf(int(layer), e.key.encode(), e) == _state.entry_leaf(layer, e)
               for layer, e in _samples())


def merkle_root(leaf_hashes: list[bytes]) -> bytes:
    """RFC 9162 root of a tree whose leaf hashes are given, hashed level by level.

    Pairing neighbours bottom-up and carrying an odd last node up unchanged builds the
    same tree as RFC 9162's split at the largest power of two below n (the left subtree
    is always perfect), with one comprehension per level instead of a Python call per
    node.
    """
    if not leaf_hashes:
        return merkle.EMPTY_ROOT
    level = leaf_hashes
    while len(level) > 1:
        n = len(level)
        nxt = [_sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, n - 1, 2)]
        if n & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def extend_range(rng: merkle.CompactRange, leaf_hashes: list[bytes]) -> None:
    """Append many leaf hashes to a compact range, a perfect subtree at a time.

    Same result as ``rng.append(h)`` for each hash, but each aligned block of 2^k leaves
    is reduced with :func:`merkle_root` first, so the per-leaf Python work is one list
    element (the log root at every consolidation covers all the new records).
    """
    nodes = rng.nodes
    i, n = 0, len(leaf_hashes)
    while i < n:
        size = rng.size
        room = 1 << ((n - i).bit_length() - 1)
        k = min(size & -size, room) if size else room
        nodes.append(merkle_root(leaf_hashes[i:i + k]))
        carry = size // k
        while carry & 1:
            right = nodes.pop()
            left = nodes.pop()
            nodes.append(_sha256(b"\x01" + left + right).digest())
            carry >>= 1
        rng.size = size + k
        i += k


class StateDigester:
    """Computes ``state_digest(layers)``, reusing leaf hashes of unchanged entries."""

    __slots__ = ("_cache", "_fast")

    def __init__(self) -> None:
        self._cache: dict[tuple[int, str], tuple] = {}
        self._fast: bool | None = None

    def digest(self, layers: Mapping[Layer, MutableMapping[str, Entry]]) -> bytes:
        if self._fast is None:
            self._fast = _fast_path_agrees()
        if not self._fast:
            return _state.state_digest(layers)
        maps = [layers.get(layer) for layer in _LAYERS]
        tagged: list[tuple[bytes, int, str]] = []
        for lnum, mapping in enumerate(maps):
            if mapping:
                tagged.extend((key.encode("utf-8"), lnum, key) for key in mapping)
        tagged.sort()
        old = self._cache
        new: dict[tuple[int, str], tuple] = {}
        hashes: list[bytes] = []
        append = hashes.append
        for key_utf8, lnum, key in tagged:
            e = maps[lnum][key]
            value, strength, tern, at, count, tensor = (e.value, e.strength, e.ternary, e.updated_at_ns,
                                                         e.update_count, e.tensor)
            ident = (lnum, key)
            hit = old.get(ident)
            if (hit is not None and hit[0] is value and hit[1] == strength and strength != 0.0
                    and hit[2] is tern and hit[3] == at and hit[4] == count and hit[5] is tensor):
                h = hit[6]
            else:
                h = _sha256(_prefixed_leaf(lnum, key_utf8, e)).digest()
            new[ident] = (value, strength, tern, at, count, tensor, h)
            append(h)
        self._cache = new
        return merkle_root(hashes)
