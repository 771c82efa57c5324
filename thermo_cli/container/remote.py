"""Byte sources at URLs, read through fsspec by range requests (the ``remote`` extra).

:class:`RemoteSource` gives the reader what :class:`~thermo_cli.container.source.LocalSource`
gives it, for ``s3://``, ``gs://``, ``http(s)://``, ``memory://`` … objects: each read
asks for exactly its byte range (fsspec's read-ahead caches are off, so a 16-byte footer
read costs 16 bytes, not a 5 MiB block), and with a cache directory the fetched blocks
are kept on local disk by fsspec's ``blockcache`` so a second read fetches nothing.

Every failure becomes one typed error naming the URL: NotFoundError for a missing
object, TruncatedError for an object shorter than its structures say, RemoteError for a
bad URL, a missing protocol library, a server that ignores or refuses range requests
(checked before anything is downloaded in full) or a broken connection.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from thermo_cli.config.remote import RemoteSettings, current_remote, url_protocol
from thermo_cli.errors import FormatError, NotFoundError, RemoteError, ThermoError, TruncatedError

_GLOB_CHARS = frozenset("*?[")

TAIL_WINDOW = 64 * 1024
"""Bytes at the end of an object fetched in one request on the first read there: a
container's footer, trailers, index and meta block are written last, so opening a file
and finding a key usually needs nothing else from the end."""
HEAD_WINDOW = 4 * 1024
"""Bytes at the start fetched together: the prefix and the first commit header."""

_EXTRA_HINT = "install the remote extra: pip install 'thermo-cli[remote]'"


def one_line(exc: BaseException) -> str:
    status = getattr(exc, "status", None)
    text = str(exc).replace("\n", " ").strip() or type(exc).__name__
    if isinstance(status, int):
        return f"HTTP {status} {getattr(exc, 'message', '') or text}".strip()
    return text


def filesystem(url: str, settings: RemoteSettings | None = None) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for ``url`` with the settings' storage options."""
    settings = settings or current_remote()
    proto = url_protocol(url)
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:
        raise RemoteError(f"{url}: reading URLs needs fsspec ({_EXTRA_HINT})") from None
    if proto is None or proto not in fsspec.available_protocols():
        raise RemoteError(f"{url}: unknown URL protocol {proto!r} (s3, gs, http, https, memory …)")
    try:
        fs, path = url_to_fs(url, **dict(settings.storage_options))
    except ImportError as exc:
        raise RemoteError(f"{url}: {one_line(exc)} ({_EXTRA_HINT})") from None
    except (TypeError, ValueError) as exc:
        raise RemoteError(f"{url}: bad URL or storage option: {one_line(exc)}") from None
    return fs, path


def _open(fs: Any, path: str, size: int, version: str, settings: RemoteSettings) -> Any:
    """A file of ``fs`` whose every read is one range request for exactly its bytes (no
    read-ahead); with a cache directory, fsspec's block cache over it instead (blocks kept
    on local disk, so reading the same object again fetches nothing). The cache keeps each
    version of an object (size, ETag or modification time) apart: blocks of an object
    rewritten since are never mixed into the new one."""
    if settings.cache_dir is None:
        return fs.open(path, "rb", block_size=settings.cache_block, cache_type="none", size=size)
    import fsspec

    storage = os.path.join(settings.cache_dir, version)
    cached = fsspec.filesystem("blockcache", fs=fs, cache_storage=storage)
    return cached.open(path, "rb", block_size=settings.cache_block)


