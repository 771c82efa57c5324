"""PackedTernary and the pack/unpack functions: round trips, element access, statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from thermo_cli.codec.ternary import packing
from thermo_cli.codec.ternary.packing import (
    PackedTernary,
    pack,
    packed_size,
    unpack,
    unpack_codes,
    unpack_scaled,
)
from thermo_cli.codec.ternary.quantize import packed_from_float
from thermo_cli.errors import CorruptError, ValidationError
from thermo_cli.model import Ternary

from .test_golden import bit_loop_pack

ternary_arrays = hnp.arrays(np.int8, st.integers(0, 300), elements=st.integers(-1, 1))


@given(ternary_arrays)
def test_round_trip_any_length(values):
    data = pack(values)
    assert data.dtype == np.uint8 and data.size == packed_size(values.size)
    assert data.tobytes() == bit_loop_pack(values.tolist())
    assert np.array_equal(unpack(data, values.size), values)
    assert np.array_equal(unpack_scaled(data, values.size, 2.5), values.astype(np.float32) * 2.5)
    assert np.array_equal(unpack_codes(data, values.size), np.where(values == -1, 2, values))


@given(hnp.arrays(np.uint8, st.integers(0, 80)))
def test_any_bytes_unpack_and_repack_canonically(data):
    """Every byte string decodes (11 → 0); re-packing clears reserved codes only."""
    n = 4 * data.size
    values = unpack(data, n)
    assert set(np.unique(values).tolist()) <= {-1, 0, 1}
    canonical = pack(values)
    codes = (data[:, None] >> np.array([0, 2, 4, 6], dtype=np.uint8)) & 3
    expected = np.where(codes == 3, 0, codes)
    assert np.array_equal(canonical, (expected << np.array([0, 2, 4, 6], dtype=np.uint8)).sum(axis=1))


def test_large_round_trip_crosses_chunks():
    rng = np.random.default_rng(1)
    values = rng.integers(-1, 2, 3 * 4 * packing.CHUNK + 7).astype(np.int8)
    assert np.array_equal(unpack(pack(values), values.size), values)
    assert np.array_equal(unpack_scaled(pack(values), values.size, -0.5), values * np.float32(-0.5))


def test_pack_accepts_other_integer_and_bool_and_float_inputs():
    assert pack([1, 0, -1]).tobytes() == bytes([0b100001])
    assert pack(np.array([True, False])).tobytes() == bytes([1])
    assert pack(np.array([1.0, -1.0])).tobytes() == bytes([0b1001])


def test_pack_rejects_values_outside_ternary():
    with pytest.raises(ValidationError, match=r"2 values are not -1, 0 or \+1, first at index 1"):
        pack(np.array([1, 2, 0, -3]))
    with pytest.raises(ValidationError, match="dtype"):
        pack(np.array(["a"]))


def test_unpack_checks_length_against_bytes():
    with pytest.raises(CorruptError, match="5 weights need 2 bytes, got 1"):
        unpack(b"\x00", 5)
    with pytest.raises(ValidationError, match="length"):
        unpack(b"", -1)
    with pytest.raises(ValidationError, match="bytes or a uint8 array"):
        unpack([1, 2], 8)


# --- PackedTernary ------------------------------------------------------------------------------


def test_get_set_and_indexing():
    p = PackedTernary.zeros(10)
    assert len(p) == 10 and p.nbytes == 3 and p.count_active() == 0
    p[0] = 1
    p.set(5, Ternary.NEG)
    p[-1] = "Pos"
    assert p[0] is Ternary.POS and p.get(5) is Ternary.NEG and p[9] is Ternary.POS
    assert p.unpack().tolist() == [1, 0, 0, 0, 0, -1, 0, 0, 0, 1]
    p[5] = 0
    assert p[5] is Ternary.ZERO
    assert p[2:6].tolist() == [0, 0, 0, 0]
    assert list(p)[:2] == [Ternary.POS, Ternary.ZERO]
    assert p.to_bytes()[2] >> 4 == 0  # padding stays zero
    with pytest.raises(IndexError):
        p[10]
    with pytest.raises(IndexError):
        p.set(-11, 1)
    with pytest.raises(ValidationError):
        p[1] = 2
    with pytest.raises(ValidationError):
        p["x"]


def test_set_overwrites_reserved_code():
    p = PackedTernary(b"\xff", 4)
    assert p.unpack().tolist() == [0, 0, 0, 0]
    p[1] = -1
    assert p.to_bytes() == bytes([0b11111011])
    assert p.unpack().tolist() == [0, -1, 0, 0]


@given(ternary_arrays, st.integers(-5, 5))
@settings(max_examples=50)
def test_statistics_match_numpy(values, seed):
    p = PackedTernary.from_values(values)
    active = int(np.count_nonzero(values))
    assert p.count_active() == active
    assert p.sparsity() == (0.0 if values.size == 0 else pytest.approx(1 - active / values.size))
    rng = np.random.default_rng(seed + 5)
    other = rng.integers(-1, 2, values.size).astype(np.int8)
    assert p.dot(PackedTernary.from_values(other)) == int(np.dot(values.astype(np.int64), other))
    floats = rng.standard_normal(values.size)
    assert p.dot(floats) == pytest.approx(float(np.dot(values, floats)), abs=1e-9)
    assert p.dot(other.astype(np.int32)) == int(np.dot(values.astype(np.int64), other))
    assert np.array_equal(p.to_float(), values.astype(np.float32))


def test_dot_ignores_reserved_codes_and_checks_lengths():
    a = PackedTernary(bytes([0b11_01_10_01]), 4)  # +1, -1, +1, reserved
    b = PackedTernary(bytes([0b11_01_01_01]), 4)  # +1, +1, +1, reserved
    assert a.dot(b) == 1
    with pytest.raises(ValidationError, match="lengths differ"):
        a.dot(PackedTernary.zeros(5))
    with pytest.raises(ValidationError, match="lengths differ"):
        a.dot(np.ones(3))


def test_equality_treats_reserved_as_zero_and_repr():
    assert PackedTernary(b"\xff", 4) == PackedTernary.zeros(4)
    assert PackedTernary.zeros(4) != PackedTernary.zeros(5)
    assert PackedTernary.from_values([1, -1, 0]) != PackedTernary.from_values([1, 0, 0])
    assert "values=[+1, -1, 0]" in repr(PackedTernary.from_values([1, -1, 0]))
    assert PackedTernary.zeros(0).sparsity() == 0.0


def test_data_view_is_read_only_and_copies_are_independent():
    raw = bytearray(b"\x01")
    p = PackedTernary(raw, 1)
    raw[0] = 2
    assert p[0] is Ternary.POS
    with pytest.raises(ValueError):
        p.data[0] = 0


def test_from_float_uses_crate_rule_and_adaptive_threshold():
    w = np.array([0.3, -0.3, 0.1, -0.05, 0.0], dtype=np.float32)
    # adaptive: mean |w| over |w| > 1e-6 = 0.75 / 4 = 0.1875
    assert packed_from_float(w).unpack().tolist() == [1, -1, 0, 0, 0]
    assert packed_from_float(w, 0.1).unpack().tolist() == [1, -1, 1, 0, 0]
    assert packed_from_float(np.zeros(3, np.float32)).count_active() == 0
    with pytest.raises(ValidationError, match="non-finite"):
        packed_from_float(np.array([np.nan, 1.0]))
    with pytest.raises(ValidationError, match="threshold"):
        packed_from_float(w, 0.0)


def test_compression_ratio():
    assert packing.compression_ratio(16) == 16.0
    assert packing.compression_ratio(5) == 10.0


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize(("rows", "cols"), [(7, 5), (9, 4), (3, 18), (1, 33), (5, 1)])
def test_row_scaled_unpack_in_small_steps(monkeypatch, threads, rows, cols):
    from thermo_cli.codec.ternary import parallel

    monkeypatch.setattr(packing, "GATHER_STEP", 2)
    monkeypatch.setattr(parallel, "THREADS", threads)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 0)
    monkeypatch.setattr(parallel, "FORCE", True)
    rng = np.random.default_rng(rows * cols)
    values = rng.integers(-1, 2, rows * cols).astype(np.int8)
    scales = rng.random(rows).astype(np.float32) + 0.5
    data = pack(values)
    got = packing.unpack_rows_scaled(data, rows, cols, scales)
    assert np.array_equal(got, (values.reshape(rows, cols) * scales[:, None]).ravel())
    assert np.array_equal(unpack(data, values.size), values)
    assert np.array_equal(unpack_scaled(data, values.size, 3.0), values * np.float32(3.0))


def test_thread_pool_size_follows_idle_cores():
    import os

    from thermo_cli.codec.ternary import parallel

    assert 1 <= parallel.idle_cores() <= (os.cpu_count() or 1)
    assert parallel.run(lambda b: b * 2, [1, 2, 3], 0) == [2, 4, 6]
