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

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Root of the tree whose leaves already are leaf hashes (iterative, O(n))."""
    rng = CompactRange()
    for h in hashes:
        rng.append(h)
    return rng.root()


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

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        acc = self.nodes[-1]
        for left in reversed(self.nodes[:-1]):
            acc = node_hash(left, acc)
        return acc

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.nodes)
