"""Semantics of a single ternary weight, and the same operations element-wise on arrays.

The one ternary type is :class:`thermo_cli.model.Ternary` (``TernaryWeight`` here, the
crate's name); its ``strengthen``/``weaken`` methods are the scalar rules. The functions
below accept either a scalar (returning a :class:`Ternary`) or an integer array of
-1/0/+1 (returning an int8 array), so code that works on whole tensors never loops.

Rules (ENGINE.md): strengthen Neg→Zero→Pos (Pos stays); weaken Pos→Zero→Neg (Neg
stays); flip swaps Pos and Neg (Zero stays); from a float with threshold t: ``w >= t`` →
Pos, ``w <= -t`` → Neg, else Zero; majority vote: more Pos → Pos, more Neg → Neg, a tie →
Zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermo_cli.codec.ternary.packing import check_values
from thermo_cli.errors import ValidationError
from thermo_cli.model import Ternary

TernaryWeight = Ternary
"""The crate's ``TernaryWeight``: the model's :class:`Ternary` (-1/0/+1)."""

DEFAULT_THRESHOLD = 0.5
"""Threshold used by :func:`from_float` when none is given (the crate's fallback value)."""


def _is_scalar(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def _values(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    return check_values(arr).reshape(arr.shape)


def strengthen(x: Any) -> Any:
    """One step up (Neg→Zero→Pos, Pos stays)."""
    if _is_scalar(x):
        return Ternary.coerce(x).strengthen()
    return np.minimum(_values(x) + 1, 1).astype(np.int8)


def weaken(x: Any) -> Any:
    """One step down (Pos→Zero→Neg, Neg stays)."""
    if _is_scalar(x):
        return Ternary.coerce(x).weaken()
    return np.maximum(_values(x) - 1, -1).astype(np.int8)


def flip(x: Any) -> Any:
    """Swap Pos and Neg; Zero stays."""
    if _is_scalar(x):
        return Ternary(-int(Ternary.coerce(x)))
    return (-_values(x)).astype(np.int8)


def toward_zero(x: Any) -> Any:
    """One step toward Zero (the crate's ternary decay)."""
    if _is_scalar(x):
        return Ternary(0)
    return np.zeros_like(_values(x))


def from_float(x: Any, threshold: float = DEFAULT_THRESHOLD) -> Any:
    """Quantize: ``w >= t`` → Pos, ``w <= -t`` → Neg, else Zero (t must be > 0)."""
    t = float(threshold)
    if not t > 0.0 or t == float("inf"):
        raise ValidationError(f"threshold: must be a finite number > 0, got {threshold!r}")
    if _is_scalar(x):
        v = float(x)
        if v != v:
            raise ValidationError("weight: NaN cannot be quantized")
        return Ternary.POS if v >= t else Ternary.NEG if v <= -t else Ternary.ZERO
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise ValidationError(f"weights: expected numbers, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValidationError(f"weights: {int(np.isnan(arr).sum())} NaN values cannot be quantized")
    return ((arr >= t).astype(np.int8) - (arr <= -t).astype(np.int8)).astype(np.int8)


def to_float(x: Any) -> Any:
    """-1.0 / 0.0 / +1.0 (float32 for arrays)."""
    if _is_scalar(x) or isinstance(x, Ternary):
        return float(Ternary.coerce(int(x)))
    return _values(x).astype(np.float32)


def majority_vote(votes: Any, axis: int | None = None) -> Any:
    """More Pos → Pos, more Neg → Neg, tie → Zero (over ``axis``, or all values)."""
    arr = _values(votes)
    total = arr.astype(np.int64).sum(axis=axis)
    result = np.sign(total).astype(np.int8)
    return Ternary(int(result)) if np.ndim(result) == 0 else result
