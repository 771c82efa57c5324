"""``unpack_file`` to .npy writes a packed tensor piece by piece: the bytes must be exactly
those ``np.save`` writes for the whole dequantized tensor."""

from __future__ import annotations

import io

import numpy as np
import pytest

from thermo_cli import store
from thermo_cli.codec.tensors import to_float32, value_to_array
from thermo_cli.codec.ternary import packing
from thermo_cli.model import Layer
from thermo_cli.operations import ternary_files
from thermo_cli.operations.ternary_files import PackOptions, pack_file, unpack_file


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@pytest.mark.parametrize("small_pieces", [False, True])
@pytest.mark.parametrize("per_row", [True, False])
@pytest.mark.parametrize(
    ("dtype", "shape"), [(np.float32, (24, 37)), (np.float16, (5, 3, 8)), (np.float64, (9, 1))]
)
def test_unpacked_npy_is_what_np_save_writes(tmp_path, monkeypatch, dtype, shape, per_row, small_pieces):
    if small_pieces:  # many pieces, and the writeback hint after nearly every one
        monkeypatch.setattr(packing, "UNPACK_CHUNK", 8)
        monkeypatch.setattr(ternary_files, "WRITEBACK_BYTES", 64)
    rng = np.random.default_rng(4)
    src = tmp_path / "w.npy"
    np.save(src, (rng.standard_normal(shape) * 0.1).astype(dtype))
    expected = None
    for out in ("w.thermo", "w.safetensors"):  # the same codes and scales either way
        packed = tmp_path / out
        pack_file(src, packed, options=PackOptions(per_row=per_row))
        back = tmp_path / f"back-{out}.npy"
        report = unpack_file(packed, back, key="w")
        if expected is None:
            entry = store.load(packed).layers[Layer.COOL]["w"]
            assert entry.tensor is not None
            expected = np.ascontiguousarray(value_to_array(entry.value, entry.tensor))
            assert expected.dtype == np.dtype(dtype)
        assert back.read_bytes() == npy_bytes(expected)
        assert report.tensors[0].packed and report.tensors[0].rel_l2 is not None


def test_unpacked_bfloat16_npy_holds_the_float32_values(tmp_path):
    from thermo_cli.codec.tensors import from_float32
    from thermo_cli.formats.safetensors.format import OutTensor, write_safetensors

    rng = np.random.default_rng(8)
    values = (rng.standard_normal((6, 10)) * 0.1).astype(np.float32)
    bits = from_float32(values, "BF16")
    src = tmp_path / "m.safetensors"
    write_safetensors(
        src, [OutTensor("w", "BF16", values.shape)], lambda t: bits.tobytes(), None, overwrite=False
    )
    pack_file(src, tmp_path / "m.thermo")
    unpack_file(tmp_path / "m.thermo", tmp_path / "w.npy")
    entry = store.load(tmp_path / "m.thermo").layers[Layer.COOL]["w"]
    assert entry.tensor is not None
    expected = to_float32(value_to_array(entry.value, entry.tensor), "BF16")
    assert (tmp_path / "w.npy").read_bytes() == npy_bytes(expected)
