"""The safetensors file format: validated lazy reading and atomic streaming writing.

Why tensor bytes are read here instead of through ``safe_open(...).get_tensor``: the
library's numpy framework cannot return BF16, F8, F6 or F4 tensors (numpy has no such
dtypes), and a thermogram stores raw little-endian bytes anyway. So every file is first
validated by the library itself (``safe_open`` checks: header length within the file and
<= 100 MB, UTF-8, JSON structure, string-only metadata, known dtypes, offsets contiguous
from 0 without holes or overlaps and covering the whole file, shape × dtype size), then the
already validated header is parsed once more here for the offsets, adding what the
library lacks: duplicate tensor names (it silently keeps the last one). Tensor bytes are
then read one tensor at a time, so memory grows with the largest tensor, not the file.

Why files are written here instead of by ``safetensors.serialize_file``: that function
takes a raw pointer to every tensor at once, so the whole checkpoint must be resident; it
cannot write F6 tensors and emits invalid JSON for ``metadata={}`` without tensors.
:func:`write_safetensors` produces the library's layout byte for byte (tensors ordered by
dtype alignment then name, header padded with spaces to 8 bytes; metadata keys sorted
where the library's order is random), streams one tensor at a time into a temporary file,
re-opens the result with ``safe_open`` and only then renames it into place.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from thermo_cli.codec.tensors import SAFETENSORS_DTYPES, tensor_nbytes, value_to_array
from thermo_cli.container.fileops import atomic_output
from thermo_cli.errors import (
    CorruptError,
    FormatError,
    LimitExceededError,
    NotFoundError,
    TruncatedError,
    ValidationError,
)
from thermo_cli.model import TensorSpec

if TYPE_CHECKING:
    import numpy as np

MAX_HEADER_BYTES = 100_000_000
"""The safetensors library's own cap on the JSON header (it refuses larger ones)."""

METADATA_KEY = "__metadata__"
ProgressFn = Callable[[int], None]
"""Called with the number of tensor bytes just processed (drives a progress bar)."""


# --- dtypes -----------------------------------------------------------------------------------

DTYPE_BITS: dict[str, int] = {name: d.bits for name, d in SAFETENSORS_DTYPES.items()}
"""Bits per element of every dtype the installed safetensors reads (from the one dtype
table, :data:`thermo_cli.codec.tensors.SAFETENSORS_DTYPES`); F4 and F6 are packed sub-byte
formats (several elements per byte)."""

_DTYPE_RANK = {name: i for i, name in enumerate(SAFETENSORS_DTYPES)}
"""Position in the library's ``Dtype`` enum: it writes tensors sorted by this, descending
(largest alignment first), then by name; :func:`write_safetensors` does the same."""


# --- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor of a validated file: where its bytes are, what they are."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    """Absolute position of the first byte in the file."""
    nbytes: int

    @property
    def spec(self) -> TensorSpec:
        """The tensor as a thermogram entry describes it (raw encoding: the same bytes)."""
        return TensorSpec(dtype=self.dtype, shape=self.shape)


@dataclass(frozen=True, slots=True)
class SafetensorsFile:
    """A safetensors file whose header passed validation, with its tensors in file order."""

    path: Path
    size: int
    header_len: int
    metadata: dict[str, str] | None
    tensors: tuple[TensorInfo, ...]
    stat_key: tuple[int, int, int] = field(repr=False, default=(0, 0, 0))

    @property
    def data_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


def _library_error(path: Path, exc: Exception) -> FormatError:
    """Turn the library's SafetensorError text into the matching thermo error class."""
    text = str(exc).replace("Error while deserializing header: ", "")
    msg = f"{path}: not a valid safetensors file: {text}"
    if "header too large" in text:
        return LimitExceededError(f"{path}: safetensors header exceeds the {MAX_HEADER_BYTES:,}-byte cap")
    if "header too small" in text or "invalid header length" in text:
        return TruncatedError(msg)
    return CorruptError(msg)


