"""Both quantization methods against slow, obviously-correct references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from thermo_cli.codec.ternary import parallel
from thermo_cli.codec.ternary import quantize as Q
from thermo_cli.codec.ternary.quantize import adaptive_threshold, dequantize, quantize, reconstruction_quality
from thermo_cli.errors import ValidationError


def naive_reference(row: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, float, float]:
    """The crate's rule: scale = max |w|, normalise, adaptive threshold, quantize."""
    row = row.astype(np.float32).ravel()
    scale = np.float32(np.abs(row).max())
    scale = scale if scale > np.float32(1e-6) else np.float32(1.0)
    normed = row / scale
    if threshold is None:
        big = np.abs(normed)[np.abs(normed) > np.float32(1e-6)].astype(np.float64)
        t = np.float32(big.mean()) if big.size else np.float32(0.5)
    else:
        t = np.float32(threshold)
    codes = np.where(normed >= t, 1, np.where(normed <= -t, -1, 0))
    return codes.astype(np.int8), float(scale), float(t)


def naive_absmean(row: np.ndarray, threshold: float | None = None) -> tuple[np.ndarray, float]:
    """BitNet b1.58: γ = mean |w|, round(clip(w/γ, -1, 1)) with round-half-even."""
    row = row.astype(np.float32).ravel()
    gamma = np.float32(max(np.abs(row).astype(np.float64).mean(), 1e-5))
    q = row / gamma
    if threshold is None:
        codes = np.round(np.clip(q, -1, 1))
    else:
        codes = np.where(q >= np.float32(threshold), 1, np.where(q <= -np.float32(threshold), -1, 0))
    return codes.astype(np.int8), float(gamma)


def naive_kept_mean(row: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, float]:
    """Codes sign(w) where ``keep``, scale = mean |w| of the kept (1e-5 when none)."""
    a = np.abs(row.astype(np.float32).ravel())
    codes = np.where(keep, np.sign(row.ravel()), 0).astype(np.int8)
    scale = float(np.float32(a[keep].astype(np.float64).mean())) if keep.any() else 1e-5
    return codes, scale


def naive_twn(row: np.ndarray, factor: float = 0.7) -> tuple[np.ndarray, float]:
    a = np.abs(row.astype(np.float32).ravel())
    delta = np.float32(factor * a.astype(np.float64).mean())
    return naive_kept_mean(row, a > delta)


def naive_optimal(row: np.ndarray) -> tuple[np.ndarray, float]:
    """Brute force: every threshold at a distinct |w|, the one with the smallest L2 error."""
    w = row.astype(np.float64).ravel()
    a = np.abs(w)
    best, best_err = np.zeros(a.size, bool), float(np.sum(w * w))
    for t in np.unique(a[a > 0]):
        keep = a >= t
        s = a[keep].mean()
        e = float(np.sum((w - s * np.sign(w) * keep) ** 2))
        if e < best_err * (1 - 1e-12):
            best, best_err = keep, e
    return naive_kept_mean(row, best)


def check_against_naive(w: np.ndarray, method: str, per_row: bool, threshold: float | None = None):
    q = quantize(w, method, per_row=per_row, threshold=threshold)
    rows = w.reshape(w.shape[0], -1) if (per_row and w.ndim >= 2) else w.reshape(1, -1)
    got = q.values().reshape(rows.shape)
    for r in range(rows.shape[0]):
        if method in ("twn", "optimal"):
            if method == "twn":
                codes, scale = naive_twn(rows[r], 0.7 if threshold is None else threshold)
            else:
                codes, scale = naive_optimal(rows[r])
            assert q.scales[r] == pytest.approx(scale, rel=1e-5)
            assert np.array_equal(got[r], codes), (method, per_row, r)
            continue
        if method == "reference":
            codes, scale, t = naive_reference(rows[r], threshold)
            assert q.thresholds[r] == pytest.approx(t, rel=1e-6)
            # compare at our threshold: the sums may differ in their last bit
            codes, _, _ = naive_reference(rows[r], float(q.thresholds[r]))
        else:
            codes, scale = naive_absmean(rows[r], threshold)
            assert q.scales[r] == pytest.approx(scale, rel=1e-6)
            codes, _ = naive_absmean(rows[r] * np.float32(scale) / q.scales[r], threshold)
        assert q.scales[r] == pytest.approx(scale, rel=1e-6)
        assert np.array_equal(got[r], codes), (method, per_row, r)
    return q


