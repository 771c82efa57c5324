"""Reading activation vectors for the spiking network: .npy, .safetensors or JSONL, or stdin.

Every reader returns a float32 ``(n, dim)`` array that passed
:func:`~thermo_cli.operations.snn.network.check_activations`, so a NaN or infinite element is
reported as ``activation 3, element 17: NaN`` whatever the file format. A single vector
(shape ``[dim]``) counts as one activation. Errors name the file and, for JSONL, the line.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from thermo_cli.codec.tensors import dtype_info, to_float32
from thermo_cli.errors import CorruptError, FormatError, NotFoundError, ValidationError
from thermo_cli.formats.safetensors.format import open_safetensors, read_array
from thermo_cli.operations.snn.network import check_activations

NPY_MAGIC = b"\x93NUMPY"
FORMATS = ("npy", "safetensors", "jsonl")


def load_activations(
    source: str | os.PathLike[str] | IO[bytes],
    dim: int,
    *,
    fmt: str | None = None,
    tensor: str | None = None,
) -> np.ndarray:
    """Activations from a path (format from the extension, else sniffed) or a binary stream.

    ``fmt`` forces "npy", "safetensors" or "jsonl". A safetensors file must hold one tensor
    unless ``tensor`` names the one to use; BF16 and 8-bit floats are converted.
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValidationError(f"input format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if hasattr(source, "read"):
        data = source.read()
        return _from_bytes(data, "<stdin>", dim, fmt or _sniff(data), tensor)
    path = Path(os.fspath(source))
    name = str(path)
    if not path.exists():
        raise NotFoundError(f"{name}: no such file")
    if path.is_dir():
        raise ValidationError(f"{name}: is a directory, expected an activations file")
    kind = fmt or _format_from_name(path)
    if kind == "safetensors":
        return _safetensors(path, name, dim, tensor)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationError(f"{name}: cannot read ({exc.strerror or exc})") from None
    return _from_bytes(data, name, dim, kind or _sniff(data), tensor)


def _format_from_name(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return "npy"
    if suffix == ".safetensors":
        return "safetensors"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return None


def _sniff(data: bytes) -> str:
    if data.startswith(NPY_MAGIC):
        return "npy"
    if len(data) >= 9 and data[8:9] == b"{" and int.from_bytes(data[:8], "little") <= len(data) - 8:
        return "safetensors"
    return "jsonl"


def _from_bytes(data: bytes, name: str, dim: int, kind: str, tensor: str | None) -> np.ndarray:
    if kind == "npy":
        return _npy(data, name, dim)
    if kind == "safetensors":
        fd, tmp = tempfile.mkstemp(suffix=".safetensors")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return _safetensors(Path(tmp), name, dim, tensor)
        finally:
            os.unlink(tmp)
    return _jsonl(data, name, dim)


def _npy(data: bytes, name: str, dim: int) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise CorruptError(f"{name}: not a readable .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise CorruptError(f"{name}: truncated or damaged .npy file ({exc})") from None
    return _shaped(array, name, dim)


def _safetensors(path: Path, name: str, dim: int, tensor: str | None) -> np.ndarray:
    try:
        sf = open_safetensors(path)
    except FormatError as exc:
        raise type(exc)(str(exc).replace(str(path), name)) from None
    names = [t.name for t in sf.tensors]
    if tensor is None:
        if len(names) != 1:
            listed = ", ".join(repr(n) for n in names[:10]) or "none"
            raise ValidationError(
                f"{name}: holds {len(names)} tensors ({listed}); name the activations with tensor=…"
            )
        tensor = names[0]
    chosen = [t for t in sf.tensors if t.name == tensor]
    if not chosen:
        raise NotFoundError(f"{name}: no tensor named {tensor!r}")
    info = chosen[0]
    dtype = dtype_info(info.dtype)
    if dtype.kind not in ("float", "int", "uint"):
        raise ValidationError(f"{name}: tensor {tensor!r} has dtype {info.dtype}, expected numbers")
    array = read_array(sf, info)
    if dtype.is_float and not dtype.native:  # BF16/F8 come as raw bits
        array = to_float32(array, info.dtype)
    return _shaped(array, f"{name}: tensor {tensor!r}", dim)


def _jsonl(data: bytes, name: str, dim: int) -> np.ndarray:
    import orjson

    rows: list[Any] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            row = _lenient_json(line, name, number)
        if not isinstance(row, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in row
        ):
            raise ValidationError(f"{name}: line {number}: expected a JSON list of numbers")
        if len(row) != dim:
            raise ValidationError(f"{name}: line {number}: {len(row)} numbers, the network expects {dim}")
        rows.append(row)
    if not rows:
        raise ValidationError(f"{name}: no activations (expected one JSON list of numbers per line)")
    return _shaped(np.array(rows, dtype=np.float64), name, dim)


def _lenient_json(line: bytes, name: str, number: int) -> Any:
    """Python's parser accepts NaN and Infinity, so they reach the finite check and get named."""
    try:
        return json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise ValidationError(f"{name}: line {number}: not valid JSON") from None


def _shaped(array: np.ndarray, name: str, dim: int) -> np.ndarray:
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ValidationError(f"{name}: expected shape [n, {dim}], got {list(array.shape)}")
    if array.shape[0] == 0:
        raise ValidationError(f"{name}: no activations (shape {list(array.shape)})")
    if array.shape[1] != dim:
        raise ValidationError(
            f"{name}: activations have {array.shape[1]} elements, the network expects {dim}"
        )
    try:
        return check_activations(array, dim, single=False)
    except ValidationError as exc:
        raise ValidationError(f"{name}: {exc}") from None