def reject_duplicates(what: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise CorruptError(f"{what}: duplicate name {k!r} in the JSON header")
            out[k] = v
        return out

    return hook


def stat_key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def open_safetensors(path: str | os.PathLike[str]) -> SafetensorsFile:
    """Validate a safetensors file without reading its tensor data.

    The library does the structural validation; this adds duplicate-name detection and
    returns absolute offsets so tensors can be streamed one by one. Raises only
    :mod:`thermo_cli.errors` classes (NotFoundError, TruncatedError, LimitExceededError,
    CorruptError).
    """
    from safetensors import SafetensorError, safe_open

    p = Path(path)
    try:
        with open(p, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not os.path.isfile(p):
                raise ValidationError(f"{p}: not a regular file")
            try:
                with safe_open(str(p), framework="numpy") as lib:
                    lib_meta = lib.metadata()
            except SafetensorError as exc:
                raise _library_error(p, exc) from None
            (header_len,) = struct.unpack("<Q", fh.read(8))
            raw = fh.read(header_len)
            if stat_key(os.fstat(fh.fileno())) != stat_key(st) or len(raw) != header_len:
                raise CorruptError(f"{p}: file changed while it was being validated")
    except FileNotFoundError:
        raise NotFoundError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ValidationError(f"{p}: is a directory, expected a .safetensors file") from None
    except PermissionError:
        raise ValidationError(f"{p}: permission denied") from None
    except struct.error:  # shorter than 8 bytes although the library accepted it
        raise CorruptError(f"{p}: file changed while it was being validated") from None

    what = str(p)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=reject_duplicates(what))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # library accepted it
        raise CorruptError(f"{p}: header is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise CorruptError(f"{p}: header is not a JSON object")
    metadata = header.pop(METADATA_KEY, None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise CorruptError(f"{p}: __metadata__ must map text to text")
    if (metadata or None) != (lib_meta or None):
        raise CorruptError(f"{p}: file changed while it was being validated")
    base = 8 + header_len
    tensors = [_tensor_info(p, name, desc, base) for name, desc in header.items()]
    tensors.sort(key=lambda t: (t.offset, t.nbytes))
    return SafetensorsFile(
        path=p,
        size=st.st_size,
        header_len=header_len,
        metadata=metadata,
        tensors=tuple(tensors),
        stat_key=stat_key(st),
    )


def _tensor_info(path: Path, name: str, desc: Any, base: int) -> TensorInfo:
    """Re-read one (library-validated) header entry, re-checking what is used here."""
    try:
        dtype = desc["dtype"]
        shape = tuple(desc["shape"])
        begin, end = desc["data_offsets"]
    except (TypeError, KeyError, ValueError):
        raise CorruptError(f"{path}: tensor {name!r} has a malformed header entry") from None
    if dtype not in DTYPE_BITS:
        raise CorruptError(f"{path}: tensor {name!r} has unsupported dtype {dtype!r}")
    ints = (*shape, begin, end)
    if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in ints):
        raise CorruptError(f"{path}: tensor {name!r} has a malformed shape or offsets")
    try:
        expected = tensor_nbytes(dtype, shape)
    except ValidationError as exc:
        raise CorruptError(f"{path}: tensor {name!r}: {exc}") from None
    if end - begin != expected:
        raise CorruptError(f"{path}: tensor {name!r}: {end - begin} bytes for {dtype} {list(shape)}")
    return TensorInfo(name=name, dtype=dtype, shape=shape, offset=base + begin, nbytes=expected)


def iter_tensor_bytes(
    sf: SafetensorsFile, tensors: Iterable[TensorInfo] | None = None
) -> Iterator[tuple[TensorInfo, bytes]]:
    """Yield (info, bytes) one tensor at a time; only one tensor's bytes are alive per step.

    The file must be the one that was validated (same inode, size and mtime), so a file
    swapped or rewritten in between is reported instead of read blindly.
    """
    wanted = sf.tensors if tensors is None else tensors
    with open(sf.path, "rb") as fh:
        if stat_key(os.fstat(fh.fileno())) != sf.stat_key:
            raise CorruptError(f"{sf.path}: file changed since it was validated")
        for info in wanted:
            fh.seek(info.offset)
            data = fh.read(info.nbytes)
            if len(data) != info.nbytes:
                raise TruncatedError(f"{sf.path}: file ends inside tensor {info.name!r}")
            yield info, data
        if stat_key(os.fstat(fh.fileno())) != sf.stat_key:
            raise CorruptError(f"{sf.path}: file changed while it was being read")


def read_tensor(sf: SafetensorsFile, info: TensorInfo) -> bytes:
    """One tensor's bytes, with the same checks as :func:`iter_tensor_bytes`."""
    [(_, data)] = list(iter_tensor_bytes(sf, [info]))
    return data


def read_array(sf: SafetensorsFile, info: TensorInfo) -> np.ndarray:
    """One tensor as a read-only numpy array, by the rules of every thermo tensor
    (:func:`thermo_cli.codec.tensors.value_to_array`: raw bits for BF16/F8, packed bytes for F4/F6)."""
    return value_to_array(read_tensor(sf, info), info.spec)


# --- writing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutTensor:
    """A tensor to write: name, dtype, shape; its bytes are fetched when its turn comes."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return tensor_nbytes(self.dtype, self.shape)


def library_order(tensors: Iterable[OutTensor]) -> list[OutTensor]:
    """The order the safetensors library writes tensors in: dtype rank descending, then name."""
    return sorted(tensors, key=lambda t: (-_DTYPE_RANK[t.dtype], t.name))


def build_header(tensors: Sequence[OutTensor], metadata: dict[str, str] | None) -> bytes:
    """The 8-byte length plus the JSON header, laid out exactly as the library does it."""
    doc: dict[str, Any] = {}
    if metadata is not None:
        doc[METADATA_KEY] = {k: metadata[k] for k in sorted(metadata)}
    pos = 0
    for t in tensors:
        n = t.nbytes
        doc[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [pos, pos + n]}
        pos += n
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    if len(text) > MAX_HEADER_BYTES:
        raise LimitExceededError(
            f"safetensors header would be {len(text):,} bytes; readers refuse more than {MAX_HEADER_BYTES:,}"
        )
    return struct.pack("<Q", len(text)) + text


def check_metadata(metadata: Any) -> dict[str, str] | None:
    """Safetensors metadata must map text to text (the format allows nothing else)."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ValidationError("safetensors metadata must map text to text")
    return dict(metadata)


def write_safetensors(
    out: str | os.PathLike[str],
    tensors: Sequence[OutTensor],
    fetch: Callable[[OutTensor], bytes | memoryview],
    metadata: dict[str, str] | None = None,
    *,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
    durable: bool = False,
) -> Path:
    """Stream a safetensors file to ``out`` atomically, fetching one tensor's bytes at a time.

    The file is built in a temporary file beside ``out``, re-opened and checked with the
    safetensors library, and only then renamed over ``out`` (refused with RefusedError
    when ``out`` exists and ``overwrite`` is false). On any error ``out`` is exactly as it
    was. ``durable`` also fsyncs the file and its directory (an exported file is otherwise
    left to the system to flush, as ``cp`` does; see :func:`atomic_output`).
    """
    target = Path(out)
    metadata = check_metadata(metadata)
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise ValidationError("safetensors output would hold the same tensor name twice")
    for t in tensors:
        if t.dtype not in DTYPE_BITS:
            raise ValidationError(f"tensor {t.name!r}: dtype {t.dtype!r} is not a safetensors dtype")
        if t.name == METADATA_KEY:
            raise ValidationError(f"a tensor may not be named {METADATA_KEY!r}")
    ordered = library_order(tensors)
    header = build_header(ordered, metadata)
    with atomic_output(
        target,
        overwrite=overwrite,
        check=lambda tmp: _verify_written(tmp, ordered, metadata),
        durable=durable,
    ) as fh:
        fh.write(header)
        for t in ordered:
            _write_tensor(fh, t, fetch(t))
            if progress is not None:
                progress(t.nbytes)
    return target


def _write_tensor(fh: BinaryIO, t: OutTensor, data: bytes | memoryview) -> None:
    n = memoryview(data).nbytes
    if n != t.nbytes:
        raise CorruptError(
            f"tensor {t.name!r}: {n} bytes stored for {t.dtype} {list(t.shape)} (expected {t.nbytes})"
        )
    fh.write(data)


def _verify_written(tmp: str, ordered: Sequence[OutTensor], metadata: dict[str, str] | None) -> None:
    """Open the finished file with the library itself: what we wrote is what readers will see."""
    sf = open_safetensors(tmp)
    got = [(t.name, t.dtype, t.shape) for t in sf.tensors]
    want = [(t.name, t.dtype, t.shape) for t in ordered]
    if got != want or (sf.metadata or None) != (metadata or None):
        raise CorruptError(f"{tmp}: written file does not read back as written")
