"""File-system primitives of crash-safe writing: locks, atomic replacement, durable appends.

Writers take an exclusive ``fcntl.flock`` on a sidecar ``<file>.lock`` (the data file
itself is replaced by rename, so a lock on it would not survive a rewrite). Locks are
re-entrant within a process. Every whole-file write (a rewrite, an export, a key, a
backup) goes through :func:`atomic_output`: a temporary file in the same directory, renamed
over the target, so a reader or a killed process sees the old file or the whole new one.
A durable write (thermograms, keys, backups; an export when the caller asks with
``durable=True``) also fsyncs the file before the rename and the directory after it, so
after a power cut the path names either the old or the new complete file.
"""

from __future__ import annotations

import _thread  # threading's locks without importing threading (start-up)
import contextlib
import errno
import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import BinaryIO

from thermo_cli.config.limits import DEFAULT_LOCK_TIMEOUT
from thermo_cli.config.remote import refuse_url
from thermo_cli.errors import LockError, RefusedError, ValidationError
from thermo_cli.model.valueclass import FrozenValue

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_held: dict[str, tuple[int, int]] = {}
_held_guard = _thread.allocate_lock()


def lock_path(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path)) + ".lock"


def holds_lock(path: str | os.PathLike[str]) -> bool:
    with _held_guard:
        return lock_path(path) in _held


class LockWait(FrozenValue):
    """How this context waits for another process's lock (see :func:`lock_waiting`)."""

    timeout: float | None
    """Seconds to wait (None: forever, 0: fail at once); used when ``override`` is set."""
    override: bool
    """Whether ``timeout`` replaces the one each call passes (the user chose it)."""
    notice: Callable[[str, float | None], object] | None
    """Called once, ``notice(path, timeout)``, when a lock is busy and waiting begins."""

    __slots__ = ("notice", "override", "timeout")

    def __init__(
        self,
        timeout: float | None,
        override: bool = False,
        notice: Callable[[str, float | None], object] | None = None,
    ) -> None:
        _set = object.__setattr__
        _set(self, "timeout", timeout)
        _set(self, "override", override)
        _set(self, "notice", notice)


_lock_wait: ContextVar[LockWait | None] = ContextVar("thermo_lock_wait", default=None)


@contextlib.contextmanager
def lock_waiting(wait: LockWait) -> Iterator[None]:
    """Every lock wait in this context follows ``wait``: one timeout the user gave for a
    whole command (``--wait``), and a notice so a blocked command can say why it is idle."""
    token = _lock_wait.set(wait)
    try:
        yield
    finally:
        _lock_wait.reset(token)


def _acquire(fd: int, mode: int, timeout: float | None, what: str) -> None:
    policy = _lock_wait.get()
    if policy is not None and policy.override:
        timeout = policy.timeout
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.001
    noticed = False
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
        if deadline is not None and time.monotonic() >= deadline:
            waited = "did not wait: wait=0" if timeout == 0 else f"waited {timeout:g} s"
            raise LockError(f"{what}: another process holds the lock ({waited})")
        if not noticed and policy is not None and policy.notice is not None:
            policy.notice(what, timeout)
            noticed = True
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


