"""A ternary linear layer: per-row scale, adaptive threshold, forward as one matrix product.

The crate's ``TernaryLayer``: each output row r keeps ``scale[r] = max |w_r|`` (1.0 when
that is <= 1e-6) and the row's weights normalised by it and quantized at the row's
adaptive threshold; ``forward(x)[r] = scale[r] * sum_i sign[r, i] * x[i]``. That is the
``reference`` method with ``per_row`` (``thermo_cli.codec.ternary.quantize``). Every other
method works the same way with its own scales; :meth:`TernaryLayer.from_float` uses the
library default (``absmean``), and ``method="reference"`` gives the crate's layer.

Weights are held packed (2 bits each). ``forward`` multiplies by the unpacked -1/0/+1
matrix in float32 — one BLAS matrix product for a whole batch — and keeps that matrix
after the first call (``out * in * 4`` bytes) unless ``cache=False``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thermo_cli.codec.ternary.packing import PackedTernary
from thermo_cli.codec.ternary.quantize import DEFAULT_METHOD, QuantizedTensor, quantize
from thermo_cli.errors import ValidationError


class TernaryLayer:
    """``out_features x in_features`` ternary weights with one scale per output row."""

    __slots__ = ("_q", "_signs")

    def __init__(self, quantized: QuantizedTensor) -> None:
        if len(quantized.shape) != 2:
            raise ValidationError(f"layer: weights must be 2-D (out, in), got shape {quantized.shape}")
        if not quantized.per_row:
            scale = np.full(quantized.shape[0], quantized.scales[0], dtype=np.float32)
            quantized = QuantizedTensor(
                quantized.codes,
                quantized.shape,
                scale,
                np.full_like(scale, quantized.thresholds[0]),
                True,
                quantized.method,
            )
        self._q = quantized
        self._signs: np.ndarray | None = None

    @classmethod
    def from_float(
        cls,
        weights: Any,
        *,
        method: str = DEFAULT_METHOD,
        threshold: float | None = None,
        nan_as_zero: bool = False,
    ) -> TernaryLayer:
        """Quantize a float (out, in) matrix row by row (``absmean`` by default; the crate's
        rule is ``method="reference"``)."""
        w = np.asarray(weights)
        if w.ndim != 2:
            raise ValidationError(f"layer: weights must be 2-D (out, in), got shape {w.shape}")
        return cls(
            quantize(
                w, method, threshold=threshold, per_row=True, nan_as_zero=nan_as_zero, what="layer weights"
            )
        )

    # shape and storage
    @property
    def out_features(self) -> int:
        return self._q.shape[0]

    @property
    def in_features(self) -> int:
        return self._q.shape[1]

    @property
    def scales(self) -> np.ndarray:
        return self._q.scales

    @property
    def thresholds(self) -> np.ndarray:
        return self._q.thresholds

    @property
    def codes(self) -> PackedTernary:
        return self._q.codes

    @property
    def quantized(self) -> QuantizedTensor:
        return self._q

    @property
    def memory_bytes(self) -> int:
        """Packed weights plus float32 scales (the unpacked cache is not counted)."""
        return self._q.nbytes

    def compression_ratio(self) -> float:
        """float32 size of the weights divided by :attr:`memory_bytes`."""
        return 4 * self.out_features * self.in_features / self.memory_bytes

    def signs(self) -> np.ndarray:
        """The -1/0/+1 weights as int8 (out, in)."""
        return self._q.values()

    def dequantize(self) -> np.ndarray:
        """``scale[r] * sign[r, i]`` as float32 (out, in)."""
        return self._q.dequantize()

    def _sign_matrix(self, cache: bool) -> np.ndarray:
        if self._signs is not None:
            return self._signs
        signs = self._q.codes.to_float().reshape(self._q.shape)
        if cache:
            self._signs = signs
        return signs

    def forward(self, x: Any, *, cache: bool = True) -> np.ndarray:
        """``x`` (in,) or (batch, in) → (out,) or (batch, out), float32."""
        xs = np.asarray(x, dtype=np.float32)
        if xs.ndim not in (1, 2) or xs.shape[-1] != self.in_features:
            raise ValidationError(
                f"forward: expected input of shape ({self.in_features},) or "
                f"(batch, {self.in_features}), got {tuple(xs.shape)}"
            )
        y: np.ndarray = xs @ self._sign_matrix(cache).T
        y *= self._q.scales
        return y

    __call__ = forward

    def __repr__(self) -> str:
        return (
            f"TernaryLayer(out={self.out_features}, in={self.in_features}, method={self._q.method}, "
            f"sparsity={self._q.codes.sparsity():.3f})"
        )
