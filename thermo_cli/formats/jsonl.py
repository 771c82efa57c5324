"""The JSONL delta stream: one JSON object per line, each one change to one key.

This is how people and pipelines feed a thermogram (``thermo apply FILE deltas.jsonl``)::

    {"op": "update", "key": "k", "value": "text", "strength": 0.8, "source": "miner"}
    {"op": "create", "key": "w", "value": {"dtype": "f32", "shape": [2], "data": [0.5, -1]}}
    {"op": "delete", "key": "old"}

Fields (anything else is refused, so a typo never passes silently):

``op``
    create, update, delete or merge (required).
``key``
    non-empty text, at most ``max_key_bytes`` UTF-8 bytes (required).
``value``
    UTF-8 text; ``{"b64": ...}``; ``{"hex": ...}``; a list of byte values 0..255 (the Rust
    crate's spelling); or a tensor ``{"dtype": "f32", "shape": [..], "data": [..]}`` with
    ``"b64"``/``"hex"`` holding the raw little-endian bytes instead of ``"data"``. A tensor
    may also be given already ternary-packed (``"encoding": "ternary"`` with ``"scales"``).
    Required except for delete, whose value is empty.
``strength``
    a number in [0, 1], default 1.0. A ternary delta's strength is its ternary value, as
    in the crate (-1.0, 0.0 or 1.0): omit it or give that value.
``ternary``
    -1, 0, +1 (or "Neg", "Zero", "Pos").
``observation_count``
    an unsigned integer.
``source``
    non-empty text of at most 256 characters (default: the caller's, "thermo" for the CLI).
``meta`` (or ``custom``)
    any JSON value, kept with the delta and covered by its hash.
``timestamp``
    RFC 3339 text with an offset (``2025-01-02T03:04:05.123456789Z``) or integer
    nanoseconds since the epoch; default: the time the line is parsed. Text is read by the
    same rules as in the crate's JSON files: ASCII digits, no surrounding spaces, no leap
    second (``:60``).
``id``
    the delta's id, at most 256 characters (default: a new UUID v4).

Errors name the line: ``line 7: strength: must be finite and within [0, 1], got 1.5``.
What a valid delta is comes from the data model's field checks (``thermo_cli.model``:
``key_size``, ``check_text``, ``check_delta_strength``, ``check_count``,
``check_timestamp``, ``check_custom``; ``codec.tensors.check_delta_tensor``), the same calls
the engine's ``chain.validate_delta`` makes; the parser only adds the JSON forms and names.
Caps come from a :class:`~thermo_cli.config.limits.Limits` (``limits=``, else the current
one). Lines are read in blocks and capped (``max_line_bytes``) before they are parsed, so a
10 GB line is refused after reading at most the cap, never held in memory. Blank lines
are skipped. The parser builds :class:`thermo_cli.model.Delta` objects without a
``prev_hash``: linking them to the head of the chain is the engine's job.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import repeat
from operator import itemgetter, methodcaller
from typing import IO, TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import orjson

from thermo_cli.codec.fastrecords import PlainDeltas, plain_deltas
from thermo_cli.codec.jsonscan import check_json_containers
from thermo_cli.codec.timestamps import TimestampError, format_z, parse_instant
from thermo_cli.config.clock import Clock, current_clock, readings
from thermo_cli.config.limits import DEFAULT_LIMITS, Limits, current_limits
from thermo_cli.errors import LimitExceededError, ThermoError, ValidationError, quote
from thermo_cli.model import (
    MAX_KEY_BYTES,
    MAX_TEXT_CHARS,
    Delta,
    DeltaType,
    TensorSpec,
    Ternary,
    check_count,
    check_custom,
    check_delta_strength,
    check_shape,
    check_text,
    check_timestamp,
    key_size,
    new_id,
    new_ids,
)

# numpy, and codec.tensors which imports it, are imported inside the functions that handle
# tensors, for start-up time: applying a stream of plain deltas never loads numpy.
if TYPE_CHECKING:
    import numpy.typing as npt


@runtime_checkable
class ByteStream(Protocol):
    """What :func:`iter_lines` reads from: a binary file, or anything with the same ``read``."""

    def read(self, n: int = -1, /) -> bytes: ...


DEFAULT_MAX_LINE_BYTES = DEFAULT_LIMITS.max_line_bytes
"""Longest accepted line (64 MiB): raise it with ``--max-line-bytes`` for huge tensors."""

MAX_META_DEPTH = DEFAULT_LIMITS.max_meta_depth
MAX_TENSOR_DIMS = DEFAULT_LIMITS.max_tensor_dims
_BLOCK = 1 << 20


class LineError(ValidationError):
    """A line of a JSONL stream is invalid; ``line`` is its 1-based number."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class LineLimitError(LimitExceededError):
    """A line of a JSONL stream exceeds a cap (kept a LimitExceededError for callers)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


# --- reading lines ---------------------------------------------------------------------------


def iter_lines(
    stream: ByteStream | Iterable[bytes], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line)`` for every non-blank line, newline stripped.

    Reads 1 MiB blocks, so a line longer than ``max_line_bytes`` is refused as soon as
    the cap is passed, however long the line really is. A UTF-8 byte order mark on the
    first line and a trailing ``\\r`` are dropped.
    """
    for numbers, lines in iter_line_blocks(stream, max_line_bytes=max_line_bytes):
        yield from zip(numbers, lines, strict=True)


