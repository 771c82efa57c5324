"""The engine's incremental state digest equals the audit module's definition."""

from __future__ import annotations

import os
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.audit import merkle
from thermo_cli.audit.state import entry_leaf, state_digest
from thermo_cli.engine.digest import StateDigester, extend_range, fast_entry_leaf, merkle_root
from thermo_cli.engine.plasticity import f32
from thermo_cli.model import Entry, Layer, TensorSpec, Ternary

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
strengths = st.floats(-1, 1).map(f32) | st.floats(allow_nan=False, allow_infinity=False)
entries = st.builds(
    lambda key, value, s, at, count, tern, tensor: Entry(key, value, s, at, count, tern, tensor),
    text, st.binary(max_size=40), strengths,
    st.integers(-(2**63), 2**64 - 2), st.integers(0, 2**64 - 2), st.none() | st.sampled_from(list(Ternary)),
    st.none() | st.builds(TensorSpec, st.just("F32"), st.lists(st.integers(0, 9), max_size=2).map(tuple)),
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(Layer)), entries)
def test_fast_leaf_equals_the_reference_leaf(layer, entry):
    assert fast_entry_leaf(int(layer), entry.key.encode(), entry) == entry_leaf(layer, entry)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(Layer)), entries), max_size=12), st.randoms())
def test_digest_tracks_every_change(placed, rnd):
    layers = {layer: {} for layer in Layer}
    for layer, e in placed:
        layers[layer][e.key] = e
    digester = StateDigester()
    assert digester.digest(layers) == state_digest(layers)
    for _ in range(6):
        occupied = [(lay, k) for lay in Layer for k in layers[lay]]
        if not occupied:
            break
        lay, key = rnd.choice(occupied)
        e = layers[lay][key]
        change = rnd.randrange(8)
        if change == 0:
            e.strength = f32(rnd.random())
        elif change == 1:
            e.value = e.value + b"!"
        elif change == 2:
            e.update_count += 1
        elif change == 3:
            e.ternary = Ternary.POS if e.ternary is None else None
        elif change == 4:
            e.tensor = TensorSpec("F16", (1,)) if e.tensor is None else None
        elif change == 5:
            e.updated_at_ns += 1
        elif change == 6:
            del layers[lay][key]
            layers[Layer((lay + 1) % 4)][key] = e
        else:
            del layers[lay][key]
        assert digester.digest(layers) == state_digest(layers)


def test_zero_strengths_of_either_sign_are_not_confused():
    layers = {layer: {} for layer in Layer}
    layers[Layer.HOT]["k"] = Entry("k", b"", 0.0, 0, 1)
    d = StateDigester()
    assert d.digest(layers) == state_digest(layers)
    layers[Layer.HOT]["k"].strength = -0.0
    assert d.digest(layers) == state_digest(layers)


def test_merkle_root_and_extend_range_match_rfc9162():
    rnd = random.Random(5)
    for n in [0, 1, 2, 3, 4, 5, 7, 8, 9, 31, 33, 100]:
        hs = [os.urandom(32) for _ in range(n)]
        assert merkle_root(hs) == merkle.root_from_leaf_hashes(hs)
    for _ in range(100):
        a, b = merkle.CompactRange(), merkle.CompactRange()
        for _ in range(rnd.randrange(1, 5)):
            hs = [os.urandom(32) for _ in range(rnd.randrange(0, 40))]
            for h in hs:
                a.append(h)
            extend_range(b, hs)
            assert (a.size, a.nodes) == (b.size, b.nodes)
