"""TernaryLayer: the crate's per-row quantization and forward, against naive loops."""

from __future__ import annotations

import numpy as np
import pytest

from thermo_cli.codec.ternary.layer import TernaryLayer
from thermo_cli.errors import ValidationError


def naive_layer(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The crate's TernaryLayer, one row and one weight at a time."""
    signs = np.zeros(w.shape, dtype=np.int8)
    scales = np.zeros(w.shape[0], dtype=np.float32)
    for r in range(w.shape[0]):
        row = w[r].astype(np.float32)
        scale = max(abs(float(v)) for v in row)
        scale = np.float32(scale if scale > 1e-6 else 1.0)
        normed = [np.float32(v) / scale for v in row]
        big = [abs(float(v)) for v in normed if abs(float(v)) > 1e-6]
        t = np.float32(sum(big) / len(big)) if big else np.float32(0.5)
        for i, v in enumerate(normed):
            signs[r, i] = 1 if v >= t else -1 if v <= -t else 0
        scales[r] = scale
    return signs, scales


def naive_forward(signs: np.ndarray, scales: np.ndarray, x: np.ndarray) -> np.ndarray:
    out = np.zeros(signs.shape[0])
    for r in range(signs.shape[0]):
        out[r] = float(scales[r]) * sum(float(signs[r, i]) * float(x[i]) for i in range(signs.shape[1]))
    return out


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (3, 5), (8, 16), (7, 33)])
def test_quantization_and_forward_match_naive(rows, cols):
    rng = np.random.default_rng(rows * 100 + cols)
    w = (rng.standard_normal((rows, cols)) * 0.1).astype(np.float32)
    w[0, 0] = 0.0
    layer = TernaryLayer.from_float(w, method="reference")
    signs, scales = naive_layer(w)
    assert np.array_equal(layer.signs(), signs)
    assert np.array_equal(layer.scales, scales)
    assert layer.out_features == rows and layer.in_features == cols
    x = rng.standard_normal(cols).astype(np.float32)
    assert np.allclose(layer.forward(x), naive_forward(signs, scales, x), rtol=1e-5, atol=1e-5)
    batch = rng.standard_normal((4, cols)).astype(np.float32)
    out = layer(batch)
    assert out.shape == (4, rows) and out.dtype == np.float32
    for b in range(4):
        assert np.allclose(out[b], naive_forward(signs, scales, batch[b]), rtol=1e-5, atol=1e-5)
    assert np.allclose(layer.forward(batch, cache=False), out)
    assert np.allclose(layer.dequantize(), signs * scales[:, None])


def test_zero_rows_get_scale_one_and_no_active_weights():
    w = np.zeros((2, 4), dtype=np.float32)
    w[1] = [1e-7, -1e-7, 0, 0]
    layer = TernaryLayer.from_float(w, method="reference")
    assert layer.scales.tolist() == [1.0, 1.0]
    assert layer.codes.count_active() == 0
    assert layer.forward(np.ones(4)).tolist() == [0.0, 0.0]


def test_memory_and_compression():
    layer = TernaryLayer.from_float(np.ones((64, 64), dtype=np.float32))
    assert layer.memory_bytes == 64 * 64 // 4 + 64 * 4
    assert layer.compression_ratio() == pytest.approx(64 * 64 * 4 / layer.memory_bytes)
    assert "out=64" in repr(layer)


def test_absmean_layer():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 10)).astype(np.float32)
    layer = TernaryLayer.from_float(w, method="absmean")
    assert np.allclose(layer.scales, np.abs(w).mean(axis=1), rtol=1e-6)
    x = rng.standard_normal(10).astype(np.float32)
    assert np.allclose(layer(x), layer.dequantize() @ x, rtol=1e-5, atol=1e-6)


def test_bad_shapes():
    with pytest.raises(ValidationError, match="2-D"):
        TernaryLayer.from_float(np.ones(4, dtype=np.float32))
    layer = TernaryLayer.from_float(np.ones((2, 3), dtype=np.float32))
    with pytest.raises(ValidationError, match=r"expected input of shape \(3,\)"):
        layer.forward(np.ones(4))
    with pytest.raises(ValidationError, match="non-finite"):
        TernaryLayer.from_float(np.array([[np.nan, 1.0]], dtype=np.float32))