@pytest.mark.parametrize("method", ["reference", "absmean", "twn", "optimal"])
@pytest.mark.parametrize("per_row", [False, True])
@pytest.mark.parametrize("shape", [(1,), (5,), (3, 7), (16, 16), (4, 3, 5)])
def test_matches_naive(method, per_row, shape):
    rng = np.random.default_rng(hash((method, per_row, shape)) % 2**32)
    w = (rng.standard_t(4, shape) * 0.05).astype(np.float32)
    q = check_against_naive(w, method, per_row)
    assert q.per_row == (per_row and w.ndim >= 2)
    assert q.scales.size == (shape[0] if q.per_row else 1)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("method", ["reference", "absmean", "twn", "optimal"])
@pytest.mark.parametrize(
    ("shape", "per_row"),
    [
        ((10, 13), True),
        ((3, 50), True),
        ((1001,), False),
        ((6, 37), True),
        ((2, 2, 9), True),
        ((5, 64), False),
    ],
)
def test_block_boundaries(monkeypatch, method, shape, per_row, threads):
    """Tiny blocks force every traversal path: multi-row blocks, split rows, odd lengths,
    and several worker threads."""
    monkeypatch.setattr(Q, "CHUNK", 16)
    monkeypatch.setattr(parallel, "THREADS", threads)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 0)
    monkeypatch.setattr(parallel, "FORCE", True)
    rng = np.random.default_rng(7)
    w = (rng.standard_normal(shape) * 0.1).astype(np.float32)
    w.ravel()[::11] = 0.0
    w.ravel()[5] = 1e-9
    q = check_against_naive(w, method, per_row)
    fused = quantize(w, method, per_row=per_row, with_quality=True)
    assert fused.fit is not None
    assert fused.fit.rel_l2 == pytest.approx(reconstruction_quality(w, q.dequantize()).rel_l2, rel=1e-5)
    if method != "optimal":
        check_against_naive(w, method, per_row, threshold=0.3)


@given(
    hnp.arrays(
        np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=9), elements=st.floats(-4, 4, width=32)
    ),
    st.sampled_from(["reference", "absmean", "twn", "optimal"]),
    st.booleans(),
)
@settings(max_examples=80, deadline=None)
def test_property_codes_and_dequantize(w, method, per_row):
    q = check_against_naive(w, method, per_row)
    fast, slow = q.quality(w), reconstruction_quality(w, q.dequantize())
    assert fast.rel_l2 == pytest.approx(slow.rel_l2, rel=1e-4, abs=1e-5)
    assert fast.cosine == pytest.approx(slow.cosine, rel=1e-4, abs=1e-5)
    assert fast.max_abs == pytest.approx(slow.max_abs, rel=1e-6, abs=1e-7)
    fused = quantize(w, method, per_row=per_row, with_quality=True)
    assert fused.fit is not None and q.fit is None
    assert np.array_equal(fused.codes.data, q.codes.data)
    assert (fused.fit.rel_l2, fused.fit.cosine) == pytest.approx(
        (fast.rel_l2, fast.cosine), rel=1e-6, abs=1e-7
    )
    assert fused.fit.max_abs == fast.max_abs
    deq = q.dequantize()
    assert deq.shape == w.shape and deq.dtype == np.float32
    scales = q.scales[:, None] if q.per_row else q.scales
    rows = deq.reshape(len(q.scales), -1) if q.per_row else deq.reshape(1, -1)
    assert np.array_equal(rows, q.values().reshape(rows.shape) * scales)


def test_threshold_only_sees_values_above_one_millionth_of_the_scale():
    w = np.array([1.0, 0.5, 0.0, 5e-7, -0.25, 0.0], dtype=np.float32)
    q = quantize(w, "reference")
    assert q.thresholds[0] == pytest.approx((1.0 + 0.5 + 0.25) / 3)
    assert q.values().tolist() == [1, 0, 0, 0, 0, 0]
    assert adaptive_threshold(w) == pytest.approx(1.75 / 3)
    assert adaptive_threshold(np.zeros(4, np.float32)) == 0.5
    assert adaptive_threshold(np.zeros(0, np.float32)) == 0.5


