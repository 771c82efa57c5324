"""Packed sub-byte floats (F4, F6_E2M3, F6_E3M2) through every command that meets them.

They are stored and exported bit-exact; anything that hands out an array gives their
packed bytes as uint8 (the last dimension packed when a row fills whole bytes, else one
flat dimension: ``thermo_cli.codec.tensors.packed_shape``); nothing converts them to values.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import thermo_cli.cli  # noqa: F401 - registers every feature's commands on the app
from thermo_cli import store
from thermo_cli.cli._common import app
from thermo_cli.errors import ValidationError
from thermo_cli.formats.safetensors.format import OutTensor, open_safetensors, read_tensor, write_safetensors
from thermo_cli.model import Layer

TENSORS = {  # name: (dtype, shape, shape of the packed uint8 array handed out)
    "w4": ("F4", (2, 8), (2, 4)),
    "w6": ("F6_E2M3", (3, 4), (3, 3)),
    "w6flat": ("F6_E3M2", (2, 6), (9,)),
    "dense": ("F32", (4, 8), (4, 8)),
    "bias": ("BF16", (3,), (3,)),
}


def thermo(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def checkpoint(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A checkpoint holding every packed dtype next to ordinary tensors, with metadata."""
    rng = np.random.default_rng(11)
    outs = [OutTensor(name, dtype, shape) for name, (dtype, shape, _) in TENSORS.items()]
    blobs = {t.name: rng.integers(0, 256, t.nbytes, dtype=np.uint8).tobytes() for t in outs}
    blobs["dense"] = rng.standard_normal(32).astype("<f4").tobytes()
    path = tmp_path / "in.safetensors"
    write_safetensors(path, outs, lambda t: blobs[t.name], {"format": "pt"})
    return path, blobs


def tensors_of(path: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    sf = open_safetensors(path)
    return {t.name: (t.dtype, t.shape, read_tensor(sf, t)) for t in sf.tensors}


def test_import_export_round_trip_is_bit_exact(tmp_path: Path, checkpoint) -> None:
    src, blobs = checkpoint
    code, _, err = thermo("import-safetensors", src, tmp_path / "m.thermo")
    assert code == 0, err
    assert "1 F4, 1 F6_E2M3, 1 F6_E3M2" in err
    code, _, err = thermo("export-safetensors", tmp_path / "m.thermo", tmp_path / "out.safetensors")
    assert code == 0, err
    assert (tmp_path / "out.safetensors").read_bytes() == src.read_bytes()
    # --keep-ternary and --ternary leave packed floats alone: they are stored exactly
    code, out, err = thermo(
        "import-safetensors", src, tmp_path / "t.thermo", "--ternary", "--ternary-min-rank", "1", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["ternary"] == 2  # dense and bias; never the F4/F6 tensors
    code, _, err = thermo(
        "export-safetensors", tmp_path / "t.thermo", tmp_path / "k.safetensors", "--keep-ternary"
    )
    assert code == 0, err
    got = tensors_of(tmp_path / "k.safetensors")
    for name in ("w4", "w6", "w6flat"):
        dtype, shape, _ = TENSORS[name]
        assert got[name] == (dtype, shape, blobs[name])


@pytest.mark.parametrize("name", ["w4", "w6", "w6flat"])
def test_get_hands_out_the_packed_bytes(tmp_path: Path, checkpoint, name: str) -> None:
    src, blobs = checkpoint
    assert thermo("import-safetensors", src, tmp_path / "m.thermo")[0] == 0
    dtype, shape, packed = TENSORS[name]
    code, out, err = thermo("get", tmp_path / "m.thermo", name, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["tensor"] == {"dtype": dtype, "encoding": "raw", "shape": list(shape)}
    assert base64.b64decode(doc["value"]["b64"]) == blobs[name]
    code, out, err = thermo("get", tmp_path / "m.thermo", name)
    assert code == 0, err
    expected = np.frombuffer(blobs[name], np.uint8).reshape(packed)
    assert json.loads(out) == expected.tolist()
    npy = tmp_path / f"{name}.npy"
    code, _, err = thermo("get", tmp_path / "m.thermo", name, "--as-npy", npy)
    assert code == 0, err
    arr = np.load(npy)
    assert arr.dtype == np.uint8 and arr.shape == packed and arr.tobytes() == blobs[name]


def test_ternary_commands_copy_packed_floats_unchanged(tmp_path: Path, checkpoint) -> None:
    src, blobs = checkpoint
    code, _, err = thermo("ternary", "pack", src, tmp_path / "p.thermo")
    assert code == 0, err
    assert "(1 ternary, 4 copied unchanged)" in err  # the 1-D "bias" stays exact
    code, _, err = thermo("ternary", "unpack", tmp_path / "p.thermo", tmp_path / "u.safetensors")
    assert code == 0, err
    got = tensors_of(tmp_path / "u.safetensors")
    for name in ("w4", "w6", "w6flat"):
        assert got[name] == (TENSORS[name][0], TENSORS[name][1], blobs[name])
    code, _, err = thermo("ternary", "unpack", tmp_path / "p.thermo", tmp_path / "w4.npy", "--key", "w4")
    assert code == 0, err
    assert np.load(tmp_path / "w4.npy").tobytes() == blobs["w4"]
    code, _, err = thermo("ternary", "pack", src, tmp_path / "p.safetensors")
    assert code == 0, err
    code, _, err = thermo("ternary", "unpack", tmp_path / "p.safetensors", tmp_path / "u2.safetensors")
    assert code == 0, err
    assert tensors_of(tmp_path / "u2.safetensors")["w6flat"] == ("F6_E3M2", (2, 6), blobs["w6flat"])


def test_quantize_in_place_leaves_packed_floats(tmp_path: Path, checkpoint) -> None:
    src, blobs = checkpoint
    assert thermo("import-safetensors", src, tmp_path / "m.thermo")[0] == 0
    code, out, err = thermo("quantize", tmp_path / "m.thermo", "--json", "--force", "--min-rank", "1")
    assert code == 0, err
    assert sorted(t["name"] for t in json.loads(out)["tensors"]) == ["bias", "dense"]
    cool = store.load(tmp_path / "m.thermo").layers[Layer.COOL]
    for name in ("w4", "w6", "w6flat"):
        assert cool[name].tensor.encoding == "raw" and cool[name].value == blobs[name]


def test_activations_from_a_packed_tensor_are_refused_by_name(checkpoint) -> None:
    from thermo_cli.operations.snn.inputs import load_activations

    src, _ = checkpoint
    with pytest.raises(ValidationError, match="tensor 'w4' has dtype F4, expected numbers"):
        load_activations(src, 16, tensor="w4")
    assert load_activations(src, 8, tensor="dense").shape == (4, 8)
