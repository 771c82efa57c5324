"""Log records as deterministic CBOR, and the two hash recipes.

A v2 record's hash is SHA-256 over its canonical CBOR map, which holds *every* field of
the record except the hash itself (prev_hash included); the log stores exactly those
bytes, so verifying never re-encodes. A legacy delta (migrated from a Rust-crate file)
keeps its crate hash, recomputed with the crate's concatenation recipe, and is stored as
a record of type "legacy" whose bytes carry that hash text.

Record maps (all keys text; absent values are CBOR null, never omitted):

  delta:  {"t": "delta", "id", "op", "key", "value" (bytes),
           "ts" (int ns), "src", "s" (float), "tern" (-1|0|1|null), "obs" (uint|null),
           "custom" (any|null), "tensor" (map|null), "prev" (32 bytes|null)}
  legacy: same fields as delta with "t": "legacy", "prev" (text|null) and "hash" (text)
  event:  {"t": "event", "kind" (text), "ts" (int ns), "fields" (map), "prev" (32 bytes|null)}
  tensor: {"dtype", "shape" [uint…], "enc" ("raw"|"ternary"), "scales" (bytes|null),
           "per_row" (bool), "method" (text|null)}
"""

from __future__ import annotations

import math
import struct
from typing import Any, TypeGuard

from thermo_cli.codec import cbor
from thermo_cli.codec.sha256 import hexdigest as sha256_hex
from thermo_cli.errors import CorruptError
from thermo_cli.model import (
    Delta,
    DeltaType,
    Event,
    HashScheme,
    LogRecord,
    TensorSpec,
    Ternary,
)

_OPS = {t.label: t for t in DeltaType}
_HEX = frozenset("0123456789abcdef")


# --- hashes -----------------------------------------------------------------------------


def legacy_delta_hash(d: Delta) -> str:
    """The Rust crate's delta hash, byte for byte (LEGACY-FORMAT.md)."""
    import hashlib  # a streaming hash: only legacy deltas need it

    from thermo_cli.codec.timestamps import format_rfc3339  # datetime: only legacy deltas need it

    h = hashlib.sha256()
    h.update(d.id.encode("utf-8"))
    h.update(bytes((int(d.delta_type),)))
    h.update(d.key.encode("utf-8"))
    h.update(d.value)
    h.update(format_rfc3339(d.timestamp_ns).encode("ascii"))
    h.update(d.source.encode("utf-8"))
    h.update(struct.pack("<f", d.strength))
    if d.prev_hash is not None:
        h.update(d.prev_hash.encode("utf-8"))
    return h.hexdigest()


def v2_hash(encoded: bytes) -> str:
    return sha256_hex(encoded)


# --- encoding -------------------------------------------------------------------------------


