"""``unpack_file`` to .npy writes a packed tensor piece by piece: the bytes must be exactly
those ``np.save`` writes for the whole dequantized tensor."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests.conftest import sync_kinds
from thermo_cli import store
from thermo_cli.codec.tensors import to_float32, value_to_array
from thermo_cli.codec.ternary import packing
from thermo_cli.errors import ValidationError
from thermo_cli.model import Layer
from thermo_cli.operations import ternary_files
from thermo_cli.operations.ternary_files import PackOptions, pack_file, unpack_file


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@pytest.mark.parametrize("durable", [False, True])
@pytest.mark.parametrize("small_pieces", [False, True])
@pytest.mark.parametrize("per_row", [True, False])
@pytest.mark.parametrize(
    ("dtype", "shape"), [(np.float32, (24, 37)), (np.float16, (5, 3, 8)), (np.float64, (9, 1))]
)
def test_unpacked_npy_is_what_np_save_writes(
    tmp_path, monkeypatch, dtype, shape, per_row, small_pieces, durable
):
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
        report = unpack_file(packed, back, key="w", durable=durable)
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


# --- durability: exports are fsynced only when asked, and atomic either way ---------------------


@pytest.fixture
def packed_pair(tmp_path):
    """A 64 x 96 float32 tensor packed once into a .thermo and once into a .safetensors."""
    src = tmp_path / "w.npy"
    np.save(src, (np.random.default_rng(11).standard_normal((64, 96)) * 0.05).astype(np.float32))
    outs = [tmp_path / "w.thermo", tmp_path / "w.safetensors"]
    for out in outs:
        pack_file(src, out)
    return outs


@pytest.mark.parametrize("suffix", [".npy", ".safetensors"])
def test_unpack_fsyncs_file_and_directory_only_when_durable(tmp_path, syncs, packed_pair, suffix):
    for packed in packed_pair:
        syncs.clear()
        plain, synced = (
            tmp_path / f"plain-{packed.suffix[1:]}{suffix}",
            tmp_path / f"synced-{packed.suffix[1:]}{suffix}",
        )
        unpack_file(packed, plain)
        assert syncs == []
        unpack_file(packed, synced, durable=True)
        calls = sync_kinds(syncs)
        assert calls[-2:] == ["file", "dir"] and "dir" not in calls[:-1]
        assert plain.read_bytes() == synced.read_bytes()


def test_pack_to_safetensors_fsyncs_only_when_durable_and_thermo_always(tmp_path, syncs):
    src = tmp_path / "w.npy"
    np.save(src, np.linspace(-1, 1, 400, dtype=np.float32).reshape(20, 20))
    pack_file(src, tmp_path / "a.safetensors")
    assert syncs == []
    pack_file(src, tmp_path / "b.safetensors", durable=True)
    assert sync_kinds(syncs) == ["file", "dir"]
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    syncs.clear()
    pack_file(src, tmp_path / "c.thermo")  # a thermogram is always durable
    calls = sync_kinds(syncs)
    assert "dir" in calls and ("file" in calls or "data" in calls)


@pytest.mark.parametrize("durable", [False, True])
def test_a_failed_unpack_leaves_the_old_output_and_no_temporary_file(
    tmp_path, monkeypatch, packed_pair, durable
):
    out = tmp_path / "back.npy"
    out.write_bytes(b"the previous export")
    monkeypatch.setattr(packing, "UNPACK_CHUNK", 64)  # many pieces: fail after some were written
    real = ternary_files._npy_values

    def failing(pieces, dtype):
        for i, piece in enumerate(real(pieces, dtype)):
            if i == 5:
                raise OSError(28, "No space left on device")
            yield piece

    monkeypatch.setattr(ternary_files, "_npy_values", failing)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(OSError, match="No space"):
        unpack_file(packed_pair[0], out, overwrite=True, durable=durable)
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_input_whose_name_does_not_say_is_read_by_content(tmp_path):
    """A file saved from stdin (or ``weights.bin``) is a .npy, .safetensors or .thermo by its
    first bytes; the output's format still comes from its extension."""
    w = np.random.default_rng(9).standard_normal((8, 12)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    (tmp_path / "w.bin").write_bytes((tmp_path / "w.npy").read_bytes())
    by_name = pack_file(tmp_path / "w.npy", tmp_path / "a.thermo", name="w")
    by_content = pack_file(tmp_path / "w.bin", tmp_path / "b.thermo", name="w")
    assert by_name.tensors[0].rel_l2 == by_content.tensors[0].rel_l2
    assert store.read(tmp_path / "a.thermo", "w").value == store.read(tmp_path / "b.thermo", "w").value
    (tmp_path / "packed").write_bytes((tmp_path / "a.thermo").read_bytes())
    unpack_file(tmp_path / "packed", tmp_path / "back.npy")
    assert np.array_equal(np.load(tmp_path / "back.npy"), store_values(tmp_path / "a.thermo"))
    pack_file(tmp_path / "w.npy", tmp_path / "w.safetensors")
    (tmp_path / "st").write_bytes((tmp_path / "w.safetensors").read_bytes())
    unpack_file(tmp_path / "st", tmp_path / "st.npy")
    assert np.load(tmp_path / "st.npy").tobytes() == np.load(tmp_path / "back.npy").tobytes()
    assert ternary_files.kind_by_content(tmp_path / "st") == ".safetensors"


def store_values(path):
    """The float values ``thermo ternary unpack`` gives for the one tensor of ``path``."""
    unpack_file(path, path.with_suffix(".check.npy"))
    return np.load(path.with_suffix(".check.npy"))


@pytest.mark.parametrize("content", [b"", b"junk that is no tensor file", b"\x93NUMPY"[:3]])
def test_an_input_neither_name_nor_content_identifies_is_refused(tmp_path, content):
    src = tmp_path / "mystery"
    src.write_bytes(content)
    with pytest.raises(ValidationError, match=r"pack input must be a \.npy or \.safetensors file"):
        pack_file(src, tmp_path / "out.thermo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mystery"]
