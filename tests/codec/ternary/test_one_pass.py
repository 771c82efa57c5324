"""The fast paths of ternary packing and unpacking against straightforward computations.

``quantize`` packs per-row ``absmean`` in one pass (scales, codes and figures per block of
rows); ``dequantize_chunks`` unpacks into one reused buffer. Both must give exactly the
bytes of the general two-pass route and of a plain numpy computation written from the
definitions, on edge cases as much as on weight-like data.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from thermo_cli.codec.ternary import packing, parallel
from thermo_cli.codec.ternary import quantize as Q
from thermo_cli.codec.ternary.packing import iter_unpacked, pack
from thermo_cli.codec.ternary.quantize import dequantize, dequantize_chunks, quantize
from thermo_cli.errors import ValidationError

from .test_quantize import weight_like


def two_pass(w: np.ndarray, threshold: float | None) -> Q.QuantizedTensor:
    """The general route: a statistics pass over the whole tensor, then a packing pass."""
    rows = Q._as_rows(w, True)
    scales, thresholds, cuts = Q._statistics(rows, "absmean", threshold)
    with np.errstate(over="ignore", invalid="ignore"):
        packed, sums = Q._pack_and_fit(rows, cuts, scales)
    assert sums is not None
    fit = Q._quality_of_fit(sums, scales)
    shape = tuple(w.shape)
    codes = Q.PackedTernary._wrap(packed, w.size)
    return Q.QuantizedTensor(codes, shape, scales, thresholds, True, "absmean", cuts, fit)


def straightforward(w: np.ndarray, threshold: float | None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Packed codes, scales, relative L2 error and cosine, from the definitions in plain numpy.

    scale = mean |w| of the row (float32 sums, at least 1e-5); code = round(clip(w/scale))
    with ties to even, or |w/scale| >= threshold; figures in float64 from ``scale * code``.
    """
    rows = np.ascontiguousarray(w, dtype=np.float32).reshape(w.shape[0], -1)
    sums = np.abs(rows).sum(axis=1, dtype=np.float32).astype(np.float64)  # each row's own float32 sum
    scales = np.maximum(sums / rows.shape[1], 1e-5).astype(np.float32)
    q = rows / scales[:, None]
    if threshold is None:
        values = np.round(np.clip(q, -1, 1))
    else:
        t = np.float32(threshold)
        values = np.where(q >= t, 1, np.where(q <= -t, -1, 0))
    x = rows.astype(np.float64)
    y = values * scales[:, None].astype(np.float64)
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    rel = np.linalg.norm(x - y) / nx if nx else (0.0 if not ny else math.inf)
    cos = float((x * y).sum() / (nx * ny)) if nx and ny else (1.0 if nx == ny else 0.0)
    return pack(values.astype(np.int8)), scales, float(rel), cos


def _cases() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(17)
    wide = (rng.standard_normal((40, 30)) * 0.1).astype(np.float32)
    return [
        ("weight-like", weight_like((64, 96), seed=3)),
        ("all zeros", np.zeros((8, 9), np.float32)),
        ("one row", (rng.standard_normal((1, 11)) * 0.2).astype(np.float32)),
        ("one column", (rng.standard_normal((9, 1)) * 0.2).astype(np.float32)),
        ("rank 3", (rng.standard_normal((4, 3, 7)) * 0.2).astype(np.float32)),
        ("odd rows", (rng.standard_normal((33, 1001)) * 0.02).astype(np.float32)),
        ("non-contiguous", wide[:, ::3]),
        ("transposed", wide.T),
        ("float16", (rng.standard_normal((12, 37)) * 0.1).astype(np.float16)),
        ("float64", rng.standard_normal((12, 37)) * 0.1),
        (
            "zero rows among others",
            np.vstack([np.zeros((3, 5)), rng.standard_normal((2, 5))]).astype(np.float32),
        ),
        ("exactly ternary", (rng.integers(-1, 2, (6, 8)) * 0.25).astype(np.float32)),
    ]


CASES = _cases()


@pytest.mark.parametrize("threshold", [None, 0.3])
@pytest.mark.parametrize(("label", "w"), CASES, ids=[c[0] for c in CASES])
def test_one_pass_equals_two_passes_and_the_definitions(label, w, threshold):
    got = quantize(w, "absmean", threshold=threshold, per_row=True, with_quality=True)
    ref = two_pass(w, threshold)
    assert got.codes.to_bytes() == ref.codes.to_bytes(), label
    for field in ("scales", "thresholds", "cuts"):
        assert getattr(got, field).tobytes() == getattr(ref, field).tobytes(), (label, field)
    assert got.fit == ref.fit, label

    codes, scales, rel, cos = straightforward(w, threshold)
    assert got.codes.to_bytes() == codes.tobytes(), label
    assert got.scales.tobytes() == scales.tobytes(), label
    assert got.fit is not None
    assert got.fit.rel_l2 == pytest.approx(rel, rel=1e-5, abs=1e-6), label
    assert got.fit.cosine == pytest.approx(cos, rel=1e-5, abs=1e-6), label


