"""Float tensors → ternary codes plus scales, and back; with reconstruction quality.

Four methods, all storing ``w ≈ scale * code`` with one scale per tensor or per row (the
stored layout never depends on the method, so readers need not know it):

``absmean`` (default, BitNet b1.58)
    scale γ = mean |w| (clamped to >= 1e-5 as BitNet does), code = round(clip(w/γ, -1, 1))
    with round-half-to-even, i.e. ``w/γ > 0.5`` → +1, ``w/γ < -0.5`` → -1.
``twn`` (Ternary Weight Networks)
    keep the weights with |w| > Δ = 0.7 × mean |w|; scale = mean |w| of the kept weights:
    a cheap approximation of ``optimal``.
``optimal`` (exact L2-optimal threshold)
    sort |w| descending and keep the k largest, k maximising (sum of the top k)² / k, which
    minimises ||w − scale·code||² over every threshold; scale = mean of those k. It sorts
    each row (blocks of rows at a time), so it costs a sort, not a scan.
``reference`` (the Rust crate's ``TernaryLayer`` rule, kept for compatibility)
    scale = max |w| (1.0 when that is <= 1e-6); the weights are normalised by the scale
    and quantized at the adaptive threshold t = mean |w/scale| over |w/scale| > 1e-6
    (0.5 when there is none): ``w/scale >= t`` → +1, ``w/scale <= -t`` → -1, else 0.
    On trained weights with outliers this is worse than storing zeros (a relative L2
    error above 1): every weight above the mean is set to ±max.

The library defaults are the ones a user should get: ``absmean`` with one scale per row
(:data:`DEFAULT_PER_ROW`); callers converting whole checkpoints leave tensors of rank
below :data:`DEFAULT_MIN_RANK` (biases, norms) exact.

An explicit ``threshold`` replaces the default cut in the normalised domain for
``reference`` and ``absmean`` (``|w/scale| >= threshold`` is active) and the factor 0.7
for ``twn``; ``optimal`` chooses its own. The comparisons are done on ``w`` itself
against the smallest float32 whose float32 quotient by the scale passes, which gives
exactly the codes that dividing first would give, without a division per weight.

The threshold statistics are summed in float64 (the crate summed sequentially in f32), so
a threshold can differ from the crate's in its last bits; the codes then differ only for
weights lying on that boundary.

Work goes block by block (``CHUNK`` weights, cache-sized; ``PACK_CHUNK`` for the passes
whose results do not depend on the block size): one pass for the statistics (two for
``reference`` and ``twn``), one to compare and pack; per-row ``absmean`` does both in one.
Blocks are independent, so large tensors use idle cores (:mod:`.parallel`). The
reconstruction error of a result (:meth:`QuantizedTensor.quality`) takes one more pass over
the original and none over a dequantized copy: it follows from per-row sums (see
:func:`fit_quality`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from thermo_cli.codec.ternary import parallel
from thermo_cli.codec.ternary.packing import (
    _PACK_MUL,
    PackedTernary,
    iter_unpacked,
    output_buffer,
    packed_size,
    unpack_rows_scaled,
    unpack_scaled,
)
from thermo_cli.errors import ValidationError

METHODS = ("absmean", "twn", "optimal", "reference")
DEFAULT_METHOD = "absmean"
DEFAULT_PER_ROW = True
"""One scale per row (first dimension) unless asked otherwise: a per-tensor scale lets one
row's outliers decide the codes of every other row."""
DEFAULT_MIN_RANK = 2
"""Whole-checkpoint conversions pack tensors of at least this many dimensions (matrices
and embeddings); biases and norm gains, a tiny share of the bytes, stay exact."""
TWN_FACTOR = 0.7
"""TWN's cut Δ = 0.7 × mean |w| (Li & Liu, Ternary Weight Networks)."""
NEAR_ZERO = np.float32(1e-6)
"""The crate's cut-off: |w| <= 1e-6 counts as zero (scales and adaptive thresholds)."""
ABSMEAN_EPS = 1e-5
"""BitNet clamps the mean |w| to at least this before dividing."""
DEFAULT_THRESHOLD = 0.5
"""The crate's threshold when a tensor has no weight above 1e-6."""
CHUNK = 1 << 18
"""Weights per block: 1 MiB of float32, so a block's temporaries stay in the L2/L3 cache
while the per-call overhead of numpy stays small next to the work. Statistics that add
across blocks (a per-tensor sum) depend on it in their last bits, so it stays fixed."""
PACK_CHUNK = 1 << 17
"""Weights per block of the passes whose results do not depend on the block size (codes,
and per-row figures when blocks hold whole rows): 512 KiB of float32, with the |w| copy and
the three code buffers about 1.4 MiB, inside a 2 MiB L2. Against ``CHUNK`` it measured
1.10x faster for per-row absmean and 1.025x for the per-tensor packing pass (40 interleaved
pairs, one thread); a quarter of it lost more to numpy's per-call cost than it won."""


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quality:
    """How close a reconstruction is to the original (computed in float64)."""

    rel_l2: float
    """||w - ŵ|| / ||w|| (0 for two zero tensors, inf when only the original is zero)."""
    cosine: float
    """<w, ŵ> / (||w|| ||ŵ||) (1 for two zero tensors, 0 when exactly one is zero)."""
    max_abs: float
    """Largest |w - ŵ|."""
    norm: float = math.nan
    """||w||: with ``norm_reconstructed`` it lets figures of several tensors be combined
    into figures of the whole (:func:`combined_quality`)."""
    norm_reconstructed: float = math.nan
    """||ŵ||."""

    @property
    def worse_than_zeros(self) -> bool:
        """A relative error above 1: storing zeros would have been closer."""
        return self.rel_l2 > 1.0


def combined_quality(parts: list[Quality]) -> Quality | None:
    """The figures of all ``parts`` taken as one concatenated tensor (None for no parts).

    Needs each part's norms: ||w − ŵ||² = (rel·||w||)², <w, ŵ> = cos·||w||·||ŵ||.
    """
    if not parts:
        return None
    aa = sum(q.norm**2 for q in parts)
    bb = sum(q.norm_reconstructed**2 for q in parts)
    ab = sum(q.cosine * q.norm * q.norm_reconstructed for q in parts if q.norm and q.norm_reconstructed)
    dd = sum((q.rel_l2 * q.norm) ** 2 for q in parts if q.norm)
    dd += sum(q.norm_reconstructed**2 for q in parts if not q.norm)
    return _quality_of_sums(aa, bb, ab, dd, max(q.max_abs for q in parts))