class RemoteSource:
    """One remote object, read by range requests (thread-safe: reads take turns)."""

    local = False

    def __init__(self, url: str, settings: RemoteSettings | None = None) -> None:
        settings = settings or current_remote()
        self.name = url
        self.requests = 0
        """Reads that went to the filesystem (each at most one range request; with a block
        cache, reads asked of the cache, which fetches only the blocks it lacks)."""
        self.fetched = 0
        """Bytes those reads returned."""
        fs, path = filesystem(url, settings)
        info = self._info(fs, path)
        size = info.get("size")
        if info.get("type") == "directory":
            raise FormatError(f"{url}: is a directory or prefix, not a thermogram object")
        if not isinstance(size, int):
            raise RemoteError(f"{url}: the server does not give the object's size (range reads need it)")
        if info.get("partial") is False:
            raise RemoteError(f"{url}: the server refuses range requests (Accept-Ranges: none)")
        self.size: int = size
        self.identity: tuple[object, ...] = (url_protocol(url), path, size, version_tag(info))
        version = hashlib.sha256(repr(self.identity).encode("utf-8")).hexdigest()[:24]
        self._lock = threading.Lock()
        self._closed = False
        self._file: Any = None
        if size:
            self._file = self._guard(lambda: _open(fs, path, size, version, settings), 0, 0)
        self._tail_start = max(0, size - TAIL_WINDOW)
        self._windows: dict[int, bytes] = {}

    def _info(self, fs: Any, path: str) -> dict[str, Any]:
        try:
            info = fs.info(path)
        except FileNotFoundError as exc:
            cause = exc.__cause__
            if isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError):
                raise RemoteError(f"{self.name}: cannot connect: {one_line(cause)}") from None
            raise NotFoundError(f"{self.name}: no such object") from None
        except ThermoError:
            raise
        except Exception as exc:
            raise RemoteError(f"{self.name}: {one_line(exc)}") from None
        return dict(info)

    def _guard(self, fn: Any, off: int, n: int) -> Any:
        """Run one filesystem call, turning its failure into a typed error naming the URL."""
        try:
            return fn()
        except FileNotFoundError:
            raise NotFoundError(f"{self.name}: the object disappeared while being read") from None
        except ValueError as exc:
            if "range" in str(exc).lower():
                raise RemoteError(
                    f"{self.name}: the server ignores HTTP range requests (it answered a read of "
                    f"{n} bytes at offset {off} with the whole object); serve the file from a server "
                    "that honours Range, or download it first"
                ) from None
            raise RemoteError(f"{self.name}: {one_line(exc)}") from None
        except ThermoError:
            raise
        except Exception as exc:
            raise RemoteError(f"{self.name}: reading {n} bytes at offset {off}: {one_line(exc)}") from None

    def _read(self, off: int, n: int) -> bytes:
        """``n`` bytes at ``off``: from the head or tail window when they lie in one (fetched
        whole on first use), else by one range request of exactly those bytes."""
        if n and off + n <= self.size:
            if off >= self._tail_start:
                at = off - self._tail_start
                return self._window(self._tail_start, self.size)[at : at + n]
            if off + n <= HEAD_WINDOW:
                return self._window(0, HEAD_WINDOW)[off : off + n]
        return self._fetch(off, n)

    def _window(self, start: int, end: int) -> bytes:
        data = self._windows.get(start)
        if data is None:
            data = self._windows[start] = self._fetch(start, end - start)
        return data

    def _fetch(self, off: int, n: int) -> bytes:
        if n == 0:
            return b""
        if self._closed:
            raise ValueError(f"{self.name}: read from a closed source")
        if self._file is None or off + n > self.size:
            raise TruncatedError(f"{self.name}: expected {n} bytes at offset {off}, the object ends first")

        def fetch() -> bytes:
            self._file.seek(off)
            return bytes(self._file.read(n))

        with self._lock:
            data: bytes = self._guard(fetch, off, n)
            self.requests += 1
            self.fetched += len(data)
        if len(data) != n:
            raise TruncatedError(
                f"{self.name}: expected {n} bytes at offset {off}, got {len(data)} (object cut short)"
            )
        return data

    def pread(self, off: int, n: int) -> bytes:
        return self._read(off, n)

    def pread_into(self, off: int, buf: memoryview) -> memoryview:
        """Read ``len(buf)`` bytes at ``off`` into ``buf``; returns ``buf``."""
        buf[:] = self._read(off, len(buf))
        return buf

    def close(self) -> None:
        self._closed = True
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except Exception:  # closing a read-only remote file releases a connection at most
                return

    @property
    def closed(self) -> bool:
        return self._closed


def version_tag(info: dict[str, Any]) -> object:
    """What changes when the object is rewritten: its ETag, else its modification time."""
    for key in ("ETag", "etag", "Last-Modified", "LastModified", "mtime", "updated", "generation"):
        if info.get(key) is not None:
            return str(info[key])
    return None


def expand_url(pattern: str, settings: RemoteSettings | None = None, *, suffix: str = ".thermo") -> list[str]:
    """The object URLs a fleet argument names, sorted: a glob (``s3://b/models/*.thermo``),
    a prefix ending in ``/`` (every ``suffix`` object below it), or one object (itself)."""
    fs, path = filesystem(pattern, settings)
    try:
        if any(c in _GLOB_CHARS for c in path):
            found = [p for p in fs.glob(path) if not fs.isdir(p)]
        elif pattern.endswith("/"):
            found = [p for p in fs.find(path) if p.endswith(suffix)]
        else:
            return [pattern]
    except FileNotFoundError:
        return []
    except Exception as exc:
        raise RemoteError(f"{pattern}: listing failed: {one_line(exc)}") from None
    proto = url_protocol(pattern)
    return sorted(_as_url(fs, proto, p) for p in found)


def _as_url(fs: Any, proto: str | None, path: str) -> str:
    """A listed path as a URL of the protocol the user wrote (``s3a://`` stays ``s3a://``)."""
    if "://" in path:
        return path
    return f"{proto or fs.protocol[0]}://{path.lstrip('/')}"
