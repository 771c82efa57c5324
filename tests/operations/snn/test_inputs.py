"""Activations from .npy, .safetensors, JSONL and streams; every error names where."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from thermo_cli.errors import CorruptError, NotFoundError, ValidationError
from thermo_cli.operations.snn.inputs import load_activations

ROWS = np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5


def test_npy(tmp_path):
    np.save(tmp_path / "a.npy", ROWS.astype(np.float64))
    got = load_activations(tmp_path / "a.npy", 4)
    assert got.dtype == np.float32 and np.array_equal(got, ROWS)
    np.save(tmp_path / "one.npy", ROWS[0])
    assert load_activations(tmp_path / "one.npy", 4).shape == (1, 4)


def test_safetensors_including_bf16(tmp_path):
    save_file({"h": ROWS}, str(tmp_path / "a.safetensors"))
    assert np.array_equal(load_activations(tmp_path / "a.safetensors", 4), ROWS)
    bf16 = (ROWS.view(np.uint32) >> 16).astype(np.uint16)  # exact: these values fit in bf16
    header = json.dumps({"h": {"dtype": "BF16", "shape": [3, 4], "data_offsets": [0, 24]}}).encode()
    header += b" " * (-len(header) % 8)
    (tmp_path / "b.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bf16.tobytes())
    assert np.array_equal(load_activations(tmp_path / "b.safetensors", 4), ROWS)


def test_safetensors_with_several_tensors_needs_a_name(tmp_path):
    save_file({"a": ROWS, "b": ROWS * 2}, str(tmp_path / "m.safetensors"))
    with pytest.raises(ValidationError, match=r"holds 2 tensors.*tensor="):
        load_activations(tmp_path / "m.safetensors", 4)
    assert np.array_equal(load_activations(tmp_path / "m.safetensors", 4, tensor="b"), ROWS * 2)
    with pytest.raises(NotFoundError, match="'c'"):
        load_activations(tmp_path / "m.safetensors", 4, tensor="c")


def test_jsonl(tmp_path):
    text = "\n".join(json.dumps(r) for r in ROWS.tolist()) + "\n\n"
    (tmp_path / "a.jsonl").write_text(text)
    assert np.array_equal(load_activations(tmp_path / "a.jsonl", 4), ROWS)


@pytest.mark.parametrize("maker", ["npy", "safetensors", "jsonl"])
def test_streams_are_sniffed(tmp_path, maker):
    if maker == "npy":
        buf = io.BytesIO()
        np.save(buf, ROWS)
        data = buf.getvalue()
    elif maker == "safetensors":
        save_file({"x": ROWS}, str(tmp_path / "s"))
        data = (tmp_path / "s").read_bytes()
    else:
        data = ("\n".join(json.dumps(r) for r in ROWS.tolist())).encode()
    assert np.array_equal(load_activations(io.BytesIO(data), 4), ROWS)


def test_non_finite_values_are_named(tmp_path):
    (tmp_path / "a.jsonl").write_text("[1, 2, 3, 4]\n[1, NaN, 3, 4]\n")
    with pytest.raises(ValidationError, match=r"a\.jsonl: activation 1, element 1: NaN"):
        load_activations(tmp_path / "a.jsonl", 4)
    (tmp_path / "b.jsonl").write_text("[1, 2, 3, 1e999]\n")
    with pytest.raises(ValidationError, match=r"activation 0, element 3: \+inf"):
        load_activations(tmp_path / "b.jsonl", 4)
    bad = ROWS.copy()
    bad[2, 1] = np.inf
    np.save(tmp_path / "c.npy", bad)
    with pytest.raises(ValidationError, match=r"c\.npy: activation 2, element 1: \+inf"):
        load_activations(tmp_path / "c.npy", 4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2, 3]\n", "line 1: 3 numbers, the network expects 4"),
        ('[1, 2, 3, 4]\n{"a": 1}\n', "line 2: expected a JSON list of numbers"),
        ("[1, 2, 3, true]\n", "line 1: expected a JSON list of numbers"),
        ("[1, 2, 3, 4\n", "line 1: not valid JSON"),
        ("\n\n", "no activations"),
    ],
)
def test_bad_jsonl_names_the_line(tmp_path, text, message):
    (tmp_path / "a.jsonl").write_text(text)
    with pytest.raises(ValidationError, match=message):
        load_activations(tmp_path / "a.jsonl", 4)


def test_shape_and_file_errors(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 5)))
    with pytest.raises(ValidationError, match="5 elements, the network expects 4"):
        load_activations(tmp_path / "a.npy", 4)
    np.save(tmp_path / "b.npy", np.zeros((2, 2, 4)))
    with pytest.raises(ValidationError, match=r"expected shape \[n, 4\]"):
        load_activations(tmp_path / "b.npy", 4)
    np.save(tmp_path / "c.npy", np.array(["a", "b", "c", "d"]))
    with pytest.raises(ValidationError, match="expected real numbers"):
        load_activations(tmp_path / "c.npy", 4)
    (tmp_path / "d.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(CorruptError, match=r"d\.npy"):
        load_activations(tmp_path / "d.npy", 4)
    with pytest.raises(NotFoundError, match="no such file"):
        load_activations(tmp_path / "missing.npy", 4)
    with pytest.raises(ValidationError, match="input format"):
        load_activations(tmp_path / "a.npy", 4, fmt="csv")


# --- .npz archives and JSON documents ------------------------------------------------------------


def test_npz_one_array_or_the_named_one(tmp_path):
    np.savez(tmp_path / "one.npz", h=ROWS.astype(np.float16))
    assert np.array_equal(load_activations(tmp_path / "one.npz", 4), ROWS)
    np.savez_compressed(tmp_path / "two.npz", hidden=ROWS, labels=np.arange(3))
    with pytest.raises(ValidationError, match=r"two\.npz: holds 2 arrays \('hidden', 'labels'\).*tensor="):
        load_activations(tmp_path / "two.npz", 4)
    assert np.array_equal(load_activations(tmp_path / "two.npz", 4, tensor="hidden"), ROWS)
    with pytest.raises(NotFoundError, match="no array named 'nope'"):
        load_activations(tmp_path / "two.npz", 4, tensor="nope")
    data = (tmp_path / "two.npz").read_bytes()
    got = load_activations(io.BytesIO(data), 4, tensor="hidden")  # sniffed from a stream
    assert np.array_equal(got, ROWS)


def test_npz_errors_name_the_file(tmp_path):
    np.savez(tmp_path / "s.npz", h=np.array([["a", "b", "c", "d"]]))
    with pytest.raises(ValidationError, match=r"s\.npz: array 'h' has dtype <U1, expected numbers"):
        load_activations(tmp_path / "s.npz", 4)
    np.savez(tmp_path / "w.npz", h=np.zeros((2, 3)))
    with pytest.raises(ValidationError, match=r"w\.npz: array 'h': activations have 3 elements"):
        load_activations(tmp_path / "w.npz", 4)
    (tmp_path / "t.npz").write_bytes((tmp_path / "w.npz").read_bytes()[:40])
    with pytest.raises(CorruptError, match=r"t\.npz: truncated or damaged \.npz archive"):
        load_activations(tmp_path / "t.npz", 4)
    np.savez(tmp_path / "o.npz", h=np.array([object()], dtype=object))
    with pytest.raises(CorruptError, match=r"o\.npz: not a readable \.npz archive"):
        load_activations(tmp_path / "o.npz", 4)


@pytest.mark.parametrize("indent", [None, 2])
def test_json_two_dimensional_array(tmp_path, indent):
    (tmp_path / "a.json").write_text(json.dumps(ROWS.tolist(), indent=indent))
    assert np.array_equal(load_activations(tmp_path / "a.json", 4), ROWS)
    data = json.dumps(ROWS.tolist(), indent=indent).encode()
    assert np.array_equal(load_activations(io.BytesIO(data), 4), ROWS)  # sniffed: starts with [[
    (tmp_path / "v.json").write_text(json.dumps(ROWS[0].tolist()))
    assert load_activations(tmp_path / "v.json", 4).shape == (1, 4)


def test_json_named_file_holding_lines_is_read_as_jsonl(tmp_path):
    (tmp_path / "a.json").write_text("\n".join(json.dumps(r) for r in ROWS.tolist()))
    assert np.array_equal(load_activations(tmp_path / "a.json", 4), ROWS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[1, 2, 3, 4], [1, 2]]", "rows of the JSON array have different lengths"),
        ('[[1, 2, 3, "x"]]', "expected a JSON array of numbers only"),
        ("[[1, 2, 3, true]]", "expected a JSON array of numbers only"),
        ('{"a": [1, 2, 3, 4]}', "expected a JSON array of numbers, got dict"),
        ("[[1, 2, 3, 4],\n [1, 2, 3 4]]", r"line 2: not valid JSON"),
        ("[[1, 2, 3, 4], [1, NaN, 3, 4]]", "activation 1, element 1: NaN"),
        ("[[[1, 2, 3, 4]]]", r"expected shape \[n, 4\]"),
    ],
)
def test_bad_json_documents_are_named(tmp_path, text, message):
    (tmp_path / "a.json").write_text(text)
    with pytest.raises(ValidationError, match=rf"a\.json: .*{message}"):
        load_activations(tmp_path / "a.json", 4)