@contextlib.contextmanager
def locked(path: str | os.PathLike[str], *, timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive writer lock of ``path`` (re-entrant within this process).

    ``timeout`` seconds to wait for another process (None waits forever, 0 fails at once).
    """
    refuse_url(path)
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
                _drop_lock_file_of_missing(path, lp)
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


def _drop_lock_file_of_missing(path: str | os.PathLike[str], lp: str) -> None:
    """Remove the lock file of a path that does not exist (a create that failed, a repair of
    a file never published) while still holding it, so no ``FILE.lock`` is left beside
    nothing. The lock file of an existing file stays: removing it could let a waiting
    writer and a new one lock two different inodes of the same name. (Creating a new file
    is safe either way: publishing without overwrite refuses a name that appeared.)"""
    if not os.path.lexists(os.fspath(path)):
        with contextlib.suppress(OSError):
            os.unlink(lp)


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
    """fsync the directory holding ``path``, so a rename or link in it survives a crash."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC
    fd = os.open(os.path.dirname(os.path.abspath(path)) or ".", flags)
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot fsync directories
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


# --- atomic writing ------------------------------------------------------------------------

TEMP_SUFFIX = ".thermo-tmp"
"""Every temporary file of :func:`atomic_output` is ``.<name>.<12 hex digits>.thermo-tmp``."""

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | _CLOEXEC
_TEMP_TRIES = 16
_NO_HARD_LINKS = frozenset(
    getattr(errno, n)
    for n in ("EPERM", "ENOTSUP", "EOPNOTSUPP", "EMLINK", "ENOSYS", "EXDEV")
    if hasattr(errno, n)
)
"""``link()`` errors that mean the file system has no hard links here, so the name is
claimed another way; any other error (a full disk) fails the write."""


def write_target(path: str | os.PathLike[str]) -> str:
    """The file a write of ``path`` replaces: ``path`` itself (absolute) or, when ``path`` is
    a symlink, the file it points to, resolved once here, so the link is kept, not replaced."""
    p = os.path.abspath(os.fspath(path))
    return os.path.realpath(p) if os.path.islink(p) else p


def random_tag() -> str:
    """12 random hex digits: ``secrets.token_hex(6)``, read from ``os.urandom`` as it is,
    without importing :mod:`secrets` (random, hmac, base64) into every command's start-up."""
    return os.urandom(6).hex()


def temp_path_for(path: str) -> str:
    """An unpredictable sibling name for a temporary file (a planted file cannot anticipate it)."""
    d, base = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{base}.{random_tag()}{TEMP_SUFFIX}")


def leftover_temp_files(path: str | os.PathLike[str]) -> list[str]:
    """Temporary files an interrupted :func:`atomic_output` to ``path`` left behind (sorted).

    Only the writer holding the lock has one open, so under the lock every such file is
    garbage. They sit beside the file :func:`write_target` names.
    """
    directory, name = os.path.split(write_target(path))
    pattern = re.compile(rf"\.{re.escape(name)}\.[0-9a-f]{{12}}{re.escape(TEMP_SUFFIX)}")
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(os.path.join(directory, n) for n in names if pattern.fullmatch(n))


def _refused(path: str | os.PathLike[str]) -> RefusedError:
    return RefusedError(f"{os.fspath(path)}: already exists (pass overwrite=True to replace it)")


def _final_mode(target: str, mode: int | None) -> int:
    """The caller's mode, else the replaced file's, else what ``open()`` would give a new file."""
    if mode is not None:
        return mode
    try:
        return os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _create_temp(target: str) -> tuple[int, str]:
    """Create a fresh temporary file beside ``target``: exclusive and never through a symlink,
    so nothing planted at a temporary name is ever written or replaced."""
    for _ in range(_TEMP_TRIES):
        tmp = temp_path_for(target)
        try:
            return os.open(tmp, _NEW_FILE, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", target)


def _publish(tmp: str, target: str, overwrite: bool, shown: str | os.PathLike[str]) -> None:
    """Move ``tmp`` to ``target``; without ``overwrite`` a file that appeared meanwhile is kept.

    The no-replace move is a hard link (it fails if the name exists); where the file system
    has no hard links, the name is first claimed with O_EXCL and then replaced.
    """
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target, follow_symlinks=False)
    except FileExistsError:
        raise _refused(shown) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:  # e.g. ENOSPC: a real failure, nothing was created
            raise
        try:
            os.close(os.open(target, _NEW_FILE, 0o600))
        except FileExistsError:
            raise _refused(shown) from None
        try:
            os.replace(tmp, target)
        except BaseException:  # never leave the empty placeholder that claimed the name
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise
        return
    os.unlink(tmp)


class WriteBehind:
    """Flushes a large output to disk in the background while the rest is still produced.

    Only for a durable write: a writer that fsyncs its output at the end
    (:func:`atomic_output` with ``durable=True``) otherwise waits for
    the whole file to reach the disk only after producing it. Told how much it wrote, this
    starts an ``fdatasync`` of what is there on a helper thread every ``every`` bytes (one
    at a time; the call releases the GIL), so the disk works while the caller computes and
    the final fsync waits only for the tail. An error of a background flush is raised by
    :meth:`close`, which the caller must reach before the file is fsynced and renamed.
    """

    def __init__(self, fh: BinaryIO, every: int) -> None:
        import threading  # only writers of large outputs need it (start-up of readers)

        self._fh = fh
        self._every = max(1, every)
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._error: OSError | None = None
        self._new_thread = threading.Thread

    def wrote(self, nbytes: int) -> None:
        """Count ``nbytes`` just written; start a background flush when enough waits."""
        self._pending += nbytes
        if self._pending < self._every or (self._thread is not None and self._thread.is_alive()):
            return
        self._fh.flush()
        self._pending = 0
        self._thread = self._new_thread(target=self._flush, args=(self._fh.fileno(),), daemon=True)
        self._thread.start()

    def _flush(self, fd: int) -> None:
        try:
            os.fdatasync(fd)
        except OSError as exc:
            self._error = exc

    def close(self) -> None:
        """Wait for the background flush; raise its error, if it had one."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str],
    *,
    overwrite: bool,
    mode: int | None = None,
    check: Callable[[str], object] | None = None,
    durable: bool = True,
) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` only complete, or not at all.

    Every file thermo writes whole goes through here. It is written to a new temporary
    file beside the target (``O_EXCL|O_NOFOLLOW``, unpredictable name), given to ``check``
    (which may raise) and moved into place, so a reader or a killed process sees the old
    file or the whole new one. With ``durable`` (the default: thermograms, keys, backups)
    the file is fsynced before the rename and the directory after it, so the same holds
    after a power cut. Files exported from a thermogram pass ``durable=False`` unless the
    user asked for a sync, like ``cp`` and ``np.save``: the fsync of a large output costs
    more than the rest of the export, and the source still holds the data. A symlinked
    ``path`` writes the file it points to. ``mode`` defaults to the replaced file's, else
    ``0o666 & ~umask``.
    Without ``overwrite`` an existing ``path`` is refused (RefusedError), also one that
    appears while writing. On any error the temporary file is removed and ``path`` is
    untouched.
    """
    refuse_url(path)
    target = write_target(path)
    if os.path.isdir(target):
        raise ValidationError(f"{os.fspath(path)}: is a directory")
    if not overwrite and os.path.lexists(os.path.abspath(os.fspath(path))):
        raise _refused(path)
    final_mode = _final_mode(target, mode)
    fd, tmp = _create_temp(target)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
            yield fh
            fh.flush()
            os.fchmod(fh.fileno(), final_mode)
            if durable:
                os.fsync(fh.fileno())
        if check is not None:
            check(tmp)
        _publish(tmp, target, overwrite, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            # "File too large" or "No space left on device" alone does not say which output
            raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc
        raise
    if durable:
        fsync_dir(target)


def refuse_overwriting_source(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """A command's input is only ever read: writing its output over it is refused, even when
    overwriting was asked for (RefusedError). Same path, a link to it, or a symlink alike."""
    s, d = os.fspath(src), os.fspath(dst)
    same = os.path.abspath(s) == os.path.abspath(d)
    if not same and os.path.exists(s) and os.path.exists(d):
        same = os.path.samefile(s, d)
    if same:
        raise RefusedError(
            f"{d}: is the source file itself; the source is never modified (write to a new path)"
        )


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], object],
    *,
    overwrite: bool,
    mode: int | None = None,
) -> None:
    """:func:`atomic_output` for a writer that is a function: ``write(file)`` fills the file."""
    with atomic_output(path, overwrite=overwrite, mode=mode) as f:
        write(f)


def durable_append(fd: int, at: int, body: Sequence[bytes | memoryview], footer: bytes | memoryview) -> None:
    """Append the ``body`` parts then ``footer`` at offset ``at``, truncating anything after
    ``at`` first.

    The body is synced before the footer is written, so a footer on disk always vouches
    for bytes that are on disk too; until the footer is synced the old commit stays the
    last valid one.
    """
    if os.fstat(fd).st_size != at:
        os.ftruncate(fd, at)
    end = at
    try:
        for part in body:
            _pwrite_all(fd, part, end)
            end += len(part)
        os.fdatasync(fd)
        _pwrite_all(fd, footer, end)
        os.fdatasync(fd)
    except BaseException:
        # e.g. the disk is full: take the partial commit back so the file is as it was
        with contextlib.suppress(OSError):
            os.ftruncate(fd, at)
        raise


def _pwrite_all(fd: int, data: bytes | memoryview, off: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, off)
        view = view[n:]
        off += n