def test_reference_all_small_gets_unit_scale_and_zero_codes():
    q = quantize(np.full((2, 3), 1e-7, np.float32), "reference", per_row=True)
    assert q.scales.tolist() == [1.0, 1.0] and q.thresholds.tolist() == [0.5, 0.5]
    assert q.codes.count_active() == 0


def test_absmean_ties_round_to_even_zero():
    w = np.array([1.0, -1.0, 0.5, -0.5, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)  # γ = 0.375
    q = quantize(w, "absmean")
    assert q.scales[0] == pytest.approx(0.375)
    assert q.values().tolist() == [1, -1, 1, -1, 0, 0, 0, 0]
    tie = np.array([0.5, 1.5, 0.0, 0.0], dtype=np.float32)  # γ = 0.5: 0.5/γ = 1 → 1; but check exact tie
    assert quantize(tie, "absmean").values().tolist() == [1, 1, 0, 0]
    exact_tie = np.array([0.25, 0.75, 0.0, 0.0], dtype=np.float32)  # γ = 0.25: 0.25/γ = 1, fine
    assert quantize(exact_tie, "absmean").values().tolist() == [1, 1, 0, 0]
    half = np.array([1.0, 2.0, 1.0], dtype=np.float32) * np.float32(1.0)  # γ = 4/3; 1/γ = 0.75 → 1
    assert quantize(half, "absmean").values().tolist() == [1, 1, 1]
    midpoint = np.array([2.0, -1.0, 0.0, 1.0], dtype=np.float32)  # γ = 1.0: ±1/γ = ±1
    assert quantize(midpoint, "absmean").values().tolist() == [1, -1, 0, 1]
    rounding = np.array([4.0, 1.0, 0.0, 3.0], dtype=np.float32)  # γ = 2: 1/γ = 0.5 exactly → 0
    assert quantize(rounding, "absmean").values().tolist() == [1, 0, 0, 1]


def test_exact_cut_agrees_with_dividing():
    rng = np.random.default_rng(11)
    scales = (rng.random(200) * 10 + 1e-3).astype(np.float32)
    ts = rng.random(200).astype(np.float32)
    for strict in (False, True):
        cuts = Q.exact_cut(scales, ts, strict)
        q_at = cuts / scales
        q_below = np.nextafter(cuts, np.float32(0)) / scales
        if strict:
            assert (q_at > ts).all() and not (q_below > ts).any()
        else:
            assert (q_at >= ts).all() and not (q_below >= ts).any()


@given(st.floats(float(np.float32(Q.ABSMEAN_EPS)), float(np.finfo(np.float32).max), width=32))
@settings(max_examples=300, deadline=None)
def test_half_cut_is_the_exact_cut_at_one_half(scale):
    """The closed form gives the smallest float32 whose quotient by the scale exceeds 0.5."""
    scales = np.array([scale, np.nextafter(np.float32(scale), np.float32(0))], dtype=np.float32)
    half = np.float32(0.5)
    got = Q.half_cut(scales)
    assert got.tobytes() == Q.exact_cut(scales, half, strict=True).tobytes()
    assert (got / scales > half).all()
    assert not (np.nextafter(got, np.float32(0)) / scales > half).any()


def test_half_cut_at_powers_of_two_and_the_clamp():
    scales = np.array([1.0, 2.0**-16, 2.0**100, Q.ABSMEAN_EPS, 3.4e38], dtype=np.float32)
    got = Q.half_cut(scales)
    assert got.tobytes() == Q.exact_cut(scales, np.float32(0.5), strict=True).tobytes()
    assert np.isfinite(got).all()


def test_other_float_dtypes():
    rng = np.random.default_rng(2)
    w64 = rng.standard_normal((4, 9))
    q64 = quantize(w64, per_row=True)
    q32 = quantize(w64.astype(np.float32), per_row=True)
    assert np.array_equal(q64.values(), q32.values())
    w16 = w64.astype(np.float16)
    as32 = quantize(w16.astype(np.float32), "absmean")
    assert np.array_equal(quantize(w16, "absmean").values(), as32.values())


@pytest.mark.parametrize("method", ["reference", "absmean"])
def test_non_finite_refused_with_count_and_first_index(method):
    w = np.ones((3, 4), dtype=np.float32)
    w[1, 2] = np.nan
    w[2, 0] = np.inf
    with pytest.raises(ValidationError, match=r"2 non-finite values \(NaN/Inf\), first at index \(1, 2\)"):
        quantize(w, method)
    w1 = np.array([0.0, 1.0, -np.inf], dtype=np.float32)
    with pytest.raises(ValidationError, match=r"1 non-finite value \(NaN/Inf\), first at index 2;"):
        quantize(w1, method, per_row=True)
    clean = quantize(w, method, nan_as_zero=True)
    expected = quantize(np.where(np.isfinite(w), w, 0).astype(np.float32), method)
    assert np.array_equal(clean.values(), expected.values())
    assert np.array_equal(clean.scales, expected.scales)


def test_bad_arguments():
    w = np.ones(4, dtype=np.float32)
    with pytest.raises(ValidationError, match="float tensor, got dtype int32"):
        quantize(np.ones(4, dtype=np.int32))
    with pytest.raises(ValidationError, match="no elements"):
        quantize(np.zeros((0, 3), dtype=np.float32))
    with pytest.raises(ValidationError, match="method"):
        quantize(w, "median")
    for bad in (0, -0.1, float("nan"), float("inf"), "0.3", True):
        with pytest.raises(ValidationError, match="threshold"):
            quantize(w, threshold=bad)


def test_huge_but_finite_weights():
    w = np.array([3e38, -3e38, 3e38, 1.0], dtype=np.float32)
    for method in ("reference", "absmean"):
        q = quantize(w, method)
        assert q.values().tolist()[:3] == [1, -1, 1]


def test_dequantize_checks_scale_count():
    with pytest.raises(ValidationError, match="needs 2 scales"):
        dequantize(b"\x00\x00", (2, 3), np.ones(3, np.float32), True)
    with pytest.raises(ValidationError, match="needs 1 scale"):
        dequantize(b"\x00", (3,), np.ones(2, np.float32), False)


def test_reconstruction_quality_edge_cases():
    a = np.array([1.0, 2.0, 2.0])
    same = reconstruction_quality(a, a)
    assert (same.rel_l2, same.cosine, same.max_abs) == (0.0, pytest.approx(1.0), 0.0)
    assert same.norm == same.norm_reconstructed == 3.0
    z = np.zeros(3)
    assert reconstruction_quality(z, z).cosine == 1.0 and reconstruction_quality(z, z).rel_l2 == 0.0
    assert reconstruction_quality(z, a).rel_l2 == math.inf
    assert reconstruction_quality(a, z).cosine == 0.0 and reconstruction_quality(a, z).rel_l2 == 1.0
    r = reconstruction_quality(a, np.array([1.0, 2.0, 0.0]))
    assert r.rel_l2 == pytest.approx(2 / 3) and r.max_abs == 2.0
    assert r.cosine == pytest.approx(5 / (3 * math.sqrt(5)))
    with pytest.raises(ValidationError, match="sizes differ"):
        reconstruction_quality(a, z[:2])


def _no_blas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every numpy entry point that reaches BLAS fail loudly."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("BLAS called: its thread pool stalls on a busy machine")

    for name in ("dot", "vdot", "inner", "matmul", "tensordot"):
        monkeypatch.setattr(np, name, refuse)


def test_reconstruction_quality_stays_off_blas_and_is_exact(monkeypatch):
    """Several chunks (with a partial last one) of float64 sums, without BLAS threads."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal(2 * Q.CHUNK + 1001).astype(np.float32)
    b = quantize(a, "absmean").dequantize()
    _no_blas(monkeypatch)
    q = reconstruction_quality(a, b)
    x, y = a.astype(np.float64), b.astype(np.float64)
    aa, bb = math.fsum(x * x), math.fsum(y * y)
    assert q.rel_l2 == pytest.approx(math.sqrt(math.fsum((x - y) ** 2) / aa), rel=1e-12)
    assert q.cosine == pytest.approx(math.fsum(x * y) / math.sqrt(aa * bb), rel=1e-12)
    assert q.max_abs == float(np.abs(x - y).max())


def test_packed_float_dot_stays_off_blas(monkeypatch):
    from thermo_cli.codec.ternary.packing import PackedTernary

    values = np.resize(np.array([1, 0, -1, 1], np.int8), 50_001)
    vec = np.linspace(-1.0, 1.0, values.size)
    expected = math.fsum(values * vec)
    _no_blas(monkeypatch)
    assert PackedTernary.from_values(values).dot(vec) == pytest.approx(expected, abs=1e-9)


def weight_like(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Weight-like data: heavy-tailed (Student t, 4 dof), per-row spread, outlier columns."""
    rng = np.random.default_rng(seed)
    w = rng.standard_t(4, shape) * 0.02
    w *= rng.lognormal(0.0, 0.3, (shape[0], 1))
    w[:, rng.choice(shape[1], max(1, shape[1] // 200), replace=False)] *= 8
    return w.astype(np.float32)


def test_absmean_reconstructs_weight_like_data_better():
    w = weight_like((256, 512), 5)
    for per_row in (False, True):
        ref = quantize(w, "reference", per_row=per_row).quality(w)
        bit = quantize(w, "absmean", per_row=per_row).quality(w)
        assert bit.rel_l2 < 0.8 < ref.rel_l2
        assert bit.rel_l2 < ref.rel_l2 / 2
    ref = quantize(w, "reference", per_row=True).quality(w)
    bit = quantize(w, "absmean", per_row=True).quality(w)
    assert bit.cosine > ref.cosine


@pytest.mark.parametrize("per_row", [False, True])
def test_cut_off_follows_the_maximum_seen_last(monkeypatch, per_row):
    """The cut-off 1e-6 * max |w| is known only once the whole row was read: weights
    read before the max appeared must still be measured against it."""
    monkeypatch.setattr(Q, "CHUNK", 8)
    monkeypatch.setattr(parallel, "THREADS", 2)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 0)
    monkeypatch.setattr(parallel, "FORCE", True)
    rng = np.random.default_rng(12)
    w = (rng.standard_normal((3, 64)) * 1e-3).astype(np.float32)
    w[:, ::5] = np.float32(3e-6)  # between 1e-6 * early max and 1e-6 * final max
    w[:, -1] = np.float32(10.0)  # the max comes last
    q = check_against_naive(w, "reference", per_row)
    assert q.thresholds.size == (3 if per_row else 1)


def test_defaults_are_absmean_per_row():
    w = weight_like((8, 32), 4)
    q = quantize(w)
    assert q.method == "absmean" and q.per_row and q.scales.size == 8
    assert Q.DEFAULT_MIN_RANK == 2


def test_optimal_chooses_its_own_threshold():
    with pytest.raises(ValidationError, match="chooses its own threshold"):
        quantize(np.ones((2, 2), np.float32), "optimal", threshold=0.5)


@pytest.mark.parametrize("method", ["twn", "optimal"])
def test_zero_rows_keep_nothing(method):
    w = np.zeros((3, 5), np.float32)
    w[1] = [0.5, -1.0, 0.0, 0.25, 2.0]
    q = quantize(w, method)
    assert q.values()[0].tolist() == [0] * 5 and q.values()[2].tolist() == [0] * 5
    assert q.dequantize()[0].tolist() == [0.0] * 5
    assert q.quality(w).rel_l2 < 1


@pytest.mark.parametrize("method", ["absmean", "twn", "optimal", "reference"])
def test_quality_with_non_finite_stored_as_zero(method):
    w = weight_like((6, 20), 5)
    w[2, 3], w[4, 0] = np.nan, np.inf
    q = quantize(w, method, nan_as_zero=True)
    clean = np.where(np.isfinite(w), w, 0).astype(np.float32)
    assert q.quality(w).rel_l2 == pytest.approx(
        reconstruction_quality(clean, q.dequantize()).rel_l2, rel=1e-5
    )


def test_combined_quality_is_the_figure_of_the_concatenation():
    parts = [weight_like((8, 16), 6), weight_like((4, 40), 7) * 3]
    qs = [quantize(w) for w in parts]
    total = Q.combined_quality([q.quality(w) for q, w in zip(qs, parts, strict=True)])
    flat = np.concatenate([w.ravel() for w in parts])
    approx = np.concatenate([q.dequantize().ravel() for q in qs])
    whole = reconstruction_quality(flat, approx)
    assert total is not None and Q.combined_quality([]) is None
    assert total.rel_l2 == pytest.approx(whole.rel_l2, rel=1e-5)
    assert total.cosine == pytest.approx(whole.cosine, rel=1e-5)
