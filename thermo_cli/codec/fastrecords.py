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
import math
import struct
from itertools import islice, repeat
from typing import Any

import cbor2

from thermo_cli.codec import cbor, records
from thermo_cli.codec.cborscan import needs_scan, scan
from thermo_cli.config.limits import current_limits
from thermo_cli.model import Delta, DeltaType, HashScheme, LogRecord, Ternary
from thermo_cli.model.valueclass import Value

_sha256 = hashlib.sha256
_UINT64_BE = struct.Struct(">Q")

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
_TEXT_HEADS: tuple[bytes, ...] = ()
_BYTES_HEADS: tuple[bytes, ...] = ()


def _load_heads() -> None:
    """Bind cbor's head tables on first encode (a read that encodes nothing never builds them)."""
    global _TEXT_HEADS, _BYTES_HEADS
    _TEXT_HEADS, _BYTES_HEADS = cbor.TEXT_HEADS, cbor.BYTES_HEADS


# Neighbouring items that are the same in most records, joined once: the common delta (no
# observation count, ternary, custom metadata or tensor) is then 19 pieces, not 27.
_MAP13_K_S = _MAP13 + _K_S
_K_T_DELTA_K_ID = _K_T_DELTA + _K_ID
_K_OP_K_TS = {t: op + _K_TS for t, op in _K_OP.items()}
_K_OBS_NULL_K_SRC = _K_OBS + _NULL + _K_SRC
_K_PREV_32 = _K_PREV + _PREV32
_K_TERN_NULL_K_VALUE = _K_TERN[None] + _K_VALUE
_K_CUSTOM_NULL_K_TENSOR_NULL = _K_CUSTOM + _NULL + _K_TENSOR + _NULL


def encode_delta(d: Delta) -> bytes:
    """Canonical CBOR record bytes of a v2 delta (equal to ``records.encode_record(d)``)."""
    if not _TEXT_HEADS:
        _load_heads()
    if d.observation_count is None and d.ternary is None and d.custom is None and d.tensor is None:
        return _encode_plain(d)
    return _encode_any(d)


def _encode_plain(d: Delta) -> bytes:
    """:func:`encode_delta` of a delta whose optional fields are all null (the hot path)."""
    key = d.key.encode("utf-8")
    src = d.source.encode("utf-8")
    did = d.id.encode("utf-8")
    value = d.value
    nd, nk, ns, nv = len(did), len(key), len(src), len(value)
    ts = d.timestamp_ns
    prev = d.prev_hash
    return b"".join(
        (
            _MAP13_K_S,
            _FLOAT_ITEMS.get(d.strength) or _strength(d.strength),
            _K_T_DELTA_K_ID,
            _TEXT_HEADS[nd] if nd < _SHORT else _head(3, nd),
            did,
            _K_OP_K_TS[d.delta_type],
            b"\x1b" + ts.to_bytes(8, "big") if ts >= 0x100000000 else _int(ts),
            _K_KEY,
            _TEXT_HEADS[nk] if nk < _SHORT else _head(3, nk),
            key,
            _K_OBS_NULL_K_SRC,
            _TEXT_HEADS[ns] if ns < _SHORT else _head(3, ns),
            src,
            _K_PREV_NULL if prev is None else _K_PREV_32,
            b"" if prev is None else bytes.fromhex(prev),
            _K_TERN_NULL_K_VALUE,
            _BYTES_HEADS[nv] if nv < _SHORT else _head(2, nv),
            value,
            _K_CUSTOM_NULL_K_TENSOR_NULL,
        )
    )


