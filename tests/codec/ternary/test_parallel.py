"""The thread runner and the row buffer of :mod:`thermo_cli.codec.ternary.parallel`."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from thermo_cli.codec.ternary import parallel

ROW_LENGTHS = [5, 16, 48, 384, 999, 1000, 1008, 4096, 4100, 8176, 8192, 8200, 20000]


@pytest.mark.parametrize("n_cols", ROW_LENGTHS)
def test_row_sums_are_what_they_are_outside_the_row_buffer_when_it_says_so(n_cols):
    """Where ``row_sums_unaffected`` allows a whole run under the row buffer, float32 row
    sums are bit for bit those computed outside it (numpy 1.x sums rows in buffer-sized
    pieces; the lowest-version CI run checks that side)."""
    rng = np.random.default_rng(n_cols)
    a = np.abs(rng.standard_normal((7, n_cols)).astype(np.float32)) * np.float32(1.37)
    outside = (a.sum(axis=1, dtype=np.float32), np.square(a).sum(axis=1, dtype=np.float32))
    with parallel.row_broadcasts(n_cols):
        inside = (a.sum(axis=1, dtype=np.float32), np.square(a).sum(axis=1, dtype=np.float32))
    if parallel.row_sums_unaffected(n_cols):
        assert all(x.tobytes() == y.tobytes() for x, y in zip(outside, inside, strict=True))
    assert np.getbufsize() == parallel.NUMPY_BUFSIZE


def test_row_lengths_that_fit_the_buffer_keep_the_setting_for_a_run():
    assert parallel.row_sums_unaffected(4096) and parallel.row_sums_unaffected(768)
    assert parallel.row_sums_unaffected(20000)  # the setting is numpy's default: nothing changes
    assert not parallel.row_sums_unaffected(1000)  # buffer 992: a row would be summed in two pieces
    with parallel.row_broadcasts(1024):  # a smaller current buffer: 4096-long rows would be cut
        assert not parallel.row_sums_unaffected(4096)


@pytest.mark.parametrize("row_length", [None, 1000])
def test_pool_threads_take_the_callers_error_state_and_buffer(monkeypatch, row_length):
    monkeypatch.setattr(parallel, "FORCE", True)
    monkeypatch.setattr(parallel, "THREADS", 2)
    seen: list[tuple[str, int]] = []

    def work(block: int) -> int:
        seen.append((np.geterr()["over"], np.getbufsize()))
        return int(np.float32(3e38) * np.float32(block + 10) > 0)  # overflows

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="ignore"):
            np.setbufsize(4096)
            try:
                results = parallel.run(work, list(range(6)), parallel.PARALLEL_MIN, row_length=row_length)
            finally:
                np.setbufsize(parallel.NUMPY_BUFSIZE)
    assert results == [1] * 6
    expected = 4096 if row_length is None else 992
    assert seen and all(s == ("ignore", expected) for s in seen)
