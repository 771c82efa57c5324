"""Generate ``samples/checkpoint.safetensors``: a tiny BERT-like checkpoint of mixed dtypes.

Run: ``python samples/make_checkpoint.py [OUT]``. Tensor bytes are deterministic (fixed
seed); the library writes ``__metadata__`` keys in hash order, so header bytes may differ.

The tensors look like a trained 2-layer encoder (hidden 64, 4 heads, FFN 256, vocab 512):
weights drawn from a heavy-tailed distribution at BERT's init scale (std 0.02), LayerNorm
gains near 1, small biases, integer position ids and a boolean attention mask. Dtypes
are mixed the way real checkpoints mix them: embeddings in F32, layer 0 in F16, layer 1
attention in BF16 and its feed-forward in FP8 (F8_E4M3) with F32 per-tensor scales, as
FP8 checkpoints store them. It is written with the ``safetensors`` library itself, so it
is a genuine third-party file for the importer, not one made by thermo's own writer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import safetensors

HIDDEN, FFN, VOCAB, POSITIONS, LAYERS = 64, 256, 512, 128, 2
METADATA = {
    "format": "pt",
    "model_type": "bert",
    "hidden_size": str(HIDDEN),
    "num_hidden_layers": str(LAYERS),
    "num_attention_heads": "4",
    "intermediate_size": str(FFN),
    "vocab_size": str(VOCAB),
    "generator": "thermo samples/make_checkpoint.py",
}


def to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 bit patterns, rounding to nearest even."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def e4m3_table() -> np.ndarray:
    """The float value of each of the 256 F8_E4M3 (OCP "fn") codes; NaN codes are NaN."""
    codes = np.arange(256, dtype=np.int64)
    sign = np.where(codes & 0x80, -1.0, 1.0)
    exp = (codes >> 3) & 0xF
    man = codes & 0x7
    normal = (1 + man / 8.0) * np.exp2(exp - 7.0)
    subnormal = (man / 8.0) * np.exp2(-6.0)
    values = sign * np.where(exp == 0, subnormal, normal)
    values[(codes & 0x7F) == 0x7F] = np.nan
    return values


def to_e4m3_bits(x: np.ndarray) -> np.ndarray:
    """float → nearest F8_E4M3 code (saturating at ±448), vectorized by table search."""
    table = e4m3_table()
    finite = np.flatnonzero(np.isfinite(table) & (np.arange(256) != 0x80))  # one zero: +0
    order = finite[np.argsort(table[finite], kind="stable")]
    sorted_values = table[order]
    flat = np.clip(x.ravel(), -448.0, 448.0)
    hi = np.clip(np.searchsorted(sorted_values, flat), 1, len(sorted_values) - 1)
    lo = hi - 1
    pick = np.where(flat - sorted_values[lo] <= sorted_values[hi] - flat, lo, hi)
    return order[pick].astype(np.uint8).reshape(x.shape)


def weight(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Heavy-tailed weights at BERT's init scale, like a trained matrix."""
    return (rng.standard_t(5, size=shape) * 0.02).astype(np.float32)


def build(rng: np.random.Generator) -> dict[str, tuple[str, np.ndarray]]:
    """name → (safetensors library dtype name, array of the stored bit patterns)."""
    t: dict[str, tuple[str, np.ndarray]] = {}

    def put(name: str, dtype: str, arr: np.ndarray) -> None:
        t[name] = (dtype, np.ascontiguousarray(arr))

    put("embeddings.word_embeddings.weight", "float32", weight(rng, VOCAB, HIDDEN))
    put("embeddings.position_embeddings.weight", "float32", weight(rng, POSITIONS, HIDDEN))
    put("embeddings.token_type_embeddings.weight", "float32", weight(rng, 2, HIDDEN))
    put("embeddings.LayerNorm.weight", "float32", 1 + rng.normal(0, 0.05, HIDDEN).astype(np.float32))
    put("embeddings.LayerNorm.bias", "float32", rng.normal(0, 0.01, HIDDEN).astype(np.float32))
    put("embeddings.position_ids", "int64", np.arange(POSITIONS, dtype=np.int64)[None, :])
    put("embeddings.attention_mask", "bool", np.tril(np.ones((POSITIONS, POSITIONS), dtype=bool)))
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        half = i == 0
        for part in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "attention.output.dense",
        ):
            w, b = weight(rng, HIDDEN, HIDDEN), rng.normal(0, 0.01, HIDDEN).astype(np.float32)
            if half:
                put(p + part + ".weight", "float16", w.astype(np.float16))
                put(p + part + ".bias", "float16", b.astype(np.float16))
            else:
                put(p + part + ".weight", "bfloat16", to_bf16_bits(w))
                put(p + part + ".bias", "bfloat16", to_bf16_bits(b))
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            put(p + ln + ".weight", "float32", 1 + rng.normal(0, 0.05, HIDDEN).astype(np.float32))
            put(p + ln + ".bias", "float32", rng.normal(0, 0.01, HIDDEN).astype(np.float32))
        for part, shape in (("intermediate.dense", (FFN, HIDDEN)), ("output.dense", (HIDDEN, FFN))):
            w = weight(rng, *shape)
            bias = rng.normal(0, 0.01, shape[0]).astype(np.float32)
            if half:
                put(p + part + ".weight", "float16", w.astype(np.float16))
                put(p + part + ".bias", "float16", bias.astype(np.float16))
            else:
                scale = np.float32(np.abs(w).max() / 448.0)
                put(p + part + ".weight", "float8_e4m3fn", to_e4m3_bits(w / scale))
                put(p + part + ".weight_scale", "float32", np.array(scale, dtype=np.float32))
                put(p + part + ".bias", "bfloat16", to_bf16_bits(bias))
    put("pooler.dense.weight", "float32", weight(rng, HIDDEN, HIDDEN))
    put("pooler.dense.bias", "float32", np.zeros(HIDDEN, dtype=np.float32))
    return t


def main(argv: list[str]) -> None:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("checkpoint.safetensors")
    tensors = build(np.random.default_rng(20240607))
    specs = {
        name: safetensors.TensorSpec(
            dtype=dtype, shape=list(arr.shape), data_ptr=arr.ctypes.data, data_len=arr.nbytes
        )
        for name, (dtype, arr) in tensors.items()
    }
    safetensors.serialize_file(specs, str(out), metadata=METADATA)
    out.chmod(0o644)
    print(f"wrote {out} ({out.stat().st_size:,} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main(sys.argv)
