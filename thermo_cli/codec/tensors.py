"""Tensor values ⇄ numpy arrays: the safetensors dtype table and the entry encodings.

An entry's tensor is its bytes plus a :class:`~thermo_cli.model.TensorSpec`. With encoding
"raw" the bytes are the C-order little-endian elements, exactly as in a safetensors file,
so importing and exporting are byte copies. With encoding "ternary" they are 2-bit packed
codes (``thermo_cli.codec.ternary.packing``) and the spec carries the float32 scales.

numpy has no bfloat16 or 8-bit float types, so those dtypes are handed out as their raw
bit patterns (uint16 / uint8 arrays, which keeps round trips bit-exact) and
:func:`to_float32` / :func:`from_float32` convert when values are wanted. The library API
(``thermo_cli.load_file`` and friends) goes one step further with :func:`with_element_type`:
when the optional ``ml_dtypes`` package is installed (extra ``ml``), the same bits come back
typed as ``ml_dtypes.bfloat16`` / ``float8_*``, which is what users of other tensor libraries
expect.

The packed sub-byte floats F4 (4 bits) and F6_E2M3 / F6_E3M2 (6 bits) are stored and
exported exactly, but handed out as their packed bytes (uint8, shape by
:func:`packed_shape`) and never converted to values: the safetensors format fixes their
size but not the order of the elements inside a byte, so any decoding would be a guess.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from thermo_cli.codec.ternary.packing import unpack
from thermo_cli.codec.ternary.quantize import DEFAULT_METHOD, DEFAULT_PER_ROW, dequantize_chunks, quantize
from thermo_cli.codec.ternary.quantize import dequantize as _dequantize
from thermo_cli.errors import CorruptError, ValidationError
from thermo_cli.model import TensorSpec, check_shape

if TYPE_CHECKING:
    from thermo_cli.codec.ternary.quantize import QuantizedTensor


@dataclass(frozen=True, slots=True)
class DType:
    """One safetensors dtype: its size, and how its elements are held in numpy."""

    name: str
    bits: int
    """Bits per element: 8 to 64, or 4 and 6 for the packed sub-byte floats."""
    storage: str
    """numpy dtype (little-endian) whose items hold one element's bytes (packed: one byte)."""
    kind: str
    """"float", "int", "uint", "bool", "complex", or "packed" (F4 and F6_*: sub-byte floats
    handed out as their packed bytes, never as values)."""
    native: bool
    """numpy computes with ``storage`` as the element's value (False: raw bit patterns)."""
    numpy_name: str | None = None
    """The element type's name in numpy, or in ml_dtypes / torch-numpy bridges (bfloat16,
    float8_*) when those are installed; also the spelling ``safetensors.serialize`` takes."""

    @property
    def itemsize(self) -> int:
        return np.dtype(self.storage).itemsize

    @property
    def is_float(self) -> bool:
        """A float dtype whose elements convert to values (not the packed F4/F6)."""
        return self.kind == "float"

    @property
    def is_packed(self) -> bool:
        return self.kind == "packed"


SAFETENSORS_DTYPES: dict[str, DType] = {
    d.name: d
    for d in (
        DType("BOOL", 8, "|b1", "bool", True, "bool"),
        DType("F4", 4, "|u1", "packed", False),
        DType("F6_E2M3", 6, "|u1", "packed", False),
        DType("F6_E3M2", 6, "|u1", "packed", False),
        DType("U8", 8, "|u1", "uint", True, "uint8"),
        DType("I8", 8, "|i1", "int", True, "int8"),
        DType("F8_E5M2", 8, "|u1", "float", False, "float8_e5m2"),
        DType("F8_E4M3", 8, "|u1", "float", False, "float8_e4m3fn"),
        DType("F8_E8M0", 8, "|u1", "float", False, "float8_e8m0fnu"),
        DType("F8_E4M3FNUZ", 8, "|u1", "float", False, "float8_e4m3fnuz"),
        DType("F8_E5M2FNUZ", 8, "|u1", "float", False, "float8_e5m2fnuz"),
        DType("I16", 16, "<i2", "int", True, "int16"),
        DType("U16", 16, "<u2", "uint", True, "uint16"),
        DType("F16", 16, "<f2", "float", True, "float16"),
        DType("BF16", 16, "<u2", "float", False, "bfloat16"),
        DType("I32", 32, "<i4", "int", True, "int32"),
        DType("U32", 32, "<u4", "uint", True, "uint32"),
        DType("F32", 32, "<f4", "float", True, "float32"),
        DType("C64", 64, "<c8", "complex", True, "complex64"),
        DType("F64", 64, "<f8", "float", True, "float64"),
        DType("I64", 64, "<i8", "int", True, "int64"),
        DType("U64", 64, "<u8", "uint", True, "uint64"),
    )
}
"""Every dtype the installed safetensors reads, in the order of its ``Dtype`` enum (the
library writes tensors sorted by that order, see ``safetensors_io.format``)."""

