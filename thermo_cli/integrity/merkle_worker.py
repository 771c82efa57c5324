"""A log's Merkle range extended by a worker process while the caller goes on sealing.

Committing N new records costs about 2N SHA-256 calls for the log's Merkle tree (a leaf
hash per record, a node per merge). CPython spends ~0.5 µs on each call, so for a large
``thermo apply`` that is over a sixth of the whole run, and two threads cannot share it:
hashlib keeps the interpreter lock for inputs under 2 KiB. :class:`RangeWorker` hands the
records, as they are sealed, to a worker process (:mod:`thermo_cli.codec.worker`) that
hashes them and extends the compact range; the committing process collects the finished
range when it writes the trailer.

The worker only ever computes; the caller decides whether its result is the one it needs
(:meth:`RangeWorker.finish` takes the range the commit starts from and the runs it writes,
and answers None unless they are exactly what the worker was given). Any failure — no
worker on this platform, one that could not start or died — also gives None, and the
caller hashes in-process as it would without a worker. So a worker changes when the
hashing is done, never what is written.

Messages: BEGIN (the starting range: 8-byte size, then its nodes), RECORDS (a u32 count,
that many u32 lengths, then the records joined; the worker hashes them with
:func:`~thermo_cli.integrity.merkle.leaf_hashes_of`, the one leaf rule) and STOP, which the
worker answers with the extended range.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

from thermo_cli.codec.worker import STOP, Reply, Worker, serve
from thermo_cli.integrity.merkle import CompactRange, leaf_hashes_of

_BEGIN, _RECORDS, _RANGE = 0, 1, 2
_COUNT = struct.Struct("<I")


def _range_bytes(rng: CompactRange) -> bytes:
    return rng.size.to_bytes(8, "big") + b"".join(rng.nodes)


def _range_of(data: bytes) -> CompactRange | None:
    """The range :func:`_range_bytes` wrote, or None for bytes that cannot be one."""
    if len(data) < 8 or (len(data) - 8) % 32:
        return None
    try:
        return CompactRange(
            int.from_bytes(data[:8], "big"), [data[i : i + 32] for i in range(8, len(data), 32)]
        )
    except ValueError:  # a node count that is not the size's
        return None


class RangeWorker:
    """A worker process extending a compact range by the leaf hashes of the records fed to it.

    Use: :meth:`start` (None when no worker can run here), :meth:`begin` with the range the
    commit will start from, :meth:`sync` after each batch of sealed runs, :meth:`finish`
    at commit time, and :meth:`close` in a ``finally``.
    """

    __slots__ = ("_begun", "_fed", "_leaves", "_start", "_worker")

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._begun = False
        self._start: CompactRange | None = None
        self._fed: list[object] = []
        self._leaves = 0

    @classmethod
    def start(cls) -> RangeWorker | None:
        """Start the worker; None when this platform cannot (:func:`~thermo_cli.codec.worker.available`)."""
        worker = Worker.spawn(__name__)
        return None if worker is None else cls(worker)

    @property
    def fed(self) -> int:
        """How many runs the worker has been given."""
        return len(self._fed)

    def begin(self, rng: CompactRange) -> None:
        """The range the fed records extend (the committed log's, from its trailer)."""
        if self._begun:
            return
        self._start = rng.copy()
        self._begun = self._worker.put(_BEGIN, [_range_bytes(rng)])

    def sync(self, runs: Sequence[Any], records: Callable[[Any], list[bytes]]) -> None:
        """Feed the runs of ``runs`` not yet fed (``records(run)`` gives a run's record bytes).

        The runs fed so far must still be the first of ``runs`` (a thermogram that turned
        its runs into records, for a consolidation, no longer matches): otherwise the worker
        is stopped, since its range could not be the commit's.
        """
        if not self._begun or not self._worker.running:
            return
        fed = self._fed
        if len(runs) < len(fed) or any(a is not b for a, b in zip(runs, fed, strict=False)):
            self.close()
            return
        for run in runs[len(fed) :]:
            data = records(run)
            lengths = array("I", map(len, data)).tobytes()
            if not self._worker.put(_RECORDS, [_COUNT.pack(len(data)), lengths, b"".join(data)]):
                return
            fed.append(run)
            self._leaves += len(data)

    def finish(self, start: CompactRange, runs: Sequence[Any]) -> CompactRange | None:
        """``start`` extended by the leaf hashes of ``runs``'s records, as the worker
        computed it; None unless ``start`` is the range it began from and ``runs`` are
        exactly the runs it was fed, in order (then the caller hashes them itself).
        The worker is finished either way."""
        try:
            if not self._begun or start != self._start:
                return None
            if len(runs) != len(self._fed) or any(a is not b for a, b in zip(runs, self._fed, strict=True)):
                return None
            if not self._worker.put(STOP, []):
                return None
            answer = self._worker.get()
            got = _range_of(answer[1]) if answer is not None and answer[0] == _RANGE else None
            if got is None or got.size != start.size + self._leaves:
                return None
            return got
        finally:
            self.close()

    def close(self) -> None:
        """Stop the worker (if it still runs) and reap it; idempotent."""
        self._begun = False
        self._worker.close()


class _Extender:
    """The worker's side: the range, extended message by message."""

    def __init__(self) -> None:
        self.rng: CompactRange | None = None

    def __call__(self, kind: int, data: bytes) -> list[Reply]:
        if kind == _BEGIN:
            self.rng = _range_of(data)
            return []
        if self.rng is None:
            raise ValueError("records or a stop before the starting range")
        if kind == _RECORDS:
            self.rng.extend(leaf_hashes_of(_records_of(data)))
            return []
        if kind == STOP:
            return [(_RANGE, [_range_bytes(self.rng)])]
        raise ValueError(f"unknown message kind {kind}")


def _records_of(message: bytes) -> list[bytes]:
    """The records of a RECORDS message."""
    (count,) = _COUNT.unpack_from(message, 0)
    lengths = array("I")
    lengths.frombytes(message[4 : 4 + 4 * count])
    ends = list(accumulate(lengths, initial=4 + 4 * count))
    if ends[-1] != len(message):
        raise ValueError("a RECORDS message whose lengths do not add up")
    return list(map(message.__getitem__, map(slice, ends[:-1], ends[1:])))


if __name__ == "__main__":
    serve(_Extender())
