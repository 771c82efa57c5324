"""Where a reader's bytes come from: a local file, or an object at a URL.

The format lets a reader fetch only the prefix, the footer and trailer, the index and
the chunks of the keys it reads; a :class:`ByteSource` is the one thing the reader needs
for that: positioned reads of exact byte ranges, the size, and an identity. A local file
(:class:`LocalSource`, ``os.pread`` on one descriptor) is the default and imports
nothing more; a URL opens :class:`thermo_cli.container.remote.RemoteSource`, which asks
fsspec for each range (importing fsspec only then).
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol

from thermo_cli.config.remote import RemoteSettings, is_url
from thermo_cli.errors import NotFoundError, TruncatedError


class ByteSource(Protocol):
    """Positioned, thread-safe reads of one immutable-for-its-lifetime byte string."""

    name: str
    """The path or URL, as the user gave it (error messages name it)."""
    size: int
    identity: tuple[object, ...]
    """Equal for two sources of the same stored object (device and inode locally)."""
    local: bool
    """True when ``name`` is a local file other processes can open by its path."""

    def pread(self, off: int, n: int) -> bytes: ...

    def pread_into(self, off: int, buf: memoryview) -> memoryview: ...

    def close(self) -> None: ...

    @property
    def closed(self) -> bool: ...


class LocalSource:
    """A local file read with ``os.pread`` (no seek, so threads share the descriptor)."""

    local = True

    def __init__(self, path: str) -> None:
        self.name = path
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        # Closes the descriptor when the source is collected or, at the latest, at
        # interpreter exit while os is still importable (a __del__ may run after teardown).
        self._closer = weakref.finalize(self, os.close, self._fd)
        try:
            st = os.fstat(self._fd)
        except BaseException:
            self.close()
            raise
        self.identity: tuple[object, ...] = (st.st_dev, st.st_ino)
        self.size = st.st_size

    def pread(self, off: int, n: int) -> bytes:
        data = os.pread(self._fd, n, off)
        if len(data) != n:
            raise TruncatedError(f"{self.name}: expected {n} bytes at offset {off}, file ends first")
        return data

    def pread_into(self, off: int, buf: memoryview) -> memoryview:
        """Read ``len(buf)`` bytes at ``off`` into ``buf`` (no allocation); returns ``buf``."""
        n = os.preadv(self._fd, [buf], off)
        if n != len(buf):
            raise TruncatedError(f"{self.name}: expected {len(buf)} bytes at offset {off}, file ends first")
        return buf

    def close(self) -> None:
        self._closer()
        self._fd = -1

    @property
    def closed(self) -> bool:
        return not self._closer.alive


def open_source(path: str, *, remote: RemoteSettings | None = None) -> ByteSource:
    """A byte source for ``path``: a URL through fsspec, anything else as a local file.

    Raises NotFoundError when there is nothing at ``path``.
    """
    if is_url(path):
        from thermo_cli.container.remote import RemoteSource

        return RemoteSource(path, remote)
    try:
        return LocalSource(path)
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file") from None


def read_head(path: str, n: int, *, remote: RemoteSettings | None = None) -> bytes:
    """Up to the first ``n`` bytes of ``path`` (fewer when it is shorter): for sniffing."""
    src = open_source(path, remote=remote)
    try:
        k = min(n, src.size)
        return src.pread(0, k) if k else b""
    finally:
        src.close()


__all__ = ["ByteSource", "LocalSource", "NotFoundError", "TruncatedError", "open_source", "read_head"]