DTYPES: dict[str, DType] = {name: d for name, d in SAFETENSORS_DTYPES.items() if not d.is_packed}
"""The dtypes with whole-byte elements: those numpy arrays of elements can hold."""

_FROM_NUMPY = {d.numpy_name: d.name for d in SAFETENSORS_DTYPES.values() if d.numpy_name}


def dtype_info(name: str) -> DType:
    """The table row of a safetensors dtype name, or ValidationError naming the choices."""
    if not isinstance(name, str) or name not in SAFETENSORS_DTYPES:
        raise ValidationError(
            f"dtype: unknown dtype {name!r} (expected one of {', '.join(SAFETENSORS_DTYPES)})"
        )
    return SAFETENSORS_DTYPES[name]


def safetensors_lib_dtype(name: str) -> str:
    """The dtype spelling the ``safetensors`` library's ``serialize`` expects."""
    info = dtype_info(name)
    if info.numpy_name is None:
        raise ValidationError(f"dtype {name}: the safetensors library has no array type for it")
    return info.numpy_name


def dtype_of(arr: np.ndarray) -> str:
    """The safetensors dtype name of a numpy array's dtype."""
    name = _FROM_NUMPY.get(np.asarray(arr).dtype.name)
    if name is None:
        raise ValidationError(f"dtype: numpy dtype {np.asarray(arr).dtype} has no safetensors equivalent")
    return name


def tensor_nbytes(dtype: str, shape: Sequence[int]) -> int:
    """Size in bytes of a raw tensor; refuses unknown dtypes and sub-byte sizes that do not
    fill whole bytes (ValidationError)."""
    info = SAFETENSORS_DTYPES.get(dtype) if isinstance(dtype, str) else None
    if info is None:
        raise ValidationError(f"dtype {dtype!r} is not a safetensors dtype")
    total = math.prod(shape) * info.bits
    if total % 8:
        raise ValidationError(f"dtype {dtype} with shape {list(shape)} does not fill whole bytes")
    return total // 8


# --- packed sub-byte floats --------------------------------------------------------------------


