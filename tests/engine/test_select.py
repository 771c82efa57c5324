"""The declarative strength test: one answer per entry, whether asked of entries or of columns."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.engine.plasticity import f32
from thermo_cli.engine.select import NO_TERNARY_CODE, StrengthTest, select_keys
from thermo_cli.model import Entry, Ternary

_strengths = st.floats(0.0, 1.0).map(f32)
_tests = st.builds(
    StrengthTest,
    below=st.none() | _strengths,
    at_least=st.none() | _strengths,
    min_count=st.integers(0, 2**64 - 1) | st.integers(0, 5),
    ternary_zero=st.booleans(),
)
_entries = st.lists(
    st.tuples(
        _strengths, st.integers(0, 2**64 - 1) | st.integers(0, 6), st.none() | st.sampled_from(list(Ternary))
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_tests, _entries)
def test_the_column_mask_and_the_entry_test_agree(test, rows):
    entries = [Entry(f"k{i}", b"", s, 0, n, t) for i, (s, n, t) in enumerate(rows)]
    strength = np.array([s for s, _, _ in rows], dtype="<f8")
    count = np.array([n for _, n, _ in rows], dtype="<u8")
    ternary = np.array([NO_TERNARY_CODE if t is None else int(t) for _, _, t in rows], dtype="i1")
    mask = test.mask(strength, count, ternary)
    assert mask.tolist() == [test.passes(e) for e in entries]


def test_ternary_entries_pass_consolidation_prune_exactly_when_zero():
    test = StrengthTest(below=f32(0.1), ternary_zero=True)
    layer = {
        "weak": Entry("weak", b"", 0.05, 0),
        "strong": Entry("strong", b"", 0.5, 0),
        "t0": Entry("t0", b"", 0.9, 0, 1, Ternary.ZERO),
        "t1": Entry("t1", b"", 0.0, 0, 1, Ternary.POS),
    }
    assert select_keys(layer, test) == ["weak", "t0"]


def test_a_layer_with_its_own_answer_is_asked_for_it():
    class Columnar(dict):
        def select_keys(self, test):
            return ["from the columns"]

    assert select_keys(Columnar(a=Entry("a", b"", 0.0, 0)), StrengthTest(below=1.0)) == ["from the columns"]