@pytest.mark.parametrize("threads", [1, 2])
def test_one_pass_on_small_blocks_and_threads(monkeypatch, threads):
    """Blocks of a few rows each (and so many blocks), also run on worker threads."""
    monkeypatch.setattr(Q, "CHUNK", 64)
    monkeypatch.setattr(Q, "PACK_CHUNK", 64)
    monkeypatch.setattr(parallel, "THREADS", threads)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 0)
    monkeypatch.setattr(parallel, "FORCE", True)
    for _, w in CASES:
        got = quantize(w, with_quality=True)
        ref = two_pass(w, None)
        assert got.codes.to_bytes() == ref.codes.to_bytes()
        assert got.scales.tobytes() == ref.scales.tobytes()
        assert got.fit == ref.fit


@pytest.mark.parametrize("threads", [1, 2])
def test_non_finite_and_huge_weights_take_the_general_route(monkeypatch, threads):
    """Also when the bad block is one of many and runs on a worker thread, which must not
    print numpy's overflow warnings (threads take the caller's error handling)."""
    monkeypatch.setattr(Q, "PACK_CHUNK", 80)
    monkeypatch.setattr(parallel, "THREADS", threads)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 0)
    monkeypatch.setattr(parallel, "FORCE", True)
    w = weight_like((16, 40), seed=5)
    w[3, 7] = np.nan
    with pytest.raises(Exception, match="non-finite"):
        quantize(w)
    cleaned = quantize(w, nan_as_zero=True, with_quality=True)
    w0 = w.copy()
    w0[3, 7] = 0.0
    assert cleaned.codes.to_bytes() == quantize(w0).codes.to_bytes()
    huge = np.full((4, 70000), 3e38, np.float32)  # float32 row sums overflow: float64 sums
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        q = quantize(huge, with_quality=True)
    assert np.all(q.values() == 1) and q.scales[0] == np.float32(3e38)
    assert q.fit is not None and q.fit.rel_l2 == pytest.approx(0.0, abs=1e-6)


