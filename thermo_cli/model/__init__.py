"""The one typed data model shared by the engine, the container codec and the legacy readers.

Every reader produces these objects and every writer consumes them, so a value read from
a Rust-crate JSON file, a ``.thermo`` container or a JSONL delta stream is the same Python
object. Times are integer nanoseconds since the Unix epoch (UTC) because the Rust crate
wrote nanosecond timestamps and hashed their text: ``datetime`` keeps only microseconds.
Strengths are float32 values held in Python floats (rounded through float32 on the way
in), because the crate stored and hashed f32.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from thermo_cli.errors import ValidationError, quote
from thermo_cli.model.valueclass import FrozenValue, Value

if TYPE_CHECKING:  # imported where used: most commands never convert a datetime
    from datetime import datetime

MAX_KEY_BYTES = 4096
"""Longest key, in UTF-8 bytes. Keys are names (tensor names, paths), not payloads."""

NS_PER_SECOND = 1_000_000_000
U64_MAX = 2**64 - 1
"""The crate's usize::MAX, used for min_observations of the cold layer ("never")."""

MIN_TIME_NS = -(2**63)
MAX_TIME_NS = 2**63 - 1
"""Timestamps are signed 64-bit nanoseconds since the epoch (UTC) in every record and file:
1677-09-21T00:12:43.145224192Z .. 2262-04-11T23:47:16.854775807Z. The crate (chrono)
accepted years 0001..9999; instants outside this range are refused where they come in."""
TIME_RANGE_TEXT = "1677-09-21..2262-04-11"


def time_in_range(ns: int) -> bool:
    """True when ``ns`` fits the signed 64-bit nanosecond timestamps of the format."""
    return MIN_TIME_NS <= ns <= MAX_TIME_NS


# --- enums -------------------------------------------------------------------------------


class Layer(IntEnum):
    """Thermal layers, hottest first; the integer is the crate's array index."""

    HOT = 0
    WARM = 1
    COOL = 2
    COLD = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Layer:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValidationError(f"layer: expected hot, warm, cool or cold, got {quote(text)}") from None


class DeltaType(IntEnum):
    """Kinds of delta; the integer is the byte the legacy hash uses."""

    CREATE = 0
    UPDATE = 1
    DELETE = 2
    MERGE = 3

    @property
    def label(self) -> str:
        """Lower-case name used in JSONL and in the v2 record encoding."""
        return self.name.lower()

    @property
    def legacy_name(self) -> str:
        """Spelling in the Rust crate's JSON (``Create`` …)."""
        return self.name.capitalize()

    @classmethod
    def parse(cls, text: str) -> DeltaType:
        try:
            return cls[text.strip().upper()]
        except (KeyError, AttributeError):
            raise ValidationError(
                f"op: expected create, update, delete or merge, got {quote(text)}"
            ) from None


