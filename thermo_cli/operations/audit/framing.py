"""The framing pass of ``thermo verify``: every byte of a 2.1 file belongs to one commit.

Loading checks only the last commit's frame (O(1)). Verification walks the whole chain,
oldest first: each commit's header (magic, CRC, length, seq), that the first starts right
after the prefix and each next one where the previous footer ends, that the last ends
where the committed part of the file ends, and each ``body_sha256`` over the bytes between
header and trailer. That last digest is what covers bytes no block references, so a file
followed by a copy of itself, or a zeroed or scrambled gap, fails here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from thermo_cli.container.layout import COMMIT_HEADER_SIZE, FOOTER_SIZE, PREFIX_SIZE, unpack_commit_header
from thermo_cli.errors import IntegrityError

_READ = 1 << 20


def check_framing(reader: Any, trailers: Sequence[Any]) -> int:
    """Bytes covered by the commits ``trailers`` (newest first, as ``Reader.trailers()``).

    Raises IntegrityError naming the first commit (oldest first) that is not framed.
    """
    pos = PREFIX_SIZE
    for t in reversed(trailers):
        end = t.off + t.len + FOOTER_SIZE
        _check_commit(reader, t, pos, end)
        pos = end
    if pos != reader.committed_end:
        raise IntegrityError(
            f"the commits end at {pos}, the committed part of the file at {reader.committed_end}"
        )
    return pos - PREFIX_SIZE


def _check_commit(reader: Any, t: Any, expected_start: int, end: int) -> None:
    what = f"commit {t.seq}"
    if t.start != expected_start:
        raise IntegrityError(
            f"{what} starts at {t.start}, but the bytes before it end at {expected_start}: "
            f"{abs(t.start - expected_start)} bytes belong to no commit or to two"
        )
    header = unpack_commit_header(reader.pread(t.start, COMMIT_HEADER_SIZE))
    if header is None:
        raise IntegrityError(f"{what}: no valid commit header at {t.start}")
    if header.seq != t.seq or t.start + header.length != end:
        raise IntegrityError(
            f"{what}: its header (seq {header.seq}, {header.length} bytes) does not frame "
            f"[{t.start}, {end}) with seq {t.seq}"
        )
    if _digest(reader, t.start + COMMIT_HEADER_SIZE, t.off) != t.body_sha256:
        raise IntegrityError(
            f"{what}: the bytes between its header and its trailer [{t.start + COMMIT_HEADER_SIZE}, "
            f"{t.off}) do not match body_sha256 (changed bytes, possibly ones no block references)"
        )


def _digest(reader: Any, lo: int, hi: int) -> bytes:
    h = hashlib.sha256()
    while lo < hi:
        n = min(_READ, hi - lo)
        h.update(reader.pread(lo, n))
        lo += n
    return h.digest()
