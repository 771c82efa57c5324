"""The streaming writer: the library's bytes, every dtype, atomic and refusing to clobber."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import safetensors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file

from tests.operations.safetensors.crafting import LIB_NAMES
from thermo_cli import errors
from thermo_cli.operations.safetensors import (
    DTYPE_BITS,
    OutTensor,
    iter_tensor_bytes,
    open_safetensors,
    tensor_nbytes,
    write_safetensors,
)

METAS = st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)
SHAPES = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda s: s != "__metadata__"
)


def _fits(dtype: str, shape: tuple[int, ...]) -> bool:
    return math.prod(shape) * DTYPE_BITS[dtype] % 8 == 0


@st.composite
def tensor_sets(draw: st.DrawFn, dtypes: list[str]) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    names = draw(st.lists(NAMES, min_size=0, max_size=6, unique=True))
    out = {}
    for name in names:
        dtype = draw(st.sampled_from(dtypes))
        shape = draw(SHAPES.filter(lambda s, d=dtype: _fits(d, s)))
        data = draw(st.binary(min_size=tensor_nbytes(dtype, shape), max_size=tensor_nbytes(dtype, shape)))
        out[name] = (dtype, shape, data)
    return out


def _write(path: Path, tensors: dict, metadata: dict | None = None, **kw) -> Path:
    specs = [OutTensor(n, d, s) for n, (d, s, _) in tensors.items()]
    return write_safetensors(path, specs, lambda t: tensors[t.name][2], metadata, **kw)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tensors=tensor_sets(sorted(DTYPE_BITS)), meta=METAS)
def test_every_dtype_round_trips_through_writer_and_reader(tmp_path: Path, tensors: dict, meta) -> None:
    path = _write(tmp_path / "t.safetensors", tensors, meta, overwrite=True)
    sf = open_safetensors(path)
    assert sf.metadata == meta
    got = {info.name: (info.dtype, info.shape, data) for info, data in iter_tensor_bytes(sf)}
    assert got == tensors


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tensors=tensor_sets(sorted(LIB_NAMES)), meta=st.none() | st.dictionaries(NAMES, st.text(), max_size=1))
def test_bytes_equal_the_librarys_own_serialize(tmp_path: Path, tensors: dict, meta) -> None:
    """Same tensors, same metadata → the file the library itself would write, byte for byte."""
    keep = {n: np.frombuffer(d, np.uint8).copy() for n, (_, _, d) in tensors.items()}
    specs = {
        n: safetensors.TensorSpec(
            dtype=LIB_NAMES[d], shape=list(s), data_ptr=keep[n].ctypes.data, data_len=len(data)
        )
        for n, (d, s, data) in tensors.items()
    }
    if not tensors and meta == {}:
        return  # the library writes invalid JSON for this case ('{},"__metadata__":{}}')
    expected = bytes(safetensors.serialize(specs, metadata=meta))
    path = _write(tmp_path / "t.safetensors", tensors, meta, overwrite=True)
    assert path.read_bytes() == expected


def test_numpy_arrays_read_back_with_load_file(tmp_path: Path) -> None:
    arrays = {
        "w": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
        "h": np.arange(5, dtype=np.float16),
        "i": np.array(7, dtype=np.int64),
        "b": np.array([True, False]),
        "e": np.zeros((0, 3), dtype=np.uint32),
        "c": np.array([1 + 2j], dtype=np.complex64),
    }
    codes = {
        "float32": "F32",
        "float16": "F16",
        "int64": "I64",
        "bool": "BOOL",
        "uint32": "U32",
        "complex64": "C64",
    }
    specs = [OutTensor(k, codes[a.dtype.name], a.shape) for k, a in arrays.items()]
    path = write_safetensors(
        tmp_path / "n.safetensors", specs, lambda t: arrays[t.name].tobytes(), {"format": "np"}
    )
    loaded = load_file(path)
    for k, a in arrays.items():
        assert loaded[k].dtype == a.dtype and loaded[k].shape == a.shape
        assert np.array_equal(loaded[k], a)


def test_existing_output_is_refused_and_untouched(tmp_path: Path) -> None:
    out = tmp_path / "o.safetensors"
    out.write_bytes(b"precious")
    with pytest.raises(errors.RefusedError, match="already exists"):
        _write(out, {"a": ("U8", (1,), b"\1")})
    assert out.read_bytes() == b"precious"
    _write(out, {"a": ("U8", (1,), b"\1")}, overwrite=True)
    assert open_safetensors(out).tensors[0].name == "a"


def test_failure_midway_leaves_no_output_and_no_temp_file(tmp_path: Path) -> None:
    out = tmp_path / "o.safetensors"

    def fetch(t: OutTensor) -> bytes:
        if t.name == "b":
            raise errors.CorruptError("chunk digest mismatch")
        return b"\0" * t.nbytes

    specs = [OutTensor("a", "F32", (4,)), OutTensor("b", "F32", (4,))]
    with pytest.raises(errors.CorruptError):
        write_safetensors(out, specs, fetch)
    assert os.listdir(tmp_path) == []


def test_wrong_byte_count_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.CorruptError, match="3 bytes stored for F32"):
        _write(tmp_path / "o.safetensors", {"a": ("F32", (1,), b"\0\0\0")})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("specs", "meta", "needle"),
    [
        ([OutTensor("a", "U8", (1,)), OutTensor("a", "U8", (1,))], None, "same tensor name twice"),
        ([OutTensor("a", "Q4", (1,))], None, "not a safetensors dtype"),
        ([OutTensor("__metadata__", "U8", (1,))], None, "may not be named"),
        ([], {"k": 1}, "text to text"),
    ],
)
def test_invalid_requests_are_refused(tmp_path: Path, specs, meta, needle: str) -> None:
    with pytest.raises(errors.ValidationError, match=needle):
        write_safetensors(tmp_path / "o.safetensors", specs, lambda t: b"\0" * t.nbytes, meta)
    assert os.listdir(tmp_path) == []
