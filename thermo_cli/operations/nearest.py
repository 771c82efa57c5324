"""Nearest tensor entries by cosine: which stored vectors (concepts, embeddings) a vector is like.

:class:`TensorIndex` gathers every visible tensor entry with a float dtype and as many
elements as the query vector (optionally only keys under a prefix) into one unit-row
float32 matrix, so a query is one matrix-vector product and a partial sort: no Python
loop over entries. Build it once to ask many questions; :func:`nearest` builds and asks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from thermo_cli.codec.tensors import dtype_info, value_to_array
from thermo_cli.errors import ValidationError
from thermo_cli.model import ReadResult


@dataclass(frozen=True, slots=True)
class Match:
    key: str
    cosine: float

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "cosine": self.cosine}


class TensorIndex:
    """Unit rows of the tensor entries of one dimension; see the module docstring."""

    def __init__(self, keys: list[str], matrix: np.ndarray) -> None:
        self.keys = keys
        norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64)).astype(np.float32)
        norms[norms == 0] = 1.0  # a zero vector stays zero: cosine 0 to anything
        self.matrix = matrix / norms[:, None]

    @classmethod
    def from_thermogram(cls, tg: Any, dim: int, prefix: str | None = None) -> TensorIndex:
        """Every visible tensor entry of ``tg`` with a float dtype and ``dim`` elements
        (newest uncommitted value first, as ``read`` sees it), under ``prefix`` if given."""
        keys = tg.keys()
        if prefix:
            keys = [k for k in keys if k.startswith(prefix)]
        chosen: list[str] = []
        raw: list[bytes] = []
        converted: dict[int, np.ndarray] = {}
        for key in keys:
            found: ReadResult | None = tg.read_entry(key)
            spec = found.tensor if found is not None else None
            if spec is None or spec.numel != dim or not dtype_info(spec.dtype).is_float:
                continue
            if spec.dtype == "F32" and spec.encoding == "raw":
                raw.append(found.value)  # type: ignore[union-attr]
            else:  # other floats and ternary-packed tensors: decoded to float32
                converted[len(chosen)] = value_to_array(found.value, spec).astype(np.float32).ravel()  # type: ignore[union-attr]
                raw.append(b"\0" * (4 * dim))
            chosen.append(key)
        matrix = np.frombuffer(b"".join(raw), dtype="<f4").reshape(len(chosen), dim).astype(np.float32)
        for row, values in converted.items():
            matrix[row] = values
        if not np.isfinite(matrix).all():
            matrix = np.where(np.isfinite(matrix), matrix, np.float32(0.0))
        return cls(chosen, matrix)

    def query(self, vector: Any, top: int = 10) -> list[Match]:
        """The ``top`` entries most similar to ``vector`` by cosine, best first (ties by key)."""
        v = check_vector(vector, self.matrix.shape[1])
        if isinstance(top, bool) or not isinstance(top, int) or top < 1:
            raise ValidationError(f"top: expected a positive integer, got {top!r}")
        if not self.keys:
            return []
        sims = self.matrix @ (v / np.float32(np.linalg.norm(v)))
        k = min(top, sims.shape[0])
        best = np.argpartition(-sims, k - 1)[:k] if k < sims.shape[0] else np.arange(sims.shape[0])
        order = sorted(best.tolist(), key=lambda i: (-float(sims[i]), self.keys[i]))
        return [Match(self.keys[i], float(sims[i])) for i in order]


def nearest(tg: Any, vector: Any, *, top: int = 10, prefix: str | None = None) -> list[Match]:
    """The ``top`` tensor entries of ``tg`` most similar to ``vector`` (see :class:`TensorIndex`)."""
    v = check_vector(vector, None)
    return TensorIndex.from_thermogram(tg, v.shape[0], prefix).query(v, top)


def check_vector(vector: Any, dim: int | None) -> np.ndarray:
    """A finite, nonzero float32 vector (of ``dim`` elements if given), or ValidationError."""
    try:
        v = np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError("vector: expected numbers") from None
    if v.ndim != 1 or v.size == 0:
        raise ValidationError(f"vector: expected one non-empty list of numbers, got shape {list(v.shape)}")
    if dim is not None and v.size != dim:
        raise ValidationError(f"vector: {v.size} elements, the entries have {dim}")
    if not np.isfinite(v).all():
        raise ValidationError(f"vector: element {int(np.argmin(np.isfinite(v)))} is not finite")
    if not v.any():
        raise ValidationError("vector: all zeros (a cosine needs a direction)")
    return v.astype(np.float32)


def parse_vector(text: str) -> np.ndarray:
    """A vector from a file (.npy, or JSON holding one list of numbers) or from text:
    numbers separated by commas or spaces."""
    if os.path.isfile(text):
        path = Path(text)
        if path.suffix.lower() == ".npy":
            try:
                data: Any = np.load(path, allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise ValidationError(f"{text}: not a readable .npy array ({exc})") from None
            return check_vector(
                np.asarray(data).reshape(-1) if np.ndim(data) == 2 and len(data) == 1 else data, None
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"{text}: not a JSON list of numbers ({exc})") from None
        return _numbers(data, text)
    parts = text.replace(",", " ").split()
    try:
        return check_vector([float(p) for p in parts], None)
    except ValueError:
        raise ValidationError(
            f"vector: {text[:40]!r} is neither a file nor numbers separated by commas"
        ) from None


def _numbers(data: Any, name: str) -> np.ndarray:
    if not isinstance(data, list) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in data
    ):
        raise ValidationError(f"{name}: expected one JSON list of numbers")
    return check_vector(data, None)
