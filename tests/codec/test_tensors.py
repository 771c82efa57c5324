"""thermo_cli.codec.tensors: the dtype table, raw and ternary entry values, float conversions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from thermo_cli.codec.tensors import (
    DTYPES,
    SAFETENSORS_DTYPES,
    array_to_value,
    check_spec,
    dense_nbytes,
    dtype_info,
    dtype_of,
    from_float32,
    packed_shape,
    safetensors_lib_dtype,
    spec_nbytes,
    tensor_nbytes,
    ternary_encode,
    ternary_encode_tensor,
    to_float32,
    unpacked_shape,
    value_to_array,
)
from thermo_cli.errors import CorruptError, ValidationError
from thermo_cli.model import TensorSpec

NATIVE = [name for name, d in DTYPES.items() if d.native]
BITS = [name for name, d in DTYPES.items() if not d.native]


def test_table_covers_the_safetensors_dtypes():
    for name in (
        "BOOL",
        "U8",
        "I8",
        "U16",
        "I16",
        "U32",
        "I32",
        "U64",
        "I64",
        "F16",
        "F32",
        "F64",
        "BF16",
        "F8_E4M3",
        "F8_E5M2",
        "C64",
    ):
        assert name in DTYPES
    assert dtype_info("BF16").itemsize == 2 and not dtype_info("BF16").native
    assert safetensors_lib_dtype("F8_E4M3") == "float8_e4m3fn"
    assert dtype_info("F4").is_packed and dtype_info("F4").bits == 4 and "F4" not in DTYPES
    with pytest.raises(ValidationError, match="no array type"):
        safetensors_lib_dtype("F6_E2M3")
    with pytest.raises(ValidationError, match="unknown dtype 'Q7'"):
        dtype_info("Q7")
    with pytest.raises(ValidationError, match="no safetensors equivalent"):
        dtype_of(np.zeros(2, dtype=np.complex128))


@pytest.mark.parametrize("name", NATIVE)
@given(data=st.data())
@settings(max_examples=15)
def test_raw_round_trip_native(name, data):
    storage = np.dtype(DTYPES[name].storage)
    arr = data.draw(hnp.arrays(storage, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)))
    value, spec = array_to_value(arr)
    assert spec == TensorSpec(dtype=name, shape=arr.shape)
    assert value == arr.astype(storage.newbyteorder("<")).tobytes()
    back = value_to_array(value, spec)
    assert back.shape == arr.shape
    assert back.tobytes() == value  # bit-exact, NaN payloads included


@pytest.mark.parametrize("name", BITS)
def test_raw_round_trip_bit_pattern_dtypes(name):
    storage = DTYPES[name].storage
    bits = np.arange(256 if np.dtype(storage).itemsize == 1 else 65536, dtype=storage).reshape(-1, 8)
    value, spec = array_to_value(bits, name)
    assert spec.dtype == name and spec.shape == bits.shape
    back = value_to_array(value, spec)
    assert back.dtype == np.dtype(storage) and np.array_equal(back, bits)


def test_big_endian_input_is_stored_little_endian():
    arr = np.array([1.5, -2.0], dtype=">f4")
    value, spec = array_to_value(arr)
    assert value == np.array([1.5, -2.0], dtype="<f4").tobytes() and spec.dtype == "F32"


def test_dtype_override_checks_compatibility():
    with pytest.raises(ValidationError, match="numpy dtype float32"):
        array_to_value(np.zeros(2, np.float32), "I32")
    value, spec = array_to_value(np.array([1.0, 0.5], np.float32), "BF16")  # rounds to bfloat16
    assert spec.dtype == "BF16" and value == bytes.fromhex("803f003f")


def test_bfloat16_conversion_rounds_to_nearest_even():
    values = np.array([1.0, 1.00390625, 1.005859375, -3.0, np.inf, -np.inf, 0.0, -0.0], dtype=np.float32)
    bits = from_float32(values, "BF16")
    assert bits.dtype == np.uint16
    back = to_float32(bits, "BF16")
    assert back.tolist() == [1.0, 1.0, 1.0078125, -3.0, np.inf, -np.inf, 0.0, -0.0]
    assert np.isnan(to_float32(from_float32(np.array([np.nan], np.float32), "BF16"), "BF16"))[0]
    every = np.arange(65536, dtype=np.uint16)
    finite = np.isfinite(to_float32(every, "BF16"))
    assert np.array_equal(from_float32(to_float32(every, "BF16"), "BF16")[finite], every[finite])


@pytest.mark.parametrize("name", ["F8_E4M3", "F8_E5M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F8_E8M0"])
def test_eight_bit_floats_round_trip_every_code(name):
    codes = np.arange(256, dtype=np.uint8)
    values = to_float32(codes, name)
    again = from_float32(values, name)
    keep = ~np.isnan(values)
    assert np.array_equal(to_float32(again, name)[keep], values[keep])
    assert np.isnan(to_float32(again[~keep], name)).all()


def test_eight_bit_float_known_values():
    assert to_float32(np.array([0x7E, 0x7F, 0x08, 0x38], np.uint8), "F8_E4M3")[[0, 2, 3]].tolist() == [
        448.0,
        2.0**-6,
        1.0,
    ]
    assert np.isnan(to_float32(np.array([0x7F], np.uint8), "F8_E4M3"))[0]
    assert to_float32(np.array([0x7C, 0x7B, 0x3C], np.uint8), "F8_E5M2").tolist() == [np.inf, 57344.0, 1.0]
    assert from_float32(np.array([1.0, 1.0625, 1.1875, -448.0, 1e6], np.float32), "F8_E4M3").tolist() == [
        0x38,
        0x38,
        0x3A,
        0xFE,
        0x7F,
    ]
    assert from_float32(np.array([1e6], np.float32), "F8_E5M2").tolist() == [0x7C]
    assert to_float32(np.array([127, 128], np.uint8), "F8_E8M0").tolist() == [1.0, 2.0]


def test_to_float32_rejects_non_float_and_wrong_storage():
    with pytest.raises(ValidationError, match="not a float dtype"):
        to_float32(np.zeros(2, np.int32), "I32")
    with pytest.raises(ValidationError, match="raw bits"):
        to_float32(np.zeros(2, np.uint32), "BF16")


def test_value_length_is_checked():
    with pytest.raises(CorruptError, match="needs 8 bytes, value has 7"):
        value_to_array(b"\0" * 7, TensorSpec("F32", (2,)))
    with pytest.raises(CorruptError, match="unknown encoding"):
        check_spec(b"", TensorSpec("F32", (0,), encoding="zip"))


# --- packed sub-byte floats (F4, F6_*) ----------------------------------------------------------

PACKED = [name for name, d in SAFETENSORS_DTYPES.items() if d.is_packed]


def test_packed_dtypes_are_every_sub_byte_one():
    assert PACKED == ["F4", "F6_E2M3", "F6_E3M2"]
    assert all(SAFETENSORS_DTYPES[n].bits < 8 for n in PACKED)
    assert set(SAFETENSORS_DTYPES) == set(DTYPES) | set(PACKED)


@pytest.mark.parametrize(
    ("dtype", "shape", "packed"),
    [
        ("F4", (2, 8), (2, 4)),  # rows of whole bytes: the last dimension is packed
        ("F4", (3, 2, 6), (3, 2, 3)),
        ("F6_E2M3", (3, 4), (3, 3)),
        ("F6_E3M2", (8,), (6,)),
        ("F6_E3M2", (2, 6), (9,)),  # a row of 4.5 bytes: one flat dimension
        ("F4", (2, 5), (5,)),
        ("F4", (4, 0), (4, 0)),
        ("F4", (0, 3), (0,)),
        ("F32", (2, 3), (2, 3)),  # whole-byte dtypes keep their shape
    ],
)
def test_packed_shape_rule(dtype, shape, packed):
    assert packed_shape(dtype, shape) == packed
    nbytes = tensor_nbytes(dtype, shape)
    value = bytes(range(nbytes))
    arr = value_to_array(value, TensorSpec(dtype, shape))
    assert arr.shape == packed and arr.tobytes() == value
    if dtype in PACKED:
        assert arr.dtype == np.uint8
        assert dense_nbytes(TensorSpec(dtype, shape)) == nbytes
        if len(packed) == len(shape):  # the inverse holds where rows were kept
            assert unpacked_shape(dtype, packed) == shape
            assert array_to_value(arr, dtype) == (value, TensorSpec(dtype, shape))


@pytest.mark.parametrize("dtype", PACKED)
@given(data=st.data())
@settings(max_examples=20)
def test_packed_values_are_handed_out_bit_exact(dtype, data):
    bits = SAFETENSORS_DTYPES[dtype].bits
    shape = tuple(
        data.draw(
            st.lists(st.integers(0, 9), min_size=1, max_size=3).filter(lambda s: math.prod(s) * bits % 8 == 0)
        )
    )
    value = data.draw(st.binary(min_size=tensor_nbytes(dtype, shape), max_size=tensor_nbytes(dtype, shape)))
    arr = value_to_array(value, TensorSpec(dtype, shape))
    assert arr.dtype == np.uint8 and arr.tobytes() == value and arr.shape == packed_shape(dtype, shape)


def test_packed_dtypes_refuse_what_has_no_meaning():
    with pytest.raises(CorruptError, match=r"F4 with shape \[3\] does not fill whole bytes"):
        check_spec(b"\0\0", TensorSpec("F4", (3,)))
    with pytest.raises(CorruptError, match="needs 3 bytes, value has 2"):
        value_to_array(b"\0\0", TensorSpec("F6_E2M3", (4,)))
    with pytest.raises(CorruptError, match="ternary encoding needs a float dtype, got F4"):
        check_spec(b"\0", TensorSpec("F4", (4,), encoding="ternary", scales=b"\0" * 4))
    for convert in (to_float32, from_float32):
        with pytest.raises(ValidationError, match="F4: packed 4-bit floats are kept as their bytes"):
            convert(np.zeros(2, np.uint8), "F4")
    with pytest.raises(ValidationError, match="w: ternary encoding needs a float tensor, got dtype F6_E3M2"):
        ternary_encode(np.zeros(3, np.uint8), dtype="F6_E3M2", what="w")
    with pytest.raises(ValidationError, match="packed bytes as a uint8 array"):
        array_to_value(np.zeros(4, np.float32), "F4")
    with pytest.raises(ValidationError, match="do not hold whole 6-bit elements"):
        array_to_value(np.zeros((2, 2), np.uint8), "F6_E2M3")


# --- ternary entries ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["F32", "F16", "F64", "BF16", "F8_E5M2"])
@pytest.mark.parametrize("method", ["reference", "absmean"])
@pytest.mark.parametrize("per_row", [False, True])
def test_ternary_entries(dtype, method, per_row):
    rng = np.random.default_rng(4)
    floats = (rng.standard_normal((6, 10)) * 0.1).astype(np.float32)
    raw = from_float32(floats, dtype)
    bits_dtype = None if DTYPES[dtype].native else dtype
    value, spec = ternary_encode(raw, method, per_row=per_row, dtype=bits_dtype)
    assert spec.encoding == "ternary" and spec.dtype == dtype and spec.shape == (6, 10)
    assert spec.method == method and spec.per_row == per_row
    assert len(value) == 15 and len(spec.scales) == 4 * (6 if per_row else 1)
    assert spec_nbytes(spec) == 15 + len(spec.scales)
    assert dense_nbytes(spec) == 60 * DTYPES[dtype].itemsize
    codes = value_to_array(value, spec, dequantize=False)
    assert codes.dtype == np.int8 and codes.shape == (6, 10)
    deq = value_to_array(value, spec)
    assert deq.dtype == np.dtype(DTYPES[dtype].storage)
    scales = np.frombuffer(spec.scales, "<f4")
    expected = codes * (scales[:, None] if per_row else scales[0])
    assert np.allclose(to_float32(deq, dtype), to_float32(from_float32(expected, dtype), dtype))


def test_ternary_encode_tensor_returns_quality_and_refuses_ints():
    w = np.linspace(-1, 1, 40, dtype=np.float32).reshape(4, 10)
    value, spec, q = ternary_encode_tensor(w, "absmean", per_row=True)
    assert q.quality(w).rel_l2 < 1 and q.codes.to_bytes() == value
    with pytest.raises(ValidationError, match="needs a float tensor, got dtype I32"):
        ternary_encode(np.zeros(4, np.int32))
    with pytest.raises(ValidationError, match="no elements"):
        ternary_encode(np.zeros(0, np.float32))
    with pytest.raises(ValidationError, match="non-finite"):
        ternary_encode(np.array([1.0, np.nan], np.float32))
    value, spec = ternary_encode(np.array([1.0, np.nan, -1.0], np.float32), nan_as_zero=True)
    assert value_to_array(value, spec, dequantize=False).tolist() == [1, 0, -1]


def test_ternary_spec_checks():
    with pytest.raises(CorruptError, match="needs 4 bytes of scales, got 0"):
        check_spec(b"\0", TensorSpec("F32", (4,), encoding="ternary"))
    with pytest.raises(CorruptError, match="float dtype"):
        check_spec(b"\0", TensorSpec("I32", (4,), encoding="ternary", scales=b"\0" * 4))
    with pytest.raises(CorruptError, match="per-row scales need 2"):
        check_spec(b"\0", TensorSpec("F32", (4,), encoding="ternary", scales=b"\0" * 16, per_row=True))
    with pytest.raises(CorruptError, match="needs 2 bytes"):
        check_spec(b"\0", TensorSpec("F32", (5,), encoding="ternary", scales=b"\0" * 4))