class Ternary(IntEnum):
    """A ternary weight or strength: -1, 0, +1."""

    NEG = -1
    ZERO = 0
    POS = 1

    def strengthen(self) -> Ternary:
        """One step up: Neg→Zero→Pos, Pos stays."""
        return Ternary(min(1, self + 1))

    def weaken(self) -> Ternary:
        """One step down: Pos→Zero→Neg, Neg stays."""
        return Ternary(max(-1, self - 1))

    @property
    def legacy_name(self) -> str:
        return {1: "Pos", 0: "Zero", -1: "Neg"}[int(self)]

    @classmethod
    def from_legacy_name(cls, text: str) -> Ternary:
        return {"Pos": cls.POS, "Zero": cls.ZERO, "Neg": cls.NEG}[text]

    @classmethod
    def coerce(cls, value: Any, field_name: str = "ternary") -> Ternary:
        """Accept -1/0/+1 (ints, or floats equal to them) or Pos/Zero/Neg names."""
        if isinstance(value, Ternary):
            return value
        if isinstance(value, str) and value in ("Pos", "Zero", "Neg"):
            return cls.from_legacy_name(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(f"{field_name}: expected -1, 0 or +1, got {quote(value)}")
        if value not in (-1, 0, 1):
            raise ValidationError(f"{field_name}: expected -1, 0 or +1, got {quote(value)}")
        return cls(int(value))


# --- validation and conversions ------------------------------------------------------------


_F32 = struct.Struct("<f")
_f32_pack: Callable[[float], bytes] = _F32.pack
_f32_unpack: Callable[[bytes], tuple[float]] = _F32.unpack


def f32(x: float) -> float:
    """Round a Python float through IEEE float32, as the crate stored strengths."""
    return _f32_unpack(_f32_pack(x))[0]


def check_strength(value: Any, field_name: str = "strength") -> float:
    """A continuous strength: a finite number in [0, 1], returned as a float32 value."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field_name}: expected a number in [0, 1], got {quote(value)}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValidationError(f"{field_name}: must be finite and within [0, 1], got {quote(value)}")
    return f32(float(value))


def check_key(key: Any) -> str:
    """A key: a non-empty str of valid UTF-8 (no lone surrogates), at most MAX_KEY_BYTES."""
    if not isinstance(key, str):
        raise ValidationError(f"key: expected text, got {type(key).__name__}")
    if not key:
        raise ValidationError("key: must not be empty")
    try:
        n = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationError("key: not valid UTF-8 (contains a lone surrogate)") from None
    if n > MAX_KEY_BYTES:
        raise ValidationError(f"key: {n} bytes exceeds the maximum of {MAX_KEY_BYTES} bytes")
    return key


# --- the delta field checks: one definition used by the engine and by every parser ---------

MAX_TEXT_CHARS = 256
"""Longest delta ``source`` or ``id``, in characters: they are labels, not payloads."""

MAX_COUNT = U64_MAX
_PLAIN = (str, bytes, float, bool, type(None))


def key_size(key: Any, max_bytes: int = MAX_KEY_BYTES, too_long: type[Exception] = ValidationError) -> int:
    """A key's size in UTF-8 bytes once checked: non-empty text, valid UTF-8, at most
    ``max_bytes``. ``too_long`` is the error for the size cap (a stream reports it as a
    limit). The engine and the JSONL parser both call this, so they refuse the same keys."""
    if type(key) is not str:
        raise ValidationError(f"key: expected text, got {type(key).__name__}")
    if key.isascii():
        n = len(key)
    else:
        try:
            n = len(key.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValidationError("key: not valid UTF-8 (contains a lone surrogate)") from None
    if not n:
        raise ValidationError("key: must not be empty")
    if n > max_bytes:
        raise too_long(f"key: {n} bytes exceeds the maximum of {max_bytes} bytes")
    return n


def check_text(value: Any, field_name: str) -> str:
    """A delta's ``source`` or ``id``: non-empty valid UTF-8 text of at most MAX_TEXT_CHARS."""
    if type(value) is not str or not value or len(value) > MAX_TEXT_CHARS:
        raise ValidationError(
            f"{field_name}: expected non-empty text of at most {MAX_TEXT_CHARS} characters, "
            f"got {quote(value)}"
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(f"{field_name}: not valid UTF-8 (contains a lone surrogate)") from None
    return value


def check_delta_strength(value: Any, ternary: Ternary | None, lenient: bool = False) -> float:
    """A delta's strength as float32: in [0, 1], or its ternary value for a ternary delta.
    ``lenient`` accepts any number in [-1, 1], as migrated Rust-crate deltas carry."""
    if type(value) is float and ternary is None and 0.0 <= value <= 1.0:  # the common case
        return _f32_unpack(_f32_pack(value))[0]
    if lenient:
        if isinstance(value, bool) or not isinstance(value, int | float) or not -1.0 <= value <= 1.0:
            raise ValidationError(f"strength: expected a number in [-1, 1], got {quote(value)}")
        return f32(float(value))
    if ternary is None:
        return check_strength(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != float(int(ternary)):
        raise ValidationError(
            f"strength: a ternary delta's strength is its ternary value "
            f"({float(int(ternary))}), got {quote(value)}"
        )
    return float(int(ternary))


def check_count(value: Any, field_name: str = "observation_count") -> int:
    """An unsigned 64-bit count (an integral number of any type; bools refused)."""
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValidationError(f"{field_name}: expected an unsigned integer, got {quote(value)}")
    n: int = value.__index__()
    if not 0 <= n <= MAX_COUNT:
        raise ValidationError(f"{field_name}: expected an unsigned integer, got {quote(value)}")
    return n


def check_timestamp(value: Any, field_name: str = "timestamp") -> int:
    """Integer nanoseconds since the epoch within the format's signed 64-bit range."""
    if type(value) is int and MIN_TIME_NS <= value <= MAX_TIME_NS:
        return value
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise ValidationError(f"{field_name}: expected integer nanoseconds, got {quote(value)}")
    ns: int = value.__index__()
    if not time_in_range(ns):
        raise ValidationError(
            f"{field_name}: nanoseconds out of range (signed 64-bit, {TIME_RANGE_TEXT}), got {quote(value)}"
        )
    return ns


def check_custom(obj: Any, max_depth: int, field_name: str = "custom") -> None:
    """Custom metadata is plain data that decodes back as itself: text-keyed maps, lists,
    text, bytes, 64-bit integers, floats, booleans and null, nested at most ``max_depth``
    containers deep (the record nests it further and CBOR caps the total)."""
    if type(obj) not in _SCALARS:
        _check_item(obj, 1, max_depth, field_name)


_SCALARS = frozenset({str, bytes, float, bool, type(None)})


def _check_item(item: Any, depth: int, max_depth: int, field_name: str) -> None:
    """One item of custom metadata at container depth ``depth``; recursion stops at
    ``max_depth`` + 1, so it stays shallow."""
    if isinstance(item, dict):
        if depth > max_depth:
            raise ValidationError(f"{field_name}: nested deeper than {max_depth} levels")
        for k, v in item.items():
            if type(k) is not str:
                raise ValidationError(f"{field_name}: map keys must be text, got {type(k).__name__}")
            if type(v) not in _SCALARS:
                _check_item(v, depth + 1, max_depth, field_name)
    elif isinstance(item, list | tuple):
        if depth > max_depth:
            raise ValidationError(f"{field_name}: nested deeper than {max_depth} levels")
        for v in item:
            if type(v) not in _SCALARS:
                _check_item(v, depth + 1, max_depth, field_name)
    elif isinstance(item, int) and not isinstance(item, bool):
        if not -(2**64) <= item <= U64_MAX:
            raise ValidationError(f"{field_name}: integer {item} does not fit in 64 bits")
    elif not isinstance(item, _PLAIN):
        raise ValidationError(
            f"{field_name}: values of type {type(item).__name__} are not allowed (plain data only)"
        )


def check_shape(shape: Any, max_dims: int, field_name: str = "tensor.shape") -> tuple[int, ...]:
    """A tensor shape: at most ``max_dims`` integer dimensions >= 0."""
    if not isinstance(shape, list | tuple):
        raise ValidationError(f"{field_name}: expected a list of dimension sizes")
    if len(shape) > max_dims:
        raise ValidationError(f"{field_name}: more than {max_dims} dimensions")
    for d in shape:
        if type(d) is not int or d < 0:
            raise ValidationError(f"{field_name}: dimensions must be integers >= 0, got {quote(d)}")
    return tuple(shape)


def check_bytes(value: Any, field_name: str = "value") -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise ValidationError(f"{field_name}: expected bytes, got {type(value).__name__}")


def datetime_to_ns(dt: datetime) -> int:
    """A timezone-aware datetime as integer nanoseconds since the epoch (UTC)."""
    from datetime import UTC, datetime

    if not isinstance(dt, datetime):
        raise ValidationError(f"timestamp: expected a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValidationError("timestamp: must be timezone-aware (UTC), got a naive datetime")
    delta = dt.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1000


def ns_to_datetime(ns: int) -> datetime:
    """Nanoseconds to an aware UTC datetime (sub-microsecond digits are dropped)."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns // NS_PER_SECOND, tz=UTC).replace(
        microsecond=(ns % NS_PER_SECOND) // 1000
    )


class _IdPool:
    """Random UUID v4 strings made 4,096 at a time, the hex digits placed by byte slicing.

    ``str(uuid.uuid4())`` costs ~3 µs here, as much as the rest of applying a delta;
    one ``os.urandom`` call per batch, the version and variant bits set on the whole batch
    (``bytes.translate``) and the digits moved into place one column at a time (strided
    slice assignments, all in C) bring an id to ~0.1 µs without importing numpy, which
    would cost ``thermo apply`` more start-up time than its ids. The ids are the same
    thing: 122 random bits, version 4, RFC 4122 variant.
    """

    _BATCH = 4096
    _COLS = (*range(0, 8), *range(9, 13), *range(14, 18), *range(19, 23), *range(24, 36))
    _VERSION = bytes((b & 0x0F) | 0x40 for b in range(256))
    _VARIANT = bytes((b & 0x3F) | 0x80 for b in range(256))

    __slots__ = ("_ids",)

    def __init__(self) -> None:
        self._ids: list[str] = []

    def _refill(self) -> None:
        n = self._BATCH
        raw = bytearray(os.urandom(16 * n))
        raw[6::16] = raw[6::16].translate(self._VERSION)
        raw[8::16] = raw[8::16].translate(self._VARIANT)
        digits = raw.hex().encode("ascii")
        out = bytearray(b"-" * (37 * n))  # 36 characters and a newline per id: one split
        for j, col in enumerate(self._COLS):
            out[col::37] = digits[j::32]
        out[36::37] = b"\n" * n
        self._ids = out[:-1].decode("ascii").split("\n")

    def next(self) -> str:
        ids = self._ids
        if not ids:
            self._refill()
            ids = self._ids
        return ids.pop()

    def take(self, n: int) -> list[str]:
        """``[next() for _ in range(n)]``, in that order, a pool's worth per slice."""
        out: list[str] = []
        while len(out) < n:
            if not self._ids:
                self._refill()
            k = min(n - len(out), len(self._ids))
            out += self._ids[: -k - 1 : -1]  # the last k, newest first: the order next() pops
            del self._ids[-k:]
        return out


_ID_POOL = _IdPool()
new_id = _ID_POOL.next
"""A new random UUID v4 string, formatted like ``str(uuid.uuid4())``."""
new_ids = _ID_POOL.take
"""``n`` new ids at once (a batch of deltas): the same as ``n`` calls of :func:`new_id`."""


# --- values ---------------------------------------------------------------------------------


class TensorSpec(FrozenValue):
    """How an entry's bytes are a tensor.

    ``dtype`` uses safetensors' names (F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64 … U8, BOOL).
    ``encoding`` "raw": the value is the C-order little-endian element bytes.
    ``encoding`` "ternary": the value is 2-bit packed codes (ENGINE.md layout) of
    prod(shape) weights and ``scales`` holds float32 little-endian scales: one for the
    whole tensor, or one per row (shape[0]) when ``per_row``; ``dtype`` is the dtype the
    dequantized tensor is returned as.
    """

    dtype: str
    shape: tuple[int, ...]
    encoding: str
    scales: bytes | None
    per_row: bool
    method: str | None

    __slots__ = ("dtype", "encoding", "method", "per_row", "scales", "shape")

    def __init__(
        self,
        dtype: str,
        shape: tuple[int, ...],
        encoding: str = "raw",
        scales: bytes | None = None,
        per_row: bool = False,
        method: str | None = None,
    ) -> None:
        _set = object.__setattr__
        _set(self, "dtype", dtype)
        _set(self, "shape", shape)
        _set(self, "encoding", encoding)
        _set(self, "scales", scales)
        _set(self, "per_row", per_row)
        _set(self, "method", method)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


class Entry(Value):
    """One key's value in one thermal layer."""

    key: str
    value: bytes
    strength: float
    updated_at_ns: int
    update_count: int
    ternary: Ternary | None
    tensor: TensorSpec | None

    __slots__ = ("key", "strength", "tensor", "ternary", "update_count", "updated_at_ns", "value")

    def __init__(
        self,
        key: str,
        value: bytes,
        strength: float,
        updated_at_ns: int,
        update_count: int = 1,
        ternary: Ternary | None = None,
        tensor: TensorSpec | None = None,
    ) -> None:
        self.key = key
        self.value = value
        self.strength = strength
        self.updated_at_ns = updated_at_ns
        self.update_count = update_count
        self.ternary = ternary
        self.tensor = tensor


# --- the log ---------------------------------------------------------------------------------


class HashScheme(IntEnum):
    """Which recipe a record's hash follows."""

    V2 = 2  # SHA-256 over the record's canonical CBOR bytes (thermo_cli.codec.records)
    LEGACY = 1  # the Rust crate's concatenation recipe (thermo_cli.hashing.legacy_delta_hash)


class Delta(Value):
    """One change to a key, and its place in the hash chain.

    ``prev_hash`` and ``hash`` are lower-case hex text (the legacy files store text; v2
    records store the 32 raw bytes). ``encoded`` caches the exact bytes that were hashed
    (v2) so a writer never re-encodes them. Bulk operations that put values straight into
    a layer (safetensors import, quantize) log an :class:`Event` per entry with the
    value's digest instead of a Delta, so tensor bytes are never stored twice.
    """

    delta_type: DeltaType
    key: str
    value: bytes
    strength: float
    timestamp_ns: int
    source: str
    id: str
    ternary: Ternary | None
    observation_count: int | None
    custom: Any
    tensor: TensorSpec | None
    prev_hash: str | None
    hash: str | None
    scheme: HashScheme
    encoded: bytes | None

    __slots__ = (
        "custom",
        "delta_type",
        "encoded",
        "hash",
        "id",
        "key",
        "observation_count",
        "prev_hash",
        "scheme",
        "source",
        "strength",
        "tensor",
        "ternary",
        "timestamp_ns",
        "value",
    )
    _NOT_COMPARED = frozenset({"encoded"})

    def __init__(
        self,
        delta_type: DeltaType,
        key: str,
        value: bytes,
        strength: float,
        timestamp_ns: int,
        source: str = "thermo",
        id: str | None = None,
        ternary: Ternary | None = None,
        observation_count: int | None = None,
        custom: Any = None,
        tensor: TensorSpec | None = None,
        prev_hash: str | None = None,
        hash: str | None = None,
        scheme: HashScheme = HashScheme.V2,
        encoded: bytes | None = None,
    ) -> None:
        self.delta_type = delta_type
        self.key = key
        self.value = value
        self.strength = strength
        self.timestamp_ns = timestamp_ns
        self.source = source
        self.id = new_id() if id is None else id
        self.ternary = ternary
        self.observation_count = observation_count
        self.custom = custom
        self.tensor = tensor
        self.prev_hash = prev_hash
        self.hash = hash
        self.scheme = scheme
        self.encoded = encoded


class Event(Value):
    """A log record that is not a delta: consolidation points, checkpoints, layer operations.

    ``kind`` names it ("consolidate", "checkpoint", "tick", "reinforce", "weaken", "warm",
    "quantize", "import", "migrate" …); ``fields`` holds its CBOR-encodable details with
    text keys. Events are chained and hashed exactly like v2 deltas.
    """

    kind: str
    timestamp_ns: int
    fields: dict[str, Any]
    prev_hash: str | None
    hash: str | None
    encoded: bytes | None

    __slots__ = ("encoded", "fields", "hash", "kind", "prev_hash", "timestamp_ns")
    _NOT_COMPARED = frozenset({"encoded"})

    def __init__(
        self,
        kind: str,
        timestamp_ns: int,
        fields: dict[str, Any] | None = None,
        prev_hash: str | None = None,
        hash: str | None = None,
        encoded: bytes | None = None,
    ) -> None:
        self.kind = kind
        self.timestamp_ns = timestamp_ns
        self.fields = {} if fields is None else fields
        self.prev_hash = prev_hash
        self.hash = hash
        self.encoded = encoded


LogRecord = Delta | Event


class ReadResult(FrozenValue):
    """What a read of one key found, and where: "dirty" (an uncommitted delta) or a layer."""

    key: str
    value: bytes
    strength: float
    source: str
    ternary: Ternary | None
    tensor: TensorSpec | None
    update_count: int | None

    __slots__ = ("key", "source", "strength", "tensor", "ternary", "update_count", "value")

    def __init__(
        self,
        key: str,
        value: bytes,
        strength: float,
        source: str,
        ternary: Ternary | None = None,
        tensor: TensorSpec | None = None,
        update_count: int | None = None,
    ) -> None:
        _set = object.__setattr__
        _set(self, "key", key)
        _set(self, "value", value)
        _set(self, "strength", strength)
        _set(self, "source", source)
        _set(self, "ternary", ternary)
        _set(self, "tensor", tensor)
        _set(self, "update_count", update_count)


class Metadata(Value):
    created_at_ns: int
    last_consolidation_ns: int
    total_deltas: int
    total_consolidations: int
    custom: Any

    __slots__ = ("created_at_ns", "custom", "last_consolidation_ns", "total_consolidations", "total_deltas")

    def __init__(
        self,
        created_at_ns: int,
        last_consolidation_ns: int,
        total_deltas: int = 0,
        total_consolidations: int = 0,
        custom: Any = None,
    ) -> None:
        self.created_at_ns = created_at_ns
        self.last_consolidation_ns = last_consolidation_ns
        self.total_deltas = total_deltas
        self.total_consolidations = total_consolidations
        self.custom = custom
