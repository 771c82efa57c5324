"""Which tensor file a byte string starts: the one place that knows the magic numbers.

Used wherever a file's name does not say what it holds (``-`` saved from stdin, a stream,
``weights.bin``): ``snn run --input -`` and the ternary commands read the same kinds.
"""

from __future__ import annotations

from thermo_cli.container.layout import looks_like_container

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
"""An .npz archive is a zip file of .npy members."""
HEAD_BYTES = 16
"""Bytes of a file's start that :func:`tensor_file_kind` needs."""


def tensor_file_kind(head: bytes, size: int | None = None) -> str | None:
    """ "npy", "npz", "safetensors" or "thermo" from a file's first bytes, or None.

    A safetensors file starts with its header's length (8 bytes, little-endian) and the
    header's ``{``; with ``size`` (the whole file's) the length must also fit in the file.
    """
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(ZIP_MAGIC):
        return "npz"
    if looks_like_container(head):
        return "thermo"
    header_fits = size is None or int.from_bytes(head[:8], "little") <= size - 8
    if len(head) >= 9 and head[8:9] == b"{" and header_fits:
        return "safetensors"
    return None