class PlainDeltas(Value):
    """A run of plain v2 deltas as columns, validated but not yet linked.

    "Plain" is the shape nearly every streamed delta has: create, update or merge of a
    text key with a byte value, a float32 strength, a source and an id, every optional
    field (observation count, ternary, custom metadata, tensor) null. Such a record is
    :func:`_encode_plain`'s 13-item map, so apart from the predecessor's hash it is a
    fixed sequence of items, most of them the same in every record of a stream (the
    strength's, the op's, the source's, the length heads). :func:`plain_deltas` encodes
    each distinct one once and joins each record's items before the predecessor's hash
    (``heads``) and after it (``tails``) column-wide, in C; :func:`seal_plain` then joins
    four pieces per record and hashes it: no CBOR item is built per delta and no Delta
    object is needed until the engine keeps the records.
    """

    ops: list[DeltaType]
    keys: list[str]
    key_sizes: list[int]
    """UTF-8 bytes of each key."""
    values: list[bytes]
    strengths: list[float]
    timestamps: list[int]
    sources: list[str]
    ids: list[str]
    heads: list[bytes]
    """Per record, its bytes before the ``prev`` item (see :func:`plain_deltas`)."""
    tails: list[bytes]
    """Per record, its bytes after the ``prev`` item."""

    __slots__ = (
        "heads",
        "ids",
        "key_sizes",
        "keys",
        "ops",
        "sources",
        "strengths",
        "tails",
        "timestamps",
        "values",
    )

    def __init__(
        self,
        ops: list[DeltaType],
        keys: list[str],
        key_sizes: list[int],
        values: list[bytes],
        strengths: list[float],
        timestamps: list[int],
        sources: list[str],
        ids: list[str],
        heads: list[bytes],
        tails: list[bytes],
    ) -> None:
        self.ops = ops
        self.keys = keys
        self.key_sizes = key_sizes
        self.values = values
        self.strengths = strengths
        self.timestamps = timestamps
        self.sources = sources
        self.ids = ids
        self.heads = heads
        self.tails = tails

    def __len__(self) -> int:
        return len(self.keys)

    def drop_pieces(self) -> None:
        """Let go of ``heads`` and ``tails`` once every delta is sealed: the sealed runs
        keep their records' own bytes, and a big apply need not hold both until its commit.
        The batch cannot be sealed again after this."""
        self.heads = []
        self.tails = []


_be8 = _UINT64_BE.pack
"""An unsigned integer's 8 big-endian bytes (the body of a timestamp's 0x1b item)."""


def _column(items: list[Any], encode: Any) -> list[bytes]:
    """``[encode(x) for x in items]``, calling ``encode`` once per distinct item."""
    distinct = set(items)
    if len(distinct) == 1:
        return [encode(items[0])] * len(items)
    return list(map({x: encode(x) for x in distinct}.__getitem__, items))


def plain_deltas(
    ops: list[DeltaType],
    keys: list[str],
    key_bytes: list[bytes],
    values: list[bytes],
    strengths: list[float],
    timestamps: list[int],
    sources: list[str],
    ids: list[str],
) -> PlainDeltas:
    """Validated columns (float32 strengths, ``key_bytes`` the keys' UTF-8) as :class:`PlainDeltas`.

    A record is the join of ``strength+id head``, id, ``op+ts head``, 8 timestamp bytes,
    ``key head``, key, ``source+prev head``, the 32-byte predecessor hash,
    ``value head``, value and a constant end: the same bytes as :func:`encode_delta` of
    the linked Delta (tests/codec/test_fastrecords.py holds the two to equality). Every
    head comes from a small table of the batch's distinct strengths, ops, lengths and
    sources, looked up column by column.
    """
    id_bytes = list(map(str.encode, ids))
    id_sizes = set(map(len, id_bytes))
    if len(id_sizes) == 1 and 0.0 not in strengths:  # new ids; 0.0 and -0.0: one key, two items
        id_head = _head(3, id_sizes.pop())
        pre_id = _column(strengths, lambda s: _MAP13_K_S + _strength(s) + _K_T_DELTA_K_ID + id_head)
    else:
        pre_id = [
            _MAP13_K_S + _strength(s) + _K_T_DELTA_K_ID + _head(3, len(i))
            for s, i in zip(strengths, id_bytes, strict=True)
        ]
    if min(timestamps) >= 0x100000000:  # an 8-byte unsigned item (any real clock)
        pre_ts = _column(ops, lambda op: _K_OP_K_TS[op] + b"\x1b")
        ts_items = list(map(_be8, timestamps))
    else:
        pre_ts = _column(ops, _K_OP_K_TS.__getitem__)
        ts_items = list(map(_int, timestamps))
    key_sizes = list(map(len, key_bytes))
    pre_key = _column(key_sizes, lambda n: _K_KEY + _head(3, n))
    pre_prev = _column(sources, lambda src: _K_OBS_NULL_K_SRC + _text(src))
    pre_value = _column(list(map(len, values)), lambda n: _K_TERN_NULL_K_VALUE + _head(2, n))
    join = b"".join
    heads = list(
        map(join, zip(pre_id, id_bytes, pre_ts, ts_items, pre_key, key_bytes, pre_prev, strict=True))
    )
    tails = list(map(join, zip(pre_value, values, repeat(_K_CUSTOM_NULL_K_TENSOR_NULL))))
    return PlainDeltas(ops, keys, key_sizes, values, strengths, timestamps, sources, ids, heads, tails)