def packed_shape(dtype: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of the uint8 array a packed (F4/F6) tensor of ``shape`` is handed out as.

    The last dimension holds the packed bytes of each row when a row fills whole bytes
    (F4 ``[2, 8]`` → ``[2, 4]``, as PyTorch's ``float4_e2m1fn_x2`` holds it; F6 ``[3, 4]``
    → ``[3, 3]``); otherwise the result is one flat dimension of all the bytes (F6
    ``[2, 6]`` → ``[9]``). Other dtypes keep their shape.
    """
    info = dtype_info(dtype)
    shape = tuple(shape)
    if not info.is_packed:
        return shape
    nbytes = tensor_nbytes(info.name, shape)
    if shape and (shape[-1] * info.bits) % 8 == 0:
        return (*shape[:-1], shape[-1] * info.bits // 8)
    return (nbytes,)


def unpacked_shape(dtype: str, byte_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The tensor shape whose packed bytes have ``byte_shape`` (inverse of :func:`packed_shape`
    for arrays whose last dimension packs whole elements)."""
    info = dtype_info(dtype)
    byte_shape = tuple(int(d) for d in byte_shape)
    if not info.is_packed:
        return byte_shape
    if not byte_shape or (byte_shape[-1] * 8) % info.bits:
        raise ValidationError(
            f"dtype {info.name}: packed bytes of shape {list(byte_shape)} do not hold "
            f"whole {info.bits}-bit elements in their last dimension"
        )
    return (*byte_shape[:-1], byte_shape[-1] * 8 // info.bits)


def _no_values(info: DType) -> ValidationError:
    return ValidationError(
        f"dtype {info.name}: packed {info.bits}-bit floats are kept as their bytes; "
        "safetensors does not fix the element order within a byte, so they have no "
        "values to convert"
    )


# --- 8-bit and bfloat16 floats ------------------------------------------------------------------


def _minifloat_table(exp_bits: int, man_bits: int, bias: int, *, inf_nan: str) -> np.ndarray:
    """float32 value of every byte of a 1-sign/exp/mantissa 8-bit float format.

    ``inf_nan``: "ieee" (all-ones exponent: inf / NaN), "fn" (only all-ones is NaN, no inf),
    "fnuz" (only 0x80 is NaN; no negative zero, no inf).
    """
    code = np.arange(256, dtype=np.int64)
    sign = np.where(code >> 7, -1.0, 1.0)
    exp = (code >> man_bits) & ((1 << exp_bits) - 1)
    man = code & ((1 << man_bits) - 1)
    frac = man / float(1 << man_bits)
    value = np.where(exp == 0, frac * 2.0 ** (1 - bias), (1.0 + frac) * 2.0 ** (exp - bias))
    value = sign * value
    top = (1 << exp_bits) - 1
    if inf_nan == "ieee":
        value = np.where((exp == top) & (man == 0), sign * np.inf, value)
        value = np.where((exp == top) & (man != 0), np.nan, value)
    elif inf_nan == "fn":
        value = np.where((exp == top) & (man == (1 << man_bits) - 1), np.nan, value)
    else:
        value = np.where(code == 0x80, np.nan, value)
    return value.astype(np.float32)


@cache
def _f8_table(name: str) -> np.ndarray:
    if name == "F8_E4M3":
        return _minifloat_table(4, 3, 7, inf_nan="fn")
    if name == "F8_E5M2":
        return _minifloat_table(5, 2, 15, inf_nan="ieee")
    if name == "F8_E4M3FNUZ":
        return _minifloat_table(4, 3, 8, inf_nan="fnuz")
    if name == "F8_E5M2FNUZ":
        return _minifloat_table(5, 2, 16, inf_nan="fnuz")
    code = np.arange(256, dtype=np.float64)  # F8_E8M0: 2**(e-127), 0xFF is NaN
    return np.where(code == 255, np.nan, 2.0 ** (code - 127)).astype(np.float32)


def _float_dtype(dtype: str) -> DType:
    """The row of a float dtype whose elements convert to values, else ValidationError."""
    info = dtype_info(dtype)
    if info.is_packed:
        raise _no_values(info)
    if not info.is_float:
        raise ValidationError(f"dtype {dtype}: not a float dtype")
    return info


def to_float32(arr: np.ndarray, dtype: str) -> np.ndarray:
    """Values of an array of ``dtype`` elements (raw bits for BF16/F8) as float32."""
    info = _float_dtype(dtype)
    a = np.asarray(arr)
    if info.native:
        return a.astype(np.float32, copy=False)
    a = _bits_view(a, info)
    if info.name == "BF16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return np.take(_f8_table(info.name), a)


def from_float32(values: np.ndarray, dtype: str) -> np.ndarray:
    """float values → an array of ``dtype`` (raw bits for BF16/F8), rounding to nearest even."""
    info = _float_dtype(dtype)
    v = np.asarray(values, dtype=np.float32)
    if info.native:
        return v.astype(info.storage)
    if info.name == "BF16":
        u = v.view(np.uint32)
        rounded = ((u + (np.uint32(0x7FFF) + ((u >> 16) & 1))) >> 16).astype(np.uint16)
        return np.where(np.isnan(v), ((u >> 16) | 0x40).astype(np.uint16), rounded)
    return _encode_minifloat(v, info.name)


def _encode_minifloat(v: np.ndarray, name: str) -> np.ndarray:
    """Nearest 8-bit code (ties to the even code); beyond the largest finite: inf or NaN."""
    table = _f8_table(name)
    signed = name != "F8_E8M0"
    half = np.arange(128 if signed else 256)
    pos_vals = table[half].astype(np.float64)
    finite = np.isfinite(pos_vals)
    codes = half[finite]
    vals = pos_vals[finite]  # ascending with the code
    mag = np.abs(v.astype(np.float64)) if signed else v.astype(np.float64)
    i = np.clip(np.searchsorted(vals, mag), 1, vals.size - 1)
    lo, hi = vals[i - 1], vals[i]
    pick_hi = (mag - lo > hi - mag) | ((mag - lo == hi - mag) & (codes[i] % 2 == 0))
    out = np.where(pick_hi, codes[i], codes[i - 1])
    out = np.where(mag <= vals[0], codes[0], out)
    top = vals[-1]
    ulp = top - vals[-2]
    edge = top + ulp / 2
    over = (mag > edge) | ((mag == edge) & (codes[-1] % 2 == 1))  # the tie goes to the even code
    nan_code = int(np.flatnonzero(np.isnan(table))[0])
    inf_code = np.flatnonzero(np.isinf(table) & (table > 0))
    out = np.where(over, inf_code[0] if inf_code.size else nan_code, out)
    if signed:
        neg = np.signbit(v) & (out != 0 if name.endswith("FNUZ") else True)
        out = np.where(neg & (out != nan_code), out | 0x80, out)
    out = np.where(np.isnan(v), nan_code, out)
    return out.astype(np.uint8)


def _bits_view(a: np.ndarray, info: DType) -> np.ndarray:
    want = np.dtype(info.storage)
    if a.dtype.itemsize != want.itemsize or a.dtype.kind not in "uiV":
        if a.dtype.name == info.numpy_name:  # ml_dtypes array
            return a.view(want)
        raise ValidationError(f"dtype {info.name}: expected its raw bits as {want} items, got {a.dtype}")
    return a.view(want)


@cache
def _ml_dtypes() -> Any:
    """The ``ml_dtypes`` module, or None when it is not installed (an optional extra)."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return ml_dtypes


def with_element_type(arr: np.ndarray, dtype: str) -> np.ndarray:
    """Raw BF16/F8 bits as ``ml_dtypes`` elements when that package knows the type (a
    zero-copy view); any other array, or without ``ml_dtypes``, ``arr`` unchanged."""
    info = dtype_info(dtype)
    if info.native or not info.is_float or info.numpy_name is None:
        return arr
    module = _ml_dtypes()
    element = getattr(module, info.numpy_name, None) if module is not None else None
    return arr if element is None else arr.view(element)


# --- values ⇄ arrays -------------------------------------------------------------------------


def array_to_value(arr: np.ndarray, dtype: str | None = None) -> tuple[bytes, TensorSpec]:
    """An array → (C-order little-endian bytes, raw TensorSpec).

    ``dtype`` names the safetensors dtype when the array's own dtype does not say it: a
    uint16 array of bfloat16 bits with ``dtype="BF16"``, a float array to be rounded to
    BF16/F8, or a uint8 array of F4/F6 packed bytes (its shape read by
    :func:`unpacked_shape`). Without it the dtype follows the array's.
    """
    a = np.asarray(arr)
    if dtype is not None and dtype_info(dtype).is_packed:
        return _packed_to_value(a, dtype_info(dtype))
    if dtype is None:
        name = dtype_of(a)
        info = DTYPES[name]
        data = a.astype(info.storage, copy=False) if info.native else a.view(info.storage)
    else:
        info = dtype_info(dtype)
        if info.native:
            want = np.dtype(info.storage)
            if (a.dtype.kind, a.dtype.itemsize) != (want.kind, want.itemsize):
                raise ValidationError(f"dtype {info.name}: array has numpy dtype {a.dtype}")
            data = a.astype(info.storage, copy=False)
        elif a.dtype.kind == "f" and a.dtype.name != info.numpy_name:
            data = from_float32(a, info.name)
        else:
            data = _bits_view(a, info)
    spec = TensorSpec(dtype=info.name, shape=tuple(int(d) for d in a.shape))
    return np.ascontiguousarray(data).tobytes(), spec


def _packed_to_value(a: np.ndarray, info: DType) -> tuple[bytes, TensorSpec]:
    if a.dtype != np.uint8:
        raise ValidationError(f"dtype {info.name}: expected its packed bytes as a uint8 array, got {a.dtype}")
    shape = unpacked_shape(info.name, a.shape)
    return np.ascontiguousarray(a).tobytes(), TensorSpec(dtype=info.name, shape=shape)


def expected_nbytes(spec: TensorSpec) -> int:
    """Bytes an entry's value must have for its spec (CorruptError when none can match)."""
    if spec.encoding == "raw":
        dtype_info(spec.dtype)
        try:
            return tensor_nbytes(spec.dtype, spec.shape)
        except ValidationError as exc:
            raise CorruptError(f"tensor: {exc}") from None
    if spec.encoding == "ternary":
        return (spec.numel + 3) // 4
    raise CorruptError(f"tensor: unknown encoding {spec.encoding!r}")


def check_spec(value: bytes, spec: TensorSpec) -> None:
    """Raise CorruptError unless ``value`` has exactly the bytes ``spec`` promises."""
    info = dtype_info(spec.dtype)
    if spec.encoding == "ternary":
        if not info.is_float:
            raise CorruptError(f"tensor: ternary encoding needs a float dtype, got {spec.dtype}")
        n_scales = _scale_count(spec)
        if spec.scales is None or len(spec.scales) != 4 * n_scales:
            got = 0 if spec.scales is None else len(spec.scales)
            raise CorruptError(
                f"tensor: ternary {'per-row ' if spec.per_row else ''}encoding of shape "
                f"{list(spec.shape)} needs {4 * n_scales} bytes of scales, got {got}"
            )
    need = expected_nbytes(spec)
    if len(value) != need:
        raise CorruptError(
            f"tensor: {spec.encoding} {spec.dtype} {list(spec.shape)} needs {need} bytes, "
            f"value has {len(value)}"
        )


def check_delta_tensor(spec: Any, value: bytes, max_dims: int) -> None:
    """The tensor spec a delta carries describes its value exactly (ValidationError if not).

    The engine's validator and the JSONL parser both end with this check, so a delta
    refused by one is refused by the other.
    """
    if type(spec) is not TensorSpec:
        raise ValidationError(f"tensor: expected a TensorSpec or None, got {type(spec).__name__}")
    check_shape(spec.shape, max_dims)
    if spec.encoding == "raw" and (spec.scales is not None or spec.per_row or spec.method is not None):
        raise ValidationError("tensor: scales, per_row and method are only for the ternary encoding")
    if spec.method is not None and type(spec.method) is not str:
        raise ValidationError(f"tensor.method: expected text, got {type(spec.method).__name__}")
    if type(spec.per_row) is not bool:
        raise ValidationError("tensor.per_row: expected true or false")
    try:
        check_spec(value, spec)
    except CorruptError as exc:
        raise ValidationError(str(exc)) from None


def _scale_count(spec: TensorSpec) -> int:
    if spec.per_row:
        if len(spec.shape) < 2:
            raise CorruptError(f"tensor: per-row scales need 2+ dimensions, shape is {list(spec.shape)}")
        return spec.shape[0]
    return 1


def value_to_array(value: bytes, spec: TensorSpec, *, dequantize: bool = True) -> np.ndarray:
    """An entry's bytes → array of ``spec.shape``.

    Raw: a zero-copy read-only view in the dtype's storage (raw bits for BF16/F8; for
    F4/F6 their packed bytes as uint8 of :func:`packed_shape`, not ``spec.shape``).
    Ternary: with ``dequantize`` the float tensor ``scale * code`` in ``spec.dtype``
    (again raw bits for BF16/F8); otherwise the codes themselves as int8 -1/0/+1.
    """
    check_spec(value, spec)
    shape = tuple(spec.shape)
    if spec.encoding == "raw":
        info = dtype_info(spec.dtype)
        return np.frombuffer(value, dtype=info.storage).reshape(packed_shape(info.name, shape))
    if not dequantize:
        return unpack(value, spec.numel).reshape(shape)
    scales = np.frombuffer(spec.scales or b"", dtype="<f4")
    floats = _dequantize(value, shape, scales, spec.per_row)
    return from_float32(floats, spec.dtype) if spec.dtype != "F32" else floats


def ternary_value_chunks(value: bytes, spec: TensorSpec) -> Iterator[np.ndarray]:
    """A ternary entry's dequantized tensor (what :func:`value_to_array` returns) as
    consecutive flat pieces in C order, each valid until the next is requested: a large
    tensor goes to a file piece by piece instead of through one whole-tensor array."""
    check_spec(value, spec)
    if spec.encoding != "ternary":
        raise ValidationError(f"tensor: expected the ternary encoding, got {spec.encoding!r}")
    scales = np.frombuffer(spec.scales or b"", dtype="<f4")
    for piece in dequantize_chunks(value, tuple(spec.shape), scales, spec.per_row):
        yield from_float32(piece, spec.dtype) if spec.dtype != "F32" else piece


def ternary_encode(
    arr: np.ndarray,
    method: str = DEFAULT_METHOD,
    threshold: float | None = None,
    per_row: bool = DEFAULT_PER_ROW,
    **options: Any,
) -> tuple[bytes, TensorSpec]:
    """A float tensor → (packed ternary bytes, ternary TensorSpec with its scales).

    :func:`ternary_encode_tensor` without the QuantizedTensor; ``options`` are its keyword
    arguments (``dtype``, ``nan_as_zero``, ``what``).
    """
    value, spec, _ = ternary_encode_tensor(arr, method, threshold, per_row, **options)
    return value, spec


def ternary_encode_tensor(
    arr: np.ndarray,
    method: str = DEFAULT_METHOD,
    threshold: float | None = None,
    per_row: bool = DEFAULT_PER_ROW,
    *,
    dtype: str | None = None,
    nan_as_zero: bool = False,
    what: str = "tensor",
    with_quality: bool = False,
) -> tuple[bytes, TensorSpec, QuantizedTensor]:
    """A float tensor → (packed ternary bytes, ternary TensorSpec with its scales, the
    QuantizedTensor for quality reports; with ``with_quality`` its ``fit`` holds them,
    measured in the packing pass).

    ``dtype`` names the source dtype when ``arr`` holds raw bits (BF16/F8 as uint arrays);
    it is also the dtype dequantization returns. ``what`` names the tensor in errors. See
    ``thermo_cli.codec.ternary.quantize`` for the methods.
    """
    a = np.asarray(arr)
    name = dtype if dtype is not None else dtype_of(a)
    info = dtype_info(name)
    if not info.is_float:
        raise ValidationError(f"{what}: ternary encoding needs a float tensor, got dtype {info.name}")
    floats = a if info.native and a.dtype.kind == "f" else to_float32(a, info.name)
    q = quantize(
        floats,
        method,
        threshold=threshold,
        per_row=per_row,
        nan_as_zero=nan_as_zero,
        what=what,
        with_quality=with_quality,
    )
    spec = TensorSpec(
        dtype=info.name,
        shape=q.shape,
        encoding="ternary",
        scales=q.scales.astype("<f4").tobytes(),
        per_row=q.per_row,
        method=q.method,
    )
    return q.codes.to_bytes(), spec, q


def spec_nbytes(spec: TensorSpec) -> int:
    """Stored size of a tensor value plus its scales."""
    return expected_nbytes(spec) + (len(spec.scales) if spec.scales else 0)


def dense_nbytes(spec: TensorSpec) -> int:
    """Size the tensor has as plain ``spec.dtype`` elements."""
    return math.prod(spec.shape) * dtype_info(spec.dtype).bits // 8
