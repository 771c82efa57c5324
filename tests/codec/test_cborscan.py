"""The CBOR pre-scan counts exactly what cbor2 decodes and refuses what the format forbids."""

from __future__ import annotations

from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.codec import cbor
from thermo_cli.codec.cborscan import needs_scan, scan
from thermo_cli.config.limits import Limits, use_limits
from thermo_cli.errors import CorruptError, LimitExceededError

BIG = 10**9

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.binary(max_size=30),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=20) | st.dictionaries(st.text(max_size=5), inner, max_size=8),
    max_leaves=200,
)


def items(v: Any) -> int:
    """Heads in the encoding of a decoded value: a bignum is a tag plus a byte string."""
    if isinstance(v, dict):
        return 1 + sum(1 + items(x) for x in v.values())
    if isinstance(v, list):
        return 1 + sum(items(x) for x in v)
    if isinstance(v, int) and not isinstance(v, bool) and not -(2**64) <= v < 2**64:
        return 2
    return 1


def depth(v: Any) -> int:
    """Nesting as cbor2 counts it: a container with members, or a tag, is one level."""
    if isinstance(v, dict) and v:
        return 1 + max(depth(x) for x in v.values())
    if isinstance(v, list) and v:
        return 1 + max(depth(x) for x in v)
    if isinstance(v, int) and not isinstance(v, bool) and not -(2**64) <= v < 2**64:
        return 1
    return 0


@settings(max_examples=150, deadline=None)
@given(values)
def test_count_matches_the_decoded_value(v: Any) -> None:
    data = cbor2.dumps(v, canonical=True)
    assert scan(data, max_items=BIG) == items(cbor2.loads(data))


@settings(max_examples=150, deadline=None)
@given(values, st.integers(min_value=1, max_value=300))
def test_items_cap_refuses_exactly_above_the_count(v: Any, cap: int) -> None:
    data = cbor2.dumps(v, canonical=True)
    n = items(v)
    if n <= cap:
        assert scan(data, max_items=cap) == n
    else:
        with pytest.raises(LimitExceededError, match="max_cbor_items"):
            scan(data, max_items=cap)


@settings(max_examples=150, deadline=None)
@given(values, st.integers(min_value=0, max_value=6))
def test_depth_decision_matches_cbor2(v: Any, max_depth: int) -> None:
    data = cbor2.dumps(v, canonical=True)
    try:
        cbor2.loads(data, max_depth=max_depth)
        accepted = True
    except cbor2.CBORDecodeError:
        accepted = False
    if accepted:
        scan(data, max_items=BIG, max_depth=max_depth)
    else:
        with pytest.raises(LimitExceededError, match="nesting"):
            scan(data, max_items=BIG, max_depth=max_depth)


@pytest.mark.parametrize("nest", [31, 32, 33])
@pytest.mark.parametrize("inner", [b"\xa0", b"\x00"])
def test_depth_32_counts_like_cbor2(nest: int, inner: bytes) -> None:
    data = b"\x81" * nest + inner  # an empty container adds no level, as in cbor2
    if nest <= 32:
        cbor2.loads(data, max_depth=32)
        assert scan(data, max_items=BIG) == nest + 1
    else:
        with pytest.raises(cbor2.CBORDecodeError):
            cbor2.loads(data, max_depth=32)
        with pytest.raises(LimitExceededError, match="nesting deeper than 32"):
            scan(data, max_items=BIG)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x9f\x00\xff", "indefinite"),
        (b"\xbf\xff", "indefinite"),
        (b"\x5f\x41\x00\xff", "indefinite"),
        (b"\xff", "indefinite"),
        (b"\x1c", "reserved"),
        (b"\xc1\x00", "tag 1"),
        (b"\xd8\x18\x40", "tag 24"),
        (b"\x82\x00", "past the end"),
        (b"\x19\x01", "ends inside"),
        (b"\x43ab", "past the end"),
        (b"\x9a\xff\xff\xff\xff\x00", "past the end"),
        (b"\x00\x00", "1 bytes after"),
    ],
)
def test_malformed_structure_is_corrupt(data: bytes, reason: str) -> None:
    with pytest.raises(CorruptError, match=reason):
        scan(data, max_items=BIG)


def test_bignums_only_where_allowed() -> None:
    data = cbor2.dumps(2**70)
    assert scan(data, max_items=BIG) == 2
    with pytest.raises(CorruptError, match="tag 2"):
        scan(data, max_items=BIG, bignums=False)


def test_run_of_empty_maps_is_refused_at_the_cap() -> None:
    data = b"\x9a\x00\x1e\x84\x80" + b"\xa0" * 2_000_000
    with pytest.raises(LimitExceededError, match="max_cbor_items=1000000"):
        scan(data, max_items=1_000_000)
    assert scan(data, max_items=2_000_001) == 2_000_001


def test_a_value_no_longer_than_the_cap_needs_no_scan() -> None:
    assert not needs_scan(100, 100) and needs_scan(101, 100)


def test_decode_refuses_before_cbor2_builds_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: Any, **k: Any) -> Any:
        raise AssertionError("cbor2.loads ran")

    monkeypatch.setattr(cbor2, "loads", boom)
    data = cbor2.dumps([{}] * 5000)
    with pytest.raises(LimitExceededError, match="max_cbor_items=1000"):
        cbor.decode(data, max_items=1000)
    with use_limits(Limits(max_cbor_items=1000)), pytest.raises(LimitExceededError, match="max_cbor_items"):
        cbor.decode_canonical(data)


def test_decode_within_the_cap_is_unchanged() -> None:
    data = cbor2.dumps({"a": [{}] * 5000}, canonical=True)
    assert cbor.decode_canonical(data, max_items=5003) == {"a": [{}] * 5000}
    with pytest.raises(LimitExceededError, match="max_cbor_items=5002"):
        cbor.decode_canonical(data, max_items=5002)