class SealedRun(Value):
    """Deltas ``start:stop`` of a :class:`PlainDeltas` batch, sealed after the hash ``prev``.

    The record bytes and SHA-256 digests stay columns until something asks for Delta
    objects (:meth:`deltas`): an apply that only commits writes ``encoded`` and never
    builds the ~1 µs object per delta it would otherwise throw away at exit.
    """

    batch: PlainDeltas
    start: int
    stop: int
    prev: str | None
    encoded: list[bytes]
    digests: list[bytes]

    __slots__ = ("batch", "digests", "encoded", "prev", "start", "stop")

    def __init__(
        self,
        batch: PlainDeltas,
        start: int,
        stop: int,
        prev: str | None,
        encoded: list[bytes],
        digests: list[bytes],
    ) -> None:
        self.batch = batch
        self.start = start
        self.stop = stop
        self.prev = prev
        self.encoded = encoded
        self.digests = digests

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def keys(self) -> list[str]:
        return self.batch.keys[self.start : self.stop]

    @property
    def head(self) -> str:
        """The hash (hex) of the run's last record."""
        return self.digests[-1].hex()

    def hashes(self) -> list[str]:
        return list(map(bytes.hex, self.digests))

    def deltas(self) -> list[Delta]:
        """The run as linked, sealed Delta objects (the same as the general road's)."""
        batch, start, stop = self.batch, self.start, self.stop
        hashes = self.hashes()
        n = stop - start
        none = [None] * n
        return list(
            map(
                Delta,
                batch.ops[start:stop],
                batch.keys[start:stop],
                batch.values[start:stop],
                batch.strengths[start:stop],
                batch.timestamps[start:stop],
                batch.sources[start:stop],
                batch.ids[start:stop],
                none,
                none,
                none,
                none,
                [self.prev, *hashes[:-1]],
                hashes,
                [HashScheme.V2] * n,
                self.encoded,
            )
        )


def seal_plain(batch: PlainDeltas, start: int, stop: int, prev: str | None) -> SealedRun:
    """Link deltas ``start:stop`` (at least one) of ``batch`` into a chain after ``prev`` (hex or None).

    Each record's bytes and hash are the same as :func:`seal` gives the equivalent
    linked Delta objects: one join and one SHA-256 per record.
    """
    if stop <= start:
        raise ValueError("seal_plain: the run must hold at least one delta")
    if len(batch.heads) != len(batch.keys):
        raise ValueError("seal_plain: the batch's pieces were dropped (it was sealed already)")
    encoded: list[bytes] = []
    digests: list[bytes] = []
    keep, keep_digest = encoded.append, digests.append
    sha, join, link = _sha256, b"".join, _K_PREV_32
    rows = zip(batch.heads[start:stop], batch.tails[start:stop], strict=True)
    if prev is None:  # the first record of a log: a null predecessor
        for head, tail in islice(rows, 1):
            rec = join((head, _K_PREV_NULL, tail))
            keep(rec)
            keep_digest(sha(rec).digest())
    digest = digests[-1] if digests else bytes.fromhex(prev or "")
    for head, tail in rows:
        rec = join((head, link, digest, tail))
        digest = sha(rec).digest()
        keep(rec)
        keep_digest(digest)
    return SealedRun(batch, start, stop, prev, encoded, digests)


def _encode_any(d: Delta) -> bytes:
    """:func:`encode_delta` of any v2 delta, field by field."""
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


# --- decoding stored records -------------------------------------------------------------------

