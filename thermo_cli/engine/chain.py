"""The hash chain: validating, linking and verifying log records in memory.

Record bytes and hashes are the codec's (:mod:`thermo_cli.codec.fastrecords`); this module
decides what may enter the chain and checks that records follow each other.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import cbor2

from thermo_cli.codec import cbor, records
from thermo_cli.codec.fastrecords import encode_delta, recompute_hash
from thermo_cli.errors import ChainError, LimitExceededError, ValidationError
from thermo_cli.model import (
    MAX_KEY_BYTES,
    Delta,
    DeltaType,
    Event,
    HashScheme,
    LogRecord,
    TensorSpec,
    Ternary,
    new_id,
)

_sha256 = hashlib.sha256
_F32LE = struct.Struct("<f")
_INT64_MAX = 2**63 - 1
_U64_MAX = 2**64 - 1

# --- ids ------------------------------------------------------------------------------------

fast_id = new_id  # one id pool for the whole package (thermo_cli.model.new_id)


# --- validation ------------------------------------------------------------------------------


def _fail(name: str, message: str) -> ValidationError:
    return ValidationError(f"{name}: {message}")


def validate_key(key: Any) -> int:
    """A key's length in UTF-8 bytes, or ValidationError (non-empty text, valid UTF-8, bounded)."""
    if type(key) is not str:
        raise _fail("key", f"expected text, got {type(key).__name__}")
    if key.isascii():
        n = len(key)
    else:
        try:
            n = len(key.encode("utf-8"))
        except UnicodeEncodeError:
            raise _fail("key", "not valid UTF-8 (contains a lone surrogate)") from None
    if not n:
        raise _fail("key", "must not be empty")
    if n > MAX_KEY_BYTES:
        raise _fail("key", f"{n} bytes exceeds the maximum of {MAX_KEY_BYTES} bytes")
    return n


def _validate_text(name: str, text: Any) -> None:
    if type(text) is not str:
        raise _fail(name, f"expected text, got {type(text).__name__}")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _fail(name, "not valid UTF-8 (contains a lone surrogate)") from None


_PLAIN = (str, bytes, float, bool, type(None))