def iter_line_blocks(
    stream: ByteStream | Iterable[bytes], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[Sequence[int], list[bytes]]]:
    """:func:`iter_lines` a block at a time: ``(line numbers, lines)`` of each block read.

    For a reader that handles many lines at once (``thermo apply``): a block of plain
    lines (no blank line, no ``\\r``) is its ``split`` as is, with a ``range`` of numbers,
    so nothing is done per line in Python. A line over the cap is refused after the
    lines before it are given, as :func:`iter_lines` does.
    """
    pending: list[bytes] = []
    pending_len = 0
    lineno = 0
    for block in _blocks(stream):
        parts = block.split(b"\n")
        tail = parts.pop()  # after the last newline: the start of a line not yet complete
        if parts:
            if pending:
                pending.append(parts[0])
                parts[0] = b"".join(pending)
                pending.clear()
                pending_len = 0
            too_long = None
            if len(block) > max_line_bytes or len(parts[0]) > max_line_bytes:
                too_long = next((i for i, line in enumerate(parts) if len(line) > max_line_bytes), None)
                if too_long is not None:
                    parts = parts[:too_long]
            first = lineno + 1
            lineno += len(parts)
            if parts:
                # (a line begun in the previous block may end in its ``\r``)
                yield _clean(first, parts, b"\r" in block or parts[0].endswith(b"\r"))
            if too_long is not None:
                raise _too_long(lineno + 1, max_line_bytes)
        if tail:
            pending.append(tail)
            pending_len += len(tail)
            if pending_len > max_line_bytes:
                raise _too_long(lineno + 1, max_line_bytes)
    if pending:  # the last line, without a newline
        lineno += 1
        line = b"".join(pending)
        if lineno == 1 and line.startswith(_BOM):
            line = line[3:]
        line = line.rstrip(b"\r")
        if line and not line.isspace():
            yield [lineno], [line]


_BOM = b"\xef\xbb\xbf"
_ends_cr = methodcaller("endswith", b"\r")


def _clean(first: int, parts: list[bytes], maybe_cr: bool = True) -> tuple[Sequence[int], list[bytes]]:
    """Lines ``first``, ``first + 1``, … without a trailing ``\\r`` (and the first line's
    byte order mark), blank ones left out; the lines as they are when none needs it.
    ``maybe_cr`` False: the block holds no ``\\r`` at all (one scan, not one per line)."""
    if first == 1 and parts[0].startswith(_BOM):
        parts[0] = parts[0][3:]
    if all(parts) and not (maybe_cr and any(map(_ends_cr, parts))) and not any(map(bytes.isspace, parts)):
        return range(first, first + len(parts)), parts
    numbers, lines = [], []
    for n, line in enumerate(parts, first):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line and not line.isspace():
            numbers.append(n)
            lines.append(line)
    return numbers, lines


def _blocks(stream: ByteStream | Iterable[bytes]) -> Iterator[bytes]:
    if not isinstance(stream, ByteStream):  # no ``read``: an iterable of byte chunks
        for chunk in stream:
            if isinstance(chunk, str):
                chunk = chunk.encode("utf-8")
            yield bytes(chunk)
        return
    read1 = getattr(stream, "read1", None)
    while True:
        chunk = read1(_BLOCK) if read1 is not None else stream.read(_BLOCK)
        if not chunk:
            return
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        yield chunk


def _too_long(lineno: int, cap: int) -> LineLimitError:
    return LineLimitError(
        lineno, f"line longer than the maximum of {cap} bytes (raise it with max_line_bytes=…)"
    )


