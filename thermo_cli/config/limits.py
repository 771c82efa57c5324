"""Safety caps applied while reading untrusted input, in one place, as a context-scoped setting.

Every length, count and size read from a container, a legacy file or a JSONL delta stream
is compared with these caps (and with the file size) before anything is allocated, so a
hostile or damaged input cannot make a reader allocate gigabytes or loop for minutes. The
defaults are far above what the writers produce.

There is one frozen :class:`Limits` value in force at a time: :func:`current_limits`.
A caller with a legitimately bigger input either passes its own ``limits=`` to a reader
(explicit beats context) or runs the work inside ``with use_limits(limits):``, which
sets the value for the current context only (a :mod:`contextvars` variable: other
threads and concurrent tasks keep theirs, and it is restored on exit, even on error).
Nothing mutates a module global. A new thread starts with the defaults, so work handed
to a pool either receives the ``Limits`` explicitly (readers capture theirs when opened)
or runs under :func:`contextvars.copy_context`.

From the command line the same caps are set for one run with ``thermo --limit
NAME=SIZE`` (repeatable) or ``THERMO_LIMITS="NAME=SIZE,..."``. Every cap error names the
cap and the ``limits=Limits(NAME=…)`` that raises it (the CLI shows its flag instead).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator, Mapping

from thermo_cli.errors import LimitExceededError, ValidationError
from thermo_cli.model import MAX_KEY_BYTES
from thermo_cli.model.valueclass import FrozenValue, fields, replace

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

MAX_META_DEPTH = 16
"""Deepest nesting of a delta's custom metadata: the stored record nests it further and
the CBOR codec caps at 32, so this cap can only be lowered."""

_CEILINGS = {"max_key_bytes": MAX_KEY_BYTES, "max_meta_depth": MAX_META_DEPTH}
"""Caps set by the format itself: a reader may be stricter, never looser."""


class Limits(FrozenValue):
    """Caps on what a reader accepts; each name appears in the error that trips it."""

    max_chunk_bytes: int
    """Uncompressed size of one layer chunk (directory or data). The format's own bound."""
    max_block_bytes: int
    """Uncompressed size of an index or log-table block."""
    max_meta_bytes: int
    """Uncompressed size of the meta block, checked before decompressing. Every reader
    decodes meta on open, so it gets a cap of its own: the largest state kept there, a
    spiking network of 1000 neurons x 4096 float32 dims, is 16 MB, 22 MB as base64."""
    max_cbor_items: int
    """CBOR items (heads, map keys included) in one decoded block, trailer, chunk or
    record, counted before decoding: each costs 50-100 bytes once built, whatever its
    encoded size (an empty map is one byte), so this bounds a decode at about 100 MB."""
    max_trailer_bytes: int
    """Size of one trailer."""
    max_record_bytes: int
    """Size of one log record."""
    max_segment_bytes: int
    """Size of one log segment (records are grouped in segments of about 1 MiB)."""
    max_value_bytes: int
    """Size of one entry value assembled from data chunks."""
    max_entries_per_chunk: int
    """Entries listed by one directory chunk."""
    max_chunks: int
    """Chunk references in one layer index (directory or one data stream)."""
    max_segments: int
    """Log segments listed by one trailer or log table."""
    max_streams: int
    """Data streams of one layer."""
    max_trailer_chain: int
    """Trailers followed backwards while gathering the log."""
    max_scan_candidates: int
    """End-magic occurrences examined while searching backwards past a torn tail."""
    max_tail_scan_bytes: int
    """Bytes searched backwards from the end of a file for the last valid commit: a torn
    append is at most one append long, and the search reads every byte it passes."""
    max_legacy_bytes: int
    """Size of a legacy (Rust crate) JSON save file, which is parsed whole."""
    max_json_containers: int
    """Objects and arrays in one legacy JSON file or one JSONL line, counted on the bytes
    before parsing: ``{}`` is 2 bytes of text and a 64-byte dict once parsed."""
    max_line_bytes: int
    """Longest JSONL line (``--max-line-bytes``): raise it for huge tensors."""
    max_key_bytes: int
    """Longest key a JSONL stream may carry, in UTF-8 bytes (lower only: the format's cap)."""
    max_meta_depth: int
    """Deepest nesting of a delta's custom metadata (lower only)."""
    max_tensor_dims: int
    """Dimensions of one tensor given in a delta."""

    __slots__ = (
        "max_block_bytes",
        "max_cbor_items",
        "max_chunk_bytes",
        "max_chunks",
        "max_entries_per_chunk",
        "max_json_containers",
        "max_key_bytes",
        "max_legacy_bytes",
        "max_line_bytes",
        "max_meta_bytes",
        "max_meta_depth",
        "max_record_bytes",
        "max_scan_candidates",
        "max_segment_bytes",
        "max_segments",
        "max_streams",
        "max_tail_scan_bytes",
        "max_tensor_dims",
        "max_trailer_bytes",
        "max_trailer_chain",
        "max_value_bytes",
    )

    def __init__(
        self,
        max_chunk_bytes: int = 4 * MiB,
        max_block_bytes: int = 256 * MiB,
        max_meta_bytes: int = 64 * MiB,
        max_cbor_items: int = 1_000_000,
        max_trailer_bytes: int = 16 * MiB,
        max_record_bytes: int = 256 * MiB,
        max_segment_bytes: int = 256 * MiB + 4 * MiB,
        max_value_bytes: int = 4 * GiB,
        max_entries_per_chunk: int = 1_000_000,
        max_chunks: int = 10_000_000,
        max_segments: int = 10_000_000,
        max_streams: int = 64,
        max_trailer_chain: int = 100_000_000,
        max_scan_candidates: int = 100_000,
        max_tail_scan_bytes: int = 1 * GiB,
        max_legacy_bytes: int = 2 * GiB,
        max_json_containers: int = 4_000_000,
        max_line_bytes: int = 64 * MiB,
        max_key_bytes: int = MAX_KEY_BYTES,
        max_meta_depth: int = MAX_META_DEPTH,
        max_tensor_dims: int = 32,
    ) -> None:
        _set = object.__setattr__
        _set(self, "max_chunk_bytes", max_chunk_bytes)
        _set(self, "max_block_bytes", max_block_bytes)
        _set(self, "max_meta_bytes", max_meta_bytes)
        _set(self, "max_cbor_items", max_cbor_items)
        _set(self, "max_trailer_bytes", max_trailer_bytes)
        _set(self, "max_record_bytes", max_record_bytes)
        _set(self, "max_segment_bytes", max_segment_bytes)
        _set(self, "max_value_bytes", max_value_bytes)
        _set(self, "max_entries_per_chunk", max_entries_per_chunk)
        _set(self, "max_chunks", max_chunks)
        _set(self, "max_segments", max_segments)
        _set(self, "max_streams", max_streams)
        _set(self, "max_trailer_chain", max_trailer_chain)
        _set(self, "max_scan_candidates", max_scan_candidates)
        _set(self, "max_tail_scan_bytes", max_tail_scan_bytes)
        _set(self, "max_legacy_bytes", max_legacy_bytes)
        _set(self, "max_json_containers", max_json_containers)
        _set(self, "max_line_bytes", max_line_bytes)
        _set(self, "max_key_bytes", max_key_bytes)
        _set(self, "max_meta_depth", max_meta_depth)
        _set(self, "max_tensor_dims", max_tensor_dims)
        self.__post_init__()

    def __post_init__(self) -> None:
        for name in self.names():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name}: must be at least 1")
        for name, ceiling in _CEILINGS.items():
            if getattr(self, name) > ceiling:
                raise ValidationError(f"{name}: must be within 1..{ceiling}")

    def replace(self, **caps: int) -> Limits:
        """A copy with ``caps`` changed (the value is frozen; it is never changed in place)."""
        return replace(self, **caps)

    with_ = replace

    @classmethod
    def names(cls) -> list[str]:
        return list(fields(cls))


