"""Helper processes for work a second core can take while this one goes on.

CPython runs one thread's Python at a time, and hashing or parsing many small items keeps
the interpreter lock the whole time; a second *process* can do such work in parallel.
:class:`Worker` starts one: a fresh interpreter running a module's ``serve`` loop (not a
fork, so it is safe whatever threads the caller runs and copies nothing of its memory),
its standard streams on ``/dev/null``.

Messages go both ways the same way: the bytes are appended to an anonymous memory file
(``memfd``, with ``pwritev``) and a 9-byte note (kind, the file's length once written) goes
through a pipe. Notes are tiny, so the pipe never fills and a sender never waits for the
other side to catch up. A worker answers what it is sent, in order, and exits when its
input pipe closes or it is told to stop; on any error it exits too, and the caller sees its
pipe close (``get`` returns None) and does the work itself. So a worker may change when
work is done, never what comes out of it.

Linux only (``memfd_create``); :func:`available` says whether a worker can run here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import NoReturn

STOP = 255
"""The message kind that ends a worker's loop once it is answered."""

_NOTE = struct.Struct("<BQ")
_IN_STORE, _IN_NOTES, _OUT_STORE, _OUT_NOTES = 3, 4, 5, 6
"""Where a worker finds its two memory files and two pipes (placed there at spawn)."""

Reply = tuple[int, Sequence[bytes]]
"""A message: its kind and the byte strings that make it, in order."""


def available() -> bool:
    """A worker can run here (posix_spawn, memfd, a known interpreter), and one that dies
    cannot kill the caller: SIGPIPE is ignored (Python's default), so writing to its pipe
    then fails with an error the caller handles."""
    names = ("posix_spawn", "memfd_create", "pwritev", "POSIX_SPAWN_DUP2")
    return (
        all(hasattr(os, name) for name in names)
        and bool(sys.executable)
        and signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    )


class _Outbox:
    """Messages out: appended to a memory file, each announced by a note on a pipe."""

    __slots__ = ("notes", "offset", "store")

    def __init__(self, store: int, notes: int) -> None:
        self.store, self.notes, self.offset = store, notes, 0

    def put(self, kind: int, parts: Sequence[bytes]) -> None:
        size = sum(map(len, parts))
        if size:
            if os.pwritev(self.store, parts, self.offset) != size:
                raise OSError("short write to a worker's memory file")
            self.offset += size
        os.write(self.notes, _NOTE.pack(kind, self.offset))


class _Inbox:
    """Messages in, in the order sent: (kind, bytes), or None once the sender is gone."""

    __slots__ = ("notes", "offset", "pending", "store")

    def __init__(self, store: int, notes: int) -> None:
        self.store, self.notes, self.offset, self.pending = store, notes, 0, b""

    def get(self) -> tuple[int, bytes] | None:
        while len(self.pending) < _NOTE.size:
            more = os.read(self.notes, 1 << 12)
            if not more:
                return None
            self.pending += more
        kind, end = _NOTE.unpack_from(self.pending)
        self.pending = self.pending[_NOTE.size :]
        if end < self.offset:
            raise OSError("a worker's note points before the data already read")
        data = _read_exactly(self.store, end - self.offset, self.offset)
        self.offset = end
        return kind, data


_LOWEST_SOURCE = 10
"""Descriptors handed to a worker are moved at least this high first: the spawn places them
at 3 to 6 one after another, and a source already sitting on a later target (as a pipe
opened while few files are open would) would be overwritten before it is placed."""


def _above_targets(fd: int) -> int:
    import fcntl

    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _LOWEST_SOURCE)
    finally:
        os.close(fd)


def _read_exactly(fd: int, size: int, offset: int) -> bytes:
    chunks = []
    while size:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            raise OSError("a worker's memory file ended early")
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


class Worker:
    """The caller's handle on a helper process (see the module): :meth:`put` messages,
    :meth:`get` answers, :meth:`close` in a ``finally``."""

    __slots__ = ("_inbox", "_outbox", "_pid")

    def __init__(self, pid: int, outbox: _Outbox, inbox: _Inbox) -> None:
        self._pid = pid
        self._outbox = outbox
        self._inbox = inbox

    @classmethod
    def spawn(cls, module: str) -> Worker | None:
        """Start ``python -m module`` as a worker (the module calls :func:`serve`); None when
        :func:`available` says no or the process cannot be started."""
        if not available():
            return None
        mine: list[int] = []  # this side's ends, kept
        theirs: list[int] = []  # the worker's ends, closed here once it has them
        try:
            for _ in range(2):
                mine.append(_above_targets(os.memfd_create("thermo-worker", os.MFD_CLOEXEC)))
            to_r, to_w = map(_above_targets, os.pipe())
            from_r, from_w = map(_above_targets, os.pipe())
            mine += (to_w, from_r)
            theirs += (to_r, from_w)
            placed = ((mine[0], _IN_STORE), (to_r, _IN_NOTES), (mine[1], _OUT_STORE), (from_w, _OUT_NOTES))
            pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-m", module],
                os.environ,
                file_actions=[
                    *((os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)),
                    *((os.POSIX_SPAWN_DUP2, fd, at) for fd, at in placed),
                ],
            )
        except OSError:
            for fd in mine + theirs:
                os.close(fd)
            return None
        for fd in theirs:
            os.close(fd)
        return cls(pid, _Outbox(mine[0], to_w), _Inbox(mine[1], from_r))

    @property
    def running(self) -> bool:
        return self._pid != 0

    def put(self, kind: int, parts: Sequence[bytes]) -> bool:
        """Send a message; False (and the worker is stopped) when it cannot be sent."""
        if not self._pid:
            return False
        try:
            self._outbox.put(kind, parts)
            return True
        except OSError:
            self.close()
            return False

    def get(self) -> tuple[int, bytes] | None:
        """The worker's next answer, waiting for it; None (worker stopped) when it is gone."""
        if not self._pid:
            return None
        try:
            got = self._inbox.get()
        except OSError:
            got = None
        if got is None:
            self.close()
        return got

    def close(self) -> None:
        """Stop the worker (if it still runs) and reap it; idempotent."""
        if not self._pid:
            return
        pid, self._pid = self._pid, 0
        for fd in (self._outbox.notes, self._outbox.store, self._inbox.notes, self._inbox.store):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):  # a worker that finished has exited already
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def serve(answer: Callable[[int, bytes], Iterable[Reply]]) -> NoReturn:
    """A worker's whole life: each message in, ``answer(kind, data)``'s replies out, until
    the caller closes its pipe or sends :data:`STOP` (answered, then the worker exits).

    Any error ends the process (Ctrl-C included): there is no one to report to, and the
    caller, seeing the pipe close, does the work itself.
    """
    code = 1
    try:
        inbox, outbox = _Inbox(_IN_STORE, _IN_NOTES), _Outbox(_OUT_STORE, _OUT_NOTES)
        while (message := inbox.get()) is not None:
            for kind, parts in answer(*message):
                outbox.put(kind, parts)
            if message[0] == STOP:
                code = 0
                break
    except BaseException:  # nothing to report to: the caller sees the pipe close
        code = 1
    finally:
        os._exit(code)