@given(
    hnp.arrays(
        np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=12), elements=st.floats(-4, 4, width=32)
    ),
    st.booleans(),
    st.integers(1, 64),
)
@settings(max_examples=80, deadline=None)
def test_pieces_concatenate_to_the_dequantized_tensor(w, per_row, chunk):
    q = quantize(w, per_row=per_row)
    whole = dequantize(q.codes.data, q.shape, q.scales, q.per_row).ravel()
    pieces = [p.copy() for p in dequantize_chunks(q.codes.data, q.shape, q.scales, q.per_row)]
    assert np.concatenate(pieces).tobytes() == whole.tobytes()
    rows = q.shape[0] if q.per_row else 1
    small = [p.copy() for p in iter_unpacked(q.codes.data, rows, w.size // rows, q.scales, chunk)]
    assert np.concatenate(small).tobytes() == whole.tobytes()
    assert all(p.size <= max(4, chunk // 4 * 4) * 4 for p in small)


def test_pieces_of_long_rows_and_of_a_per_tensor_scale():
    rng = np.random.default_rng(2)
    for shape, per_row in [((3, 1001), True), ((2, 4099), False), ((5, 6), False), ((7, 3), True)]:
        w = rng.standard_normal(shape).astype(np.float32)
        q = quantize(w, per_row=per_row)
        whole = q.dequantize().ravel()
        rows = shape[0] if q.per_row else 1
        for chunk in (4, 8, 100, 1 << 18):
            got = np.concatenate(
                [p.copy() for p in iter_unpacked(q.codes.data, rows, w.size // rows, q.scales, chunk)]
            )
            assert got.tobytes() == whole.tobytes(), (shape, per_row, chunk)


def chunked_reference(w: np.ndarray, per_row: bool, chunk: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Packed codes, scales and dequantized values of ``absmean`` written from the rule alone.

    A row is ``shape[0]`` when ``per_row`` and the tensor has two or more dimensions, else
    the whole tensor. Its sum of |w| is the float32 sum of each ``chunk`` of its weights,
    the chunks' sums added in float64 in order (the documented summation); scale = that
    mean, at least 1e-5; code = round(clip(w/scale, -1, 1)) with ties to even; packed four
    to a byte, weight i in bits 2(i%4) (01 = +1, 10 = -1).
    """
    # C order first: numpy sums a strided (transposed) row in another order than a contiguous
    # one (numpy 1.26 gave a scale one ulp apart), and the rule is the contiguous row's sum
    rows = np.ascontiguousarray(w, dtype=np.float32)
    rows = rows.reshape(rows.shape[0], -1) if per_row and w.ndim >= 2 else rows.reshape(1, -1)
    n_cols = rows.shape[1]
    sums = np.zeros(rows.shape[0], dtype=np.float64)
    for c0 in range(0, n_cols, chunk if n_cols > chunk else n_cols):
        sums += np.abs(rows[:, c0 : c0 + chunk]).sum(axis=1, dtype=np.float32)
    scales = np.maximum(sums / n_cols, 1e-5).astype(np.float32)
    values = np.round(np.clip(rows / scales[:, None], -1, 1)).astype(np.int8).ravel()
    codes = np.where(values == 1, 1, np.where(values == -1, 2, 0)).astype(np.uint8)
    codes = np.concatenate([codes, np.zeros(-codes.size % 4, np.uint8)]).reshape(-1, 4)
    packed = codes[:, 0] | codes[:, 1] << 2 | codes[:, 2] << 4 | codes[:, 3] << 6
    restored = (values.reshape(rows.shape).astype(np.float32) * scales[:, None]).ravel()
    return packed.astype(np.uint8).tobytes(), scales, restored


@st.composite
def tensors(draw: st.DrawFn) -> np.ndarray:
    """float16/32/64 tensors of rank 1-3 with odd lengths, zeros, ties and strided views."""
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=13))
    fill = st.sampled_from([0.0, 0.5, -0.5, 1.0]) | st.floats(-4, 4, width=16)
    w = draw(hnp.arrays(dtype, shape, elements=fill))
    view = draw(st.sampled_from(["contiguous", "strided", "transposed"]))
    if view == "strided" and w.shape[-1] > 1:
        w = w[..., ::2]
    elif view == "transposed":
        w = w.T
    return w


BLOCK_SIZES = st.sampled_from([4, 8, 12, 64, 1 << 18])


def _transposed_half() -> np.ndarray:
    """A float16 tensor in Fortran order whose first row sums differently when strided."""
    w = np.zeros((7, 8), np.float16)
    w[0, 0], w[0, 4], w[0, 7] = 7.7e-06, 1.0, 1.2e-07
    return np.asfortranarray(w)


@given(tensors(), st.booleans(), BLOCK_SIZES, BLOCK_SIZES, BLOCK_SIZES, st.sampled_from([1, 2]))
@example(_transposed_half(), True, 8, 4, 4, 1)
@settings(max_examples=150, deadline=None)
def test_blocked_kernels_equal_the_rule_written_out(w, per_row, chunk, pack_chunk, group, threads):
    """Whatever the block size (many small blocks, blocks cutting long rows, one block) and
    thread count, packing and unpacking give exactly the bytes of :func:`chunked_reference`;
    the packing passes' own block size (``PACK_CHUNK``) and the unpacking groups (rows in
    a group, or rows longer than one) change nothing at all."""
    old = (Q.CHUNK, Q.PACK_CHUNK, packing.UNPACK_GROUP)
    old_threads = (parallel.THREADS, parallel.PARALLEL_MIN, parallel.FORCE)
    Q.CHUNK, Q.PACK_CHUNK, packing.UNPACK_GROUP = chunk, pack_chunk, group
    parallel.THREADS, parallel.PARALLEL_MIN, parallel.FORCE = threads, 0, True
    try:
        q = quantize(w, per_row=per_row)
        restored = q.dequantize()
        into = np.full(w.shape, np.float32(7), dtype=np.float32)
        q.dequantize(out=into)
    finally:
        Q.CHUNK, Q.PACK_CHUNK, packing.UNPACK_GROUP = old
        parallel.THREADS, parallel.PARALLEL_MIN, parallel.FORCE = old_threads
    assert into.tobytes() == restored.tobytes()
    packed, scales, values = chunked_reference(w, per_row, chunk)
    assert q.codes.to_bytes() == packed
    assert q.scales.tobytes() == scales.tobytes()
    assert restored.shape == w.shape and restored.dtype == np.float32
    assert restored.ravel().tobytes() == values.tobytes()


@given(tensors(), st.booleans())
@settings(max_examples=100, deadline=None)
def test_dequantize_into_an_existing_array_gives_the_same_bytes(w, per_row):
    q = quantize(w, per_row=per_row)
    fresh = q.dequantize()
    out = np.full(w.shape, np.nan, dtype=np.float32)
    assert q.dequantize(out=out) is out
    assert out.tobytes() == fresh.tobytes()


def test_dequantize_refuses_an_unfit_out_array():
    q = quantize(np.linspace(-1, 1, 30, dtype=np.float32).reshape(5, 6))
    for bad, reason in [
        (np.empty((5, 6), np.float64), "float32"),
        (np.empty((6, 5), np.float32), "shape"),
        (np.empty((5, 7), np.float32), "30 elements"),
        (np.empty((5, 12), np.float32)[:, ::2], "C-contiguous"),
        ([[0.0] * 6] * 5, "numpy array"),
    ]:
        with pytest.raises(ValidationError, match=reason):
            q.dequantize(out=bad)  # type: ignore[arg-type]
    frozen = np.empty((5, 6), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(ValidationError, match="read-only"):
        q.dequantize(out=frozen)