def load_line(lineno: int, line: bytes | str) -> Any:
    """Parse one line as JSON (orjson), turning its errors into ``line N: ...``; an object
    that repeats a member name is refused too (:func:`refuse_repeated_names`)."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise LineError(lineno, f"invalid JSON ({_json_reason(exc)})") from None
    refuse_repeated_names(lineno, line.encode("utf-8") if isinstance(line, str) else line, obj)
    return obj


_NAME_END = re.compile(rb'"\s*:')


def refuse_repeated_names(lineno: int, line: bytes, obj: Any) -> None:
    """Refuse a line whose JSON objects repeat a member name (LineError naming it).

    orjson keeps the last of ``{"op":"delete","op":"create"}``, so such a line would do
    something other than what a reader of it sees first. Every member of the text has
    one colon after its name (``"name" :``), and colons inside strings only add to the
    count, so when the colons (or, exactly, the quote-colon pairs) are no more than the
    parsed objects' members, no name can repeat: one ``bytes.count`` for the usual flat
    line. Otherwise the line is parsed again, keeping every pair, to find the name.
    """
    if type(obj) is dict and line.count(b":") == len(obj) and line.count(b"{") == 1:  # one flat object
        return
    if len(_NAME_END.findall(line)) == _member_count(obj):
        return
    import json

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for name, _ in items:
            if name in seen:
                raise LineError(lineno, f"the name {quote(name)} appears twice in one object")
            seen.add(name)
        return dict(items)

    try:
        json.loads(line, object_pairs_hook=pairs)
    except (json.JSONDecodeError, RecursionError):  # orjson accepted the text: its reading stands
        return


def _member_count(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_member_count(v) for v in value.values() if isinstance(v, dict | list))
    if isinstance(value, list):
        return sum(_member_count(v) for v in value if isinstance(v, dict | list))
    return 0


def _check_containers(lineno: int, line: bytes | str, cap: int) -> None:
    """Refuse a line holding more than ``cap`` objects and arrays before orjson builds them."""
    data = line.encode("utf-8") if isinstance(line, str) else bytes(line)
    try:
        check_json_containers(data, cap, "this line")
    except LimitExceededError as exc:
        raise LineLimitError(lineno, str(exc)) from None


def _json_reason(exc: Exception) -> str:
    text = str(exc).replace("str is not valid UTF-8: surrogates not allowed", "text is not valid UTF-8")
    # orjson appends the position as "line 1 column 5 (char 4)": the line is ours.
    m = re.search(r":? line \d+ column (\d+) \(char \d+\)$", text)
    if m:
        text = f"{text[: m.start()]} at column {m.group(1)}"
    return text


# --- timestamps -------------------------------------------------------------------------------


def parse_timestamp(value: Any, field_name: str = "timestamp") -> int:
    """RFC 3339 text (with an offset) or integer nanoseconds → integer ns since the epoch (UTC).

    The reading every reader shares (:func:`thermo_cli.codec.timestamps.parse_instant`), so
    a line accepts exactly the texts a crate JSON file may hold, giving the same instant;
    errors name the field.
    """
    try:
        return parse_instant(value)
    except TimestampError as exc:
        raise ValidationError(f"{field_name}: {exc}") from None


# --- dtypes -----------------------------------------------------------------------------------

_DTYPE_ALIASES = {
    "float64": "F64",
    "double": "F64",
    "float32": "F32",
    "float": "F32",
    "float16": "F16",
    "half": "F16",
    "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e4m3": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint64": "U64",
    "uint32": "U32",
    "uint16": "U16",
    "uint8": "U8",
    "bool": "BOOL",
    "complex64": "C64",
}


def parse_dtype(text: Any) -> Any:
    """``f32``, ``F32``, ``float32`` … → the dtype row of :mod:`thermo_cli.codec.tensors`.

    Every safetensors dtype is accepted, the packed sub-byte floats (``f4``, ``f6_e2m3``,
    ``f6_e3m2``) too, so that what ``thermo export --format jsonl`` writes reads back.
    """
    from thermo_cli.codec.tensors import SAFETENSORS_DTYPES, dtype_info  # numpy (start-up time)

    if not isinstance(text, str):
        raise ValidationError(f"value.dtype: expected text, got {type(text).__name__}")
    key = text.strip()
    name = key.upper() if key.upper() in SAFETENSORS_DTYPES else _DTYPE_ALIASES.get(key.lower())
    if name is None:
        raise ValidationError(
            f"value.dtype: unknown dtype {quote(text)} (expected one of "
            f"{', '.join(d.lower() for d in SAFETENSORS_DTYPES)})"
        )
    return dtype_info(name)


# --- values -----------------------------------------------------------------------------------

_TENSOR_FIELDS = frozenset(
    {"dtype", "shape", "data", "b64", "hex", "encoding", "scales", "per_row", "method"}
)


def decode_value(
    value: Any, field_name: str = "value", max_dims: int | None = None
) -> tuple[bytes, TensorSpec | None]:
    """A JSON value → (bytes, tensor spec or None) following the stream's value forms.

    ``max_dims`` caps a tensor's dimensions (default: the current limits' max_tensor_dims)."""
    if isinstance(value, str):
        return value.encode("utf-8"), None
    if value is None:
        return b"", None
    if isinstance(value, dict):
        if "dtype" in value:
            dims = current_limits().max_tensor_dims if max_dims is None else max_dims
            return _decode_tensor(value, field_name, dims)
        if len(value) == 1 and "b64" in value:
            return _b64(value["b64"], f"{field_name}.b64"), None
        if len(value) == 1 and "hex" in value:
            return _hex(value["hex"], f"{field_name}.hex"), None
        raise ValidationError(
            f'{field_name}: expected text, {{"b64": ...}}, {{"hex": ...}} or a tensor '
            f'{{"dtype", "shape", "data"|"b64"}}, got an object with keys '
            f"{sorted(value)}"
        )
    if isinstance(value, list):
        return _byte_list(value, field_name), None
    raise ValidationError(f"{field_name}: expected text, bytes or a tensor, got {type(value).__name__}")


def _b64(text: Any, field_name: str) -> bytes:
    if not isinstance(text, str):
        raise ValidationError(f"{field_name}: expected base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{field_name}: invalid base64") from None


def _hex(text: Any, field_name: str) -> bytes:
    if not isinstance(text, str):
        raise ValidationError(f"{field_name}: expected hex text")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValidationError(f"{field_name}: invalid hex") from None


def _byte_list(items: list[Any], field_name: str) -> bytes:
    try:
        if all(type(x) is int for x in items):
            return bytes(items)
    except ValueError:
        pass
    raise ValidationError(f"{field_name}: a list value must hold byte values 0..255")


def _decode_tensor(obj: dict[str, Any], field_name: str, max_dims: int) -> tuple[bytes, TensorSpec]:
    extra = obj.keys() - _TENSOR_FIELDS
    if extra:
        raise ValidationError(f"{field_name}: unknown tensor field(s) {sorted(extra)}")
    dtype = parse_dtype(obj["dtype"])
    shape = _shape(obj.get("shape"), field_name, max_dims)
    numel = 1
    for d in shape:
        numel *= d
    encoding = obj.get("encoding", "raw")
    sources = [k for k in ("data", "b64", "hex") if k in obj]
    if len(sources) != 1:
        raise ValidationError(f'{field_name}: a tensor needs exactly one of "data", "b64" or "hex"')
    src = sources[0]
    if encoding == "raw":
        for k in ("scales", "per_row", "method"):
            if k in obj:
                raise ValidationError(f'{field_name}.{k}: only for "encoding": "ternary"')
        from thermo_cli.codec.tensors import tensor_nbytes  # numpy (start-up time)

        try:
            want = tensor_nbytes(dtype.name, shape)
        except ValidationError as exc:
            raise ValidationError(f"{field_name}: {exc}") from None
        data = (
            _tensor_data(obj["data"], dtype, numel, shape, field_name)
            if src == "data"
            else (
                _b64(obj["b64"], f"{field_name}.b64")
                if src == "b64"
                else _hex(obj["hex"], f"{field_name}.hex")
            )
        )
        if len(data) != want:
            raise ValidationError(
                f"{field_name}: {len(data)} bytes do not match dtype {dtype.name} "
                f"and shape {list(shape)} ({want} bytes)"
            )
        return data, TensorSpec(dtype=dtype.name, shape=shape)
    if encoding == "ternary":
        return _decode_ternary(obj, dtype, shape, numel, src, field_name)
    raise ValidationError(f'{field_name}.encoding: expected "raw" or "ternary", got {quote(encoding)}')


def _shape(shape: Any, field_name: str, max_dims: int) -> tuple[int, ...]:
    if not isinstance(shape, list):
        raise ValidationError(f"{field_name}.shape: expected a list of dimension sizes")
    return check_shape(shape, max_dims, f"{field_name}.shape")


def _tensor_data(data: Any, dtype: Any, numel: int, shape: tuple[int, ...], field_name: str) -> bytes:
    """Numbers (flat or nested like the shape) → little-endian element bytes, via numpy.

    Anything that is not a number (objects, text, null, booleans outside a bool tensor) is
    refused with the field named, never handed to numpy's casts, which raise TypeError or
    OverflowError on such items.
    """
    import numpy as np

    if not isinstance(data, list):
        raise ValidationError(f"{field_name}.data: expected a list of numbers")
    if dtype.is_packed:
        raise ValidationError(
            f"{field_name}.data: {dtype.name} packs {dtype.bits}-bit elements whose order "
            'within a byte safetensors does not fix; give its bytes in "b64" or "hex"'
        )
    if dtype.kind == "complex":
        raise ValidationError(f'{field_name}.data: {dtype.name} tensors need their bytes in "b64" or "hex"')
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        raise ValidationError(
            f"{field_name}.data: ragged or too deeply nested lists do not form a tensor"
        ) from None
    if arr.size != numel:
        raise ValidationError(
            f"{field_name}.data: {arr.size} numbers do not match shape {list(shape)} ({numel} elements)"
        )
    if arr.ndim not in (1, len(shape)) or (arr.ndim == len(shape) and arr.shape != shape and numel):
        raise ValidationError(
            f"{field_name}.data: nesting {list(arr.shape)} does not match shape {list(shape)}"
        )
    if numel == 0:
        return b""
    kind = arr.dtype.kind
    flat = arr.reshape(-1)
    if kind not in "biuf" and (kind != "O" or not _only_numbers(flat)):
        raise ValidationError(f"{field_name}.data: must hold only numbers (or booleans for bool)")
    if dtype.kind == "float":
        return _float_bytes(flat, dtype, field_name)
    if dtype.kind == "bool":
        if kind == "b" or (kind in "iu" and bool(((flat == 0) | (flat == 1)).all())):
            return flat.astype(dtype.storage).tobytes()
        raise ValidationError(f"{field_name}.data: a bool tensor holds true/false (or 0/1)")
    return _integer_bytes(data, flat, np.dtype(dtype.storage), dtype.name, field_name)


def _only_numbers(flat: Any) -> bool:
    """An object array (numpy's fallback for huge integers and for non-numbers) holds only
    JSON numbers: ints (any size) and floats, no bool, null, text or containers."""
    return set(map(type, flat.tolist())) <= {int, float}


def _as_float64(flat: Any) -> Any:
    """float64 copy; None when an integer is too large for a float at all (> ~1.8e308)."""
    import numpy as np

    try:
        return flat.astype(np.float64)
    except OverflowError:
        return None


def _float_bytes(flat: Any, dtype: Any, field_name: str) -> bytes:
    """Numbers → float elements; BF16/F8 round to nearest even (``tensors.from_float32``).

    JSON numbers are finite, so a non-finite element afterwards means the number does not
    fit the dtype: refused rather than stored as inf/NaN.
    """
    import numpy as np

    from thermo_cli.codec.tensors import from_float32, to_float32  # numpy (start-up time)

    overflow = ValidationError(f"{field_name}.data: a number overflows {dtype.name}")
    if flat.dtype.kind == "b":
        raise ValidationError(f"{field_name}.data: {dtype.name} tensors hold numbers only")
    as_f64 = _as_float64(flat)
    if as_f64 is None:
        raise overflow
    with np.errstate(over="ignore", invalid="ignore"):
        out = as_f64.astype(dtype.storage) if dtype.native else from_float32(as_f64, dtype.name)
        values = out if dtype.native else to_float32(out, dtype.name)
    if not np.isfinite(values).all():
        raise overflow
    return out.tobytes()


def _integer_bytes(data: list[Any], flat: npt.NDArray[Any], target: Any, name: str, field_name: str) -> bytes:
    """Integers exactly: numpy reads [0, 2**64 - 1] as float64, so re-read those with the target."""
    import numpy as np

    info = np.iinfo(target)
    out_of_range = ValidationError(f"{field_name}.data: a number is outside the range of {name}")
    if flat.dtype.kind in "iu":
        if int(flat.min()) < info.min or int(flat.max()) > info.max:
            raise out_of_range
        return flat.astype(target).tobytes()
    if flat.dtype.kind == "b":
        raise ValidationError(f"{field_name}.data: {name} tensors hold integers only")
    as_float = _as_float64(flat)  # float ('f') or mixed huge ints ('O', numbers only by now)
    if as_float is None:
        raise out_of_range
    if not bool((np.floor(as_float) == as_float).all()):
        raise ValidationError(f"{field_name}.data: {name} tensors hold integers only")
    if float(as_float.min()) < float(info.min) or float(as_float.max()) > float(info.max):
        raise out_of_range
    try:
        exact = np.asarray(data, dtype=target).reshape(-1)
    except (OverflowError, ValueError, TypeError):
        raise out_of_range from None
    return exact.tobytes()


def _decode_ternary(
    obj: dict[str, Any], dtype: Any, shape: tuple[int, ...], numel: int, src: str, field_name: str
) -> tuple[bytes, TensorSpec]:
    """An already packed ternary tensor: 2-bit codes + float32 scales (ENGINE.md layout)."""
    if not dtype.is_float:
        raise ValidationError(f"{field_name}.dtype: a ternary tensor dequantizes to a float dtype")
    if src == "data":
        raise ValidationError(f'{field_name}: a ternary tensor gives its packed codes in "b64" or "hex"')
    packed = _b64(obj["b64"], f"{field_name}.b64") if src == "b64" else _hex(obj["hex"], f"{field_name}.hex")
    if len(packed) != (numel + 3) // 4:
        raise ValidationError(
            f"{field_name}: {len(packed)} packed bytes do not hold {numel} weights ({(numel + 3) // 4} bytes)"
        )
    per_row = obj.get("per_row", False)
    if not isinstance(per_row, bool):
        raise ValidationError(f"{field_name}.per_row: expected true or false")
    if per_row and len(shape) < 2:
        raise ValidationError(f"{field_name}.per_row: needs a shape of 2 or more dimensions")
    scales = _scales(obj.get("scales"), f"{field_name}.scales")
    n_scales = shape[0] if per_row else 1
    if len(scales) != 4 * n_scales:
        raise ValidationError(
            f"{field_name}.scales: expected {n_scales} float32 scale(s), got {len(scales) // 4}"
        )
    method = obj.get("method")
    if method is not None and not isinstance(method, str):
        raise ValidationError(f"{field_name}.method: expected text")
    spec = TensorSpec(
        dtype=dtype.name, shape=shape, encoding="ternary", scales=scales, per_row=per_row, method=method
    )
    return packed, spec


def _scales(value: Any, field_name: str) -> bytes:
    """float32 scales: base64 bytes kept exactly (round trips), or a list of numbers, which
    must fit float32 (1e300 would become inf and poison every weight of its row)."""
    import numpy as np

    if isinstance(value, dict) and len(value) == 1 and "b64" in value:
        return _b64(value["b64"], f"{field_name}.b64")
    if isinstance(value, list) and all(type(x) in (int, float) for x in value):
        try:
            with np.errstate(over="ignore"):
                scales = np.asarray(value, dtype="<f4")
        except OverflowError:
            scales = np.array([np.inf], dtype="<f4")
        if not np.isfinite(scales).all():
            raise ValidationError(f"{field_name}: a scale overflows float32")
        return scales.tobytes()
    raise ValidationError(f'{field_name}: expected a list of numbers or {{"b64": ...}}')


# --- deltas -----------------------------------------------------------------------------------

DELTA_FIELDS = frozenset(
    {
        "op",
        "key",
        "value",
        "strength",
        "ternary",
        "observation_count",
        "source",
        "meta",
        "custom",
        "timestamp",
        "id",
    }
)
_OPS = {t.label: t for t in DeltaType}
_ABSENT = object()
_SIMPLE_FIELDS = frozenset({"op", "key", "value", "strength", "source"})
_F32 = struct.Struct("<f")
_f32_pack, _f32_unpack = _F32.pack, _F32.unpack
_OP_NAMES = {**_OPS, **{t.legacy_name: t for t in DeltaType}}


_PLAIN_OPS = {name: t for name, t in _OP_NAMES.items() if t is not DeltaType.DELETE}
_get_op, _get_key, _get_value = itemgetter("op"), itemgetter("key"), itemgetter("value")
_get_strength = methodcaller("get", "strength", 1.0)
_get_strength_given, _get_source_given = itemgetter("strength"), itemgetter("source")


def _shared(column: list[Any]) -> list[Any]:
    """A column of one repeated value as one object n times (a stream's one source or
    strength is then kept once, not once per delta, for as long as the deltas live)."""
    first = column[0]
    if first == 0.0 or column.count(first) != len(column):  # (0.0 == -0.0: two encodings)
        return column
    return [first] * len(column)


def _loads_all(lines: list[bytes]) -> list[Any] | None:
    """Every line decoded, or None when one is not JSON (the caller then finds which)."""
    try:
        return list(map(orjson.loads, lines))
    except orjson.JSONDecodeError:
        return None


class DeltaParser:
    """Turns decoded JSON objects into Deltas; holds the per-stream defaults and caps."""

    def __init__(
        self,
        *,
        source: str = "thermo",
        limits: Limits | None = None,
        extra_fields: frozenset[str] = frozenset(),
        lenient: bool = False,
        clock: Clock | None = None,
    ) -> None:
        """``lenient`` accepts what only migrated Rust-crate deltas carry (a strength in
        [-1, 1], a value on a delete); exports of such logs are read with it. ``limits``
        defaults to the current ones (:func:`~thermo_cli.config.limits.current_limits`).
        ``clock`` stamps lines without a timestamp (default: the context's clock when the
        parser is made), so a pinned clock reproduces the deltas."""
        self.source = check_text(source, "source")
        limits = current_limits() if limits is None else limits
        self.limits = limits
        self.allowed = DELTA_FIELDS | extra_fields
        self.lenient = lenient
        self._now = clock or current_clock()
        self._key_fast = limits.max_key_bytes // 4  # a key this short cannot exceed the cap

    def parse_line(self, lineno: int, line: bytes | str) -> Delta:
        return self.from_obj(lineno, load_line(lineno, line))

    def from_obj(self, lineno: int, obj: Any) -> Delta:
        """One decoded JSON object → a Delta (unlinked), or LineError naming the line."""
        # Hot path of `thermo apply` (100,000 lines/s end to end): a line with only op, key,
        # text value, a plain strength and source is built here and cannot fail. Its guard
        # is a subset of what the model's checks accept (a key of at most max_key_bytes / 4
        # characters cannot exceed the cap; orjson never yields a lone surrogate; the
        # strength is a float in [0, 1]; the source has 1..MAX_TEXT_CHARS characters), so
        # it never admits a delta they refuse (tests/formats/test_jsonl_parity.py); anything
        # else takes the general road, which calls those checks and names the field.
        if type(obj) is dict and obj.keys() <= _SIMPLE_FIELDS:
            op_raw = obj.get("op")
            op = _OP_NAMES.get(op_raw) if type(op_raw) is str else None
            key = obj.get("key")
            raw = obj.get("value")
            s_raw = obj.get("strength", 1.0)
            source = obj.get("source", self.source)
            if (
                op is not None
                and op is not DeltaType.DELETE
                and type(key) is str
                and 0 < len(key) <= self._key_fast
                and type(raw) is str
                and type(source) is str
                and 0 < len(source) <= MAX_TEXT_CHARS
                and type(s_raw) is float
                and 0.0 <= s_raw <= 1.0
            ):
                return Delta(
                    op,
                    key,
                    raw.encode("utf-8"),
                    _f32_unpack(_f32_pack(s_raw))[0],
                    self._now(),
                    source,
                    new_id(),
                )
        if type(obj) is not dict:
            raise LineError(lineno, f"expected a JSON object, got {_json_type(obj)}")
        try:
            return self._build_general(lineno, obj)
        except (LineError, LineLimitError):
            raise
        except LimitExceededError as exc:
            raise LineLimitError(lineno, str(exc)) from None
        except ThermoError as exc:
            raise LineError(lineno, str(exc)) from None

    def plain_batch(self, lines: list[bytes]) -> PlainDeltas | None:
        """Lines that are all plain deltas → their columns, encoded; otherwise None.

        The fast road of ``thermo apply``: one orjson call per line through ``map``, then
        each check made once per column (all in C) instead of once per field per line.
        A line is plain when :meth:`from_obj`'s own fast path would accept it — a flat
        object of op (not delete), key, text value, float strength in [0, 1] and source
        — and, as the general road checks, its key fits ``max_key_bytes`` and no member
        name repeats. When any line is not, nothing is consumed (no clock read, no id
        drawn) and the caller parses the lines one by one, which also finds and words
        the first error; so this road never accepts or refuses what that one would not,
        and gives the same deltas in the same order (tests/formats/test_jsonl_batch.py).
        """
        objs = _loads_all(lines)
        if objs is None or set(map(type, objs)) != {dict}:
            return None
        # Each member has a colon after its name; colons in strings only add to the count.
        # So equal totals mean no line has more names than its object has members.
        members = sum(map(len, objs))
        if members != sum(map(bytes.count, lines, repeat(b":"))):
            return None
        # Five members a line on average, and all five names found on every line below: then
        # no line has fewer, so none has more, and each holds exactly the plain fields (the
        # common case, checked without a set test per line).
        complete = members == len(_SIMPLE_FIELDS) * len(objs)
        if not complete and not all(map(_SIMPLE_FIELDS.issuperset, objs)):
            return None
        try:
            ops = list(map(_PLAIN_OPS.get, map(_get_op, objs)))
            keys = list(map(_get_key, objs))
            texts = list(map(_get_value, objs))
            if complete:
                strengths = list(map(_get_strength_given, objs))
                sources = list(map(_get_source_given, objs))
        except (KeyError, TypeError):  # a field missing, or an op that is not text
            return None
        if not complete:
            strengths = list(map(_get_strength, objs))
            sources = list(map(methodcaller("get", "source", self.source), objs))
        types = (
            set(map(type, keys)),
            set(map(type, texts)),
            set(map(type, strengths)),
            set(map(type, sources)),
        )
        if None in ops or types != ({str}, {str}, {float}, {str}):
            return None
        if not 0.0 <= min(strengths) <= max(strengths) <= 1.0:
            return None
        if min(map(len, sources)) == 0 or max(map(len, sources)) > MAX_TEXT_CHARS:
            return None
        try:
            key_bytes = list(map(str.encode, keys))  # UTF-8; orjson never gives a lone surrogate
            values = list(map(str.encode, texts))
        except UnicodeEncodeError:
            return None
        sizes = list(map(len, key_bytes))
        if min(sizes) == 0 or max(sizes) > min(self.limits.max_key_bytes, MAX_KEY_BYTES):
            return None
        n = len(objs)
        timestamps, ids = readings(self._now, n), new_ids(n)
        f32 = array("f", strengths).tolist()
        return plain_deltas(
            cast(list[DeltaType], ops),
            keys,
            key_bytes,
            values,
            _shared(f32),
            timestamps,
            _shared(sources),
            ids,
        )

    def _build_general(self, lineno: int, obj: dict[str, Any]) -> Delta:
        get = obj.get
        if not obj.keys() <= self.allowed:
            unknown = sorted(obj.keys() - self.allowed)
            shown = ", ".join(map(quote, unknown[:5]))
            if len(unknown) > 5:
                shown += f" and {len(unknown) - 5} more"
            raise ValidationError(f"unknown field(s) {shown} (expected {', '.join(sorted(DELTA_FIELDS))})")
        op_raw = get("op")
        op = _OP_NAMES.get(op_raw) if type(op_raw) is str else None
        if op is None:
            if op_raw is None:
                raise ValidationError('missing field "op"')
            raise ValidationError(f"op: expected create, update, delete or merge, got {quote(op_raw)}")
        key = get("key")
        if type(key) is not str:
            raise ValidationError(
                'missing field "key"' if key is None else f"key: expected text, got {_json_type(key)}"
            )
        key_size(key, self.limits.max_key_bytes, LimitExceededError)
        tensor = None
        raw = get("value", _ABSENT)
        if type(raw) is str:
            value = raw.encode("utf-8")
        elif raw is _ABSENT:
            if op is not DeltaType.DELETE:
                raise ValidationError(f'missing field "value" (required for {op.label})')
            value = b""
        else:
            value, tensor = decode_value(raw, max_dims=self.limits.max_tensor_dims)
            if tensor is not None:
                from thermo_cli.codec.tensors import check_delta_tensor  # numpy (start-up time)

                check_delta_tensor(tensor, value, self.limits.max_tensor_dims)
        if op is DeltaType.DELETE and (value or tensor is not None) and not self.lenient:
            raise ValidationError("value: a delete carries no value (omit it or use null)")

        tern_raw = get("ternary")
        ternary = None if tern_raw is None else Ternary.coerce(tern_raw)
        s_raw = get("strength")
        if s_raw is None:
            strength = 1.0 if ternary is None else float(int(ternary))
        else:
            strength = check_delta_strength(s_raw, ternary, self.lenient)
        obs = get("observation_count")
        if obs is not None:
            if type(obs) is not int:  # JSON: a float such as 2.0 is not a count
                raise ValidationError(f"observation_count: expected an unsigned integer, got {quote(obs)}")
            check_count(obs)
        source = get("source")
        source = self.source if source is None else check_text(source, "source")
        custom = get("meta")
        if "custom" in obj:
            if "meta" in obj:
                raise ValidationError('give "meta" or "custom", not both')
            custom = obj["custom"]
        if custom is not None:
            check_custom(custom, self.limits.max_meta_depth, "meta")
        ts_raw = get("timestamp")
        ts = self._now() if ts_raw is None else check_timestamp(parse_timestamp(ts_raw))
        did = get("id")
        did = new_id() if did is None else check_text(did, "id")
        return Delta(op, key, value, strength, ts, source, did, ternary, obs, custom, tensor)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "text",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def iter_deltas(
    stream: IO[bytes] | Iterable[bytes], *, source: str = "thermo", limits: Limits | None = None
) -> Iterator[Delta]:
    """Parse a JSONL delta stream lazily; the first bad line raises ``line N: <reason>``.

    ``limits`` defaults to the current ones (taken when the stream is opened)."""
    limits = current_limits() if limits is None else limits
    parser = DeltaParser(source=source, limits=limits)
    loads = orjson.loads
    build = parser.from_obj
    containers = limits.max_json_containers
    for lineno, line in iter_lines(stream, max_line_bytes=limits.max_line_bytes):
        if len(line) > containers:  # a line of n bytes holds at most n objects and arrays
            _check_containers(lineno, line, containers)
        try:
            obj = loads(line)
        except orjson.JSONDecodeError as exc:
            raise LineError(lineno, f"invalid JSON ({_json_reason(exc)})") from None
        refuse_repeated_names(lineno, line, obj)
        yield build(lineno, obj)


def parse_deltas(
    stream: IO[bytes] | Iterable[bytes], *, source: str = "thermo", limits: Limits | None = None
) -> list[Delta]:
    """The whole stream as a list, validated before anything is applied (all-or-nothing)."""
    return list(iter_deltas(stream, source=source, limits=limits))


def parse_text(text: str | bytes, *, source: str = "thermo", limits: Limits | None = None) -> list[Delta]:
    """Convenience for tests and small inputs held in memory."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return parse_deltas([data], source=source, limits=limits)


# --- writing ----------------------------------------------------------------------------------


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def encode_value(value: bytes, tensor: TensorSpec | None = None) -> Any:
    """Bytes (+ tensor spec) → the stream's JSON value form; exact inverse of decode_value.

    Valid UTF-8 without control characters (tab, newline and CR allowed) becomes text,
    readable and still byte-exact; anything else base64.
    """
    if tensor is not None:
        doc: dict[str, Any] = {
            "dtype": tensor.dtype.lower(),
            "shape": list(tensor.shape),
            "b64": base64.b64encode(value).decode("ascii"),
        }
        if tensor.encoding != "raw":
            doc["encoding"] = tensor.encoding
            doc["per_row"] = tensor.per_row
            doc["scales"] = {"b64": base64.b64encode(tensor.scales or b"").decode("ascii")}
            if tensor.method is not None:
                doc["method"] = tensor.method
        return doc
    if not _CONTROL.search(value):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return {"b64": base64.b64encode(value).decode("ascii")}


def delta_to_obj(d: Delta) -> dict[str, Any]:
    """A Delta as one stream object that :class:`DeltaParser` reads back to the same fields."""
    obj: dict[str, Any] = {
        "op": d.delta_type.label,
        "key": d.key,
        "id": d.id,
        "timestamp": format_z(d.timestamp_ns),
        "source": d.source,
    }
    if d.delta_type is not DeltaType.DELETE or d.value or d.tensor is not None:
        obj["value"] = encode_value(d.value, d.tensor)
    if d.ternary is not None:
        obj["ternary"] = int(d.ternary)
    else:
        obj["strength"] = d.strength
    if d.observation_count is not None:
        obj["observation_count"] = d.observation_count
    if d.custom is not None:
        obj["meta"] = d.custom
    return obj


def dumps_delta(d: Delta) -> bytes:
    """One line (with its newline) of the delta stream."""
    return orjson.dumps(delta_to_obj(d)) + b"\n"
