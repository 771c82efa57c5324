"""The state digest: leaf order, what each leaf covers, entry proofs."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.codec import cbor, leaves
from thermo_cli.integrity import merkle, state
from thermo_cli.model import Entry, Layer, TensorSpec, Ternary
from thermo_cli.model.valueclass import replace


def layers_of(*items: tuple[Layer, Entry]) -> dict[Layer, dict[str, Entry]]:
    out: dict[Layer, dict[str, Entry]] = {layer: {} for layer in Layer}
    for layer, e in items:
        out[layer][e.key] = e
    return out


def sample() -> dict[Layer, dict[str, Entry]]:
    return layers_of(
        (Layer.HOT, Entry("b", b"bee", 0.5, 10)),
        (Layer.COLD, Entry("a", b"cold a", 0.75, 20, 3, Ternary.POS)),
        (Layer.HOT, Entry("a", b"hot a", 0.25, 30)),
        (Layer.WARM, Entry("\u00e9", b"x" * 100, 1.0, 40, 2, None, TensorSpec("F32", (5, 5), "raw"))),
        (Layer.COOL, Entry("Z", b"", 0.0, 50)),
    )


def test_leaves_are_ordered_by_key_bytes_then_layer():
    order = [(layer, e.key) for layer, e in state.ordered_entries(sample())]
    assert order == [
        (Layer.COOL, "Z"),
        (Layer.HOT, "a"),
        (Layer.COLD, "a"),
        (Layer.HOT, "b"),
        (Layer.WARM, "\u00e9"),
    ]


def test_leaf_is_the_canonical_entry_map_with_the_value_digest():
    e = Entry("k", b"value", 0.5, 7, 2, Ternary.NEG, TensorSpec("F32", (1,), "raw"))
    m = cbor.decode(leaves.entry_leaf(Layer.WARM, e))
    assert m == {
        "layer": 1,
        "key": "k",
        "value_sha256": hashlib.sha256(b"value").digest(),
        "strength": 0.5,
        "ternary": -1,
        "updated_at": 7,
        "update_count": 2,
        "tensor": {
            "dtype": "F32",
            "shape": [1],
            "enc": "raw",
            "scales": None,
            "per_row": False,
            "method": None,
        },
    }
    digest = hashlib.sha256(b"value").digest()
    assert leaves.entry_leaf(Layer.WARM, e) == leaves.entry_leaf(Layer.WARM, e, digest)


def test_digest_is_the_merkle_root_of_the_leaves():
    layers = sample()
    leaves = [leaf for _, _, leaf in state.iter_leaves(layers)]
    assert state.state_digest(layers) == merkle.root(leaves)
    assert state.state_digest({layer: {} for layer in Layer}) == merkle.EMPTY_ROOT


def test_every_field_and_every_value_byte_changes_the_digest():
    base = state.state_digest(sample())
    changes = [
        lambda e: replace(e, strength=0.5000001),
        lambda e: replace(e, updated_at_ns=e.updated_at_ns + 1),
        lambda e: replace(e, update_count=e.update_count + 1),
        lambda e: replace(e, ternary=Ternary.ZERO),
        lambda e: replace(e, tensor=TensorSpec("F16", (3,), "raw")),
        lambda e: replace(e, key=e.key + "x"),
    ]
    for change in changes:
        layers = sample()
        layers[Layer.COLD]["a"] = change(layers[Layer.COLD]["a"])
        assert state.state_digest(layers) != base
    value = sample()[Layer.WARM]["\u00e9"].value
    for i in range(len(value)):
        layers = sample()
        e = layers[Layer.WARM]["\u00e9"]
        flipped = bytearray(value)
        flipped[i] ^= 1
        layers[Layer.WARM]["\u00e9"] = replace(e, value=bytes(flipped))
        assert state.state_digest(layers) != base
    moved = sample()
    moved[Layer.COOL]["b"] = moved[Layer.HOT].pop("b")
    assert state.state_digest(moved) != base
    removed = sample()
    del removed[Layer.COOL]["Z"]
    assert state.state_digest(removed) != base


def test_entry_proofs_verify_and_refuse_other_leaves():
    layers = sample()
    digest = state.state_digest(layers)
    for layer, e in state.ordered_entries(layers):
        p = state.entry_proof(layers, e.key, layer)
        assert p.root == digest and p.entry["key"] == e.key and p.layer == layer
        assert state.verify_entry_proof(p.leaf, p.index, p.tree_size, p.path, digest)
        forged = leaves.entry_leaf(layer, replace(e, strength=0.125))
        assert not state.verify_entry_proof(forged, p.index, p.tree_size, p.path, digest)
    assert state.entry_proof(layers, "a").layer is Layer.HOT  # the hottest layer holding it


def test_missing_key_raises_not_found():
    import pytest

    from thermo_cli.errors import NotFoundError

    with pytest.raises(NotFoundError):
        state.entry_proof(sample(), "nope")
    with pytest.raises(NotFoundError):
        state.entry_proof(sample(), "b", Layer.COLD)


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.sampled_from(list(Layer)), st.text(min_size=1, max_size=5)),
        st.tuples(st.binary(max_size=8), st.floats(0, 1, width=32)),
        max_size=12,
    ),
    st.randoms(),
)
def test_digest_does_not_depend_on_insertion_order(items, rnd):
    pairs = [(layer, Entry(k, v, s, 1)) for (layer, k), (v, s) in items.items()]
    shuffled = list(pairs)
    rnd.shuffle(shuffled)
    assert state.state_digest(layers_of(*pairs)) == state.state_digest(layers_of(*shuffled))
    triples = [(e.key.encode(), int(layer), leaves.entry_leaf(layer, e)) for layer, e in shuffled]
    assert state.digest_of_leaves(triples) == state.state_digest(layers_of(*pairs))


_keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
_strengths = st.floats(width=32, allow_nan=False) | st.floats(allow_nan=False) | st.sampled_from([0.0, -0.0])
_tensors = st.none() | st.builds(
    TensorSpec,
    st.sampled_from(["F32", "BF16", "I8"]),
    st.lists(st.integers(0, 70000), max_size=3).map(tuple),
    st.sampled_from(["raw", "ternary"]),
    st.none() | st.binary(max_size=8),
    st.booleans(),
    st.none() | st.just("absmean"),
)
_entries = st.builds(
    Entry,
    _keys,
    st.binary(max_size=40),
    _strengths,
    st.integers(-(2**63), 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.none() | st.sampled_from(list(Ternary)),
    _tensors,
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(Layer)), _entries)
def test_the_leaf_written_directly_is_the_canonical_cbor_of_the_entry_map(layer, e):
    """One definition: the hand-written leaf layout is byte-identical to cbor2's canonical encoding."""
    assert leaves.entry_leaf(layer, e) == cbor.encode(leaves.entry_map(layer, e))
    digest = hashlib.sha256(e.value).digest()
    prefixed = leaves.leaf_bytes(leaves.LEAF_HASH_PREFIX, int(layer), e.key.encode(), e, digest)
    assert hashlib.sha256(prefixed).digest() == merkle.leaf_hash(leaves.entry_leaf(layer, e))


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(list(Layer)), st.lists(_entries, max_size=12))
def test_leaves_hashed_from_columns_equal_the_leaves_of_the_entries(layer, entries):
    """A directory chunk's leaves, hashed from its columns without building entries, are the
    entries' own leaf hashes (the binding of a lazily read layer relies on it)."""
    specs = list(dict.fromkeys(e.tensor for e in entries if e.tensor is not None))
    columns = (
        [e.strength for e in entries],
        [2 if e.ternary is None else int(e.ternary) for e in entries],
        [e.updated_at_ns for e in entries],
        [e.update_count for e in entries],
        [-1 if e.tensor is None else specs.index(e.tensor) for e in entries],
    )
    shas = [hashlib.sha256(e.value).digest() for e in entries]
    got = leaves.column_leaf_hashes(
        int(layer), [e.key for e in entries], columns, leaves.tensor_items(specs), b"".join(shas)
    )
    assert got == [merkle.leaf_hash(leaves.entry_leaf(layer, e)) for e in entries]