DEFAULT_LIMITS = Limits()
"""The built-in defaults: what :func:`current_limits` returns outside any :func:`use_limits`."""

_CURRENT: contextvars.ContextVar[Limits] = contextvars.ContextVar("thermo_limits", default=DEFAULT_LIMITS)

LIMITS_ENV = "THERMO_LIMITS"

DEFAULT_LOCK_TIMEOUT = 120.0
"""Seconds a writer waits for another writer before giving up with LockError: the bound on
waiting kept beside the caps, so that :mod:`thermo_cli.store`'s signatures can name it without
loading the locking code (:mod:`thermo_cli.container.fileops`), which a read rarely needs."""


def current_limits() -> Limits:
    """The caps in force in this context: the innermost :func:`use_limits`, else the defaults."""
    return _CURRENT.get()


@contextlib.contextmanager
def use_limits(limits: Limits) -> Iterator[Limits]:
    """Make ``limits`` the current caps for the block (this context only), then restore."""
    if not isinstance(limits, Limits):
        raise ValidationError(f"limits: expected a Limits, got {type(limits).__name__}")
    token = _CURRENT.set(limits)
    try:
        yield limits
    finally:
        _CURRENT.reset(token)


def cap_names() -> list[str]:
    """Every cap ``--limit`` accepts, container caps first."""
    return Limits.names()


def process_cap(name: str) -> int:
    """The current value of a cap (after any ``--limit``); kept for callers by name."""
    return int(getattr(current_limits(), name))


def raise_hint(name: str) -> str:
    """How to raise cap ``name``, for error messages."""
    return f"raise it with limits=Limits({name}=…) if the input is trusted"


def check_cap(value: int, cap: int, name: str, what: str) -> None:
    """Raise LimitExceededError naming the cap when ``value`` exceeds it."""
    if value > cap:
        raise LimitExceededError(f"{what}: {value} exceeds the cap {name}={cap} ({raise_hint(name)})")


_SIZE = r"^\s*([0-9][0-9_]*)\s*(?:([kmgt])(?:i?b)?|b)?\s*$"
"""Matched through ``re``'s cache (compiled on first use, not at every start)."""
_UNITS = {"k": KiB, "m": MiB, "g": GiB, "t": 1024 * GiB}


def format_size(n: float) -> str:
    """Sizes for people, the inverse spelling of :func:`parse_size`: 1536 → '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def parse_size(text: str) -> int:
    """``4096``, ``64K``, ``8M``, ``2G``, ``1TiB`` → bytes (binary units); ValueError otherwise."""
    m = re.match(_SIZE, text, re.IGNORECASE)
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
    limits_with(out, DEFAULT_LIMITS)  # a cap the format fixes (max_key_bytes) is refused here
    return out


def limits_with(changes: Mapping[str, int], base: Limits | None = None) -> Limits:
    """``base`` (default: the current caps) with ``changes``; ValueError naming a bad cap."""
    known = set(cap_names())
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown cap(s): {', '.join(unknown)}")
    try:
        return (base or current_limits()).replace(**{k: int(v) for k, v in changes.items()})
    except ValidationError as exc:
        raise ValueError(str(exc)) from None


@contextlib.contextmanager
def process_limits(changes: Mapping[str, int]) -> Iterator[Limits]:
    """The current caps with ``changes`` for the length of the block (see :func:`use_limits`)."""
    with use_limits(limits_with(changes)) as limits:
        yield limits
