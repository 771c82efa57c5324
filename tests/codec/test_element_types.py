"""BF16 and 8-bit float bits handed out as ml_dtypes types (codec.tensors.with_element_type)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.codec.tensors import DTYPES, array_to_value, value_to_array, with_element_type

ml_dtypes = pytest.importorskip("ml_dtypes")

BIT_FLOATS = [d for d in DTYPES.values() if d.is_float and not d.native]


@pytest.mark.parametrize("info", BIT_FLOATS, ids=lambda d: d.name)
@settings(max_examples=25, deadline=None)
@given(bits=st.lists(st.integers(0, 255), min_size=0, max_size=16))
def test_bits_become_the_ml_dtypes_type_unchanged(info, bits):
    element = getattr(ml_dtypes, info.numpy_name or "", None)
    if element is None:
        pytest.skip(f"this ml_dtypes has no {info.numpy_name}")
    raw = np.array(bits, np.uint8).view(info.storage) if info.itemsize == 1 else np.array(bits, "<u2")
    typed = with_element_type(raw, info.name)
    assert typed.dtype == np.dtype(element) and typed.tobytes() == raw.tobytes()
    value, spec = array_to_value(typed)  # and back: the same entry bytes and dtype name
    assert (value, spec.dtype) == (raw.tobytes(), info.name)
    assert value_to_array(value, spec).tobytes() == raw.tobytes()


@pytest.mark.parametrize("name", ["F32", "I8", "BOOL", "F16", "U16"])
def test_native_dtypes_are_left_alone(name):
    raw = np.zeros(3, DTYPES[name].storage)
    assert with_element_type(raw, name) is raw
