"""Running independent blocks of tensor work on a few threads.

numpy releases the GIL inside each ufunc call, so blocks of a large tensor (each ~1 MiB
of work) run truly in parallel on threads. Every block's result depends on that block
alone and callers merge results in block order, so outputs never depend on the thread
count. Reductions use numpy's own loops rather than BLAS, whose thread pool is a poor
guest on a shared machine (:func:`sum_of_products`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")
B = TypeVar("B")

THREADS = max(1, min(4, os.cpu_count() or 1))
"""Worker threads for large tensors; set to 1 for strictly single-threaded runs."""
PARALLEL_MIN = 1 << 21
"""Tensors with fewer elements than this are done on the calling thread."""
FORCE = False
"""Use THREADS workers even when the machine is busy (tests use it to exercise threads)."""


def idle_cores() -> int:
    """Cores not already busy (by the 1-minute load average); at least 1.

    Threads only pay off on idle cores: on a machine already running other work, extra
    threads fight over the GIL hand-offs and run slower than one (measured: 2x slower
    at a load of 3 on 2 cores), so the pool shrinks to what is free.
    """
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return cores
    return max(1, int(cores - load + 0.5))


def run(
    work: Callable[[B], T], blocks: Sequence[B], elements: int, *, row_length: int | None = None
) -> list[T]:
    """``work`` applied to every block, results in block order; threaded for big tensors.

    With ``row_length``, every block runs under :func:`row_broadcasts` of it, set once per
    thread instead of once per block (two numpy calls each): ``work`` must then keep to
    exact element-wise operations (no float reductions: see :func:`row_broadcasts`).
    """
    workers = min(THREADS, len(blocks)) if elements >= PARALLEL_MIN else 1
    if workers > 1 and not FORCE:
        workers = min(workers, idle_cores())
    setting = contextlib.nullcontext() if row_length is None else row_broadcasts(row_length)
    if workers <= 1:
        with setting:
            return [work(b) for b in blocks]
    bufsize = np.getbufsize() if row_length is None else _row_buffer_size(row_length)
    like_caller = functools.partial(_numpy_settings, np.geterr(), bufsize)
    with ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix="thermo-ternary", initializer=like_caller
    ) as pool:
        return list(pool.map(work, blocks))


def _numpy_settings(errors: Mapping[str, object], bufsize: int) -> None:
    """A pool thread starts with numpy's defaults, not its caller's: it takes the caller's
    floating-point error handling (an ``np.errstate`` around :func:`run` holds for every
    block, and no warning escapes from a thread) and buffer size (the row buffer, or the
    caller's own, on which float sums depend in numpy 1.x), for its whole short life (the
    pool ends with the run)."""
    np.seterr(**errors)  # type: ignore[arg-type]
    np.setbufsize(bufsize)


class Scratch(threading.local):
    """Per-thread reusable buffers (fresh large arrays would page-fault on every block)."""

    def get(self, name: str, size: int, dtype: type) -> np.ndarray:
        buf = self.__dict__.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = np.zeros(size, dtype=dtype)
            self.__dict__[name] = buf
        return buf


NUMPY_BUFSIZE = 8192
"""numpy's default ufunc buffer, in elements."""


def row_broadcasts(n_cols: int) -> RowBuffer:
    """Element-wise operations between a block of rows and one value per row (``cut[:, None]``,
    ``scale[:, None]``) run at the speed of an operation with a scalar.

    With rows shorter than numpy's ufunc buffer (8192 elements) numpy buffers the broadcast
    operand across several rows, which made such a comparison or product 2-4x slower than
    the same one against a scalar (measured on 64 x 4096 float32 blocks). A buffer of one
    row length keeps every inner loop one row long, with the per-row value as its scalar.
    The setting is numpy's per-thread one, restored on exit. Use it only around exact
    element-wise operations: a reduction that casts (``sum(dtype=float64)`` of float32)
    sums in buffer-sized pieces, so its rounding would depend on it, and in numpy 1.x so
    does a float32 ``sum(axis=1)`` of float32 rows (numpy 2 sums those whole; the
    lowest-version CI run caught it).
    """
    return RowBuffer(_row_buffer_size(n_cols))


class RowBuffer:
    """:func:`row_broadcasts` as a plain context manager: entered once per block, so it
    costs two ``np.setbufsize`` calls and nothing more (a generator-based one cost twice
    that)."""

    __slots__ = ("_old", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._old = NUMPY_BUFSIZE

    def __enter__(self) -> None:
        self._old = np.setbufsize(self._size)

    def __exit__(self, *exc: object) -> None:
        np.setbufsize(self._old)


def _row_buffer_size(n_cols: int) -> int:
    return min(NUMPY_BUFSIZE, max(16, n_cols // 16 * 16))


def row_sums_unaffected(n_cols: int) -> bool:
    """Whether float sums along rows of ``n_cols`` come out the same under
    :func:`row_broadcasts` of it as outside it, so a run may keep the setting for blocks
    that also sum their rows (``run(..., row_length=)``).

    numpy 1.x sums a row in pieces of the buffer size (numpy 2 sums it whole): the sums are
    the same when the setting changes nothing, or when the row fits in both buffers (a
    length that is a multiple of 16, up to the current size: 384, 768, 4096 …).
    """
    size = _row_buffer_size(n_cols)
    current = np.getbufsize()
    return size == current or (size == n_cols and n_cols <= current)


def sum_of_products(x: np.ndarray, y: np.ndarray) -> float:
    """``sum(x * y)`` of two 1-D arrays by numpy's own single-threaded loop, not BLAS.

    ``np.dot`` hands even a 256 Ki-element float64 chunk to a multi-threaded BLAS
    (OpenBLAS threads dot products from ~10k elements); on a busy machine its threads
    wait for cores and one call becomes 8-40x slower than this loop, which runs at
    memory speed on the calling thread. Accumulates in the arrays' dtype, as BLAS does.
    """
    return float(np.einsum("i,i->", x, y))
