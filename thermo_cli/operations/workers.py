"""Where independent jobs run: this process, local worker processes, or a Dask cluster.

A fleet audit (one job per file) and a sharded import (one job per shard) both need the
same thing: apply one module-level function to many picklable jobs and get the results
back in job order, in-process (``jobs=1``), in ``jobs`` local processes, or on the
workers of an existing Dask ``distributed`` cluster (``dask=ADDRESS``). This is the one
place that knows how; the callers only say what a job is. Settings held in this
process's context (caps, remote options) do not reach other processes: a job carries
what it needs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from thermo_cli.errors import ValidationError

J = TypeVar("J")
R = TypeVar("R")

DEFAULT_DASK_TIMEOUT = 30.0
"""Seconds to reach a Dask scheduler before giving up."""


def run_jobs(
    fn: Callable[..., R],
    jobs_in: Sequence[J],
    *,
    jobs: int = 1,
    dask: str | None = None,
    dask_timeout: float = DEFAULT_DASK_TIMEOUT,
    **kwargs: Any,
) -> tuple[str, Iterator[R]]:
    """(engine label, results of ``fn(job, **kwargs)`` for each job, in job order).

    ``fn`` must be a module-level function (it is sent to other processes by name) and
    ``kwargs`` picklable. The results are produced lazily: the caller consumes each as it
    arrives. The engine label says where the work ran (``in-process``, ``2 processes``,
    ``dask tcp://…``).
    """
    if jobs < 1:
        raise ValidationError(f"jobs: must be at least 1, got {jobs}")
    call = functools.partial(fn, **kwargs) if kwargs else fn
    if dask is not None:
        return f"dask {dask}", _on_dask(fn, jobs_in, kwargs, dask, dask_timeout)
    if jobs == 1 or len(jobs_in) <= 1:
        return "in-process", (call(j) for j in jobs_in)
    return f"{jobs} processes", _on_processes(call, jobs_in, jobs)


def _on_processes(call: Callable[[J], R], jobs_in: Sequence[J], jobs: int) -> Iterator[R]:
    """Local worker processes, forked (no imports to repeat; fsspec resets its event loop
    and filesystem cache in a forked child), or spawned where fork does not exist."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    chunk = max(1, len(jobs_in) // (jobs * 8))
    workers = min(jobs, len(jobs_in))
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method)) as pool:
        yield from pool.map(call, jobs_in, chunksize=chunk)


def run_batch(batch: Sequence[J], fn: Callable[..., R], kwargs: dict[str, Any]) -> list[R]:
    """``fn`` on each job of ``batch``: one cluster task per batch, not per job, so a task's
    scheduling cost (milliseconds) is paid once for many small jobs."""
    return [fn(j, **kwargs) for j in batch]


def _on_dask(
    fn: Callable[..., R], jobs_in: Sequence[J], kwargs: dict[str, Any], address: str, timeout: float
) -> Iterator[R]:
    """The same jobs on a running Dask cluster's workers (results in job order)."""
    try:
        from distributed import Client
    except ImportError:
        raise ValidationError(
            "dask: running on a Dask cluster needs the distributed package (pip install distributed)"
        ) from None
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ValidationError(f"dask: cannot reach the scheduler at {address}: {exc}") from None
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        size = max(1, len(jobs_in) // (workers * 8))
        batches = [list(jobs_in[i : i + size]) for i in range(0, len(jobs_in), size)]
        futures = client.map(run_batch, batches, fn=fn, kwargs=kwargs, pure=False)
        for fut in futures:
            yield from fut.result()
    finally:
        client.close()
