"""The vectors' digests use RFC 8785 (JCS) JSON, so any language can recompute them."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

_SPEC = importlib.util.spec_from_file_location(
    "make_vectors", Path(__file__).resolve().parents[2] / "format" / "make_vectors.py"
)
assert _SPEC and _SPEC.loader
make_vectors = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(make_vectors)


def test_rfc8785_number_examples():
    # RFC 8785 appendix B: IEEE 754 doubles and the ECMAScript text they serialize to
    cases = [
        (0.0, "0"),
        (-0.0, "0"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (9007199254740992.0, "9007199254740992"),
        (295147905179352830000.0, "295147905179352830000"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (333333333.3333333, "333333333.3333333"),
        (-1.5, "-1.5"),
    ]
    for value, text in cases:
        assert make_vectors.es_number(value) == text


def test_keys_sort_by_utf16_code_units_not_code_points():
    doc = {"\u20ac": 1, "\U0001f600": 2, "\ufb33": 3, "a": 0}
    assert make_vectors.jcs(doc) == '{"a":0,"\u20ac":1,"\U0001f600":2,"\ufb33":3}'


def test_big_integers_become_text_before_hashing():
    safe = make_vectors.i_json_safe({"updated_at": 1_700_000_000_000_000_123, "n": 7})
    assert make_vectors.jcs(safe) == '{"n":7,"updated_at":"1700000000000000123"}'


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_read_back_to_the_same_double(x):
    text = make_vectors.es_number(x)
    assert float(text) == x or (x == 0 and float(text) == 0)
    assert math.isfinite(float(text))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
        max_leaves=20,
    )
)
def test_jcs_is_json_that_parses_back_to_the_same_value(value):
    assert json.loads(make_vectors.jcs(value)) == value
