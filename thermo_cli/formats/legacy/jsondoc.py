"""Parse the crate's JSON with a fast path for its byte arrays, and typed access by JSON path.

The crate wrote every ``value`` (a ``Vec<u8>``) as a JSON array of integers, pretty
printed one number per line: ~10 bytes of text per byte of data, so a file is mostly
digits and whitespace. Parsing it as one document makes a Python int per byte and a list
per value before anything can be checked. Instead :func:`parse_document` cuts each
``"value": [ … ]`` array out of the text, parses it on its own (orjson) straight into
``bytes`` (a C-level range check), and parses the remaining skeleton with a unique
placeholder string in each array's place. Any array the fast path cannot take whole
(a wrong type, a number > 255, nested data) is left in the skeleton, so the strict,
path-naming checks below see it exactly as written.

Every accessor raises :class:`LegacyFormatError` naming the JSON path
(``dirty_chain.deltas[3].value[17]: 300 is not a byte (0..255)``); nothing else escapes.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from thermo_cli.codec.jsonscan import check_json_containers
from thermo_cli.codec.timestamps import TimestampError, parse_rfc3339_i64
from thermo_cli.config.limits import current_limits, raise_hint
from thermo_cli.errors import LegacyFormatError, LimitExceededError, ValidationError, quote
from thermo_cli.model import DeltaType, Ternary, check_key

MAX_LEGACY_BYTES = 2 * 1024**3
"""Largest legacy file accepted (2 GiB). The crate itself held the whole file and its
parsed form in memory; so do we (about 1.2x the file size at peak)."""

MAX_CUSTOM_DEPTH = 30


def legacy_cap(max_bytes: int) -> int:
    """The size cap to apply: the caller's, or for the default the current limits'
    ``max_legacy_bytes`` (raised for one run with ``thermo --limit max_legacy_bytes=4G``)."""
    if max_bytes != MAX_LEGACY_BYTES:
        return max_bytes
    return current_limits().max_legacy_bytes


def legacy_too_big(what: str, size: int, cap: int) -> LimitExceededError:
    return LimitExceededError(
        f"{what}: {size} bytes exceeds the legacy file cap max_legacy_bytes={cap} "
        f"({raise_hint('max_legacy_bytes')})"
    )


"""Deepest nesting of ``custom`` JSON: it is stored as CBOR, whose decoder caps at 32."""

U64_MAX = 2**64 - 1
_F32 = struct.Struct("<f")
_WS = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
_TERNARY = {"Pos": Ternary.POS, "Zero": Ternary.ZERO, "Neg": Ternary.NEG}
_DELTA_TYPES = {t.legacy_name: t for t in DeltaType}


@dataclass(slots=True)
class Document:
    """A parsed legacy JSON document: the skeleton plus the byte arrays cut out of it."""

    root: Any
    source: str
    data: bytes
    marker: str = ""
    arrays: list[bytes] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)

    # --- errors ---------------------------------------------------------------------

    def error(self, path: str, reason: str) -> LegacyFormatError:
        return LegacyFormatError(path, reason, source=self.source)

    # --- structure ------------------------------------------------------------------

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if type(value) is not dict:
            raise self.error(path, f"expected a JSON object, got {self.describe(value)}")
        return value

    def arr(self, value: Any, path: str, length: int | None = None) -> list[Any]:
        if type(value) is not list:
            raise self.error(path, f"expected a JSON array, got {self.describe(value)}")
        if length is not None and len(value) != length:
            raise self.error(path, f"expected {length} elements, got {len(value)}")
        return value

    def req(self, obj: dict[str, Any], name: str, path: str) -> Any:
        """A required field (serde_derive's rule: every field but Option/Value must be present)."""
        if name not in obj:
            raise self.error(join(path, name), "missing field")
        return obj[name]

    # --- scalars --------------------------------------------------------------------

    def is_placeholder(self, value: Any) -> bool:
        return type(value) is str and bool(self.marker) and value.startswith(self.marker)

    def describe(self, value: Any) -> str:
        return describe(self.restore(value))

    def text(self, value: Any, path: str) -> str:
        if type(value) is not str or self.is_placeholder(value):
            raise self.error(path, f"expected a string, got {self.describe(value)}")
        return value

    def opt_text(self, value: Any, path: str) -> str | None:
        return None if value is None else self.text(value, path)

    def boolean(self, value: Any, path: str) -> bool:
        if type(value) is not bool:
            raise self.error(path, f"expected true or false, got {self.describe(value)}")
        return value

    def uint(self, value: Any, path: str, maximum: int = U64_MAX) -> int:
        """An unsigned integer (the crate's usize/u64): no floats, no bools, no negatives."""
        if type(value) is not int:
            raise self.error(path, f"expected an unsigned integer, got {self.describe(value)}")
        if value < 0:
            raise self.error(path, f"{value} is negative (expected an unsigned integer)")
        if value > maximum:
            raise self.error(path, f"{value} exceeds the maximum {maximum}")
        return value

    def opt_uint(self, value: Any, path: str) -> int | None:
        return None if value is None else self.uint(value, path)

    def f32(self, value: Any, path: str) -> float:
        """A JSON number read the way serde_json reads an f32: as f64, then rounded to f32."""
        if type(value) not in (float, int):
            raise self.error(path, f"expected a number, got {self.describe(value)}")
        try:
            return cast(float, _F32.unpack(_F32.pack(float(value)))[0])
        except OverflowError:
            raise self.error(path, f"{quote(value)} is outside the float32 range") from None

    def time(self, value: Any, path: str) -> int:
        text = self.text(value, path)
        try:
            return parse_rfc3339_i64(text)
        except TimestampError as exc:
            raise self.error(path, str(exc)) from None

    def key(self, value: Any, path: str) -> str:
        """An entry or delta key: text the model accepts (non-empty, at most 4 KiB of UTF-8)."""
        key = self.text(value, path)
        try:
            return check_key(key)
        except ValidationError as exc:
            raise self.error(path, str(exc).removeprefix("key: ")) from None

    def ternary(self, value: Any, path: str) -> Ternary | None:
        """``ternary_strength``: the enum's variant name, or null."""
        if value is None:
            return None
        if type(value) is str and value in _TERNARY:
            return _TERNARY[value]
        raise self.error(path, f'expected "Pos", "Zero", "Neg" or null, got {self.describe(value)}')

    def delta_type(self, value: Any, path: str) -> DeltaType:
        """``delta_type``: the enum's variant name."""
        kind = self.text(value, path)
        if kind not in _DELTA_TYPES:
            raise self.error(
                path, f"unknown delta type {quote(kind)} (expected Create, Update, Delete or Merge)"
            )
        return _DELTA_TYPES[kind]

    # --- byte arrays ----------------------------------------------------------------

    def byte_array(self, value: Any, path: str) -> bytes:
        """A ``Vec<u8>``: a fast-path placeholder, or a list checked element by element."""
        if self.is_placeholder(value):
            return self.arrays[int(value[len(self.marker) :])]
        if type(value) is not list:
            raise self.error(path, f"expected an array of bytes (0..255), got {self.describe(value)}")
        for i, x in enumerate(value):  # only arrays the fast path refused: the error path
            if type(x) is not int:
                raise self.error(f"{path}[{i}]", f"{self.describe(x)} is not a byte (0..255)")
            if not 0 <= x <= 255:
                raise self.error(f"{path}[{i}]", f"{x} is not a byte (0..255)")
        return bytes(value)

    def restore(self, value: Any) -> Any:
        """Put the original JSON back where a placeholder stands (for ``custom`` and messages)."""
        if type(value) is str:
            if self.is_placeholder(value):
                start, end = self.spans[int(value[len(self.marker) :])]
                return orjson.loads(memoryview(self.data)[start:end])
            return value
        if type(value) is list:
            return [self.restore(v) for v in value]
        if type(value) is dict:
            return {k: self.restore(v) for k, v in value.items()}
        return value

    def custom(self, value: Any, path: str) -> Any:
        """Arbitrary JSON (``custom``), placeholders restored, nesting capped for CBOR."""
        if value is None or type(value) in (bool, int, float):
            return value
        if _depth(value, MAX_CUSTOM_DEPTH) > MAX_CUSTOM_DEPTH:
            raise LimitExceededError(f"{self.source}: {path}: nested deeper than {MAX_CUSTOM_DEPTH} levels")
        return self.restore(value)


# --- parsing ------------------------------------------------------------------------


def parse_document(data: bytes, *, source: str, max_bytes: int = MAX_LEGACY_BYTES) -> Document:
    """Parse legacy JSON bytes, taking the byte arrays through the fast path."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"legacy data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if data.startswith(_BOM):  # added by some editors; the content is what counts
        data = data[len(_BOM) :]
    max_bytes = legacy_cap(max_bytes)
    if len(data) > max_bytes:
        raise legacy_too_big(source, len(data), max_bytes)
    check_json_containers(data, current_limits().max_json_containers, source)
    marker = f"\x00thermo-bytes-{secrets.token_hex(16)}:"
    arrays: list[bytes] = []
    spans: list[tuple[int, int]] = []
    pieces: list[bytes] = []
    copied = 0
    for start, end, value in _byte_arrays(data):
        pieces.append(data[copied:start])
        pieces.append(orjson.dumps(f"{marker}{len(arrays)}"))
        arrays.append(value)
        spans.append((start, end))
        copied = end
    if arrays:
        pieces.append(data[copied:])
        skeleton = b"".join(pieces)
    else:
        skeleton = data
    try:
        root = orjson.loads(skeleton)
    except orjson.JSONDecodeError:
        root = None
        _raise_json_error(data, source)  # positions must refer to the file, not the skeleton
    return Document(root=root, source=source, data=data, marker=marker, arrays=arrays, spans=spans)


def _byte_arrays(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """Yield (start, end, bytes) of each ``"value": [ints 0..255]`` array, left to right.

    A ``"value"`` token can only be a key here: inside a JSON string every quote is
    escaped. An array that is not a flat list of bytes (or whose first ``]`` is not its
    end) is skipped and left for the strict checks.
    """
    n = len(data)
    view = memoryview(data)
    pos = 0
    while True:
        i = data.find(b'"value"', pos)
        if i < 0:
            return
        j = i + 7
        while j < n and data[j] in _WS:
            j += 1
        if j >= n or data[j] != 0x3A:  # ':'
            pos = j
            continue
        j += 1
        while j < n and data[j] in _WS:
            j += 1
        if j >= n or data[j] != 0x5B:  # '['
            pos = j
            continue
        k = data.find(b"]", j)
        if k < 0:
            return
        pos = k + 1
        if data.find(b"e", j, k) >= 0:  # true/false/1e3: not bytes, let the strict path say so
            continue
        try:
            items = orjson.loads(view[j:pos])
            value = bytes(items) if type(items) is list else None
        except (orjson.JSONDecodeError, TypeError, ValueError):
            continue
        if value is not None:
            yield j, pos, value


def _raise_json_error(data: bytes, source: str) -> None:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        reason = exc.msg
        where = f"line {exc.lineno} column {exc.colno}"
        if "recursion" in reason.lower():
            raise LimitExceededError(f"{source}: {where}: JSON nested too deeply ({reason})") from None
        raise LegacyFormatError(where, f"invalid JSON: {reason}", source=source) from None
    raise LegacyFormatError("$", "invalid JSON", source=source)


# --- helpers --------------------------------------------------------------------------


def join(path: str, name: str) -> str:
    """Extend a JSON path with an object member (plain names dotted, others quoted)."""
    if name.isidentifier() and name.isascii():
        return f"{path}.{name}" if path else name
    return join_key(path, name)


def join_key(path: str, key: str) -> str:
    """Extend a JSON path with a map key: always quoted, so user data never looks like a field.

    A key longer than 80 characters is shortened to its start and end (the path is for
    messages, which must stay one short line even for a 1 MiB key).
    """
    if len(key) > _PATH_KEY_LIMIT:
        half = _PATH_KEY_LIMIT // 2
        key = f"{key[:half]}…{key[-half:]}"
    return f"{path}[{orjson.dumps(key).decode()}]"


_PATH_KEY_LIMIT = 80


def describe(value: Any) -> str:
    """A short JSON rendering of a value for an error message (one line, at most ~40 chars)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    try:
        text = orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"string {text}" if isinstance(value, str) else text


def _depth(value: Any, limit: int, level: int = 1) -> int:
    """Nesting depth of containers, stopping early once past ``limit``."""
    if level > limit:
        return level
    children = value.values() if type(value) is dict else value if type(value) is list else ()
    deepest = level
    for child in children:
        if type(child) in (dict, list):
            deepest = max(deepest, _depth(child, limit, level + 1))
            if deepest > limit:
                break
    return deepest
