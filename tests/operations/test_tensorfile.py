"""thermo_cli.save_file / load_file / load / open: safetensors.numpy's contract on a thermogram."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from safetensors.numpy import load_file as st_load_file
from safetensors.numpy import save_file as st_save_file

import thermo_cli
from thermo_cli import store
from thermo_cli.codec import tensors as codec_tensors
from thermo_cli.errors import NotFoundError, ValidationError
from thermo_cli.operations.audit.verify import verify_file
from thermo_cli.operations.safetensors import export_safetensors

ml_dtypes = pytest.importorskip("ml_dtypes")

NUMPY_DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8]
NUMPY_DTYPES += [np.uint64, np.uint32, np.uint16, np.uint8, np.bool_, np.complex64]

arrays = st.sampled_from(NUMPY_DTYPES).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
)
names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Same dtype, shape and bits (NaNs included)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@settings(max_examples=40, deadline=None)
@given(tensors=st.dictionaries(names, arrays, max_size=4), metadata=st.none() | st.dictionaries(names, names))
def test_save_load_round_trips_dtype_shape_bits_and_metadata(tmp_path_factory, tensors, metadata):
    path = tmp_path_factory.mktemp("rt") / "t.thermo"
    thermo_cli.save_file(tensors, path, metadata=metadata)
    back = thermo_cli.load_file(path)
    assert list(back) == sorted(tensors)
    assert all(same(back[k], np.asarray(v)) for k, v in tensors.items())
    with thermo_cli.open(path) as view:
        assert view.metadata == metadata
        assert len(view) == len(tensors) and list(view) == sorted(tensors)


def test_same_dict_as_safetensors_numpy(tmp_path: Path):
    """What a safetensors user saves comes back identical through thermo and vice versa."""
    tensors = {
        "w": np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32),
        "b": np.arange(4, dtype=np.int64),
        "bf": np.linspace(-2, 2, 6).astype(ml_dtypes.bfloat16).reshape(2, 3),
    }
    st_save_file(tensors, str(tmp_path / "a.safetensors"), metadata={"k": "v"})
    thermo_cli.save_file(tensors, tmp_path / "a.thermo", metadata={"k": "v"})
    ours, theirs = thermo_cli.load_file(tmp_path / "a.thermo"), st_load_file(str(tmp_path / "a.safetensors"))
    assert ours.keys() == theirs.keys()
    assert all(same(ours[k], theirs[k]) for k in tensors)
    assert ours["bf"].dtype == ml_dtypes.bfloat16
    f8 = {"f8": np.array([0.5, -1.0, 448.0], dtype=ml_dtypes.float8_e4m3fn)}  # safetensors.numpy cannot
    thermo_cli.save_file(f8, tmp_path / "f8.thermo")
    assert same(thermo_cli.load_file(tmp_path / "f8.thermo")["f8"], f8["f8"])
    # export-safetensors writes the metadata save_file kept
    export_safetensors(tmp_path / "a.thermo", tmp_path / "back.safetensors")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "back.safetensors"), "np") as f:
        assert f.metadata() == {"k": "v"}


def test_saved_file_verifies_and_is_a_normal_thermogram(tmp_path: Path):
    path = tmp_path / "m.thermo"
    thermo_cli.save_file({"x": np.ones(3, np.float32)}, path)
    assert verify_file(path).ok
    found = store.read(path, "x")
    assert found is not None and found.source == "hot" and found.tensor is not None
    assert found.tensor.dtype == "F32" and found.tensor.shape == (3,)


def test_save_file_replaces_the_file_atomically_and_refuses_bad_input(tmp_path: Path):
    path = tmp_path / "m.thermo"
    thermo_cli.save_file({"old": np.zeros(2)}, path)
    before = path.read_bytes()
    with pytest.raises(ValidationError, match="bad: expected a numpy array, got list"):
        thermo_cli.save_file({"bad": [1, 2]}, path)
    with pytest.raises(ValidationError, match="obj: dtype"):
        thermo_cli.save_file({"obj": np.array(["a"], dtype=object)}, path)
    with pytest.raises(ValidationError, match="metadata must map text to text"):
        thermo_cli.save_file({"x": np.zeros(1)}, path, metadata={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="key: must not be empty"):
        thermo_cli.save_file({"": np.zeros(1)}, path)
    assert path.read_bytes() == before
    thermo_cli.save_file({"new": np.ones(2)}, path)
    assert list(thermo_cli.load_file(path)) == ["new"]


def test_load_reads_only_the_keys_asked_for(tmp_path: Path, monkeypatch):
    path = tmp_path / "m.thermo"
    thermo_cli.save_file({f"t{i}": np.full(100, i, np.int32) for i in range(50)}, path)
    seen: list[str] = []
    real = codec_tensors.value_to_array

    def spy(value, spec, **kw):
        seen.append(spec.dtype)
        return real(value, spec, **kw)

    monkeypatch.setattr(codec_tensors, "value_to_array", spy)
    got = thermo_cli.load(path, keys=["t7", "t3"])
    assert list(got) == ["t7", "t3"] and got["t7"][0] == 7 and len(seen) == 2
    got["t7"][0] = 1  # the caller owns the arrays
    with pytest.raises(NotFoundError, match="no key 'nope'") as info:
        thermo_cli.load(path, keys=["nope"])
    assert isinstance(info.value, KeyError)
    with pytest.raises(ValidationError, match="single string"):
        thermo_cli.load(path, keys="t1")


def test_open_is_a_read_only_mapping_with_entry_details(tmp_path: Path):
    path = tmp_path / "m.thermo"
    thermo_cli.save_file({"w": np.eye(2, dtype=np.float32)}, path)
    with store.edit(path) as tg:
        tg.create("note", b"plain bytes", strength=0.25)
    from collections.abc import Mapping

    with thermo_cli.open(path) as view:
        assert isinstance(view, Mapping)
        assert list(view) == ["note", "w"] and len(view) == 2 and "w" in view and "x" not in view
        assert view["note"] == b"plain bytes"
        assert same(view["w"], np.eye(2, dtype=np.float32)) and not view["w"].flags.writeable
        assert dict(view.items()).keys() == {"note", "w"}
        e = view.entry("note")
        assert (e.source, e.strength, e.update_count) == ("dirty", 0.25, None)
        w = view.entry("w")
        assert (w.source, w.strength, w.update_count) == ("hot", 1.0, 1)
        with pytest.raises(KeyError):
            view["x"]
        with pytest.raises(NotFoundError):
            view.entry("x")
        assert not hasattr(view, "__setitem__")
    # BF16 without ml_dtypes: the raw bits, as before
    thermo_cli.save_file({"bf": np.ones(2, ml_dtypes.bfloat16)}, path)
    codec_tensors._ml_dtypes.cache_clear()
    try:
        import builtins

        real_import = builtins.__import__

        def no_ml(name, *a, **kw):
            if name == "ml_dtypes":
                raise ImportError(name)
            return real_import(name, *a, **kw)

        builtins.__import__ = no_ml
        assert thermo_cli.load_file(path)["bf"].dtype == np.uint16
    finally:
        builtins.__import__ = real_import
        codec_tensors._ml_dtypes.cache_clear()
    assert thermo_cli.load_file(path)["bf"].dtype == ml_dtypes.bfloat16


def test_load_file_returns_plain_entries_as_bytes_and_ternary_dequantized(tmp_path: Path):
    from thermo_cli.codec.tensors import ternary_encode
    from thermo_cli.engine import Thermogram

    w = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    value, spec = ternary_encode(w, "absmean")
    tg = Thermogram(name="mixed")
    tg.create("raw", b"\x01\x02")
    tg.create("tern", value, tensor=spec)
    store.create(tmp_path / "m.thermo", tg)
    got = thermo_cli.load_file(tmp_path / "m.thermo")
    assert same(got["raw"], np.array([1, 2], np.uint8))
    assert got["tern"].dtype == np.float32 and got["tern"].shape == (4, 8)


def test_import_thermo_cli_does_not_import_numpy():
    code = "import sys, thermo_cli; thermo_cli.store; thermo_cli.Thermogram; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_public_names_are_listed_and_typed():
    assert set(thermo_cli.__all__) <= set(dir(thermo_cli))
    assert thermo_cli.open is thermo_cli.operations.tensorfile.open_view
    with pytest.raises(AttributeError):
        thermo_cli.nope  # noqa: B018
    assert (Path(thermo_cli.__file__).parent / "py.typed").exists()