@dataclass(frozen=True, slots=True)
class QuantizedTensor:
    """Ternary codes of a tensor with the scales that dequantize them.

    ``scales`` holds one float32 per row (``shape[0]``) when ``per_row``, else one value;
    ``thresholds`` the cut used, in the normalised domain (w / scale), for the record.
    """

    codes: PackedTernary
    shape: tuple[int, ...]
    scales: np.ndarray
    thresholds: np.ndarray
    per_row: bool
    method: str
    cuts: np.ndarray | None = None
    """The raw cut per row (``w >= cut`` → +1, ``w <= -cut`` → -1) the codes were made
    with; lets :meth:`quality` work from sums instead of a dequantized copy."""
    fit: Quality | None = None
    """With ``quantize(..., with_quality=True)``: the quality against the float32 values
    the codes were chosen from (NaN/Inf as 0), measured in the packing pass itself."""

    @property
    def numel(self) -> int:
        return len(self.codes)

    @property
    def nbytes(self) -> int:
        """Stored size: packed codes plus float32 scales."""
        return self.codes.nbytes + 4 * int(self.scales.size)

    def values(self) -> np.ndarray:
        """The codes as an int8 array of -1/0/+1 in the tensor's shape."""
        return self.codes.unpack().reshape(self.shape)

    def dequantize(self, out: np.ndarray | None = None) -> np.ndarray:
        """``scale * code`` as float32 in the tensor's shape (into ``out`` when given)."""
        return dequantize(self.codes.data, self.shape, self.scales, self.per_row, out=out)

    def quality(self, original: np.ndarray) -> Quality:
        """How well ``scale * code`` reconstructs ``original`` (the tensor quantized).

        Computed from per-row sums over ``original`` (:func:`fit_quality`) when the cuts
        are known, with no dequantized copy; NaN/Inf in ``original`` count as 0, as they
        were stored with ``nan_as_zero``.
        """
        if self.cuts is None or np.asarray(original).size != self.numel:
            return reconstruction_quality(original, self.dequantize())
        return fit_quality(original, self.scales, self.cuts, self.per_row)


# --- input checks -----------------------------------------------------------------------------


def check_float_tensor(weights: object, what: str = "weights") -> np.ndarray:
    """A numpy float array with at least one element, else ValidationError."""
    arr = np.asarray(weights)
    if arr.dtype.kind != "f":
        raise ValidationError(f"{what}: ternary quantization needs a float tensor, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValidationError(f"{what}: tensor of shape {tuple(arr.shape)} has no elements to quantize")
    return arr


def find_nonfinite(arr: np.ndarray) -> tuple[int, tuple[int, ...]] | None:
    """(count, index of the first) non-finite value, or None when all are finite."""
    bad = ~np.isfinite(arr)
    count = int(np.count_nonzero(bad))
    if not count:
        return None
    first = int(np.argmax(bad.ravel()))
    return count, tuple(int(i) for i in np.unravel_index(first, arr.shape))


def _nonfinite_error(arr: np.ndarray, what: str) -> ValidationError | None:
    found = find_nonfinite(arr)
    if found is None:
        return None
    count, index = found
    where = index[0] if len(index) == 1 else index
    return ValidationError(
        f"{what}: {count} non-finite value{'s' if count != 1 else ''} (NaN/Inf), first at index {where}; "
        "pass nan_as_zero=True to store them as 0"
    )


def _clean(arr: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(arr), arr, arr.dtype.type(0))


def check_method(method: str, threshold: float | None = None) -> str:
    if method not in METHODS:
        raise ValidationError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    if method == "optimal" and threshold is not None:
        raise ValidationError("threshold: method 'optimal' chooses its own threshold; leave threshold unset")
    return method


def check_threshold(threshold: float | None) -> float | None:
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating | np.integer):
        raise ValidationError(f"threshold: expected a number, got {threshold!r}")
    t = float(threshold)
    if not math.isfinite(t) or t <= 0.0:
        raise ValidationError(f"threshold: must be a finite number > 0, got {threshold!r}")
    return t


# --- chunked traversal -------------------------------------------------------------------------


def _as_rows(arr: np.ndarray, per_row: bool) -> np.ndarray:
    """2-D C-contiguous view: (shape[0], rest) when per_row on a 2+-D tensor, else (1, n)."""
    arr = np.ascontiguousarray(arr)
    if per_row and arr.ndim >= 2:
        return arr.reshape(arr.shape[0], -1)
    return arr.reshape(1, -1)


def _blocks(rows: np.ndarray, chunk: int | None = None) -> Iterator[tuple[int, int, int, int]]:
    """Cache-sized blocks in C order: (row0, row1, col0, col1).

    Several whole rows per block when rows are short (a count that keeps blocks a multiple
    of 4 weights, so packed output stays byte-aligned); otherwise one row cut into column
    chunks. The loop runs over blocks, never over weights.
    """
    n_rows, n_cols = rows.shape
    if n_cols == 0 or n_rows == 0:
        return
    chunk = CHUNK if chunk is None else chunk
    if n_cols <= chunk:
        step = _rows_per_block(n_cols, chunk)
        for r0 in range(0, n_rows, step):
            yield r0, min(n_rows, r0 + step), 0, n_cols
    else:
        for r in range(n_rows):
            for c0 in range(0, n_cols, chunk):
                yield r, r + 1, c0, min(n_cols, c0 + chunk)


