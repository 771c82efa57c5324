"""The engine's incremental state digest equals the audit module's definition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.engine.plasticity import f32
from thermo_cli.integrity.digest import StateDigester
from thermo_cli.integrity.state import state_digest
from thermo_cli.model import Entry, Layer, TensorSpec, Ternary

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
strengths = st.floats(-1, 1).map(f32) | st.floats(allow_nan=False, allow_infinity=False)
entries = st.builds(
    lambda key, value, s, at, count, tern, tensor: Entry(key, value, s, at, count, tern, tensor),
    text,
    st.binary(max_size=40),
    strengths,
    st.integers(-(2**63), 2**64 - 10),  # room for the test's increments below
    st.integers(0, 2**64 - 10),
    st.none() | st.sampled_from(list(Ternary)),
    st.none() | st.builds(TensorSpec, st.just("F32"), st.lists(st.integers(0, 9), max_size=2).map(tuple)),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(list(Layer)), entries), max_size=12), st.randoms())
def test_digest_tracks_every_change(placed, rnd):
    layers = {layer: {} for layer in Layer}
    for layer, e in placed:
        layers[layer][e.key] = e
    digester = StateDigester()
    assert digester.digest(layers) == state_digest(layers)
    for _ in range(8):
        occupied = [(lay, k) for lay in Layer for k in layers[lay]]
        if not occupied:
            break
        lay, key = rnd.choice(occupied)
        e = layers[lay][key]
        change = rnd.randrange(9)
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
        elif change == 7:  # a copy in another layer with another value: no digest is borrowed
            layers[Layer((lay + 2) % 4)][key] = Entry(key, e.value + b"?", e.strength, e.updated_at_ns)
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


def test_a_moved_entry_reuses_its_value_digest_but_not_a_changed_value():
    layers = {layer: {} for layer in Layer}
    e = Entry("k", b"v" * 100, 0.5, 1, 1)
    layers[Layer.HOT]["k"] = e
    d = StateDigester()
    d.digest(layers)
    layers[Layer.WARM]["k"] = layers[Layer.HOT].pop("k")
    assert d.digest(layers) == state_digest(layers)
    e.value = b"w" * 100
    assert d.digest(layers) == state_digest(layers)
