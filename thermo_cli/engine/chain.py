"""The hash chain: validating, linking and verifying log records in memory.

Record bytes and hashes are the codec's (:mod:`thermo_cli.codec.fastrecords`); this module
decides what may enter the chain and checks that records follow each other.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from numbers import Real
from typing import Any

import cbor2

from thermo_cli.codec import records
from thermo_cli.codec.fastrecords import encode_delta, recompute_hash
from thermo_cli.config.limits import current_limits
from thermo_cli.errors import ChainError, LimitExceededError, ValidationError
from thermo_cli.model import (
    MAX_TEXT_CHARS,
    MAX_TIME_NS,
    MIN_TIME_NS,
    Delta,
    DeltaType,
    Event,
    HashScheme,
    LogRecord,
    Ternary,
    check_count,
    check_custom,
    check_delta_strength,
    check_text,
    check_timestamp,
    key_size,
    new_id,
)

_sha256 = hashlib.sha256
_F32LE = struct.Struct("<f")
_INT64_MAX = 2**63 - 1
_U64_MAX = 2**64 - 1

# --- ids ------------------------------------------------------------------------------------

fast_id = new_id  # one id pool for the whole package (thermo_cli.model.new_id)


# --- validation ------------------------------------------------------------------------------
#
# What a valid delta is has one definition: the field checks of the data model
# (thermo_cli.model: key_size, check_text, check_delta_strength, check_count,
# check_timestamp, check_custom) and the codec's check_delta_tensor. This validator and the
# JSONL parser (thermo_cli.formats.jsonl.DeltaParser) are both built from those calls;
# tests/formats/test_jsonl_parity.py checks that they accept and refuse the same deltas.


def validate_key(key: Any) -> int:
    """A key's length in UTF-8 bytes, or ValidationError (non-empty text, valid UTF-8, bounded)."""
    return key_size(key)


_F32_PACK, _F32_UNPACK = _F32LE.pack, _F32LE.unpack
_DELETE = DeltaType.DELETE
_V2 = HashScheme.V2


def validate_delta(d: Any) -> int:
    """Check every field of a delta about to be applied; normalise in place.

    Normalisation: strength rounded to float32, a ternary given as an int or a name
    becomes a :class:`Ternary`, a value given as bytearray/memoryview becomes bytes,
    integral numbers of other types (numpy) become ints. Raises ValidationError naming
    the first bad field; the delta is unchanged then. (``prev_hash`` is checked against
    the chain head by :func:`link`.) Deltas of the crate's scheme keep what the crate
    allowed: a strength in [-1, 1], a value on a delete, any source text. Returns the
    key's length in UTF-8 bytes.
    """
    if type(d) is not Delta:
        raise ValidationError(f"delta: expected a Delta, got {type(d).__name__}")
    if type(d.delta_type) is not DeltaType:
        raise _fail("delta_type", f"expected a DeltaType, got {d.delta_type!r}")
    key_bytes = key_size(d.key)
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
    if type(s) is float and tern is None and 0.0 <= s <= 1.0:
        s = _F32_UNPACK(_F32_PACK(s))[0]  # the common case, as check_delta_strength would
    else:
        s = check_delta_strength(_real(s), tern, lenient=legacy)
    obs = d.observation_count
    if obs is not None:
        obs = check_count(obs)
    ts = d.timestamp_ns
    if type(ts) is not int or not MIN_TIME_NS <= ts <= MAX_TIME_NS:
        ts = check_timestamp(ts, "timestamp_ns")
    src = d.source
    if legacy:
        _legacy_text(src)
    elif type(src) is not str or not src or len(src) > MAX_TEXT_CHARS or not src.isascii():
        check_text(src, "source")
    did = d.id
    if type(did) is not str or not did or len(did) > MAX_TEXT_CHARS or not did.isascii():
        check_text(did, "id")
    if d.custom is not None:
        check_custom(d.custom, current_limits().max_meta_depth)
    if d.tensor is not None:
        from thermo_cli.codec.tensors import (
            check_delta_tensor,
        )  # imports numpy: only for tensors (start-up time)

        check_delta_tensor(d.tensor, value, current_limits().max_tensor_dims)
    d.value = value
    d.ternary = tern
    d.observation_count = obs
    d.timestamp_ns = ts
    d.strength = s
    return key_bytes


def _fail(name: str, message: str) -> ValidationError:
    return ValidationError(f"{name}: {message}")


def _real(value: Any) -> Any:
    """A real number of another type (numpy.float32) as a float, for the model's checks."""
    if not isinstance(value, bool) and isinstance(value, Real) and not isinstance(value, int | float):
        return float(value)
    return value


def _legacy_text(text: Any) -> None:
    """The crate's source text: any valid UTF-8, even empty or long."""
    if type(text) is not str:
        raise _fail("source", f"expected text, got {type(text).__name__}")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise _fail("source", "not valid UTF-8 (contains a lone surrogate)") from None


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
