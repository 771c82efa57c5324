"""Fixed-size parts of a container: the 32-byte prefix and the 44-byte footer.

The prefix starts with a PNG-style magic: a high-bit byte (catches 7-bit transfers),
the name, CR LF (catches LF→CRLF and CRLF→LF conversion), Ctrl-Z (stops DOS ``type``) and
LF. Then the major and minor version, a flags byte, four reserved bytes and a random
16-byte file id that every trailer repeats, so a trailer-shaped byte string inside a
value cannot pass for a commit of this file. The footer ends the file after every commit;
it gives the length and SHA-256 of the trailer just before it.

Format 2.1 frames every commit: a fixed 32-byte commit header starts it and names its
length and sequence number, so a reader can tell a commit that is only partly on disk (a
torn append) from a complete one that is damaged, and every byte of the file belongs to
exactly one commit. The header carries a CRC-32 so a flipped length cannot pass for a
longer, incomplete commit.
"""

from __future__ import annotations

import os
import struct
import zlib

from thermo_cli.errors import BadMagicError, TruncatedError, UnsupportedVersionError
from thermo_cli.model.valueclass import FrozenValue

MAGIC = b"\x89THRM\r\n\x1a\n"
MAJOR = 2
MINOR = 1
"""Minor version written now: 1 = framed commits (2.0 files are read, and rewritten on write)."""
FRAMED_MINOR = 1
PREFIX_SIZE = 32
FILE_ID_SIZE = 16
END_MAGIC = b"\x89THRMEND"
FOOTER_SIZE = 4 + 32 + len(END_MAGIC)
_FOOTER = struct.Struct("<I32s8s")
COMMIT_MAGIC = b"\x89THRMCMT"
COMMIT_HEADER_SIZE = 32
_HEADER = struct.Struct("<8sQQI")  # magic, commit length, seq, reserved (zero); then CRC-32

# Damaged forms of the magic, with the reason shown to the user.
_DAMAGE = (
    (b"\x89THRM\n\x1a\n", "CR LF was converted to LF"),
    (b"\x89THRM\r\r\n\x1a\r\n", "LF was converted to CR LF"),
    (b"\x89THRM\r\n\x1a\r\n", "LF was converted to CR LF"),
    (b"\x09THRM\r\n\x1a\n", "the high bit was stripped"),
    (b"\xc2\x89THRM", "the bytes were re-encoded as UTF-8 text"),
    (b"\xef\xbf\xbdTHRM", "the bytes were decoded as text and re-encoded"),
    (b"?THRM", "the bytes were decoded as text and re-encoded"),
)


class Prefix(FrozenValue):
    major: int
    minor: int
    flags: int
    file_id: bytes
    raw: bytes

    __slots__ = ("file_id", "flags", "major", "minor", "raw")

    def __init__(self, major: int, minor: int, flags: int, file_id: bytes, raw: bytes) -> None:
        _set = object.__setattr__
        _set(self, "major", major)
        _set(self, "minor", minor)
        _set(self, "flags", flags)
        _set(self, "file_id", file_id)
        _set(self, "raw", raw)


def new_prefix(file_id: bytes | None = None) -> bytes:
    fid = os.urandom(FILE_ID_SIZE) if file_id is None else file_id
    return MAGIC + bytes((MAJOR, MINOR, 0)) + b"\x00" * 4 + fid


def looks_like_container(head: bytes) -> bool:
    return head[: len(MAGIC)] == MAGIC


def damage_reason(head: bytes) -> str | None:
    """Why ``head`` looks like a damaged container magic, or None if it does not."""
    for form, reason in _DAMAGE:
        if head.startswith(form):
            return reason
    return None


def parse_prefix(head: bytes, *, what: str = "file") -> Prefix:
    """Check magic and version of the first bytes of a file."""
    if head[: len(MAGIC)] != MAGIC:
        reason = damage_reason(head)
        if reason is not None:
            raise BadMagicError(f"{what}: damaged .thermo magic ({reason}; was it transferred in text mode?)")
        if len(head) < len(MAGIC) and MAGIC.startswith(head):
            raise TruncatedError(f"{what}: ends inside the .thermo magic ({len(head)} bytes)")
        raise BadMagicError(f"{what}: not a .thermo container (bad magic)")
    if len(head) < PREFIX_SIZE:
        raise TruncatedError(f"{what}: ends inside the {PREFIX_SIZE}-byte prefix ({len(head)} bytes)")
    major, minor, flags = head[9], head[10], head[11]
    if major != MAJOR:
        raise UnsupportedVersionError(
            f"{what}: .thermo format version {major}.{minor} is not supported "
            f"(this reader handles {MAJOR}.x; upgrade thermo to read it)"
        )
    return Prefix(major, minor, flags, bytes(head[16:32]), bytes(head[:PREFIX_SIZE]))


def pack_footer(trailer_len: int, trailer_sha: bytes) -> bytes:
    return _FOOTER.pack(trailer_len, trailer_sha, END_MAGIC)


def unpack_footer(raw: bytes) -> tuple[int, bytes] | None:
    """(trailer length, trailer SHA-256) of a footer, or None if it does not end in END_MAGIC."""
    if len(raw) != FOOTER_SIZE:
        return None
    length, sha, end = _FOOTER.unpack(raw)
    if end != END_MAGIC:
        return None
    return length, sha


def is_framed(minor: int) -> bool:
    """Whether a file of this minor version frames its commits (format 2.1 and later)."""
    return minor >= FRAMED_MINOR


class CommitHeader(FrozenValue):
    length: int
    """Bytes from the header's first byte to the commit footer's last byte."""
    seq: int

    __slots__ = ("length", "seq")

    def __init__(self, length: int, seq: int) -> None:
        _set = object.__setattr__
        _set(self, "length", length)
        _set(self, "seq", seq)


def pack_commit_header(length: int, seq: int) -> bytes:
    body = _HEADER.pack(COMMIT_MAGIC, length, seq, 0)
    return body + struct.pack("<I", zlib.crc32(body))


def unpack_commit_header(raw: bytes) -> CommitHeader | None:
    """The header in ``raw``, or None unless magic, CRC-32 and the zero reserved field all hold.

    The CRC matters for the torn/damaged decision: without it a flipped bit in the length
    of a complete last commit would make it look incomplete, i.e. torn, and be dropped.
    """
    if len(raw) != COMMIT_HEADER_SIZE:
        return None
    magic, length, seq, reserved = _HEADER.unpack_from(raw)
    (crc,) = struct.unpack_from("<I", raw, _HEADER.size)
    if magic != COMMIT_MAGIC or reserved != 0 or crc != zlib.crc32(raw[: _HEADER.size]):
        return None
    return CommitHeader(length, seq)