def _integer(value: Any, name: str) -> int:
    """An integral number of another type (e.g. numpy.int64) as an int; bools refused."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise _fail(name, f"expected an integer, got {value!r}")
    return int(value)


def _check_custom(obj: Any, depth: int) -> None:
    """Custom metadata must be plain data that decodes back as itself: text-keyed maps,
    lists, text, bytes, 64-bit integers, floats, booleans and null (no CBOR tags)."""
    if depth > cbor.MAX_DEPTH:
        raise _fail("custom", f"nested deeper than {cbor.MAX_DEPTH} levels")
    if isinstance(obj, _PLAIN):
        return
    if isinstance(obj, int):
        if not -(2**64) <= obj <= _U64_MAX:
            raise _fail("custom", f"integer {obj} does not fit in 64 bits")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            if type(k) is not str:
                raise _fail("custom", f"map keys must be text, got {type(k).__name__}")
            _check_custom(v, depth + 1)
        return
    if isinstance(obj, list | tuple):
        for v in obj:
            _check_custom(v, depth + 1)
        return
    raise _fail("custom", f"values of type {type(obj).__name__} are not allowed (plain data only)")


_f32_round = _F32LE.pack
_f32_back = _F32LE.unpack
_DELETE = DeltaType.DELETE
_V2 = HashScheme.V2


def validate_delta(d: Any) -> int:
    """Check every field of a delta about to be applied; normalise in place.

    Normalisation: strength rounded to float32, a ternary given as an int or a name
    becomes a :class:`Ternary`, a value given as bytearray/memoryview becomes bytes.
    Raises ValidationError naming the first bad field; the delta is unchanged then.
    (``prev_hash`` is checked against the chain head by :func:`link`.) Returns the key's
    length in UTF-8 bytes.
    """
    if type(d) is not Delta:
        raise ValidationError(f"delta: expected a Delta, got {type(d).__name__}")
    if type(d.delta_type) is not DeltaType:
        raise _fail("delta_type", f"expected a DeltaType, got {d.delta_type!r}")
    key_bytes = validate_key(d.key)
    value = d.value
    if type(value) is not bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise _fail("value", f"expected bytes, got {type(value).__name__}")
        value = bytes(value)
    legacy = d.scheme is not _V2
    if legacy and d.scheme is not HashScheme.LEGACY:
        raise _fail("scheme", f"expected a HashScheme, got {d.scheme!r}")
    if value and d.delta_type is _DELETE and not legacy:
        raise _fail("value", "a delete carries no value")
    tern = d.ternary
    if tern is not None and type(tern) is not Ternary:
        tern = Ternary.coerce(tern, "ternary")
    s = d.strength
    if type(s) is not float:
        if isinstance(s, bool) or not isinstance(s, Real):
            raise _fail("strength", f"expected a number, got {s!r}")
        s = float(s)
    if tern is None:
        if not 0.0 <= s <= 1.0 and not (legacy and -1.0 <= s <= 1.0):
            raise _fail("strength", f"must be finite and within [0, 1], got {s!r}")
    elif s != float(tern) and not (legacy and -1.0 <= s <= 1.0):
        raise _fail("strength", f"a ternary delta's strength is its ternary value {float(tern)}, got {s!r}")
    obs = d.observation_count
    if obs is not None and type(obs) is not int:
        obs = _integer(obs, "observation_count")
    if obs is not None and not 0 <= obs <= _U64_MAX:
        raise _fail("observation_count", f"expected a non-negative integer or None, got {obs!r}")
    ts = d.timestamp_ns
    if type(ts) is not int:
        ts = _integer(ts, "timestamp_ns")
    if not 0 <= ts <= _INT64_MAX:
        raise _fail("timestamp_ns", f"expected integer nanoseconds since 1970 (UTC), got {ts!r}")
    src = d.source
    if type(src) is not str or not src.isascii():
        _validate_text("source", src)
    did = d.id
    if type(did) is not str or not did:
        raise _fail("id", f"expected non-empty text, got {did!r}")
    if not did.isascii():
        _validate_text("id", did)
    if d.custom is not None:
        _check_custom(d.custom, 0)
    if d.tensor is not None and type(d.tensor) is not TensorSpec:
        raise _fail("tensor", f"expected a TensorSpec or None, got {type(d.tensor).__name__}")
    d.value = value
    d.ternary = tern
    d.observation_count = obs
    d.timestamp_ns = ts
    d.strength = _f32_back(_f32_round(s))[0]
    return key_bytes


def link(d: Delta, head: str | None) -> None:
    """Attach a delta to the chain head, or refuse one that names another predecessor."""
    if d.prev_hash is None:
        if head is None:
            return
        if d.scheme is HashScheme.LEGACY and d.hash is not None:
            raise ChainError(
                f"delta {d.id}: legacy delta has no prev_hash but the chain head is {head[:16]}…"
            )
        # Linking changes the hashed fields, so a hash that came with the delta is moot.
        d.prev_hash = head
        d.hash = None
        return
    if d.prev_hash != head:
        shown = "empty (no head)" if head is None else f"{head[:16]}…"
        given = f"{d.prev_hash[:16]}…" if isinstance(d.prev_hash, str) else repr(d.prev_hash)
        raise ChainError(f"delta {d.id}: prev_hash {given} does not match the chain head {shown}")


def seal_linked(d: Delta) -> None:
    """Seal a linked delta; a hash that arrived with it must be the one its fields give."""
    claimed = d.hash
    if d.scheme is HashScheme.LEGACY:
        computed = records.legacy_delta_hash(d)
        if claimed is not None and claimed != computed:
            raise ChainError(f"delta {d.id}: stored hash does not match the crate's hash of its fields")
        d.hash = computed
        d.encoded = records.encode_record(d)
        return
    enc = encode_delta(d)
    computed = _sha256(enc).hexdigest()
    if claimed is not None and claimed != computed:
        raise ChainError(f"delta {d.id}: given hash does not match the hash of its fields")
    d.encoded = enc
    d.hash = computed


# --- verification ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """Outcome of :func:`verify_records`: ``index`` is the log index of the first bad record."""

    ok: bool
    checked: int
    index: int | None = None
    reason: str = ""
    head_hash: str | None = None


def verify_records(
    recs: list[LogRecord], *, base: int = 0, head_hash: str | None = None, check_head: bool = True
) -> ChainCheck:
    """Recompute every hash from the record's fields and check every link.

    ``base`` is the log index of ``recs[0]``; when it is 0 the first record must have no
    predecessor, otherwise its link cannot be checked here (the records before it are not
    in memory). Legacy deltas are checked with the crate's recipe (which does not cover
    ternary strength, observation count or custom metadata).
    """
    prev: str | None = None
    for i, rec in enumerate(recs):
        index = base + i
        if (i > 0 or base == 0) and rec.prev_hash != prev:
            return ChainCheck(False, i, index, "prev_hash does not link to the previous record")
        if rec.hash is None:
            return ChainCheck(False, i, index, "record has no hash")
        try:
            computed = recompute_hash(rec)
        except (
            TypeError,
            ValueError,
            KeyError,
            AttributeError,
            OverflowError,
            LimitExceededError,
            cbor2.CBOREncodeError,
        ) as exc:
            return ChainCheck(False, i, index, f"record fields cannot be encoded ({exc})")
        if computed != rec.hash:
            recipe = "crate" if isinstance(rec, Delta) and rec.scheme is HashScheme.LEGACY else "v2"
            return ChainCheck(False, i, index, f"hash mismatch ({recipe} recipe): fields were changed")
        prev = rec.hash
    last = recs[-1].hash if recs else None
    if check_head and recs and head_hash != last:
        return ChainCheck(False, len(recs), base + len(recs) - 1, "head hash is not the last record's hash")
    return ChainCheck(True, len(recs), None, "", last)


def new_event(kind: str, timestamp_ns: int, fields: dict[str, Any], head: str | None) -> Event:
    """A sealed event linked to ``head``."""
    ev = Event(kind=kind, timestamp_ns=timestamp_ns, fields=fields, prev_hash=head)
    records.seal(ev)
    return ev


@dataclass(slots=True)
class HashChain:
    """A standalone hash chain of log records (the crate's ``HashChain``).

    A :class:`~thermo_cli.engine.thermogram.Thermogram` keeps its chain as ``records`` and
    ``head_hash`` directly; this class is for code that builds or checks a chain on its
    own (delta streams, converters). :meth:`append` applies the same rules as
    ``Thermogram.apply``: validate, link to the head (or refuse a different
    ``prev_hash``), hash.
    """

    records: list[LogRecord] = field(default_factory=list)
    head_hash: str | None = None

    def append(self, rec: LogRecord) -> LogRecord:
        if isinstance(rec, Delta):
            validate_delta(rec)
            link(rec, self.head_hash)
            seal_linked(rec)
        else:
            if rec.prev_hash is None:
                rec.prev_hash = self.head_hash
            elif rec.prev_hash != self.head_hash:
                raise ChainError(f"event {rec.kind!r}: prev_hash does not match the chain head")
            records.seal(rec)
        self.records.append(rec)
        self.head_hash = rec.hash
        return rec

    def verify(self) -> ChainCheck:
        return verify_records(self.records, head_hash=self.head_hash)

    def __len__(self) -> int:
        return len(self.records)
