"""Malformed and hostile safetensors inputs: one thermo error class each, never a crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.operations.safetensors.crafting import craft, f32, write
from thermo_cli import errors
from thermo_cli.operations.safetensors import (
    iter_tensor_bytes,
    open_safetensors,
    plan_import,
    read_index,
    tensor_nbytes,
)

GOOD = f32("a", 0, 2)


def _both(h: dict, h2: dict) -> dict:
    return {**h, **h2}


MALFORMED = [
    ("empty file", b"", errors.TruncatedError, "header too small"),
    ("shorter than the length field", b"\x01\x02\x03", errors.TruncatedError, "header too small"),
    (
        "header length beyond the file",
        craft(GOOD, b"\0" * 8, header_len=10_000),
        errors.TruncatedError,
        "invalid header length",
    ),
    (
        "header larger than 100 MB",
        craft(GOOD, b"\0" * 8, header_len=100_000_001),
        errors.LimitExceededError,
        "100,000,000",
    ),
    ("header length 2**63", craft(GOOD, b"\0" * 8, header_len=2**63), errors.LimitExceededError, "cap"),
    (
        "overlapping offsets",
        craft(_both(GOOD, f32("b", 4, 2)), b"\0" * 12),
        errors.CorruptError,
        "invalid offset for tensor `b`",
    ),
    (
        "hole between tensors",
        craft(_both(GOOD, f32("b", 12, 2)), b"\0" * 20),
        errors.CorruptError,
        "invalid offset for tensor `b`",
    ),
    (
        "hole before the first tensor",
        craft(f32("a", 4, 2), b"\0" * 12),
        errors.CorruptError,
        "invalid offset",
    ),
    (
        "shape x dtype size mismatch",
        craft({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
        errors.CorruptError,
        "invalid shape, data type, or offset",
    ),
    (
        "data beyond the end of the file",
        craft({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8),
        errors.CorruptError,
        "not fully covered",
    ),
    ("trailing bytes after the data", craft(GOOD, b"\0" * 12), errors.CorruptError, "not fully covered"),
    (
        "non-UTF-8 header",
        craft(
            raw_header=b'{"__metadata__":{"k":"\xff"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}',
            data=b"\0" * 8,
        ),
        errors.CorruptError,
        "invalid UTF-8",
    ),
    (
        "non-string metadata value",
        craft(_both({"__metadata__": {"k": 1}}, GOOD), b"\0" * 8),
        errors.CorruptError,
        "expected a string",
    ),
    (
        "metadata not an object",
        craft(_both({"__metadata__": ["x"]}, GOOD), b"\0" * 8),
        errors.CorruptError,
        "expected a map",
    ),
    ("bad JSON", craft(raw_header=b'{"a":{"dtype":"F32",', data=b""), errors.CorruptError, "invalid JSON"),
    ("header is a JSON array", craft(raw_header=b"[1,2]      "), errors.CorruptError, "invalid JSON"),
    (
        "unknown dtype",
        craft({"a": {"dtype": "F128", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8),
        errors.CorruptError,
        "F128",
    ),
    (
        "negative offset",
        craft({"a": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}, b"\0" * 8),
        errors.CorruptError,
        "invalid JSON",
    ),
    (
        "begin after end",
        craft({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, b"\0" * 8),
        errors.CorruptError,
        "invalid offset",
    ),
    (
        "shape product overflows",
        craft({"a": {"dtype": "F32", "shape": [2**32, 2**32, 16], "data_offsets": [0, 0]}}),
        errors.CorruptError,
        "overflow",
    ),
    (
        "missing data_offsets",
        craft({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8),
        errors.CorruptError,
        "data_offsets",
    ),
    (
        "NUL padding after the JSON",
        craft(raw_header=b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}\0\0', data=b"\0"),
        errors.CorruptError,
        "trailing characters",
    ),
    (
        "F4 not filling whole bytes",
        craft({"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, b"\0" * 2),
        errors.CorruptError,
        "byte boundary",
    ),
    (
        "duplicate tensor name (the library keeps the last one silently)",
        craft(
            raw_header=b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
            b'"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},'
            b'"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
            data=b"\0\0",
        ),
        errors.CorruptError,
        "duplicate name 'a'",
    ),
    (
        "duplicate metadata key",
        craft(
            raw_header=b'{"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
            data=b"\0",
        ),
        errors.CorruptError,
        "duplicate name 'k'",
    ),
]


@pytest.mark.parametrize(("blob", "cls", "needle"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_file_raises_one_thermo_error(tmp_path: Path, blob: bytes, cls: type, needle: str) -> None:
    path = write(tmp_path / "bad.safetensors", blob)
    with pytest.raises(cls) as info:
        open_safetensors(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_valid_file_lists_tensors_in_offset_order(tmp_path: Path) -> None:
    header = {"__metadata__": {"format": "pt"}, **f32("z", 0, 1), **f32("a", 4, 2)}
    path = write(tmp_path / "ok.safetensors", craft(header, bytes(range(12))))
    sf = open_safetensors(path)
    assert [t.name for t in sf.tensors] == ["z", "a"]
    assert sf.metadata == {"format": "pt"}
    got = {info.name: data for info, data in iter_tensor_bytes(sf)}
    assert got == {"z": bytes(range(4)), "a": bytes(range(4, 12))}


def test_header_with_leading_and_trailing_spaces_is_accepted(tmp_path: Path) -> None:
    raw = b'  {"a":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}   '
    sf = open_safetensors(write(tmp_path / "s.safetensors", craft(raw_header=raw, data=b"\x07")))
    assert [(i.shape, d) for i, d in iter_tensor_bytes(sf)] == [((), b"\x07")]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(errors.NotFoundError):
        open_safetensors(tmp_path / "nope.safetensors")
    with pytest.raises(errors.ValidationError, match="directory"):
        open_safetensors(tmp_path)


def test_file_replaced_after_validation_is_detected(tmp_path: Path) -> None:
    path = write(tmp_path / "m.safetensors", craft(GOOD, b"\0" * 8))
    sf = open_safetensors(path)
    other = write(tmp_path / "other", craft(GOOD, b"\1" * 8))
    os.replace(other, path)
    with pytest.raises(errors.CorruptError, match="changed"):
        list(iter_tensor_bytes(sf))


def test_key_rules_apply_to_tensor_names(tmp_path: Path) -> None:
    unnamed = {"": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}
    path = write(tmp_path / "e.safetensors", craft(unnamed, b"\0"))
    with pytest.raises(errors.ValidationError, match="must not be empty"):
        plan_import([path])
    assert [it.key for it in plan_import([path], prefix="p.").items] == ["p."]
    long_name = "x" * 5000
    path2 = write(
        tmp_path / "l.safetensors",
        craft({long_name: {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}, b"\0"),
    )
    with pytest.raises(errors.ValidationError, match="exceeds the maximum"):
        plan_import([path2])


def test_index_with_path_escape_is_refused(tmp_path: Path) -> None:
    idx = tmp_path / "model.safetensors.index.json"
    idx.write_text('{"metadata": {}, "weight_map": {"a": "../evil.safetensors"}}')
    with pytest.raises(errors.CorruptError, match="plain file name"):
        read_index(idx)


@pytest.mark.parametrize(
    "text",
    [
        '{"weight_map": [1]}',
        "not json",
        '{"weight_map": {"a": 3}}',
        '{"metadata": 1, "weight_map": {}}',
        '{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}',
    ],
)
def test_malformed_index_is_refused(tmp_path: Path, text: str) -> None:
    idx = tmp_path / "model.safetensors.index.json"
    idx.write_text(text)
    with pytest.raises(errors.CorruptError):
        read_index(idx)


def test_tensor_nbytes_covers_sub_byte_dtypes() -> None:
    assert tensor_nbytes("F4", (2, 4)) == 4
    assert tensor_nbytes("F6_E2M3", (4,)) == 3
    assert tensor_nbytes("BF16", ()) == 2
    assert tensor_nbytes("F64", (0, 7)) == 0
    with pytest.raises(errors.ValidationError):
        tensor_nbytes("F6_E3M2", (3,))
    with pytest.raises(errors.ValidationError):
        tensor_nbytes("Q4", (2,))
