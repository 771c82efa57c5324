"""Structural pre-scan of CBOR: count the items of an encoded value without building it.

Why it exists: a few kilobytes of zstd can expand to megabytes of ``0xa0`` bytes, each
one an empty map that cbor2 turns into a 64-byte dict; decoding 2 million of them took
seconds and hundreds of megabytes before any check could look at the result, and 30
million crashed the C decoder. cbor2 cannot count items while it decodes, so
:func:`scan` walks the heads first — reading each length, skipping string payloads by
that length, allocating nothing per item — and refuses at the first item over the cap.
Its cost is a few hundred nanoseconds per item and independent of string sizes, so a
block that is mostly byte strings (tensors, packed columns) scans in microseconds.

A value of ``n`` bytes holds at most ``n`` items (every item has a head of at least one
byte), so :func:`needs_scan` lets callers skip the walk for anything not longer than the
cap: the common small block or record pays one length comparison.

It refuses, consistently with spec §4: indefinite lengths (and the ``break`` byte), the
reserved additional-information values 28–30, tags other than the bignums 2 and 3
(and those only where the caller allows them), and nesting deeper than ``max_depth``,
counted as cbor2 counts it (a container with children or a tag is one level).
"""

from __future__ import annotations

import re

from thermo_cli.config.limits import raise_hint
from thermo_cli.errors import CorruptError, LimitExceededError

ITEMS_CAP = "max_cbor_items"
_BIGNUM_TAGS = (2, 3)
_ARG_BYTES = {24: 1, 25: 2, 26: 4, 27: 8}
_FLAT_HEADS = bytes([*range(0x00, 0x18), *range(0x20, 0x38), 0x40, 0x60, 0x80, 0xA0, *range(0xE0, 0xF8)])
"""Heads that are a whole item in one byte: small ints, empty strings and containers, simple values."""
_IS_FLAT = [b in _FLAT_HEADS for b in range(256)]
_FLAT_RUN = b"[" + re.escape(_FLAT_HEADS) + b"]+"
"""Compiled by :func:`scan` on first use (then from ``re``'s cache): not at every start."""
_RUN_MIN = 16
"""Swallow a run of one-byte items at C speed once this many items remain: a long array of
small ints or empty maps (the cheapest amplification) then costs one regex match."""


def needs_scan(size: int, max_items: int) -> bool:
    """Whether a value of ``size`` bytes could hold more than ``max_items`` items."""
    return size > max_items


def scan(
    data: bytes | memoryview,
    *,
    max_items: int,
    max_depth: int = 32,
    bignums: bool = True,
    what: str = "CBOR item",
    cap_name: str = ITEMS_CAP,
) -> int:
    """Number of items (heads) of the one CBOR value ``data``; raises before going over a cap.

    ``LimitExceededError`` names ``cap_name`` (items) or the depth cap; ``CorruptError``
    reports malformed structure (truncation, trailing bytes, indefinite lengths, tags).
    Text is not validated as UTF-8 here: the decoder that follows does that.
    """
    buf = bytes(data) if isinstance(data, memoryview) else data
    flat_run = re.compile(_FLAT_RUN).match
    end = len(buf)
    pos = 0
    count = 0
    remaining = 1  # items still to read in the innermost open container
    stack: list[int] = []
    while True:
        if not remaining:
            if not stack:
                break
            remaining = stack.pop()
            continue
        remaining -= 1
        if pos >= end:
            raise CorruptError(f"{what}: invalid CBOR (ends inside an item)")
        count += 1
        if count > max_items:
            raise _too_many(what, max_items, cap_name)
        ib = buf[pos]
        if remaining >= _RUN_MIN and _IS_FLAT[ib]:
            run = min(flat_run(buf, pos).end() - pos, remaining + 1)  # type: ignore[union-attr]
            if count - 1 + run > max_items:
                raise _too_many(what, max_items, cap_name)
            count += run - 1
            remaining -= run - 1
            pos += run
            continue
        pos += 1
        major = ib >> 5
        ai = ib & 31
        if ai < 24:
            arg = ai
        else:
            width = _ARG_BYTES.get(ai)
            if width is None:
                raise _bad_head(what, ib, pos - 1)
            if pos + width > end:
                raise CorruptError(f"{what}: invalid CBOR (ends inside an item)")
            arg = int.from_bytes(buf[pos : pos + width], "big")
            pos += width
        if major == 2 or major == 3:
            pos += arg
            if pos > end:
                raise CorruptError(f"{what}: invalid CBOR (a string runs past the end)")
            continue
        if major < 4 or major == 7:
            continue
        if major == 6:
            if not bignums or arg not in _BIGNUM_TAGS:
                raise CorruptError(f"{what}: CBOR tag {arg} is not allowed (tags are not allowed)")
            children = 1
        else:
            children = arg if major == 4 else 2 * arg
            if children > end - pos:  # every item takes at least one byte
                raise CorruptError(f"{what}: invalid CBOR (a container runs past the end)")
            if not children:
                continue
        if len(stack) >= max_depth:
            raise LimitExceededError(f"{what}: nesting deeper than {max_depth} levels")
        stack.append(remaining)
        remaining = children
    if pos != end:
        raise CorruptError(f"{what}: invalid CBOR ({end - pos} bytes after the item)")
    return count


def _too_many(what: str, cap: int, cap_name: str) -> LimitExceededError:
    return LimitExceededError(
        f"{what}: more than {cap} CBOR items exceeds the cap {cap_name}={cap} ({raise_hint(cap_name)})"
    )


def _bad_head(what: str, ib: int, pos: int) -> CorruptError:
    if ib & 31 == 31:
        return CorruptError(f"{what}: invalid CBOR (indefinite length or break at byte {pos})")
    return CorruptError(f"{what}: invalid CBOR (reserved head 0x{ib:02x} at byte {pos})")
