"""The tensor-file kinds told from a file's first bytes."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from thermo_cli.container.layout import MAGIC
from thermo_cli.formats.sniff import HEAD_BYTES, tensor_file_kind


def npy_bytes() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ones(3, np.float32))
    return buf.getvalue()


def npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, a=np.ones(3, np.float32))
    return buf.getvalue()


def safetensors_bytes(header: bytes = b'{"__metadata__":{}}') -> bytes:
    return struct.pack("<Q", len(header)) + header


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (npy_bytes(), "npy"),
        (npz_bytes(), "npz"),
        (safetensors_bytes(), "safetensors"),
        (MAGIC + b"\x02\x01\x00" + bytes(20), "thermo"),
        (b'{"op": "create"}\n', None),
        (b"", None),
        (b"\x93NUM", None),
    ],
)
def test_kinds_from_the_first_bytes(data: bytes, kind: str | None):
    assert tensor_file_kind(data[:HEAD_BYTES], len(data)) == kind
    assert tensor_file_kind(data[:HEAD_BYTES]) == kind


def test_a_safetensors_header_longer_than_the_file_is_not_one():
    data = struct.pack("<Q", 10_000) + b'{"a":1}'
    assert tensor_file_kind(data[:HEAD_BYTES], len(data)) is None
    assert tensor_file_kind(data[:HEAD_BYTES]) == "safetensors"  # size unknown: the head alone
