"""RFC 6962 / RFC 9162 Merkle trees: the Certificate Transparency reference vectors
(roots of the eight test leaves, published audit paths and consistency proofs), the
transparency-dev mutation probes, and properties over random trees."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.integrity import merkle

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
H = {
    "96a2": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "5f08": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "bc1a": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "ca85": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37e": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "fac5": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "6e34": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "0ebc": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "b086": "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
}
# (leaf index, tree size, audit path) — certificate-transparency merkle_tree_test.cc
INCLUSION = [
    (0, 1, []),
    (0, 8, ["96a2", "5f08", "6b47"]),
    (5, 8, ["bc1a", "ca85", "d37e"]),
    (2, 3, ["fac5"]),
    (1, 5, ["6e34", "5f08", "bc1a"]),
]
# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a2", "5f08", "6b47"]),
    (6, 8, ["0ebc", "ca85", "d37e"]),
    (2, 5, ["5f08", "bc1a"]),
    (6, 7, ["0ebc", "b086", "d37e"]),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
EMPTY = hashlib.sha256(b"").digest()


def hashes(n: int) -> list[bytes]:
    return [merkle.leaf_hash(d) for d in LEAVES[:n]]


def path_of(names: list[str]) -> list[bytes]:
    return [bytes.fromhex(H[n]) for n in names]


def naive_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 written recursively, as a second opinion."""
    if not leaves:
        return EMPTY
    if len(leaves) == 1:
        return merkle.leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(naive_mth(leaves[:k]), naive_mth(leaves[k:]))


def test_roots_of_the_reference_leaves():
    assert merkle.root([]) == EMPTY == merkle.EMPTY_ROOT
    for n in range(1, 9):
        assert merkle.root(LEAVES[:n]) == ROOTS[n - 1]
        assert merkle.subtree_root(hashes(n), 0, n) == ROOTS[n - 1]


@pytest.mark.parametrize(("index", "size", "names"), INCLUSION)
def test_reference_inclusion_proofs(index, size, names):
    proof = merkle.inclusion_proof(hashes(size), index)
    assert proof == path_of(names)
    assert merkle.verify_inclusion(merkle.leaf_hash(LEAVES[index]), index, size, proof, ROOTS[size - 1])


@pytest.mark.parametrize(("m", "n", "names"), CONSISTENCY)
def test_reference_consistency_proofs(m, n, names):
    proof = merkle.consistency_proof(hashes(n), m)
    assert proof == path_of(names)
    assert merkle.verify_consistency(m, n, ROOTS[m - 1], ROOTS[n - 1], proof)


def test_inclusion_of_leaf_0_in_a_7_leaf_tree():
    proof = merkle.inclusion_proof(hashes(7), 0)
    # the first two siblings are the same subtrees as in the 8-leaf vector
    assert proof[:2] == path_of(["96a2", "5f08"])
    assert merkle.verify_inclusion(merkle.leaf_hash(LEAVES[0]), 0, 7, proof, ROOTS[6])
    assert not merkle.verify_inclusion(merkle.leaf_hash(LEAVES[0]), 0, 7, proof, ROOTS[7])


def test_consistency_3_to_7():
    proof = merkle.consistency_proof(hashes(7), 3)
    assert merkle.verify_consistency(3, 7, ROOTS[2], ROOTS[6], proof)
    assert not merkle.verify_consistency(3, 7, ROOTS[3], ROOTS[6], proof)
    assert not merkle.verify_consistency(3, 8, ROOTS[2], ROOTS[7], proof)


def _inclusion_mutations(index, size, proof, root, leaf):
    """The transparency-dev probes: each must fail."""
    yield index - 1, size, root, leaf, proof
    yield index + 1, size, root, leaf, proof
    yield index ^ 2, size, root, leaf, proof
    yield index, size * 2, root, leaf, proof
    yield index, size // 2, root, leaf, proof
    yield index, size, root, b"WrongLeaf", proof
    yield index, size, EMPTY, leaf, proof
    yield index, size, SOME_HASH, leaf, proof
    yield index, size, root, leaf, [*proof, b""]
    yield index, size, root, leaf, [*proof, root]
    yield index, size, root, leaf, [b"", *proof]
    yield index, size, root, leaf, [root, *proof]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        yield index, size, root, leaf, bad
    if proof:
        yield index, size, root, leaf, proof[:-1]
    if len(proof) > 1:
        yield index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]]


@pytest.mark.parametrize(("index", "size", "names"), INCLUSION[1:])
def test_inclusion_probes_fail(index, size, names):
    leaf = merkle.leaf_hash(LEAVES[index])
    for i, n, root, lf, proof in _inclusion_mutations(index, size, path_of(names), ROOTS[size - 1], leaf):
        assert not merkle.verify_inclusion(lf, i, n, proof, root), (i, n, lf, proof)


