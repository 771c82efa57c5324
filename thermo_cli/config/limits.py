"""Safety caps applied while reading a container (and a legacy file), in one place.

Every length, count and size read from a file is compared with these caps (and with the
file size) before anything is allocated, so a hostile or damaged file cannot make the
reader allocate gigabytes or loop for minutes. The defaults are far above what the
writer produces; a caller with a legitimately bigger file passes a raised
:class:`Limits` (``Limits(max_value_bytes=8 << 30)``) to ``store.load``/``Reader``.

From the command line the same caps are raised for one run with ``thermo --limit
NAME=SIZE`` (repeatable) or ``THERMO_LIMITS="NAME=SIZE,..."``: :func:`process_limits`
changes the process defaults (:data:`DEFAULT_LIMITS`, which every reader not given its
own :class:`Limits` uses, and :data:`OTHER_CAPS` for the legacy reader) and restores them
afterwards. Every cap error names the cap and that flag.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace

from thermo_cli.errors import LimitExceededError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what a reader accepts; each name appears in the error that trips it."""

    max_chunk_bytes: int = 4 * MiB
    """Uncompressed size of one layer chunk (directory or data). The format's own bound."""
    max_block_bytes: int = 256 * MiB
    """Uncompressed size of a meta, index or log-table block."""
    max_trailer_bytes: int = 16 * MiB
    """Size of one trailer."""
    max_record_bytes: int = 256 * MiB
    """Size of one log record."""
    max_segment_bytes: int = 256 * MiB + 4 * MiB
    """Size of one log segment (records are grouped in segments of about 1 MiB)."""
    max_value_bytes: int = 4 * GiB
    """Size of one entry value assembled from data chunks."""
    max_entries_per_chunk: int = 1_000_000
    """Entries listed by one directory chunk."""
    max_chunks: int = 10_000_000
    """Chunk references in one layer index (directory or one data stream)."""
    max_segments: int = 10_000_000
    """Log segments listed by one trailer or log table."""
    max_streams: int = 64
    """Data streams of one layer."""
    max_trailer_chain: int = 100_000_000
    """Trailers followed backwards while gathering the log."""
    max_scan_candidates: int = 100_000
    """End-magic occurrences examined while searching backwards past a torn tail."""

    def with_(self, **changes: int) -> Limits:
        return replace(self, **changes)

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


DEFAULT_LIMITS = Limits()
"""The process defaults: what every reader uses unless it is given its own Limits.
Changed only through :func:`process_limits` (for one CLI run), never by assignment."""

OTHER_CAPS: dict[str, int] = {"max_legacy_bytes": 2 * GiB}
"""Caps of other readers that ``--limit`` raises too: the size of a legacy (Rust crate)
JSON save file, which is parsed whole. JSONL streams have their own per-command
``--max-line-bytes``; the 4 KiB key cap is the format's and cannot be raised."""

_other_caps = dict(OTHER_CAPS)

LIMIT_FLAG = "--limit"
LIMITS_ENV = "THERMO_LIMITS"


def cap_names() -> list[str]:
    """Every cap ``--limit`` accepts, container caps first."""
    return Limits.names() + list(OTHER_CAPS)


def process_cap(name: str) -> int:
    """The current process-wide value of a cap (after any ``--limit``)."""
    if name in _other_caps:
        return _other_caps[name]
    return int(getattr(DEFAULT_LIMITS, name))


def raise_hint(name: str) -> str:
    """How to raise cap ``name``, for error messages."""
    return f"raise it with {LIMIT_FLAG} {name}=SIZE if the input is trusted"


def check_cap(value: int, cap: int, name: str, what: str) -> None:
    """Raise LimitExceededError naming the cap when ``value`` exceeds it."""
    if value > cap:
        raise LimitExceededError(f"{what}: {value} exceeds the cap {name}={cap} ({raise_hint(name)})")


_SIZE = re.compile(r"^\s*([0-9][0-9_]*)\s*(?:([kmgt])(?:i?b)?|b)?\s*$", re.IGNORECASE)
_UNITS = {"k": KiB, "m": MiB, "g": GiB, "t": 1024 * GiB}


def parse_size(text: str) -> int:
    """``4096``, ``64K``, ``8M``, ``2G``, ``1TiB`` → bytes (binary units); ValueError otherwise."""
    m = _SIZE.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a size (a whole number, optionally with K, M, G or T)")
    value = int(m.group(1).replace("_", "")) * _UNITS.get((m.group(2) or "").lower(), 1)
    if value < 1:
        raise ValueError(f"{text!r}: a cap must be at least 1")
    return value


def parse_limits(items: list[str] | tuple[str, ...]) -> dict[str, int]:
    """``["max_chunk_bytes=8M", "a=1,b=2"]`` → ``{name: value}``; ValueError naming the problem."""
    known = cap_names()
    out: dict[str, int] = {}
    for item in items:
        for part in (p.strip() for p in item.split(",")):
            if not part:
                continue
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep:
                raise ValueError(f"{part!r}: expected NAME=SIZE, e.g. max_value_bytes=8G")
            if name not in known:
                raise ValueError(f"unknown cap {name!r} (known: {', '.join(known)})")
            out[name] = parse_size(value)
    return out


@contextlib.contextmanager
def process_limits(changes: Mapping[str, int]) -> Iterator[None]:
    """Set process-wide caps for the length of the block, then restore them.

    :data:`DEFAULT_LIMITS` is changed in place (it is one shared, otherwise frozen
    object that readers hold by reference), so every reader opened inside the block
    sees the new caps without each call site passing them along.
    """
    known = set(cap_names())
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown cap(s): {', '.join(unknown)}")
    saved = {name: process_cap(name) for name in changes}
    try:
        _set(changes)
        yield
    finally:
        _set(saved)


def _set(values: Mapping[str, int]) -> None:
    for name, value in values.items():
        if name in _other_caps:
            _other_caps[name] = int(value)
        else:
            object.__setattr__(DEFAULT_LIMITS, name, int(value))
