"""File-system primitives of crash-safe writing: locks, atomic replacement, durable appends.

Writers take an exclusive ``fcntl.flock`` on a sidecar ``<file>.lock`` (the data file
itself is replaced by rename, so a lock on it would not survive a rewrite). Locks are
re-entrant within a process. A rewrite goes to a temporary file in the same directory,
which is fsynced, renamed over the target and followed by an fsync of the directory, so
after a crash the path names either the old or the new complete file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from thermo_cli.errors import LockError, RefusedError

_held: dict[str, tuple[int, int]] = {}
_held_guard = threading.Lock()

DEFAULT_LOCK_TIMEOUT = 120.0
"""Seconds a writer waits for another writer before giving up with LockError."""


def lock_path(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path)) + ".lock"


def holds_lock(path: str | os.PathLike[str]) -> bool:
    with _held_guard:
        return lock_path(path) in _held


def _acquire(fd: int, mode: int, timeout: float | None, what: str) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
        if deadline is not None and time.monotonic() >= deadline:
            raise LockError(f"{what}: another process holds the lock (waited {timeout:g} s)")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], *, timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive writer lock of ``path`` (re-entrant within this process).

    ``timeout`` seconds to wait for another process (None waits forever, 0 fails at once).
    """
    lp = lock_path(path)
    with _held_guard:
        if lp in _held:
            fd, depth = _held[lp]
            _held[lp] = (fd, depth + 1)
            nested = True
        else:
            nested = False
    if not nested:
        fd = os.open(lp, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            _acquire(fd, fcntl.LOCK_EX, timeout, os.fspath(path))
        except BaseException:
            os.close(fd)
            raise
        with _held_guard:
            _held[lp] = (fd, 1)
    try:
        yield
    finally:
        with _held_guard:
            fd, depth = _held[lp]
            if depth > 1:
                _held[lp] = (fd, depth - 1)
            else:
                del _held[lp]
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


def wait_for_writer(path: str | os.PathLike[str], timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> bool:
    """If another process holds the writer lock, wait until it is released.

    Returns True if a writer was active (so the file may have changed). Readers never
    hold the lock: this only lets them tell a commit in progress from a torn tail.
    """
    if holds_lock(path):
        return False
    lp = lock_path(path)
    try:
        fd = os.open(lp, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
        _acquire(fd, fcntl.LOCK_SH, timeout, os.fspath(path))
        return True
    finally:
        os.close(fd)


def fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot fsync directories
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def temp_path_for(path: str) -> str:
    d, base = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{base}.{secrets.token_hex(6)}.thermo-tmp")


def atomic_write(
    path: str, write: Callable[[BinaryIO], None], *, overwrite: bool, mode: int | None = None
) -> None:
    """Write a new file through ``write`` and move it to ``path`` in one step.

    Without ``overwrite`` an existing ``path`` is never replaced (hard link, which fails if
    the name exists). On any error the temporary file is removed and ``path`` is untouched.
    """
    path = os.path.abspath(path)
    if mode is None:
        try:
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise RefusedError(f"{path}: already exists (pass overwrite to replace it)") from None
            os.unlink(tmp)
        fsync_dir(path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def durable_append(fd: int, at: int, body: bytes, footer: bytes) -> None:
    """Append ``body`` then ``footer`` at offset ``at``, truncating anything after ``at`` first.

    The body is synced before the footer is written, so a footer on disk always vouches
    for bytes that are on disk too; until the footer is synced the old commit stays the
    last valid one.
    """
    if os.fstat(fd).st_size != at:
        os.ftruncate(fd, at)
    try:
        _pwrite_all(fd, body, at)
        os.fdatasync(fd)
        _pwrite_all(fd, footer, at + len(body))
        os.fdatasync(fd)
    except BaseException:
        # e.g. the disk is full: take the partial commit back so the file is as it was
        with contextlib.suppress(OSError):
            os.ftruncate(fd, at)
        raise


def _pwrite_all(fd: int, data: bytes, off: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, off)
        view = view[n:]
        off += n
