"""Safety caps applied while reading a container, in one place.

Every length, count and size read from a file is compared with these caps (and with the
file size) before anything is allocated, so a hostile or damaged file cannot make the
reader allocate gigabytes or loop for minutes. The defaults are far above what the
writer produces; a caller with a legitimately bigger file passes a raised
:class:`Limits` (``Limits(max_value_bytes=8 << 30)``) to ``store.load``/``Reader``.
"""

from __future__ import annotations

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


def check_cap(value: int, cap: int, name: str, what: str) -> None:
    """Raise LimitExceededError naming the cap when ``value`` exceeds it."""
    if value > cap:
        raise LimitExceededError(
            f"{what}: {value} exceeds the cap {name}={cap} (raise it with Limits({name}=...) "
            "if the file is trusted)"
        )
