"""A log's Merkle range extended on a second core while the caller goes on sealing.

Committing N new records costs about 2N SHA-256 calls for the log's Merkle tree (a leaf
hash per record, a node per merge). CPython spends ~0.5 µs on each call, so for a large
``thermo apply`` that is over a sixth of the whole run, and two threads cannot share it:
hashlib keeps the interpreter lock for inputs under 2 KiB. :class:`RangeWorker` starts one
process (a fresh interpreter running this module, so it is safe whatever threads the caller
runs) that receives the records as they are sealed, hashes them and extends the compact
range there; the committing process collects the finished range when it writes the trailer.

The worker only ever computes; the caller decides whether its result is the one it needs
(:meth:`RangeWorker.finish` takes the range the commit starts from and the runs it writes,
and answers None unless they are exactly what the worker was given). Any failure — no
``posix_spawn`` or ``memfd_create`` on this platform, an interpreter that cannot start
it, a worker that died — also gives None, and the caller hashes in-process as it would
without a worker. So a worker changes when the hashing is done, never what is written.

Transport: the records go into an anonymous memory file (``memfd``) with ``pwrite``, and a
9-byte note per message (kind, end offset) goes through a pipe. The pipe never fills, so
the caller never waits for the worker while it seals; the worker reads each message from
the memory file as its note arrives. Messages: BEGIN (the starting range: 8-byte size, then
its nodes), RECORDS (a u32 count, that many u32 lengths, then each record preceded by the
leaf prefix 0x00, so every leaf's input is one slice) and END, which the worker answers
on a second pipe with the extended range (8-byte size, then its nodes) before it exits.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from itertools import accumulate, pairwise
from typing import Any, NoReturn

from thermo_cli.integrity.merkle import CompactRange

_BEGIN, _RECORDS, _END = 0, 1, 2
_NOTE = struct.Struct("<BQ")
"""A message's note on the pipe: its kind and the memory file's length once it is written."""
_COUNT = struct.Struct("<I")


_STORE_FD, _NOTE_FD, _DONE_FD = 3, 4, 5
"""Where the worker finds its memory file and its two pipes (placed there at spawn)."""


def available() -> bool:
    """This platform can run a worker (posix_spawn, memfd, a known interpreter), and a worker
    that dies cannot kill the caller: SIGPIPE is ignored (Python's default), so writing to
    its pipe then fails with an error the caller handles."""
    names = ("posix_spawn", "memfd_create", "pwritev", "POSIX_SPAWN_DUP2")
    return (
        all(hasattr(os, name) for name in names)
        and bool(sys.executable)
        and signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    )


def _range_bytes(rng: CompactRange) -> bytes:
    return rng.size.to_bytes(8, "big") + b"".join(rng.nodes)


def _range_of(data: bytes) -> CompactRange | None:
    """The range :func:`_range_bytes` wrote, or None for bytes that cannot be one."""
    if len(data) < 8 or (len(data) - 8) % 32:
        return None
    size = int.from_bytes(data[:8], "big")
    nodes = [data[i : i + 32] for i in range(8, len(data), 32)]
    if len(nodes) != size.bit_count():
        return None
    return CompactRange(size, nodes)


class RangeWorker:
    """A forked process extending a compact range by the leaf hashes of the records fed to it.

    Use: :meth:`start` (None when no worker can run here), :meth:`begin` with the range the
    commit will start from, :meth:`sync` after each batch of sealed runs, :meth:`finish`
    at commit time, and :meth:`close` in a ``finally`` (it reaps the process whatever
    happened).
    """

    __slots__ = (
        "_begun",
        "_done_fd",
        "_fed",
        "_leaves",
        "_note_fd",
        "_offset",
        "_pid",
        "_start",
        "_store_fd",
    )

    def __init__(self, pid: int, store_fd: int, note_fd: int, done_fd: int) -> None:
        self._pid = pid
        self._store_fd = store_fd
        self._note_fd = note_fd
        self._done_fd = done_fd
        self._offset = 0
        self._begun = False
        self._start: CompactRange | None = None
        self._fed: list[object] = []
        self._leaves = 0

    @classmethod
    def start(cls) -> RangeWorker | None:
        """Start the worker; None when this platform cannot (see the module).

        Its standard streams are ``/dev/null``: it reads nothing of the caller's input and
        never prints; it only sees its memory file and two pipes (every other descriptor
        of the caller is close-on-exec).
        """
        if not available():
            return None
        fds: list[int] = []
        try:
            store_fd = os.memfd_create("thermo-merkle", os.MFD_CLOEXEC)
            fds.append(store_fd)
            note_r, note_w = os.pipe()
            fds += (note_r, note_w)
            done_r, done_w = os.pipe()
            fds += (done_r, done_w)
            pid = os.posix_spawn(
                sys.executable,
                [sys.executable, "-m", __name__],
                os.environ,
                file_actions=[
                    *((os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)),
                    (os.POSIX_SPAWN_DUP2, store_fd, _STORE_FD),
                    (os.POSIX_SPAWN_DUP2, note_r, _NOTE_FD),
                    (os.POSIX_SPAWN_DUP2, done_w, _DONE_FD),
                ],
            )
        except OSError:
            for fd in fds:
                os.close(fd)
            return None
        os.close(note_r)
        os.close(done_w)
        return cls(pid, store_fd, note_w, done_r)

    @property
    def fed(self) -> int:
        """How many runs the worker has been given."""
        return len(self._fed)

    def begin(self, rng: CompactRange) -> None:
        """The range the fed records extend (the committed log's, from its trailer)."""
        if self._begun or self._pid == 0:
            return
        self._start = rng.copy()
        self._begun = self._send(_BEGIN, [_range_bytes(rng)])

    def sync(self, runs: Sequence[Any], records: Callable[[Any], list[bytes]]) -> None:
        """Feed the runs of ``runs`` not yet fed (``records(run)`` gives a run's record bytes).

        The runs fed so far must still be the first of ``runs`` (a thermogram that turned
        its runs into records, for a consolidation, no longer matches): otherwise the worker
        is stopped, since its range could not be the commit's.
        """
        if not self._begun:
            return
        fed = self._fed
        if len(runs) < len(fed) or any(a is not b for a, b in zip(runs, fed, strict=False)):
            self.close()
            return
        for run in runs[len(fed) :]:
            data = records(run)
            lengths = array("I", map(len, data)).tobytes()
            if not self._send(_RECORDS, [_COUNT.pack(len(data)), lengths, b"\x00", b"\x00".join(data)]):
                return
            fed.append(run)
            self._leaves += len(data)

    def finish(self, start: CompactRange, runs: Sequence[Any]) -> CompactRange | None:
        """``start`` extended by the leaf hashes of ``runs``'s records, as the worker
        computed it; None unless ``start`` is the range it began from and ``runs`` are
        exactly the runs it was fed, in order (then the caller hashes them itself).
        The worker is finished either way."""
        try:
            if not self._begun or self._start is None or not _same_range(start, self._start):
                return None
            if len(runs) != len(self._fed) or any(a is not b for a, b in zip(runs, self._fed, strict=True)):
                return None
            if not self._send(_END, []):
                return None
            got = _range_of(_read_all(self._done_fd))
            if got is None or got.size != start.size + self._leaves:
                return None
            return got
        finally:
            self.close()

    def close(self) -> None:
        """Stop the worker (if it still runs) and reap it; idempotent."""
        if self._pid == 0:
            return
        pid, self._pid, self._begun = self._pid, 0, False
        for fd in (self._note_fd, self._done_fd, self._store_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):  # a finished worker has exited already
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)

    def _send(self, kind: int, parts: list[bytes]) -> bool:
        """Append ``parts`` to the memory file and note them; False (worker stopped) on error."""
        try:
            size = sum(map(len, parts))
            if size:
                written = os.pwritev(self._store_fd, parts, self._offset)
                if written != size:
                    raise OSError("short write to the worker's memory file")
                self._offset += size
            os.write(self._note_fd, _NOTE.pack(kind, self._offset))
            return True
        except OSError:
            self.close()
            return False


def _same_range(a: CompactRange, b: CompactRange) -> bool:
    return a.size == b.size and list(a.nodes) == list(b.nodes)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_exactly(fd: int, size: int, offset: int) -> bytes:
    chunks = []
    while size:
        chunk = os.pread(fd, size, offset)
        if not chunk:
            raise EOFError("the worker's memory file ended early")
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _serve() -> NoReturn:
    """The worker's whole life: extend the range message by message, answer END, exit.

    Exits when the caller closes the pipe, on END, and on any error (Ctrl-C included):
    the caller then computes the range itself.
    """
    code = 1
    try:
        code = _extend_from_messages(_STORE_FD, _NOTE_FD, _DONE_FD)
    except BaseException:  # nothing to report to: the caller sees the pipe close
        code = 1
    finally:
        os._exit(code)


def _extend_from_messages(store_fd: int, note_fd: int, done_fd: int) -> int:
    rng: CompactRange | None = None
    offset = 0
    pending = b""
    while notes := os.read(note_fd, 1 << 12):
        pending += notes
        whole = len(pending) - len(pending) % _NOTE.size
        for at in range(0, whole, _NOTE.size):
            kind, end = _NOTE.unpack_from(pending, at)
            data = _read_exactly(store_fd, end - offset, offset)
            offset = end
            if kind == _BEGIN:
                rng = _range_of(data)
            elif kind == _RECORDS and rng is not None:
                rng.extend(_leaf_hashes(data))
            elif kind == _END and rng is not None:
                answer = memoryview(_range_bytes(rng))
                while answer:
                    answer = answer[os.write(done_fd, answer) :]
                return 0
            else:
                return 1
        pending = pending[whole:]
    return 1  # the caller went away


def _leaf_hashes(message: bytes) -> list[bytes]:
    """The leaf hashes of a RECORDS message: each input is the 0x00 and the record after it."""
    (count,) = _COUNT.unpack_from(message, 0)
    lengths = array("I")
    lengths.frombytes(message[4 : 4 + 4 * count])
    bounds = list(accumulate(map((1).__add__, lengths), initial=4 + 4 * count))
    if bounds[-1] != len(message):
        raise ValueError("a RECORDS message whose lengths do not add up")
    sha = hashlib.sha256
    return [sha(message[a:b]).digest() for a, b in pairwise(bounds)]


if __name__ == "__main__":
    _serve()