def tensor_to_map(spec: TensorSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    return {
        "dtype": spec.dtype,
        "shape": list(spec.shape),
        "enc": spec.encoding,
        "scales": spec.scales,
        "per_row": spec.per_row,
        "method": spec.method,
    }


def _prev_bytes(prev: str | None) -> bytes | None:
    return None if prev is None else bytes.fromhex(prev)


def delta_map(d: Delta) -> dict[str, Any]:
    """The record map of a delta (without any hash of its own for v2)."""
    legacy = d.scheme is HashScheme.LEGACY
    m: dict[str, Any] = {
        "t": "legacy" if legacy else "delta",
        "id": d.id,
        "op": d.delta_type.label,
        "key": d.key,
        "value": d.value,
        "ts": d.timestamp_ns,
        "src": d.source,
        "s": d.strength,
        "tern": None if d.ternary is None else int(d.ternary),
        "obs": d.observation_count,
        "custom": d.custom,
        "tensor": tensor_to_map(d.tensor),
        "prev": d.prev_hash if legacy else _prev_bytes(d.prev_hash),
    }
    if legacy:
        m["hash"] = d.hash
    return m


def event_map(e: Event) -> dict[str, Any]:
    return {
        "t": "event",
        "kind": e.kind,
        "ts": e.timestamp_ns,
        "fields": e.fields,
        "prev": _prev_bytes(e.prev_hash),
    }


def encode_record(rec: LogRecord) -> bytes:
    """Canonical bytes of a record, as stored in the log and (for v2) hashed."""
    if isinstance(rec, Delta):
        return cbor.encode(delta_map(rec))
    return cbor.encode(event_map(rec))


def seal(rec: LogRecord) -> LogRecord:
    """Compute and cache a record's bytes and hash (the legacy hash for legacy deltas)."""
    if isinstance(rec, Delta) and rec.scheme is HashScheme.LEGACY:
        if rec.hash is None:
            rec.hash = legacy_delta_hash(rec)
        rec.encoded = encode_record(rec)
        return rec
    rec.encoded = encode_record(rec)
    rec.hash = v2_hash(rec.encoded)
    return rec


# --- decoding -------------------------------------------------------------------------------


def _get(
    m: dict[str, Any], name: str, kinds: type | tuple[type, ...], what: str, nullable: bool = False
) -> Any:
    if name not in m:
        raise CorruptError(f"{what}: missing field {name!r}")
    v = m[name]
    if v is None and nullable:
        return None
    if isinstance(v, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise CorruptError(f"{what}: field {name!r} has the wrong type (bool)")
    if not isinstance(v, kinds):
        raise CorruptError(f"{what}: field {name!r} has the wrong type ({type(v).__name__})")
    return v


def tensor_from_map(m: Any, what: str) -> TensorSpec | None:
    if m is None:
        return None
    if not isinstance(m, dict):
        raise CorruptError(f"{what}: tensor must be a map")
    shape = _get(m, "shape", list, what)
    if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in shape):
        raise CorruptError(f"{what}: tensor shape must be a list of unsigned integers")
    enc = _get(m, "enc", str, what)
    if enc not in ("raw", "ternary"):
        raise CorruptError(f"{what}: unknown tensor encoding {enc!r}")
    return TensorSpec(
        dtype=_get(m, "dtype", str, what),
        shape=tuple(shape),
        encoding=enc,
        scales=_get(m, "scales", bytes, what, nullable=True),
        per_row=_get(m, "per_row", bool, what),
        method=_get(m, "method", str, what, nullable=True),
    )


def _prev_from(m: dict[str, Any], what: str) -> str | None:
    prev: bytes | None = _get(m, "prev", bytes, what, nullable=True)
    if prev is None:
        return None
    if len(prev) != 32:
        raise CorruptError(f"{what}: prev must be 32 bytes, got {len(prev)}")
    return prev.hex()


def _delta_from(m: dict[str, Any], what: str, legacy: bool) -> Delta:
    op = _get(m, "op", str, what)
    if op not in _OPS:
        raise CorruptError(f"{what}: unknown op {op!r}")
    strength = _get(m, "s", (float, int), what)
    if not math.isfinite(strength):
        raise CorruptError(f"{what}: strength is not finite")
    tern = _get(m, "tern", int, what, nullable=True)
    if tern is not None and tern not in (-1, 0, 1):
        raise CorruptError(f"{what}: ternary strength must be -1, 0 or 1")
    obs = _get(m, "obs", int, what, nullable=True)
    if obs is not None and obs < 0:
        raise CorruptError(f"{what}: observation count must not be negative")
    value = _get(m, "value", bytes, what)
    if legacy:
        prev = _get(m, "prev", str, what, nullable=True)
        stored = _get(m, "hash", str, what)
    else:
        prev = _prev_from(m, what)
        stored = None
    return Delta(
        delta_type=_OPS[op],
        key=_get(m, "key", str, what),
        value=value,
        strength=float(strength),
        timestamp_ns=_get(m, "ts", int, what),
        source=_get(m, "src", str, what),
        id=_get(m, "id", str, what),
        ternary=None if tern is None else Ternary(tern),
        observation_count=obs,
        custom=m.get("custom"),
        tensor=tensor_from_map(m.get("tensor"), what),
        prev_hash=prev,
        hash=stored,
        scheme=HashScheme.LEGACY if legacy else HashScheme.V2,
    )


def decode_record(
    data: bytes, *, what: str = "log record", canonical: bool = True, max_items: int | None = None
) -> LogRecord:
    """Bytes of one stored record → Delta or Event, with ``encoded`` and ``hash`` set.

    Unknown extra fields (written by a newer minor version) are ignored but, being part
    of the bytes, stay covered by the hash. ``canonical`` re-encodes to reject
    non-deterministic bytes; verification of trusted-length logs may skip it for speed
    because the hash is over the stored bytes either way.
    """
    m = (
        cbor.decode_canonical(data, what=what, max_items=max_items)
        if canonical
        else cbor.decode(data, what=what, max_items=max_items)
    )
    if not isinstance(m, dict):
        raise CorruptError(f"{what}: record must be a map")
    kind = _get(m, "t", str, what)
    rec: LogRecord
    if kind == "delta":
        rec = _delta_from(m, what, legacy=False)
        rec.hash = v2_hash(data)
    elif kind == "legacy":
        rec = _delta_from(m, what, legacy=True)
    elif kind == "event":
        fields = _get(m, "fields", dict, what)
        rec = Event(
            kind=_get(m, "kind", str, what),
            timestamp_ns=_get(m, "ts", int, what),
            fields=fields,
            prev_hash=_prev_from(m, what),
            hash=v2_hash(data),
        )
    else:
        raise CorruptError(f"{what}: unknown record type {kind!r}")
    rec.encoded = bytes(data)
    return rec


def is_hex_hash(text: object) -> TypeGuard[str]:
    return isinstance(text, str) and len(text) == 64 and set(text) <= _HEX
