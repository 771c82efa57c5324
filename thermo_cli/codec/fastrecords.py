"""Fast, canonical record bytes and hashes: the hot path of every apply and every read.

A v2 delta's hash is SHA-256 over its record bytes (:mod:`thermo_cli.codec.records`:
the canonical CBOR map of every field but the hash). Applying 100,000 deltas a second
needs those bytes in about a microsecond, and cbor2's canonical mode spends ~5 µs sorting
the map's keys, so :func:`encode_delta` writes the one fixed map layout directly from the
hand-written canonical items of :mod:`thermo_cli.codec.cbor`: the key order below *is*
RFC 8949 §4.2 order (shorter encoded key first, then bytewise). Anything unusual (custom
metadata, tensor specs) goes through :func:`thermo_cli.codec.cbor.encode`. The record map
itself is defined once, by :func:`thermo_cli.codec.records.delta_map`: a property test
checks byte-for-byte equality with :func:`thermo_cli.codec.records.encode_record` on
generated deltas, and stored records are only ever read back by
:func:`thermo_cli.codec.records.decode_record` (the strict path beside this fast one).
"""

from __future__ import annotations

import hashlib

from thermo_cli.codec import cbor, records
from thermo_cli.model import Delta, DeltaType, HashScheme, LogRecord

_sha256 = hashlib.sha256

# --- canonical CBOR of a v2 delta ------------------------------------------------------------

_head = cbor.head
_int = cbor.int_item
_text = cbor.text_item
_FLOAT_ITEMS = cbor.FLOAT_ITEMS
_strength = cbor.float_item_cached
_NULL = cbor.NULL
_MAP13 = b"\xad"
_K_S = _text("s")
_K_T_DELTA = _text("t") + _text("delta")
_K_ID = _text("id")
_K_OP = {t: _text("op") + _text(t.label) for t in DeltaType}
_K_TS = _text("ts")
_K_KEY = _text("key")
_K_OBS = _text("obs")
_K_SRC = _text("src")
_K_PREV = _text("prev")
_K_PREV_NULL = _K_PREV + _NULL
_K_TERN = {
    None: _text("tern") + _NULL,
    -1: _text("tern") + b"\x20",
    0: _text("tern") + b"\x00",
    1: _text("tern") + b"\x01",
}
_K_VALUE = _text("value")
_K_CUSTOM = _text("custom")
_K_TENSOR = _text("tensor")
_PREV32 = _head(2, 32)
_SHORT = cbor.SHORT
_TEXT_HEADS = cbor.TEXT_HEADS
_BYTES_HEADS = cbor.BYTES_HEADS


def encode_delta(d: Delta) -> bytes:
    """Canonical CBOR record bytes of a v2 delta (equal to ``records.encode_record(d)``)."""
    key = d.key.encode("utf-8")
    src = d.source.encode("utf-8")
    did = d.id.encode("utf-8")
    nd = len(did)
    value = d.value
    nv = len(value)
    ts = d.timestamp_ns
    prev = d.prev_hash
    obs = d.observation_count
    custom = d.custom
    tensor = d.tensor
    tern = d.ternary
    nk = len(key)
    ns = len(src)
    return b"".join(
        (
            _MAP13,
            _K_S,
            _FLOAT_ITEMS.get(d.strength) or _strength(d.strength),
            _K_T_DELTA,
            _K_ID,
            _TEXT_HEADS[nd] if nd < _SHORT else _head(3, nd),
            did,
            _K_OP[d.delta_type],
            _K_TS,
            b"\x1b" + ts.to_bytes(8, "big") if ts >= 0x100000000 else _int(ts),
            _K_KEY,
            _TEXT_HEADS[nk] if nk < _SHORT else _head(3, nk),
            key,
            _K_OBS,
            _NULL if obs is None else _int(obs),
            _K_SRC,
            _TEXT_HEADS[ns] if ns < _SHORT else _head(3, ns),
            src,
            _K_PREV_NULL if prev is None else _K_PREV + _PREV32 + bytes.fromhex(prev),
            _K_TERN[None if tern is None else int(tern)],
            _K_VALUE,
            _BYTES_HEADS[nv] if nv < _SHORT else _head(2, nv),
            value,
            _K_CUSTOM,
            _NULL if custom is None else cbor.encode(custom),
            _K_TENSOR,
            _NULL if tensor is None else cbor.encode(records.tensor_to_map(tensor)),
        )
    )


def seal(rec: LogRecord) -> LogRecord:
    """Set a record's ``encoded`` bytes and ``hash`` (fast path for v2 deltas)."""
    if type(rec) is Delta and rec.scheme is HashScheme.V2:
        enc = encode_delta(rec)
        rec.encoded = enc
        rec.hash = _sha256(enc).hexdigest()
        return rec
    return records.seal(rec)


def recompute_hash(rec: LogRecord) -> str:
    """The hash a record's current fields call for (legacy recipe for legacy deltas)."""
    if isinstance(rec, Delta):
        if rec.scheme is HashScheme.LEGACY:
            return records.legacy_delta_hash(rec)
        return _sha256(encode_delta(rec)).hexdigest()
    return _sha256(records.encode_record(rec)).hexdigest()