_DELTA_KEYS = frozenset(
    ("s", "t", "id", "op", "ts", "key", "obs", "src", "prev", "tern", "value", "custom", "tensor")
)
_OPS = {t.label: t for t in DeltaType}
_TERNARY = {-1: Ternary.NEG, 0: Ternary.ZERO, 1: Ternary.POS}


def decode_log_record(data: bytes, index: int, max_items: int | None = None) -> LogRecord:
    """One stored record, decoded as strictly as :func:`thermo_cli.codec.records.decode_record`.

    Loading a file decodes every uncommitted record, and ``thermo apply`` loads on every
    run, so the common record — a v2 delta without custom metadata or tensor spec — takes
    a fast path: a plain ``cbor2.loads``, the fields type-checked while the Delta is built,
    then the engine's canonical encoder re-encodes it and must give back exactly the
    stored bytes. Equal bytes prove the record is canonical CBOR of exactly these fields
    (what ``decode_canonical`` proves by a slower re-encode through cbor2), so the result
    is the same. Anything else, or anything odd, goes through ``decode_record``, which
    also words the error. A record longer than ``max_items`` (default: the current
    ``max_cbor_items``) bytes is counted first, before either decoder builds anything.
    """
    cap = current_limits().max_cbor_items if max_items is None else max_items
    if needs_scan(len(data), cap):
        scan(data, max_items=cap, what=f"log record {index}")
    try:
        m = cbor2.loads(
            data, max_depth=4, allow_indefinite=False, allow_duplicate_keys=False, strict_hashable_types=True
        )
    except Exception:  # any failure: the strict decoder below says what is wrong
        m = None
    if (
        type(m) is dict
        and m.keys() == _DELTA_KEYS
        and m["t"] == "delta"
        and m["custom"] is None
        and m["tensor"] is None
    ):
        d = _plain_delta(m)
        if d is not None and _encodes_to(d, data):
            d.encoded = data
            d.hash = _sha256(data).hexdigest()
            return d
    return records.decode_record(data, what=f"log record {index}", max_items=cap)


def _encodes_to(d: Delta, data: bytes) -> bool:
    try:
        return encode_delta(d) == data
    except (ValueError, OverflowError, UnicodeEncodeError):
        return False


def _plain_delta(m: dict[str, Any]) -> Delta | None:
    """A Delta from a decoded record map whose fields all have their exact types, else None."""
    key, value, s, ts, src, did, obs, tern, prev = (
        m["key"],
        m["value"],
        m["s"],
        m["ts"],
        m["src"],
        m["id"],
        m["obs"],
        m["tern"],
        m["prev"],
    )
    op = _OPS.get(m["op"]) if type(m["op"]) is str else None
    if (
        op is None
        or type(key) is not str
        or type(value) is not bytes
        or type(s) is not float
        or type(ts) is not int
        or type(src) is not str
        or type(did) is not str
    ):
        return None
    if not (0 <= ts < 1 << 64) or not math.isfinite(s):
        return None
    if obs is not None and (type(obs) is not int or not 0 <= obs < 1 << 64):
        return None
    if tern is not None:
        if type(tern) is not int or tern not in _TERNARY:
            return None
        tern = _TERNARY[tern]
    if prev is not None:
        if type(prev) is not bytes or len(prev) != 32:
            return None
        prev = prev.hex()
    return Delta(
        delta_type=op,
        key=key,
        value=value,
        strength=s,
        timestamp_ns=ts,
        source=src,
        id=did,
        ternary=tern,
        observation_count=obs,
        prev_hash=prev,
    )


# --- chain links without decoding -----------------------------------------------------------

_PREV_KEY = b"\x64prev"
_PREV_32 = _PREV_KEY + b"\x58\x20"


def links_to(recs: list[bytes], expected: list[bytes]) -> list[bool]:
    """Per record: not an event, and its one and only "prev" key holds the expected hash.

    Canonical maps sort keys by length, then bytes: a delta starts with "s", an event
    (which has no "s") with "t" — so two bytes tell an event apart without decoding.
    """
    return [
        r[1:3] != b"at" and r.find(_PREV_32 + h) > 0 and r.count(_PREV_KEY) == 1
        for r, h in zip(recs, expected, strict=True)
    ]
