"""Deterministic CBOR (RFC 8949 §4.2) encoding and strict, bounded decoding.

Every byte string that is hashed in this project is produced by :func:`encode`. cbor2's
``canonical=True`` orders map keys length-first (§4.2.3), which equals the §4.2.1
bytewise order only while every map key is a text string, so :func:`encode` refuses any
other key type. Decoding refuses indefinite lengths, duplicate keys, tags that decode to
anything but plain data, and nesting deeper than a cap; :func:`decode_canonical` also
re-encodes and compares, so two different byte strings can never claim the same content.
"""

from __future__ import annotations

from typing import Any

import cbor2

from thermo_cli.errors import CorruptError, LimitExceededError

MAX_DEPTH = 32
"""Deepest nesting accepted when decoding (custom metadata included)."""

_PLAIN = (str, bytes, int, float, bool, type(None))


def encode(obj: Any) -> bytes:
    """Deterministic encoding: shortest forms, definite lengths, sorted text-keyed maps."""
    _check_text_keys(obj, 0)
    return cbor2.dumps(obj, canonical=True)


def decode(data: bytes | memoryview, *, what: str = "CBOR item", max_depth: int = MAX_DEPTH) -> Any:
    """Strict decode of exactly one item; raises CorruptError/LimitExceededError only."""
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


def decode_canonical(data: bytes | memoryview, *, what: str = "CBOR item") -> Any:
    """Decode and insist that the bytes are exactly the deterministic encoding."""
    obj = decode(data, what=what)
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
