"""Every TernaryWeight operation, on single weights and element-wise on arrays."""

from __future__ import annotations

import numpy as np
import pytest

from thermo_cli.codec.ternary import weight as tw
from thermo_cli.errors import ValidationError
from thermo_cli.model import Ternary

NEG, ZERO, POS = Ternary.NEG, Ternary.ZERO, Ternary.POS


def test_type_is_the_model_type():
    assert tw.TernaryWeight is Ternary


@pytest.mark.parametrize(
    ("op", "table"),
    [
        (tw.strengthen, {NEG: ZERO, ZERO: POS, POS: POS}),
        (tw.weaken, {NEG: NEG, ZERO: NEG, POS: ZERO}),
        (tw.flip, {NEG: POS, ZERO: ZERO, POS: NEG}),
        (tw.toward_zero, {NEG: ZERO, ZERO: ZERO, POS: ZERO}),
    ],
)
def test_scalar_and_array_ops(op, table):
    for before, after in table.items():
        assert op(before) is after
        assert op(int(before)) is after
    arr = np.array([[-1, 0, 1], [1, 0, -1]], dtype=np.int8)
    expected = np.vectorize(lambda v: int(table[Ternary(int(v))]))(arr)
    out = op(arr)
    assert out.dtype == np.int8 and out.shape == arr.shape
    assert np.array_equal(out, expected)


def test_model_methods_agree():
    for t in Ternary:
        assert tw.strengthen(t) is t.strengthen()
        assert tw.weaken(t) is t.weaken()


def test_from_float_inclusive_threshold():
    assert tw.from_float(0.5, 0.5) is POS
    assert tw.from_float(-0.5, 0.5) is NEG
    assert tw.from_float(0.4999, 0.5) is ZERO
    assert tw.from_float(0.3) is ZERO  # default threshold 0.5
    assert tw.from_float(0.3, 0.3) is POS
    arr = np.array([0.7, -0.7, 0.1, -0.0, np.inf, -np.inf], dtype=np.float32)
    assert tw.from_float(arr, 0.5).tolist() == [1, -1, 0, 0, 1, -1]
    assert tw.from_float(np.array([3, -3, 0]), 1).tolist() == [1, -1, 0]


def test_from_float_refuses_bad_input():
    with pytest.raises(ValidationError, match="threshold"):
        tw.from_float(0.1, 0.0)
    with pytest.raises(ValidationError, match="threshold"):
        tw.from_float(0.1, float("nan"))
    with pytest.raises(ValidationError, match="NaN"):
        tw.from_float(float("nan"))
    with pytest.raises(ValidationError, match="1 NaN"):
        tw.from_float(np.array([np.nan, 1.0]))
    with pytest.raises(ValidationError, match="dtype"):
        tw.from_float(np.array(["x"]))


def test_to_float():
    assert [tw.to_float(t) for t in (NEG, ZERO, POS)] == [-1.0, 0.0, 1.0]
    out = tw.to_float(np.array([1, -1, 0]))
    assert out.dtype == np.float32 and out.tolist() == [1.0, -1.0, 0.0]


def test_majority_vote():
    assert tw.majority_vote([POS, POS, NEG]) is POS
    assert tw.majority_vote([NEG, NEG, POS, ZERO]) is NEG
    assert tw.majority_vote([POS, NEG]) is ZERO
    assert tw.majority_vote([]) is ZERO
    votes = np.array([[1, 1, -1], [-1, 0, 0], [1, -1, 0]])
    assert tw.majority_vote(votes, axis=1).tolist() == [1, -1, 0]


def test_array_ops_reject_non_ternary_values():
    with pytest.raises(ValidationError, match="not -1, 0 or"):
        tw.strengthen(np.array([0, 2]))
    with pytest.raises(ValidationError):
        tw.flip(5)
