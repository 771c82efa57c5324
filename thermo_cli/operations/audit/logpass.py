"""Reading a container's log for verification: segment by segment, and in parallel.

The log pass is pure CPU (three SHA-256 calls per record, in Python), so on a machine
with several cores a long log is cut into ranges aligned to :data:`chain.BLOCK`, each
scanned by a worker process that reads its own segments straight from the file; the
parent joins the ranges (:func:`chain.merge_ranges`). Anything unusual in a range — a
damaged segment, a broken link, legacy records — makes the parent rescan the whole log
sequentially, so a failure is always reported exactly as the sequential pass words it.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from thermo_cli.errors import CorruptError, FormatError
from thermo_cli.integrity import logscan as chain

PARALLEL_MIN_RECORDS = 400_000
"""Below this, starting worker processes costs more than it saves."""

_U32 = struct.Struct("<I").unpack_from


def split_frames(data: bytes, count: int, what: str, max_record: int) -> list[bytes]:
    """The records of a segment (``u32 length || bytes`` frames), bounds-checked."""
    out: list[bytes] = []
    append = out.append
    pos, end = 0, len(data)
    for i in range(count):
        if pos + 4 > end:
            raise CorruptError(f"{what}: record {i} of {count} starts past the segment's end")
        (n,) = _U32(data, pos)
        nxt = pos + 4 + n
        if n > max_record or nxt > end:
            raise CorruptError(f"{what}: record {i} ({n} bytes) runs past the segment's end")
        append(data[pos + 4 : nxt])
        pos = nxt
    if pos != end:
        raise CorruptError(f"{what}: {end - pos} bytes follow the last of its {count} records")
    return out


@dataclass(slots=True)
class LogRead:
    """How reading the segments went: digest faults are noted, framing faults stop it."""

    segments: int = 0
    bad_segments: list[str] = field(default_factory=list)
    error: str | None = None
    error_index: int | None = None


def _describe(off: int, first: int, count: int) -> str:
    return f"log segment at offset {off} (records {first}..{first + count - 1})"


def _read_segment(
    pread: Any, seg: tuple[int, int, int, int, bytes], state: LogRead, max_record: int
) -> list[bytes] | None:
    off, length, first, count, sha = seg
    what = _describe(off, first, count)
    try:
        data = pread(off, length)
        if len(data) != length:
            raise CorruptError(f"{what}: the file ends inside it")
        if hashlib.sha256(data).digest() != sha:
            state.bad_segments.append(what)
        recs = split_frames(data, count, what, max_record)
    except (FormatError, OSError) as exc:
        state.error, state.error_index = str(exc), first
        return None
    state.segments += 1
    return recs


def _segment_rows(reader: Any) -> list[tuple[int, int, int, int, bytes]]:
    return [(s.off, s.len, s.first, s.count, s.sha256) for s in reader.segments(0)]


def batches(reader: Any, state: LogRead) -> Iterator[list[bytes]]:
    """The log's records, one list per segment; stops at a framing fault (noted in state)."""
    try:
        rows = _segment_rows(reader)
    except FormatError as exc:
        state.error = str(exc)
        return
    limit = reader.limits.max_record_bytes
    for seg in rows:
        recs = _read_segment(reader.pread, seg, state, limit)
        if recs is None:
            return
        yield recs


# --- parallel ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Job:
    path: str
    rows: list[tuple[int, int, int, int, bytes]]
    start: int
    end: int
    deep: bool
    keep_leaves: bool
    probes: tuple[int, ...]
    max_record: int
    inode: tuple[int, int] | None


def _run_job(job: _Job) -> tuple[chain.RangeScan | None, LogRead]:
    """Worker: read the segments overlapping [start, end) and scan that range."""
    state = LogRead()
    fd = os.open(job.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if job.inode is not None and (st.st_dev, st.st_ino) != job.inode:
            state.error = f"{job.path}: replaced while being verified"
            return None, state

        def pread(off: int, n: int) -> bytes:
            return os.pread(fd, n, off)

        parts = []
        for seg in job.rows:
            recs = _read_segment(pread, seg, state, job.max_record)
            if recs is None:
                return None, state
            first = seg[2]
            parts.append(recs[max(job.start, first) - first : min(job.end, first + seg[3]) - first])
        return chain.scan_range(
            parts, job.start, keep_leaves=job.keep_leaves, deep=job.deep, probes=job.probes
        ), state
    finally:
        os.close(fd)


def _jobs(reader: Any, size: int, ranges: int, deep: bool, keep_leaves: bool, probes: set[int]) -> list[_Job]:
    rows = _segment_rows(reader)
    per = -(-size // ranges)
    per = -(-per // chain.BLOCK) * chain.BLOCK
    jobs = []
    for start in range(0, size, per):
        end = min(size, start + per)
        mine = [r for r in rows if r[2] < end and r[2] + r[3] > start]
        jobs.append(
            _Job(
                reader.path,
                mine,
                start,
                end,
                deep,
                keep_leaves,
                tuple(p for p in probes if start < p <= end or (p == 0 and start == 0)),
                reader.limits.max_record_bytes,
                getattr(reader, "inode", None),
            )
        )
    return jobs


def scan_parallel(
    reader: Any,
    *,
    workers: int,
    deep: bool = False,
    keep_leaves: bool = False,
    probes: set[int] | None = None,
) -> tuple[chain.LogScan, LogRead] | None:
    """The log pass in ``workers`` processes; None when the caller should scan sequentially."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    size = reader.trailer.log_size
    try:
        jobs = _jobs(reader, size, workers * 2, deep, keep_leaves, probes or set())
    except FormatError:
        return None
    ctx = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            results = list(pool.map(_run_job, jobs))
    except (OSError, RuntimeError):  # no fork here, or a worker died: do it in-process
        return None
    parts = []
    for part, st in results:
        if part is None or st.bad_segments or st.error:
            return None
        parts.append(part)
    merged = chain.merge_ranges(parts)
    if merged is None or merged.size != size:
        return None
    return merged, LogRead(segments=len(_segment_rows(reader)))


def scan_file_log(
    reader: Any,
    *,
    deep: bool = False,
    keep_leaves: bool = False,
    probes: set[int] | None = None,
    workers: int | None = None,
) -> tuple[chain.LogScan, LogRead]:
    """The whole log pass: in parallel for long local logs on several cores, else sequentially."""
    n = workers if workers is not None else min(4, os.cpu_count() or 1)
    local = getattr(getattr(reader, "source", None), "local", True)  # workers reopen the file by path
    if n > 1 and local and reader.trailer.log_size >= PARALLEL_MIN_RECORDS:
        done = scan_parallel(reader, workers=n, deep=deep, keep_leaves=keep_leaves, probes=probes)
        if done is not None:
            return done
    state = LogRead()
    scan = chain.scan_log(
        batches=batches(reader, state), keep_leaves=keep_leaves, deep=deep, probes=probes or ()
    )
    return scan, state
