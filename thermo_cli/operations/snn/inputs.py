"""Reading activation vectors for the spiking network: .npy, .npz, .safetensors, a JSON array,
JSONL, or stdin.

Every reader returns a float32 ``(n, dim)`` array that passed
:func:`~thermo_cli.operations.snn.network.check_activations`, so a NaN or infinite element is
reported as ``activation 3, element 17: NaN`` whatever the file format. A single vector
(shape ``[dim]``) counts as one activation. Errors name the file and, for JSON, the line.

Archives of several arrays (.npz, .safetensors) need the one to use named (``tensor``) unless
they hold exactly one. JSON comes in two shapes: one document holding a 2-D array (or one
vector), as ``json.dump(array.tolist(), f)`` writes it, or one vector per line (JSONL); a file
named ``.json`` or a sniffed stream is read as whichever it is.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from thermo_cli.codec.tensors import dtype_info, to_float32
from thermo_cli.errors import CorruptError, FormatError, NotFoundError, ValidationError
from thermo_cli.formats.safetensors.format import open_safetensors, read_array
from thermo_cli.formats.sniff import HEAD_BYTES, tensor_file_kind
from thermo_cli.operations.snn.network import check_activations

FORMATS = ("npy", "npz", "safetensors", "json", "jsonl")


def load_activations(
    source: str | os.PathLike[str] | IO[bytes],
    dim: int,
    *,
    fmt: str | None = None,
    tensor: str | None = None,
) -> np.ndarray:
    """Activations from a path (format from the extension, else sniffed) or a binary stream.

    ``fmt`` forces "npy", "npz", "safetensors", "json" or "jsonl". An .npz or safetensors
    file must hold one array unless ``tensor`` names the one to use; BF16 and 8-bit floats
    are converted. "json" is one document (a 2-D array of numbers, or one vector) or, when
    the text is not one document, JSONL.
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
    if suffix in (".npy", ".npz", ".safetensors", ".json", ".jsonl"):
        return suffix[1:]
    if suffix == ".ndjson":
        return "jsonl"
    return None


def _sniff(data: bytes) -> str:
    kind = tensor_file_kind(data[:HEAD_BYTES], len(data))
    return "jsonl" if kind is None or kind == "thermo" else kind


def _from_bytes(data: bytes, name: str, dim: int, kind: str, tensor: str | None) -> np.ndarray:
    if kind == "npy":
        return _npy(data, name, dim)
    if kind == "npz":
        return _npz(data, name, dim, tensor)
    if kind == "safetensors":
        fd, tmp = tempfile.mkstemp(suffix=".safetensors")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return _safetensors(Path(tmp), name, dim, tensor)
        finally:
            os.unlink(tmp)
    if kind == "json" or _starts_nested(data):
        document = _json_document(data, name)
        if document is not None:
            return _json_array(document, data, name, dim)
    return _jsonl(data, name, dim)


def _npy(data: bytes, name: str, dim: int) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise CorruptError(f"{name}: not a readable .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise CorruptError(f"{name}: truncated or damaged .npy file ({exc})") from None
    return _shaped(array, name, dim)


def _npz(data: bytes, name: str, dim: int, tensor: str | None) -> np.ndarray:
    with _npz_errors(name):
        archive = np.load(io.BytesIO(data), allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise CorruptError(f"{name}: not an .npz archive (a single .npy array)")
    with archive:
        chosen = _chosen(list(archive.files), tensor, name, "arrays")
        with _npz_errors(name):
            array = archive[chosen]
    if array.dtype.kind not in "iuf":
        raise ValidationError(f"{name}: array {chosen!r} has dtype {array.dtype}, expected numbers")
    return _shaped(array, f"{name}: array {chosen!r}", dim)


@contextlib.contextmanager
def _npz_errors(name: str) -> Iterator[None]:
    """numpy's errors reading an archive, as CorruptError naming the file."""
    try:
        yield
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise CorruptError(f"{name}: truncated or damaged .npz archive ({exc})") from None
    except ValueError as exc:
        raise CorruptError(f"{name}: not a readable .npz archive ({exc})") from None


def _chosen(names: list[str], tensor: str | None, name: str, what: str) -> str:
    """The member to read: ``tensor``, or the only one (ValidationError naming the choices)."""
    if tensor is None:
        if len(names) != 1:
            listed = ", ".join(repr(n) for n in names[:10]) or "none"
            raise ValidationError(
                f"{name}: holds {len(names)} {what} ({listed}); name the activations with tensor=…"
            )
        return names[0]
    if tensor not in names:
        raise NotFoundError(f"{name}: no {what[:-1]} named {tensor!r}")
    return tensor


def _safetensors(path: Path, name: str, dim: int, tensor: str | None) -> np.ndarray:
    try:
        sf = open_safetensors(path)
    except FormatError as exc:
        raise type(exc)(str(exc).replace(str(path), name)) from None
    tensor = _chosen([t.name for t in sf.tensors], tensor, name, "tensors")
    info = next(t for t in sf.tensors if t.name == tensor)
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


_BOOLEAN = re.compile(rb"\b(?:true|false)\b")


def _starts_nested(data: bytes) -> bool:
    """A document opening with ``[[``: a 2-D array, whatever the file is named."""
    head = data[:4096].lstrip()
    return head.startswith(b"[") and head[1:].lstrip().startswith(b"[")


def _json_document(data: bytes, name: str) -> Any:
    """The text as one JSON document, or None when it is several (JSONL: one per line).

    NaN and Infinity are read (and then refused by the finite check, naming the element);
    a document that is not valid JSON is named by line."""
    import orjson

    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        raise ValidationError(f"{name}: not valid UTF-8 text") from None
    except RecursionError:
        raise ValidationError(f"{name}: JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # a second value after the first: JSONL
            return None
        raise ValidationError(f"{name}: line {exc.lineno}: not valid JSON ({exc.msg})") from None


def _json_array(document: Any, data: bytes, name: str, dim: int) -> np.ndarray:
    """A JSON vector or 2-D array of numbers as an array (numpy checks the elements; a
    numeric array holds no strings, so a ``true``/``false`` in the text is an element)."""
    if not isinstance(document, list):
        raise ValidationError(f"{name}: expected a JSON array of numbers, got {type(document).__name__}")
    try:
        array = np.asarray(document)
    except ValueError:
        raise ValidationError(f"{name}: the rows of the JSON array have different lengths") from None
    if array.dtype.kind not in "iuf" or _BOOLEAN.search(data):
        raise ValidationError(f"{name}: expected a JSON array of numbers only")
    return _shaped(array.astype(np.float64, copy=False), name, dim)


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
