"""Build hostile containers: rewrite the last commit of a valid file with altered structures.

Random byte flips are almost always caught by a digest, so they never reach the decoders
behind it. :class:`Rebuild` decodes the last commit's trailer, meta and index blocks (and,
on request, a directory chunk or a log record), lets a test change them as Python
objects, and re-signs everything: the changed blocks are appended, and a new trailer and
footer name them with correct digests. The reader then has to reject the *content*.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from collections.abc import Iterator
from typing import Any

import cbor2
import zstandard

from thermo_cli.container.layout import COMMIT_HEADER_SIZE, pack_commit_header, pack_footer
from thermo_cli.container.reader import Reader


def _compress(raw: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=1, write_content_size=True).compress(raw)


def _decompress(stored: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompress(stored)


class Rebuild:
    """The last commit of ``data`` (a valid container), open for changes."""

    def __init__(self, data: bytes) -> None:
        fd, path = tempfile.mkstemp(suffix=".thermo")
        try:
            os.write(fd, data)
            os.close(fd)
            with Reader(path) as r:
                t = r.trailer
                self.trailer: dict[str, Any] = cbor2.loads(r.pread(t.off, t.len))
                self.meta: Any = cbor2.loads(r.read_block(t.meta, "meta"))
                self.index: Any = cbor2.loads(r.read_block(t.index, "index"))
                self.end = t.off
                self.start = t.start  # format 2.1: the commit is re-framed by finish()
        finally:
            os.unlink(path)
        self.original = data
        self.data = bytearray(data[: self.end])
        self.meta_changed = False
        self.index_changed = False

    # --- writing -------------------------------------------------------------------------

    def put(self, stored: bytes) -> int:
        off = len(self.data)
        self.data += stored
        return off

    def block(self, raw: bytes, *, compress: bool = True) -> dict[str, Any]:
        stored = _compress(raw) if compress else raw
        return {
            "off": self.put(stored),
            "len": len(stored),
            "raw": len(raw),
            "codec": "zstd" if compress else "none",
            "sha256": hashlib.sha256(stored).digest(),
        }

    def finish(self, *, trailer_raw: bytes | None = None) -> bytes:
        """The file with the changed blocks and a re-signed trailer and footer."""
        t = self.trailer
        if self.meta_changed:
            t["meta"] = self.block(cbor2.dumps(self.meta, canonical=True))
        if self.index_changed:
            t["index"] = self.block(cbor2.dumps(self.index, canonical=True))
        if self.start is not None:
            t["body_sha256"] = hashlib.sha256(self.data[self.start + COMMIT_HEADER_SIZE :]).digest()
        raw = trailer_raw if trailer_raw is not None else cbor2.dumps(t, canonical=True)
        self.put(raw)
        self.put(pack_footer(len(raw), hashlib.sha256(raw).digest()))
        if self.start is not None:
            seq = t.get("seq")  # a mutated trailer may hold any seq: the header keeps a valid one
            seq = seq if isinstance(seq, int) and 0 <= seq < 1 << 64 else 0
            header = pack_commit_header(len(self.data) - self.start, seq)
            self.data[self.start : self.start + COMMIT_HEADER_SIZE] = header
        return bytes(self.data)

    # --- layer chunks and log records ---------------------------------------------------------

    def dir_rows(self) -> Iterator[tuple[str, int]]:
        """(layer, row) of every directory chunk (the index stores its rows by column)."""
        for layer, li in self.index.get("layers", {}).items():
            table = li.get("dir") if isinstance(li, dict) else None
            if isinstance(table, dict) and isinstance(table.get("first"), list):
                for i in range(len(table["first"])):
                    yield layer, i

    def _u64(self, column: bytes, i: int) -> int:
        return int.from_bytes(column[8 * i : 8 * i + 8], "little")

    def dir_chunk(self, layer: str, i: int) -> Any:
        table = self.index["layers"][layer]["dir"]
        off, n = self._u64(table["off"], i), self._u64(table["len"], i)
        return cbor2.loads(_decompress(self.original[off : off + n]))

    def set_dir_chunk(self, layer: str, i: int, chunk: Any, *, raw: bytes | None = None) -> None:
        body = raw if raw is not None else cbor2.dumps(chunk, canonical=True)
        stored = _compress(body)
        table = self.index["layers"][layer]["dir"]

        def put_u64(name: str, value: int) -> None:
            col = bytearray(table[name])
            col[8 * i : 8 * i + 8] = value.to_bytes(8, "little")
            table[name] = bytes(col)

        put_u64("off", self.put(stored))
        put_u64("len", len(stored))
        put_u64("raw", len(body))
        digests = bytearray(table["sha256"])
        digests[32 * i : 32 * i + 32] = hashlib.sha256(stored).digest()
        table["sha256"] = bytes(digests)
        self.index_changed = True

    def set_data_chunk(self, layer: str, stream: int, i: int, stored: bytes) -> None:
        """Replace the stored bytes of data chunk ``i`` of a stream (raw length unchanged)."""
        chunks = self.index["layers"][layer]["streams"][stream]["chunks"]
        for name, value in (("off", self.put(stored)), ("len", len(stored))):
            col = bytearray(chunks[name])
            col[8 * i : 8 * i + 8] = value.to_bytes(8, "little")
            chunks[name] = bytes(col)
        digests = bytearray(chunks["sha256"])
        digests[32 * i : 32 * i + 32] = hashlib.sha256(stored).digest()
        chunks["sha256"] = bytes(digests)
        self.index_changed = True

    def segment_rows(self) -> list[list[Any]]:
        """Segment references ``[off, len, first, count, sha256]`` of the last commit: its
        own, else those of its newest log table."""
        log = self.trailer["log"]
        if log.get("segments"):
            return log["segments"]
        ref = log.get("table")
        if not isinstance(ref, dict):
            return []
        stored = self.original[ref["off"] : ref["off"] + ref["len"]]
        table = cbor2.loads(_decompress(stored) if ref.get("codec") == "zstd" else stored)
        rows = table.get("segments", []) if isinstance(table, dict) else table
        self._table = table
        return rows

    def records(self, row: list[Any]) -> list[bytes]:
        seg = self.original[row[0] : row[0] + row[1]]
        out, pos = [], 0
        while pos + 4 <= len(seg):
            (n,) = struct.unpack_from("<I", seg, pos)
            out.append(seg[pos + 4 : pos + 4 + n])
            pos += 4 + n
        return out

    def set_records(self, row: list[Any], records: list[bytes]) -> None:
        seg = b"".join(struct.pack("<I", len(r)) + r for r in records)
        row[0], row[1], row[4] = self.put(seg), len(seg), hashlib.sha256(seg).digest()
        if not self.trailer["log"].get("segments") and getattr(self, "_table", None) is not None:
            self.trailer["log"]["table"] = self.block(cbor2.dumps(self._table, canonical=True))


# --- navigating decoded structures -----------------------------------------------------------------


def node_paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path (keys and indices) to a node of a decoded CBOR structure, root excluded."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*prefix, k)
            yield from node_paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield (*prefix, i)
            yield from node_paths(v, (*prefix, i))


def set_path(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for step in path[:-1]:
        obj = obj[step]
    obj[path[-1]] = value


def delete_path(obj: Any, path: tuple[Any, ...]) -> None:
    for step in path[:-1]:
        obj = obj[step]
    del obj[path[-1]]