@pytest.mark.parametrize(("m", "n", "names"), CONSISTENCY[1:])
def test_consistency_probes_fail(m, n, names):
    proof, r1, r2 = path_of(names), ROOTS[m - 1], ROOTS[n - 1]
    probes = [
        (m - 1, n, r1, r2, proof),
        (m + 1, n, r1, r2, proof),
        (m ^ 2, n, r1, r2, proof),
        (m, n * 2, r1, r2, proof),
        (m, n // 2, r1, r2, proof),
        (m, n, b"WrongRoot", r2, proof),
        (m, n, r1, b"WrongRoot", proof),
        (m, n, r2, r1, proof),
        (m, n, r1, r2, []),
        (m, n, r1, r2, [*proof, b""]),
        (m, n, r1, r2, [*proof, r1]),
        (m, n, r1, r2, [*proof, r2]),
        (m, n, r1, r2, [b"", *proof]),
        (m, n, r1, r2, [r1, *proof]),
        (m, n, r1, r2, [r2, *proof]),
        (m, n, r1, r2, [proof[0], *proof]),
        (m, n, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((m, n, r1, r2, bad))
    for probe in probes:
        assert not merkle.verify_consistency(*probe), probe


def test_static_consistency_probes():
    r1, r2 = b"don't care 1", b"don't care 2"
    assert not merkle.verify_consistency(0, 0, r1, r2, [])
    assert not merkle.verify_consistency(1, 1, r1, r2, [])
    assert not merkle.verify_consistency(1, 0, r1, r2, [])
    assert not merkle.verify_consistency(2, 1, r1, r2, [])
    assert not merkle.verify_consistency(1, 2, ROOTS[0], ROOTS[1], [])
    assert merkle.verify_consistency(0, 0, EMPTY, EMPTY, [])
    assert merkle.verify_consistency(1, 1, ROOTS[0], ROOTS[0], [])
    assert not merkle.verify_consistency(0, 0, EMPTY, EMPTY, [EMPTY])
    assert not merkle.verify_consistency(1, 1, EMPTY, EMPTY, [EMPTY])
    assert not merkle.verify_consistency(0, 1, EMPTY, EMPTY, [EMPTY])


def test_static_inclusion_probes():
    for index, size in ((0, 0), (0, 1), (1, 0), (2, 1)):
        assert not merkle.verify_inclusion(SOME_HASH, index, size, [], b"")
        assert not merkle.verify_inclusion(b"", index, size, [], EMPTY)
        assert not merkle.verify_inclusion(SOME_HASH, index, size, [], EMPTY)
    single = merkle.leaf_hash(b"data")
    assert merkle.verify_inclusion(single, 0, 1, [], single)


def test_compact_range_rejects_a_wrong_node_count():
    with pytest.raises(ValueError):
        merkle.CompactRange(3, [EMPTY])


def test_packed_hashes_behave_like_a_list():
    hs = hashes(8)
    packed = merkle.PackedHashes(b"".join(hs))
    assert len(packed) == 8 and packed[3] == hs[3] and packed[-1] == hs[-1]
    assert packed[2:5] == hs[2:5] and packed[::2] == hs[::2]
    with pytest.raises(IndexError):
        packed[8]
    with pytest.raises(ValueError):
        merkle.PackedHashes(b"x" * 33)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.binary(max_size=6), min_size=1, max_size=40))
def test_every_proof_of_random_trees_verifies(leaves):
    n = len(leaves)
    hs = [merkle.leaf_hash(x) for x in leaves]
    root = naive_mth(leaves)
    assert merkle.root(leaves) == root == merkle.subtree_root(hs, 0, n)
    packed = merkle.PackedHashes(b"".join(hs))
    for i in range(n):
        proof = merkle.inclusion_proof(packed, i)
        assert merkle.verify_inclusion(hs[i], i, n, proof, root)
        if n > 1:
            assert not merkle.verify_inclusion(hs[i], (i + 1) % n, n, proof, root) or hs[i] == hs[(i + 1) % n]
    for m in range(1, n + 1):
        proof = merkle.consistency_proof(hs, m)
        assert merkle.verify_consistency(m, n, naive_mth(leaves[:m]), root, proof)
        if m < n:
            other = naive_mth([b"forked", *leaves[1:m]])
            assert not merkle.verify_consistency(m, n, other, root, proof)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=6), max_size=70))
def test_level_by_level_root_is_the_rfc9162_root(leaves):
    assert merkle.root_from_leaf_hashes([merkle.leaf_hash(x) for x in leaves]) == naive_mth(leaves)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.binary(min_size=32, max_size=32), max_size=40), max_size=5))
def test_extending_a_compact_range_equals_appending_one_by_one(batches):
    one, many = merkle.CompactRange(), merkle.CompactRange()
    for hs in batches:
        for h in hs:
            one.append(h)
        many.extend(hs)
        assert (many.size, many.nodes) == (one.size, one.nodes)
        assert many.root() == one.root() == merkle.fold(one.nodes)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=50))
def test_batch_leaf_hashes_are_the_leaf_hashes(items):
    assert merkle.leaf_hashes_of(items) == [merkle.leaf_hash(x) for x in items]