def _rows_per_block(n_cols: int, chunk: int) -> int:
    align = 4 // math.gcd(n_cols, 4)
    return max(align, (chunk // n_cols) // align * align)


def _block_capacity(rows: np.ndarray, chunk: int | None = None) -> int:
    """Most weights any block of ``rows`` holds (buffers are allocated once at this size)."""
    chunk = CHUNK if chunk is None else chunk
    n_cols: int = rows.shape[1]
    if n_cols == 0 or n_cols > chunk:
        return chunk + 4
    return min(int(rows.shape[0]), _rows_per_block(n_cols, chunk)) * n_cols + 4


def _piece(rows: np.ndarray, block: tuple[int, int, int, int]) -> np.ndarray:
    r0, r1, c0, c1 = block
    return rows[r0:r1, c0:c1].astype(np.float32, copy=False)


def _cut_for(cuts: np.ndarray, block: tuple[int, int, int, int]) -> np.ndarray | np.float32:
    r0, r1 = block[0], block[1]
    return cuts[r0] if r1 - r0 == 1 else cuts[r0:r1, None]


def _row_abs_max(rows: np.ndarray) -> np.ndarray:
    """Per-row max |w| from the raw max and min of each block (no |w| temporary).

    A NaN anywhere in a row makes its result NaN and an infinity makes it inf, so the
    caller's finiteness check of the result covers every weight.
    """

    def one(block: tuple[int, int, int, int]) -> np.ndarray:
        piece = _piece(rows, block)
        return cast(np.ndarray, np.maximum(piece.max(axis=1), -piece.min(axis=1)))

    blocks = list(_blocks(rows))
    amax = np.zeros(rows.shape[0], dtype=np.float32)
    for block, hi in zip(blocks, parallel.run(one, blocks, rows.size), strict=True):
        np.maximum(amax[block[0] : block[1]], hi, out=amax[block[0] : block[1]])
    return amax


def _row_abs_sums(
    rows: np.ndarray, below: np.ndarray | None = None, wide: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: sum of |w| (float64) and count, leaving out |w| < ``below`` (per row) if given.

    Sums are float32 pairwise sums per block added up in float64 in block order (float64
    throughout when ``wide``, for weights so large that a float32 block sum overflows).
    """
    n_rows, n_cols = rows.shape
    cap = _block_capacity(rows)
    scratch = parallel.Scratch()

    def one(block: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        r0, r1 = block[0], block[1]
        piece = _piece(rows, block)
        a = np.abs(piece, out=scratch.get("abs", cap, np.float32)[: piece.size].reshape(piece.shape))
        total = a.sum(axis=1, dtype=np.float64 if wide else np.float32)
        if below is None:
            return total, None, None
        mask = scratch.get("mask", cap, np.bool_)[: piece.size].reshape(piece.shape)
        with parallel.row_broadcasts(n_cols):
            small = np.less(a, _cut_for(below, block), out=mask)
        n_small = np.count_nonzero(small)  # a flat count is far faster than a per-row one
        if not n_small:
            return total, None, None
        if r1 - r0 == 1:
            dropped = np.array([n_small], dtype=np.int64)
        else:
            dropped = np.add.reduce(small.view(np.uint8), axis=1, dtype=np.int32)
        # a masked product then a plain sum: ``np.sum(where=)`` is some 30x slower
        small_a = np.multiply(
            a, small, out=scratch.get("small_a", cap, np.float32)[: piece.size].reshape(piece.shape)
        )
        return total, dropped, small_a.sum(axis=1, dtype=np.float64 if wide else np.float32)

    blocks = list(_blocks(rows))
    sums = np.zeros(n_rows, dtype=np.float64)
    counts = np.full(n_rows, n_cols, dtype=np.int64)
    results = parallel.run(one, blocks, rows.size)
    for block, (total, dropped, dropped_sum) in zip(blocks, results, strict=True):
        r0, r1 = block[0], block[1]
        sums[r0:r1] += total
        if dropped is not None and dropped_sum is not None:
            counts[r0:r1] -= dropped
            sums[r0:r1] -= dropped_sum
    return sums, counts


def exact_cut(scale: np.ndarray, t: np.ndarray | np.floating[Any], strict: bool) -> np.ndarray:
    """Smallest float32 ``c`` such that ``float32(c / scale) > t`` (strict) or ``>= t``.

    Float32 division is monotonic in ``c``, so for any float32 ``w >= 0`` the normalised
    test passes exactly when ``w >= c``. Starts from the float64 product and walks the few
    ulps to the exact boundary (a loop over ulps, not weights).
    """
    scale = np.asarray(scale, dtype=np.float32)
    t = np.asarray(t, dtype=np.float32)
    if t.shape != scale.shape:
        t = np.broadcast_to(t, scale.shape)
    compare = np.greater if strict else np.greater_equal

    def passes(c: np.ndarray) -> np.ndarray:
        return cast(np.ndarray, compare(c / scale, t))

    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # once: it runs per block
        c = (t.astype(np.float64) * scale).astype(np.float32)
        near = _cut_among_neighbours(c, scale, t, compare)
        if near is not None:
            return near
        inf = np.float32(np.inf)
        for _ in range(256):
            ok = passes(c)
            if ok.all():
                break
            c = np.where(ok, c, np.nextafter(c, inf))
        for _ in range(256):
            below = np.nextafter(c, -inf)
            lower_ok = passes(below) & (below >= 0)
            if not lower_ok.any():
                break
            c = np.where(lower_ok, below, c)
    return cast(np.ndarray, c)


def half_cut(scale: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """:func:`exact_cut` for the default absmean rule, ``float32(w / scale) > 0.5``, in
    closed form: the float32 just above ``scale / 2``.

    For a float32 ``scale`` of at least :data:`ABSMEAN_EPS` (every absmean scale), the
    product ``h = scale · 0.5`` is exact and ``h / scale`` is exactly 0.5, which fails the
    strict test. The next float32 ``h + ulp(h)`` gives ``0.5 + ulp(scale) / (2 · scale)``
    with ``ulp(scale) / scale`` in (2^-24, 2^-23]: more than half an ulp of 0.5 (2^-25)
    above it, so it rounds up to the float32 after 0.5 and passes. No division per row.
    """
    if not isinstance(scale, np.ndarray) or scale.dtype != np.float32:
        scale = np.asarray(scale, dtype=np.float32)
    half = np.multiply(scale, _HALF, out=out)
    return cast(np.ndarray, np.nextafter(half, _INF32, out=half))


_HALF = np.float32(0.5)
_INF32 = np.float32(np.inf)
_WORD = np.dtype("<u4")


_NEIGHBOURS = np.arange(-2, 3, dtype=np.int32)[:, None]
"""Offsets in ulps around the float64 product that :func:`exact_cut` tries all at once."""


def _cut_among_neighbours(
    c: np.ndarray, scale: np.ndarray, t: np.ndarray, compare: np.ufunc
) -> np.ndarray | None:
    """:func:`exact_cut` in one vectorised step when the boundary lies within two ulps of
    the product ``c`` (it does for every scale a block has produced; None otherwise, and
    the walk decides). Positive floats order like their bit patterns, so ``c ± k`` ulps is
    an integer add; the test is monotonic in the candidate, so the first candidate that
    passes is the smallest one, provided the lowest fails and the highest passes. A
    negative or non-finite ``c`` gives NaN candidates, which fail, and falls through."""
    candidates = (c.view(np.int32) + _NEIGHBOURS).view(np.float32)
    ok = compare(candidates / scale, t)
    if ok[0].any() or not ok[-1].all():
        return None
    first = ok.argmax(axis=0)
    return cast(np.ndarray, candidates[first, np.arange(c.size)])


def _pack_pieces(rows: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Codes of every weight (``w >= cut`` → +1, ``w <= -cut`` → -1), packed, in one pass."""
    return _pack_and_fit(rows, cuts, None)[0]


_Fit = tuple[np.ndarray, np.ndarray, np.ndarray, float]
"""Per row Σw², Σ(w − ŵ)², kept count; and the largest |w − ŵ| (see :func:`_row_fit`)."""


def _pack_and_fit(
    rows: np.ndarray, cuts: np.ndarray, scales: np.ndarray | None
) -> tuple[np.ndarray, _Fit | None]:
    """Packed codes, and with ``scales`` the sums of :func:`_row_fit` from the same pass.

    Per block: two comparisons into byte masks, ``pos | neg << 1`` on uint32 views (numpy
    shifts bytes slowly), then the multiply-shift packing into the block's own bytes of
    the output; the figures' sums run on the block while it is still in the cache. Blocks
    start on a byte boundary (a multiple of 4 weights) except when very long rows have a
    length not divisible by 4; those go through :func:`_pack_staged` (figures then take
    their own pass).
    """
    n_cols = rows.shape[1]
    chunk = PACK_CHUNK if scales is None or n_cols <= PACK_CHUNK else CHUNK
    if n_cols > chunk and n_cols % 4:
        packed = _pack_staged(rows, cuts)
        return packed, (None if scales is None else _row_fit(rows, scales, cuts))
    out = np.empty(packed_size(rows.size), dtype=np.uint8)
    cap = _block_capacity(rows, chunk) + 4
    neg_cuts = -cuts
    scratch = parallel.Scratch()
    # codes alone have no sums: the row buffer for the whole run
    whole, per_block = _row_buffer_plan(n_cols) if scales is not None else _ROW_BUFFER_FOR_RUN

    def one(block: tuple[int, int, int, int]) -> _BlockFit | None:
        start = block[0] * n_cols + block[2]
        piece = _piece(rows, block)
        m = piece.size
        with per_block():
            codes = _codes_of(
                piece,
                _cut_for(cuts, block),
                _cut_for(neg_cuts, block),
                scratch.get("pos", cap, np.uint8),
                scratch.get("neg", cap, np.uint8),
            )
        nw = (m + 3) // 4
        codes[m : 4 * nw] = 0  # the zero padding of the last byte
        _pack_words(
            codes[: 4 * nw].view("<u4"),
            scratch.get("words", cap // 4 + 1, np.uint32),
            out[start // 4 : start // 4 + nw],
        )
        if scales is None:
            return None
        return _fit_block(piece, block, cuts, scales, scratch, cap, np.float32)

    blocks = list(_blocks(rows, chunk))
    results = parallel.run(one, blocks, rows.size, row_length=n_cols if whole else None)
    if scales is None:
        return out, None
    return out, _gather_fit(rows.shape[0], blocks, cast(list[_BlockFit], results))


_RowBufferPlan = tuple[bool, Callable[[], AbstractContextManager[None]]]
_ROW_BUFFER_FOR_RUN: _RowBufferPlan = (True, nullcontext)


def _row_buffer_plan(n_cols: int) -> _RowBufferPlan:
    """Where a pass whose blocks also sum their rows sets the row buffer: once for the whole
    run when that leaves the sums as they are (:func:`parallel.row_sums_unaffected`; True
    and a no-op per block), else per block around the comparisons only."""
    if parallel.row_sums_unaffected(n_cols):
        return _ROW_BUFFER_FOR_RUN
    return False, functools.partial(parallel.row_broadcasts, n_cols)


def _codes_of(
    piece: np.ndarray,
    cut: np.ndarray | np.float32,
    neg_cut: np.ndarray | np.float32,
    pos: np.ndarray,
    neg: np.ndarray,
) -> np.ndarray:
    """One byte code per weight of ``piece`` in ``pos`` (returned; valid up to piece.size).

    Callers run it under :func:`parallel.row_broadcasts` of the row length."""
    m = piece.size
    np.greater_equal(piece, cut, out=pos[:m].view(np.bool_).reshape(piece.shape))
    np.less_equal(piece, neg_cut, out=neg[:m].view(np.bool_).reshape(piece.shape))
    nw = (m + 3) // 4
    pos_w, neg_w = pos[: 4 * nw].view("<u4"), neg[: 4 * nw].view("<u4")
    np.left_shift(neg_w, 1, out=neg_w)
    np.bitwise_or(pos_w, neg_w, out=pos_w)
    return pos


def _pack_staged(rows: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Sequential packing for rows longer than a block whose length is not a multiple of 4:
    each block's codes go through a staging buffer that carries the 1–3 codes left over
    to the next block."""
    out = np.empty(packed_size(rows.size), dtype=np.uint8)
    cap = _block_capacity(rows) + 4
    pos = np.zeros(cap, dtype=np.uint8)
    neg = np.zeros(cap, dtype=np.uint8)
    words = np.empty(cap // 4 + 1, dtype=np.uint32)
    stage = np.zeros(cap + 4, dtype=np.uint8)
    fill = 0
    written = 0
    neg_cuts = -cuts
    for block in _blocks(rows):
        piece = _piece(rows, block)
        m = piece.size
        with parallel.row_broadcasts(piece.shape[1]):
            codes = _codes_of(piece, _cut_for(cuts, block), _cut_for(neg_cuts, block), pos, neg)
        if fill == 0:
            end = m
        else:
            stage[fill : fill + m] = codes[:m]
            codes, end = stage, fill + m
        whole = end & ~3
        _pack_words(codes[:whole].view("<u4"), words, out[written : written + whole // 4])
        written += whole // 4
        fill = end - whole
        if fill:
            stage[:fill] = codes[whole:end]
    if fill:
        stage[fill:4] = 0
        _pack_words(stage[:4].view("<u4"), words, out[written : written + 1])
    return out


def _pack_words(code_words: np.ndarray, scratch: np.ndarray, out: np.ndarray) -> None:
    n = code_words.size
    prod = scratch[:n]
    np.multiply(code_words, _PACK_MUL, out=prod)
    np.right_shift(prod, 24, out=prod)
    out[...] = prod


# --- public API ------------------------------------------------------------------------------


def adaptive_threshold(weights: np.ndarray) -> float:
    """The crate's adaptive threshold: mean |w| over |w| > 1e-6, 0.5 when there is none."""
    arr = np.asarray(weights)
    if arr.dtype.kind != "f":
        raise ValidationError(f"weights: expected a float tensor, got dtype {arr.dtype}")
    if arr.size == 0:
        return DEFAULT_THRESHOLD
    rows = _as_rows(arr, per_row=False)
    cut = np.nextafter(NEAR_ZERO, np.float32(np.inf))  # |w| > 1e-6  ⇔  |w| >= next float
    sums, counts = _row_abs_sums(rows, below=np.array([cut], dtype=np.float32))
    if not np.isfinite(sums).all():
        err = _nonfinite_error(arr, "weights")
        if err is not None:
            raise err
    count = int(counts[0])
    return float(np.float32(sums[0] / count)) if count else DEFAULT_THRESHOLD


def quantize_codes(weights: np.ndarray, threshold: float) -> np.ndarray:
    """Unscaled crate quantization, packed: ``w >= t`` → +1, ``w <= -t`` → -1, else 0."""
    arr = np.asarray(weights)
    if arr.dtype.kind != "f":
        raise ValidationError(f"weights: expected a float tensor, got dtype {arr.dtype}")
    t = check_threshold(threshold)
    err = _nonfinite_error(arr, "weights") if arr.size and not np.isfinite(arr).all() else None
    if err is not None:
        raise err
    rows = _as_rows(arr, per_row=False)
    return _pack_pieces(rows, np.array([t], dtype=np.float32))


def packed_from_float(weights: Any, threshold: float | None = None) -> PackedTernary:
    """Floats → :class:`PackedTernary` with the crate's rule: ``w >= t`` → +1, ``w <= -t`` → -1.

    ``threshold`` defaults to the crate's adaptive threshold (mean |w| over |w| > 1e-6,
    0.5 when there is none); no scale is applied, as in the crate's ``quantize``.
    """
    w = np.asarray(weights)
    t = adaptive_threshold(w) if threshold is None else threshold
    return PackedTernary.from_bytes(quantize_codes(w, t).tobytes(), int(w.size))


def _quantized(
    arr: np.ndarray,
    packed: np.ndarray,
    scales: np.ndarray,
    thresholds: np.ndarray,
    per_row: bool,
    method: str,
    cuts: np.ndarray | None,
    fit: Quality | None,
) -> QuantizedTensor:
    """The result of :func:`quantize` for ``arr``, whichever route packed it."""
    return QuantizedTensor(
        codes=PackedTernary._wrap(packed, int(arr.size)),
        shape=tuple(int(d) for d in arr.shape),
        scales=scales,
        thresholds=thresholds,
        per_row=per_row,
        method=method,
        cuts=cuts,
        fit=fit,
    )


def quantize(
    weights: np.ndarray,
    method: str = DEFAULT_METHOD,
    *,
    threshold: float | None = None,
    per_row: bool = DEFAULT_PER_ROW,
    nan_as_zero: bool = False,
    what: str = "weights",
    with_quality: bool = False,
) -> QuantizedTensor:
    """Quantize a float tensor to ternary codes and scales (see the module docstring).

    ``per_row`` gives each row (``shape[0]``) its own scale and threshold; tensors with
    fewer than two dimensions always get one scale. Non-finite weights are refused with
    their count and first index unless ``nan_as_zero``, which stores them as 0.
    """
    arr = check_float_tensor(weights, what)
    t_given = check_threshold(threshold)
    check_method(method, t_given)
    per_row = bool(per_row) and arr.ndim >= 2
    rows = _as_rows(arr, per_row)
    if method == "absmean" and per_row and rows.shape[1] <= CHUNK:
        done = _absmean_by_rows(rows, t_given, with_quality)
        if done is not None:
            packed, scales, thresholds, cuts, fit = done
            return _quantized(arr, packed, scales, thresholds, per_row, method, cuts, fit)
    try:
        scales, thresholds, cuts = _statistics(rows, method, t_given)
    except _NonFinite:
        found = find_nonfinite(rows)
        if found is not None and not nan_as_zero:
            raise cast(ValidationError, _nonfinite_error(arr, what)) from None  # found: not None
        if found is not None:
            rows = _clean(rows)
        # all finite now: a float32 block sum overflowed, or the NaN/Inf are gone
        scales, thresholds, cuts = _statistics(rows, method, t_given, wide=True)
    fit = None
    with np.errstate(over="ignore", invalid="ignore"):
        packed, sums = _pack_and_fit(rows, cuts, scales if with_quality else None)
        if sums is not None and not _fit_is_finite(sums):  # squares beyond float32
            sums = _row_fit(rows, scales, cuts, wide=True)
    if sums is not None:
        fit = _quality_of_fit(sums, scales)
    return _quantized(arr, packed, scales, thresholds, per_row, method, cuts, fit)


class _NonFinite(Exception):
    pass


def _absmean_by_rows(
    rows: np.ndarray, t_given: float | None, with_quality: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Quality | None] | None:
    """Per-row ``absmean`` in one pass over the weights: each block of whole rows gets its
    scales, its codes and (``with_quality``) its figures while it is in the cache.

    The same block sums, cuts and codes as the separate statistics and packing passes, so
    the results are bit for bit theirs; ``|w|`` and the kept mask serve the scale, the
    codes and the figures alike. None when a block has NaN/Inf or a float32 sum overflows
    (the general path then decides what to do).
    """
    n_rows, n_cols = rows.shape
    out = np.empty(packed_size(rows.size), dtype=np.uint8)
    scales = np.empty(n_rows, dtype=np.float32)
    cuts = np.empty(n_rows, dtype=np.float32)
    chunk = PACK_CHUNK if n_cols <= PACK_CHUNK else CHUNK  # whole rows: sums per row alike
    cap = _block_capacity(rows, chunk) + 4
    scratch = parallel.Scratch()
    whole, per_block = _row_buffer_plan(n_cols)

    t_row = np.float32(DEFAULT_THRESHOLD if t_given is None else t_given)

    same_dtype = rows.dtype == np.float32  # blocks are then plain row slices

    def one(block: tuple[int, int, int, int]) -> _BlockFit | None:
        r0, r1 = block[0], block[1]
        piece = rows[r0:r1] if same_dtype else _piece(rows, block)
        shape, m = piece.shape, piece.size
        nw = (m + 3) // 4
        a, kept, neg, kept_words, neg_words, words = _fused_views(scratch, cap, shape)
        np.abs(piece, out=a)
        sums = a.sum(axis=1, dtype=np.float32)  # float64 of these is what the sums pass adds
        # the scale is the float64 mean rounded to float32 (the ufunc casts its result into
        # ``scales``); a NaN or an overflow makes it non-finite: checked after every block
        scale = scales[r0:r1]
        mean = np.divide(sums, n_cols, dtype=np.float64)
        np.maximum(mean, ABSMEAN_EPS, out=scale, casting="same_kind")
        cut = cuts[r0:r1]
        if t_given is None:  # round half to even (0.5 → 0), as a strict cut at 0.5
            half_cut(scale, out=cut)
        else:
            cut[...] = exact_cut(scale, t_row, strict=False)
        with per_block():
            np.greater_equal(a, cut[:, None], out=kept)
            np.less_equal(piece, -cut[:, None], out=neg)
        # cut > 0, so |w| >= cut is w >= cut or w <= -cut: kept + neg is the code 0, 1 or 2;
        # added four codes at a time as words (no byte carries into the next)
        np.add(kept_words, neg_words, out=words)
        start = r0 * n_cols // 4
        _pack_words(words, words, out[start : start + nw])
        return _fit_kept(a, kept, block, scales, scratch, cap, np.float32) if with_quality else None

    blocks = list(_blocks(rows, chunk))
    with np.errstate(over="ignore", invalid="ignore"):
        results = parallel.run(one, blocks, rows.size, row_length=n_cols if whole else None)
    if not np.isfinite(scales).all():
        return None
    thresholds = np.full_like(scales, DEFAULT_THRESHOLD if t_given is None else t_given)
    if not with_quality:
        return out, scales, thresholds, cuts, None
    with np.errstate(over="ignore", invalid="ignore"):
        sums = _gather_fit(n_rows, blocks, cast(list[_BlockFit], results))
        if not _fit_is_finite(sums):  # squares beyond float32, or so small they underflowed
            sums = _row_fit(rows, scales, cuts, wide=True)
    return out, scales, thresholds, cuts, _quality_of_fit(sums, scales)


def _fused_views(scratch: parallel.Scratch, cap: int, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """The fused pass's views of this thread's buffers for a block of ``shape``: |w|, the
    kept and negative masks, the two masks as words (their last byte's padding zeroed) and
    the words of the codes. Every block but the last has the same shape, so they are made
    once (a dozen numpy calls saved per block)."""
    views: dict[tuple[int, ...], tuple[np.ndarray, ...]] = scratch.__dict__.setdefault("fused views", {})
    found = views.get(shape)
    if found is None:
        m = math.prod(shape)
        nw = (m + 3) // 4
        a_buf = scratch.get("abs", cap, np.float32)
        kept_bytes = scratch.get("kept", cap, np.uint8)
        neg_bytes = scratch.get("neg", cap, np.uint8)
        words = scratch.get("words", cap // 4 + 1, np.uint32)
        kept_bytes[m : 4 * nw] = 0  # the zero padding of the last byte, never written after
        neg_bytes[m : 4 * nw] = 0
        found = views[shape] = (
            a_buf[:m].reshape(shape),
            kept_bytes[:m].view(np.bool_).reshape(shape),
            neg_bytes[:m].view(np.bool_).reshape(shape),
            kept_bytes[: 4 * nw].view(_WORD),
            neg_bytes[: 4 * nw].view(_WORD),
            words[:nw],
        )
    return found


def _statistics(
    rows: np.ndarray, method: str, t_given: float | None, wide: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scales, normalised thresholds, raw cuts) per row."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _statistics_of(rows, method, t_given, wide)


def _statistics_of(
    rows: np.ndarray, method: str, t_given: float | None, wide: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if method == "reference":
        amax = _row_abs_max(rows)
        if not np.isfinite(amax).all():
            raise _NonFinite
        scales = np.where(amax > NEAR_ZERO, amax, np.float32(1.0)).astype(np.float32)
        if t_given is None:
            # the crate averages |w/scale| over |w/scale| > 1e-6, i.e. over |w| >= tiny
            tiny = exact_cut(scales, np.full_like(scales, NEAR_ZERO), strict=True)
            sums, counts = _row_abs_sums(rows, below=tiny, wide=wide)
            if not np.isfinite(sums).all():
                raise _NonFinite
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = sums / scales.astype(np.float64) / counts
            thresholds = np.where(counts > 0, mean, DEFAULT_THRESHOLD).astype(np.float32)
        else:
            thresholds = np.full_like(scales, t_given)
        cuts = exact_cut(scales, thresholds, strict=False)
    elif method == "twn":
        return _twn_statistics(rows, TWN_FACTOR if t_given is None else t_given, wide)
    elif method == "optimal":
        return _optimal_statistics(rows)
    else:
        sums, counts = _row_abs_sums(rows, wide=wide)
        if not np.isfinite(sums).all():
            raise _NonFinite
        scales = np.maximum(sums / counts, ABSMEAN_EPS).astype(np.float32)
        if t_given is None:
            thresholds = np.full_like(scales, DEFAULT_THRESHOLD)
            cuts = half_cut(scales)  # round half to even: 0.5 → 0
        else:
            thresholds = np.full_like(scales, t_given)
            cuts = exact_cut(scales, thresholds, strict=False)
    return scales, thresholds, cuts


def _twn_statistics(rows: np.ndarray, factor: float, wide: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TWN: keep |w| > Δ = factor × mean |w|; scale = mean |w| of the kept (two passes)."""
    sums, counts = _row_abs_sums(rows, wide=wide)
    if not np.isfinite(sums).all():
        raise _NonFinite
    delta = (factor * (sums / counts)).astype(np.float32)
    cuts = np.nextafter(delta, np.float32(np.inf))  # |w| > Δ  ⇔  |w| >= the next float
    kept_sums, kept = _row_abs_sums(rows, below=cuts, wide=wide)
    return _kept_scales(kept_sums, kept, cuts, delta)


def _kept_scales(
    kept_sums: np.ndarray, kept: np.ndarray, cuts: np.ndarray, threshold_raw: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scales, normalised thresholds, cuts) when the scale is the mean of the kept |w|.

    A row that keeps nothing (all zeros) gets the smallest absmean scale and an infinite
    cut, so all its codes are 0.
    """
    any_kept = kept > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = kept_sums / np.maximum(kept, 1)
    scales = np.where(any_kept, mean, ABSMEAN_EPS).astype(np.float32)
    cuts = np.where(any_kept, cuts, np.float32(np.inf)).astype(np.float32)
    thresholds = (threshold_raw.astype(np.float64) / scales).astype(np.float32)
    return scales, thresholds, cuts


def _optimal_statistics(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The L2-optimal cut per row: sort |w| descending, keep the k maximising S_k² / k.

    For a kept set of size k the best scale is its mean and the squared error is
    ||w||² − S_k²/k, so maximising S_k²/k over k (only the k largest can be optimal)
    gives the exact optimum. Blocks of whole rows (about ``CHUNK`` weights) are sorted
    at a time; weights tied with the k-th largest are kept too, and the scale is the mean
    of everything kept, so scale and codes always agree.
    """
    n_rows, n_cols = rows.shape
    step = max(1, CHUNK // max(n_cols, 1))
    starts = list(range(0, n_rows, step))

    def one(r0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = np.abs(rows[r0 : r0 + step].astype(np.float32))
        if not np.isfinite(a.max()):
            raise _NonFinite
        a.sort(axis=1)
        desc = a[:, ::-1]
        csum = np.cumsum(desc, axis=1, dtype=np.float64)
        score = np.square(csum) / np.arange(1, n_cols + 1, dtype=np.float64)
        best = score.argmax(axis=1)
        picked = np.arange(desc.shape[0])
        cut = desc[picked, best]
        with parallel.row_broadcasts(n_cols):
            kept = np.count_nonzero(desc >= cut[:, None], axis=1)
        kept_sums = csum[picked, kept - 1]
        kept = np.where(cut > 0, kept, 0)
        return kept_sums, kept, cut

    parts = parallel.run(one, starts, rows.size)
    kept_sums = np.concatenate([p[0] for p in parts])
    kept = np.concatenate([p[1] for p in parts])
    cuts = np.concatenate([p[2] for p in parts]).astype(np.float32)
    return _kept_scales(kept_sums, kept, cuts, cuts)


def fit_quality(original: np.ndarray, scales: np.ndarray, cuts: np.ndarray, per_row: bool) -> Quality:
    """The :class:`Quality` of ``scale * code`` against ``original``, from per-row sums.

    With codes ``c = sign(w)`` where ``|w| >= cut`` (else 0) and ŵ = s·c, the error of a
    weight is ``|w| − s`` where kept and ``|w|`` elsewhere, and ||ŵ||² = s²·n_kept; so
    one pass over the original (float32 blocks, sums gathered in float64) gives every
    figure without building ŵ, and <w, ŵ> follows from the three squared norms.
    Non-finite weights count as 0 (they were stored as 0).
    """
    arr = np.asarray(original)
    rows = _as_rows(arr, per_row and arr.ndim >= 2)
    scales = np.asarray(scales, dtype=np.float32).ravel()
    cuts = np.asarray(cuts, dtype=np.float32).ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        fit = _row_fit(rows, scales, cuts)
        if not _fit_is_finite(fit):
            # NaN/Inf stored as 0, or squares beyond float32: redo in float64
            rows = _clean(rows) if find_nonfinite(rows) is not None else rows
            fit = _row_fit(rows, scales, cuts, wide=True)
    return _quality_of_fit(fit, scales)


def _fit_is_finite(fit: _Fit) -> bool:
    """Sums float32 can be trusted with: finite, and not so small that squares underflowed
    (then, as for overflow, the sums are redone in float64)."""
    finite = np.isfinite(fit[0]).all() and np.isfinite(fit[1]).all() and math.isfinite(fit[3])
    return bool(finite and float(fit[0].sum()) > 1e-30)


def _quality_of_fit(fit: _Fit, scales: np.ndarray) -> Quality:
    sq, sq_err, kept, max_abs = fit
    s64 = scales.astype(np.float64)
    aa = float(sq.sum())
    dd = float(sq_err.sum())
    bb = parallel.sum_of_products(s64 * s64, kept.astype(np.float64))
    return _quality_of_sums(aa, bb, (aa + bb - dd) / 2.0, dd, max_abs)


def _row_fit(rows: np.ndarray, scales: np.ndarray, cuts: np.ndarray, wide: bool = False) -> _Fit:
    """Per row: Σw², Σ(w − ŵ)², how many weights are kept; and the largest |w − ŵ|.

    Sums are float32 pairwise sums per block (float64 when ``wide``) added in float64.
    """
    cap = _block_capacity(rows)
    scratch = parallel.Scratch()
    acc = np.float64 if wide else np.float32

    def one(block: tuple[int, int, int, int]) -> _BlockFit:
        return _fit_block(_piece(rows, block), block, cuts, scales, scratch, cap, acc)

    blocks = list(_blocks(rows))
    return _gather_fit(rows.shape[0], blocks, parallel.run(one, blocks, rows.size))


_BlockFit = tuple[np.ndarray, np.ndarray, np.ndarray, float]
FEW_ROWS = 64
"""Blocks of at most this many rows count their kept weights row by row."""


def _fit_block(
    piece: np.ndarray,
    block: tuple[int, int, int, int],
    cuts: np.ndarray,
    scales: np.ndarray,
    scratch: parallel.Scratch,
    cap: int,
    acc: type,
) -> _BlockFit:
    """One block's share of :func:`_row_fit`: the error is ``|w| − s`` where kept, else ``|w|``."""
    shape, m = piece.shape, piece.size
    a = np.abs(piece, out=scratch.get("abs", cap, np.float32)[:m].reshape(shape))
    with parallel.row_broadcasts(shape[1]):
        kept = np.greater_equal(
            a, _cut_for(cuts, block), out=scratch.get("kept", cap, np.bool_)[:m].reshape(shape)
        )
    return _fit_kept(a, kept, block, scales, scratch, cap, acc)


def _fit_kept(
    a: np.ndarray,
    kept: np.ndarray,
    block: tuple[int, int, int, int],
    scales: np.ndarray,
    scratch: parallel.Scratch,
    cap: int,
    acc: type,
) -> _BlockFit:
    """:func:`_fit_block` from a block's ``|w|`` and its kept mask (``|w| >= cut``);
    overwrites ``a``."""
    shape, m = a.shape, a.size
    if shape[0] <= FEW_ROWS:  # a flat count per row beats a per-row sum of bytes
        n_kept = np.array([np.count_nonzero(row) for row in kept], dtype=np.int64)
    else:
        n_kept = np.add.reduce(kept.view(np.uint8), axis=1, dtype=np.int32)
    with parallel.row_broadcasts(shape[1]):
        err = np.multiply(
            kept, _cut_for(scales, block), out=scratch.get("err", cap, np.float32)[:m].reshape(shape)
        )
    np.subtract(a, err, out=err)
    worst = float(np.abs(err, out=err).max())  # |err| squares as err does
    if acc is np.float64:
        sq_err = np.einsum("ij,ij->i", err.astype(np.float64), err.astype(np.float64))
        sq = np.einsum("ij,ij->i", a.astype(np.float64), a.astype(np.float64))
    else:
        sq_err = np.square(err, out=err).sum(axis=1, dtype=np.float32)
        sq = np.square(a, out=a).sum(axis=1, dtype=np.float32)
    return sq, sq_err, n_kept, worst


def _gather_fit(n_rows: int, blocks: list[tuple[int, int, int, int]], results: list[_BlockFit]) -> _Fit:
    sq = np.zeros(n_rows, dtype=np.float64)
    sq_err = np.zeros(n_rows, dtype=np.float64)
    kept = np.zeros(n_rows, dtype=np.int64)
    max_abs = 0.0
    for block, (s, e, k, worst) in zip(blocks, results, strict=True):
        r0, r1 = block[0], block[1]
        sq[r0:r1] += s
        sq_err[r0:r1] += e
        kept[r0:r1] += k
        max_abs = math.nan if math.isnan(worst) or math.isnan(max_abs) else max(max_abs, worst)
    return sq, sq_err, kept, max_abs


def _quality_of_sums(aa: float, bb: float, ab: float, dd: float, max_abs: float) -> Quality:
    """Quality from ||w||², ||ŵ||², <w, ŵ> and ||w − ŵ||²."""
    na, nb = math.sqrt(aa), math.sqrt(bb)
    rel = (0.0 if dd == 0.0 else math.inf) if na == 0.0 else math.sqrt(dd) / na
    if na == 0.0 and nb == 0.0:
        cos = 1.0
    elif na == 0.0 or nb == 0.0:
        cos = 0.0
    else:
        cos = ab / (na * nb)
    return Quality(rel_l2=rel, cosine=cos, max_abs=max_abs, norm=na, norm_reconstructed=nb)


def _checked_scales(shape: tuple[int, ...], scales: np.ndarray, per_row: bool) -> tuple[int, np.ndarray]:
    """The element count of ``shape`` and the scales as flat float32, checked to fit it: one
    per row (``shape[0]``) when ``per_row``, else exactly one."""
    numel = math.prod(shape)
    flat = np.asarray(scales, dtype=np.float32).ravel()
    if per_row and (len(shape) < 1 or flat.size != shape[0]):
        raise ValidationError(
            f"scales: per-row tensor of shape {tuple(shape)} needs "
            f"{shape[0] if shape else 1} scales, got {flat.size}"
        )
    if not per_row and flat.size != 1:
        raise ValidationError(f"scales: per-tensor encoding needs 1 scale, got {flat.size}")
    return numel, flat


def dequantize(
    packed: np.ndarray | bytes,
    shape: tuple[int, ...],
    scales: np.ndarray,
    per_row: bool,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Packed codes and scales → float32 tensor of ``shape`` (``scale * code``).

    ``out``: a C-contiguous float32 array of ``shape`` to fill and return. Reusing one array
    for many tensors (or calls) saves the page faults of a new one, which cost about as much
    as the unpacking (``docs/performance.md``).
    """
    numel, scales = _checked_scales(shape, scales, per_row)
    flat = None if out is None else output_buffer(out, numel)
    if out is not None and tuple(out.shape) != tuple(shape):
        raise ValidationError(f"out: expected shape {tuple(shape)}, got {tuple(out.shape)}")
    if per_row:
        rows = shape[0]
        result = unpack_rows_scaled(packed, rows, numel // rows if rows else 0, scales, out=flat)
    else:
        result = unpack_scaled(packed, numel, float(scales[0]), out=flat)
    return result.reshape(shape) if out is None else out


def dequantize_chunks(
    packed: np.ndarray | bytes, shape: tuple[int, ...], scales: np.ndarray, per_row: bool
) -> Iterator[np.ndarray]:
    """:func:`dequantize` as consecutive flat float32 pieces in C order, each a view of one
    reused cache-sized buffer (valid until the next piece): for writing a tensor far
    larger than the cache straight to a file without building it in memory first."""
    numel, scales = _checked_scales(shape, scales, per_row)
    if per_row:
        return iter_unpacked(packed, shape[0], numel // shape[0] if shape[0] else 0, scales)
    return iter_unpacked(packed, 1, numel, scales)


def reconstruction_quality(original: np.ndarray, reconstructed: np.ndarray) -> Quality:
    """Relative L2 error, cosine similarity and max abs error, summed in float64 by chunks.

    The sums avoid BLAS (:func:`.parallel.sum_of_products`): they run once per imported or packed
    tensor, often while other work keeps every core busy.
    """
    a = np.asarray(original).ravel()
    b = np.asarray(reconstructed).ravel()
    if a.size != b.size:
        raise ValidationError(f"reconstruction: sizes differ ({a.size} vs {b.size})")
    aa = bb = ab = dd = 0.0
    max_abs = 0.0
    for start in range(0, a.size, CHUNK):
        x = a[start : start + CHUNK].astype(np.float64)
        y = b[start : start + CHUNK].astype(np.float64)
        finite = np.isfinite(x)
        if not finite.all():
            x = np.where(finite, x, 0.0)
        d = x - y
        aa += parallel.sum_of_products(x, x)
        bb += parallel.sum_of_products(y, y)
        ab += parallel.sum_of_products(x, y)
        dd += parallel.sum_of_products(d, d)
        max_abs = max(max_abs, float(np.abs(d).max()))
    return _quality_of_sums(aa, bb, ab, dd, max_abs)
