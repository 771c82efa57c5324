"""Ternary STDP: the crate's table and the dt = 0 FIX."""

from __future__ import annotations

import numpy as np
import pytest

from thermo_cli.operations.snn.rules import ternary_quantize, ternary_stdp

NEG, ZERO, POS = -1.0, 0.0, 1.0


@pytest.mark.parametrize(
    ("current", "dt", "want", "want_reference"),
    [
        (NEG, 100, ZERO, ZERO),
        (ZERO, 100, POS, POS),
        (POS, 100, POS, POS),  # causal: strengthen
        (POS, -100, ZERO, ZERO),
        (ZERO, -100, NEG, NEG),
        (NEG, -100, NEG, NEG),  # acausal: weaken
        (NEG, 0, ZERO, ZERO),
        (ZERO, 0, POS, ZERO),
        (POS, 0, POS, POS),  # co-firing: FIX lifts 0
    ],
)
def test_both_fired(current, dt, want, want_reference):
    assert ternary_stdp(np.array([current]), True, True, dt)[0] == want
    assert ternary_stdp(np.array([current]), True, True, dt, reference=True)[0] == want_reference


@pytest.mark.parametrize(("pre", "post"), [(True, False), (False, True), (False, False)])
def test_without_both_spikes_nothing_changes(pre, post):
    w = np.array([NEG, ZERO, POS])
    assert np.array_equal(ternary_stdp(w, pre, post, 100), w)


def test_vectorized_over_arrays():
    w = np.array([NEG, ZERO, POS, ZERO])
    out = ternary_stdp(w, np.array([True, True, True, False]), True, np.array([0, 0, -5, 5]))
    assert out.tolist() == [ZERO, POS, ZERO, ZERO]
    assert out.dtype == np.float32


def test_quantize():
    assert ternary_quantize(np.array([0.3, 0.29, -0.3, -0.1]), 0.3).tolist() == [1, 0, -1, 0]
    assert ternary_quantize(0.1, 0.3) == 0
