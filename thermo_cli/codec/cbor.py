"""Deterministic CBOR (RFC 8949 §4.2) encoding and strict, bounded decoding.

Every byte string that is hashed in this project is produced by :func:`encode`. cbor2's
``canonical=True`` orders map keys length-first (§4.2.3), which equals the §4.2.1
bytewise order only while every map key is a text string, so :func:`encode` refuses any
other key type. Decoding refuses indefinite lengths, duplicate keys, tags that decode to
anything but plain data, and nesting deeper than a cap; :func:`decode_canonical` also
re-encodes and compares, so two different byte strings can never claim the same content.
Before cbor2 builds anything, a value long enough to hold more than ``max_cbor_items``
items is counted by :mod:`thermo_cli.codec.cborscan`, so an amplification bomb (millions
of one-byte empty maps) is refused in linear time without allocating.
"""

from __future__ import annotations

import struct
from typing import Any

import cbor2

from thermo_cli.codec.cborscan import needs_scan, scan
from thermo_cli.config.limits import current_limits
from thermo_cli.errors import CorruptError, LimitExceededError

MAX_DEPTH = 32
"""Deepest nesting accepted when decoding (custom metadata included)."""

_PLAIN = (str, bytes, int, float, bool, type(None))


def encode(obj: Any) -> bytes:
    """Deterministic encoding: shortest forms, definite lengths, sorted text-keyed maps."""
    _check_text_keys(obj, 1)  # the outermost item is level 1, as in decode
    return cbor2.dumps(obj, canonical=True)


def decode(
    data: bytes | memoryview,
    *,
    what: str = "CBOR item",
    max_depth: int = MAX_DEPTH,
    max_items: int | None = None,
) -> Any:
    """Strict decode of exactly one item; raises CorruptError/LimitExceededError only.

    ``max_items`` (default: the current ``max_cbor_items``) bounds the number of items;
    it is enforced before decoding, so refusing costs a scan of the heads, not the objects.
    """
    cap = current_limits().max_cbor_items if max_items is None else max_items
    if needs_scan(len(data), cap):
        scan(data, max_items=cap, max_depth=max_depth, what=what)
    try:
        obj = cbor2.loads(
            bytes(data),
            max_depth=max_depth,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            strict_hashable_types=True,
        )
    except cbor2.CBORDecodeError as exc:
        text = str(exc)
        if "depth" in text.lower():
            raise LimitExceededError(f"{what}: nesting deeper than {max_depth} levels") from None
        raise CorruptError(f"{what}: invalid CBOR ({text})") from None
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        raise CorruptError(f"{what}: invalid CBOR ({type(exc).__name__})") from None
    _check_plain(obj, what, 0)
    return obj


def decode_canonical(
    data: bytes | memoryview, *, what: str = "CBOR item", max_items: int | None = None
) -> Any:
    """Decode and insist that the bytes are exactly the deterministic encoding."""
    obj = decode(data, what=what, max_items=max_items)
    if cbor2.dumps(obj, canonical=True) != bytes(data):
        raise CorruptError(f"{what}: not in deterministic CBOR encoding (RFC 8949 §4.2)")
    return obj


def _check_text_keys(obj: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise LimitExceededError(f"CBOR encode: nesting deeper than {MAX_DEPTH} levels")
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"CBOR map keys must be text strings, got {type(k).__name__}")
            if isinstance(v, dict | list | tuple):
                _check_text_keys(v, depth + 1)
    elif isinstance(obj, list | tuple):
        for v in obj:
            if isinstance(v, dict | list | tuple):
                _check_text_keys(v, depth + 1)


def _check_plain(obj: Any, what: str, depth: int) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise CorruptError(f"{what}: map key of type {type(k).__name__} (only text keys allowed)")
            if not isinstance(v, _PLAIN):
                _check_plain(v, what, depth + 1)
    elif isinstance(obj, list):
        for v in obj:
            if not isinstance(v, _PLAIN):
                _check_plain(v, what, depth + 1)
    elif not isinstance(obj, _PLAIN):
        kind = type(obj).__name__
        raise CorruptError(f"{what}: unexpected CBOR item of type {kind} (tags are not allowed)")


# --- canonical items written by hand (hot paths) ----------------------------------------------
#
# Two encodings are hashed millions of times: v2 delta records (engine.chain) and state-digest
# leaves (audit.state). Each is one fixed map layout, so they are written byte by byte with
# these items instead of going through cbor2's canonical mode (~5 µs per map, most of it
# sorting the keys). The tests compare both with :func:`encode` on generated data.

SHORT = 4096
"""Lengths and small unsigned integers below this have their encoded heads precomputed."""


def head(major: int, n: int) -> bytes:
    """The shortest head of major type ``major`` with argument ``n`` (0 <= n < 2**64)."""
    mt = major << 5
    if n < 24:
        return bytes((mt | n,))
    if n < 0x100:
        return bytes((mt | 24, n))
    if n < 0x10000:
        return bytes((mt | 25,)) + n.to_bytes(2, "big")
    if n < 0x100000000:
        return bytes((mt | 26,)) + n.to_bytes(4, "big")
    return bytes((mt | 27,)) + n.to_bytes(8, "big")


def int_item(n: int) -> bytes:
    """An integer in -2**64 .. 2**64-1."""
    return head(0, n) if n >= 0 else head(1, -1 - n)


def text_item(s: str) -> bytes:
    b = s.encode("utf-8")
    return head(3, len(b)) + b


_HEAD_TABLES = {"TEXT_HEADS": 3, "BYTES_HEADS": 2, "UINT_ITEMS": 0}
"""The precomputed heads (``TEXT_HEADS[n]`` is the head of a text of n bytes, n < SHORT),
by major type. They are built on first use (module ``__getattr__``): 12,288 small byte
strings cost more than the whole of ``thermo get``'s own work, and a read never needs them."""


def __getattr__(name: str) -> tuple[bytes, ...]:
    major = _HEAD_TABLES.get(name)
    if major is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    mt = major << 5  # the three head sizes below SHORT, written without a call per entry
    table = (
        *[bytes((mt | n,)) for n in range(24)],
        *[bytes((mt | 24, n)) for n in range(24, 0x100)],
        *[bytes((mt | 25, n >> 8, n & 0xFF)) for n in range(0x100, SHORT)],
    )
    globals()[name] = table
    return table


NULL = b"\xf6"

_F16 = struct.Struct(">e")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_NAN = b"\xf9\x7e\x00"


def float_item(x: float) -> bytes:
    """The shortest of half/single/double that keeps the value, as cbor2's canonical mode writes it."""
    if x != x:
        return _NAN
    try:
        h = _F16.pack(x)
        if _F16.unpack(h)[0] == x:
            return b"\xf9" + h
    except OverflowError:
        pass
    try:
        s = _F32.pack(x)
        if _F32.unpack(s)[0] == x:
            return b"\xfa" + s
    except OverflowError:
        pass
    return b"\xfb" + _F64.pack(x)


FLOAT_ITEMS: dict[float, bytes] = {}
"""Cache of :func:`float_item` by value (strengths repeat a lot); read it with ``.get`` first."""
_FLOAT_ITEMS_MAX = 65536


def float_item_cached(x: float) -> bytes:
    """:func:`float_item`, remembered. Zeros are not cached: 0.0 == -0.0 as dict keys, but
    they encode differently."""
    enc = FLOAT_ITEMS.get(x)
    if enc is None:
        enc = float_item(x)
        if x != 0.0 and x == x and len(FLOAT_ITEMS) < _FLOAT_ITEMS_MAX:
            FLOAT_ITEMS[x] = enc
    return enc
