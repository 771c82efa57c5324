"""RFC 6962 / RFC 9162 Merkle tree hashing.

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), and the tree over n
leaves splits at the largest power of two smaller than n. :class:`CompactRange` keeps only
the right edge of the tree (one hash per set bit of the size), so appending a leaf and
asking for the root cost O(log n) whatever the log's length: the container stores it in
its trailer to keep appends O(delta).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import overload

EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def leaf_hashes_of(items: Iterable[bytes]) -> list[bytes]:
    """:func:`leaf_hash` of every item, in one comprehension (a commit's new log records)."""
    sha = _sha256
    return [sha(b"\x00" + data).digest() for data in items]


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Root of the tree whose leaves already are leaf hashes, hashed level by level.

    Pairing neighbours bottom-up and carrying an odd last node up unchanged builds the
    same tree as RFC 9162's split at the largest power of two below n (the left subtree
    is always perfect), with one comprehension per level instead of a Python call per
    node: this is the state digest's hot loop.
    """
    level = list(hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        odd = level[-1] if len(level) & 1 else None
        level = [_sha256(b"\x01" + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)]
        if odd is not None:
            level.append(odd)
    return level[0]


def fold(nodes: Sequence[bytes]) -> bytes:
    """Root of a compact range given as its perfect subtree roots, largest first."""
    if not nodes:
        return EMPTY_ROOT
    acc = nodes[-1]
    for left in reversed(nodes[:-1]):
        acc = node_hash(left, acc)
    return acc


def root(leaves: Iterable[bytes]) -> bytes:
    """Merkle Tree Hash of raw leaf data."""
    rng = CompactRange()
    for data in leaves:
        rng.append(leaf_hash(data))
    return rng.root()


class CompactRange:
    """Right-edge hashes of a growing tree: perfect subtrees, largest first."""

    __slots__ = ("nodes", "size")

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if len(nodes) != bin(size).count("1"):
            raise ValueError("compact range: node count must equal the popcount of size")
        self.size = size
        self.nodes: list[bytes] = list(nodes)

    def __eq__(self, other: object) -> bool:
        """Two ranges are equal when they cover as many leaves with the same subtrees."""
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self.size == other.size and self.nodes == other.nodes

    __hash__ = None  # type: ignore[assignment]  # (mutable: extended in place)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash; merge equal-sized subtrees like a binary counter."""
        self.nodes.append(leaf)
        size = self.size
        while size & 1:
            right = self.nodes.pop()
            left = self.nodes.pop()
            self.nodes.append(node_hash(left, right))
            size >>= 1
        self.size += 1

    def extend(self, leaves: Sequence[bytes]) -> None:
        """Append many leaf hashes, a perfect subtree at a time.

        Same result as :meth:`append` for each hash, but each aligned block of 2^k leaves
        is reduced with :func:`root_from_leaf_hashes` first, so the per-leaf Python work
        is one list element (a log root after many new records).
        """
        nodes = self.nodes
        i, n = 0, len(leaves)
        while i < n:
            size = self.size
            room = 1 << ((n - i).bit_length() - 1)
            k = min(size & -size, room) if size else room
            nodes.append(root_from_leaf_hashes(leaves[i : i + k]))
            carry = size // k
            while carry & 1:
                right = nodes.pop()
                left = nodes.pop()
                nodes.append(node_hash(left, right))
                carry >>= 1
            self.size = size + k
            i += k

    def root(self) -> bytes:
        return fold(self.nodes)

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.nodes)


# --- proofs (RFC 9162 §2.1.3 inclusion, §2.1.4 consistency) ---------------------------------


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_root(level: Sequence[bytes]) -> bytes:
    """Root of a perfect tree (power-of-two leaf hashes), one level at a time.

    A list comprehension per level hashes several times faster than recursion.
    """
    level = list(level)
    while len(level) > 1:
        level = [_sha256(b"\x01" + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=True)]
    return level[0]


def subtree_root(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH of the leaf hashes ``hashes[lo:hi]`` (non-empty range)."""
    n = hi - lo
    if n & (n - 1) == 0:
        return perfect_root(hashes[lo:hi])
    k = _split(n)
    return node_hash(perfect_root(hashes[lo : lo + k]), subtree_root(hashes, lo + k, hi))


class PackedHashes(Sequence[bytes]):
    """32-byte hashes packed in one bytes object: 32 bytes per leaf instead of ~70."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        if len(data) % 32:
            raise ValueError("packed hashes: length must be a multiple of 32")
        self._data = data

    def __len__(self) -> int:
        return len(self._data) // 32

    @property
    def data(self) -> bytes:
        """The packed bytes (32 per hash)."""
        return self._data

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                return [self[j] for j in range(start, stop, step)]
            d = self._data
            return [d[j : j + 32] for j in range(32 * start, 32 * stop, 32)]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("packed hash index out of range")
        return self._data[32 * i : 32 * i + 32]


def inclusion_proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """PATH(index, D[n]) over leaf hashes: the sibling subtree roots, leaf upwards."""
    n = len(hashes)
    if not 0 <= index < n:
        raise ValueError(f"inclusion proof: leaf index {index} outside a tree of {n} leaves")
    path: list[bytes] = []
    lo, hi = 0, n
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(subtree_root(hashes, lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree_root(hashes, lo, lo + k))
            lo = lo + k
    path.reverse()
    return path


def consistency_proof(hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """PROOF(m, D[n]) over leaf hashes: shows the first ``old_size`` leaves are a prefix.

    Empty for ``old_size`` 0 or equal to the tree size (nothing to prove).
    """
    n = len(hashes)
    if not 0 <= old_size <= n:
        raise ValueError(f"consistency proof: old size {old_size} outside 0..{n}")
    if old_size in (0, n):
        return []
    proof: list[bytes] = []
    _subproof(hashes, old_size, 0, n, True, proof)
    return proof


def _subproof(hashes: Sequence[bytes], m: int, lo: int, hi: int, whole: bool, out: list[bytes]) -> None:
    n = hi - lo
    if m == n:
        if not whole:
            out.append(subtree_root(hashes, lo, hi))
        return
    k = _split(n)
    if m <= k:
        _subproof(hashes, m, lo, lo + k, whole, out)
        out.append(subtree_root(hashes, lo + k, hi))
    else:
        _subproof(hashes, m - k, lo + k, hi, False, out)
        out.append(subtree_root(hashes, lo, lo + k))


def _is_hash(h: object) -> bool:
    return isinstance(h, bytes) and len(h) == 32


def verify_inclusion(leaf: bytes, index: int, tree_size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: is ``leaf`` (a leaf hash) entry ``index`` of the tree ``root``?"""
    if not (_is_hash(leaf) and _is_hash(root) and all(_is_hash(p) for p in path)):
        return False
    if not 0 <= index < tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (old_size, old_root) a prefix of (new_size, new_root)?

    Equal sizes need an empty proof and equal roots; an old size of 0 proves nothing and
    is refused unless both trees are empty, as in the transparency-dev reference probes.
    """
    if not (_is_hash(old_root) and _is_hash(new_root) and all(_is_hash(p) for p in proof)):
        return False
    if old_size < 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0 or not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
