"""Train ``samples/digits_mlp.safetensors``: a small REAL trained model, and its test set.

Run: ``python samples/train_digits_mlp.py`` (needs scikit-learn, for its bundled copy of
the UCI handwritten digits: 1,797 8x8 images, no download). Writes
``samples/digits_mlp.safetensors`` (the trained weights, about 110 KB) and
``samples/digits_test.npz`` (the 360 held-out images and labels, for a forward pass).

The model is a 3-layer perceptron with LayerNorm, trained here with Adam in float32 on a
fixed split and seed, so the run is deterministic on one machine (BLAS may change the last
bits elsewhere; the files in the repository are the reference):

    x (64 pixels / 16) → Linear 64→128 → LayerNorm → ReLU → Linear 128→128 → LayerNorm
      → ReLU → Linear 128→10 → logits

Unlike ``checkpoint.safetensors`` (random weights shaped like a BERT), these weights were
learned from data, so they show what ternarising a trained model does: the reconstruction
figures of ``docs/tensors.md`` and ``tests/codec/ternary/test_trained_model.py`` come from it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HIDDEN = 128
EPOCHS = 400
BATCH = 64
LR = 3e-3
SEED = 20260603
TEST = 360
EPS = 1e-5


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mu = x.mean(axis=1, keepdims=True)
    inv = 1.0 / np.sqrt(x.var(axis=1, keepdims=True) + EPS)
    xhat = (x - mu) * inv
    return xhat * g + b, xhat, inv


def forward(p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Logits of a batch of images (pixels already divided by 16)."""
    h = x
    for i in (0, 1):
        z = h @ p[f"layers.{i}.weight"].T + p[f"layers.{i}.bias"]
        y, _, _ = layer_norm(z, p[f"layers.{i}.norm.weight"], p[f"layers.{i}.norm.bias"])
        h = np.maximum(y, 0)
    return h @ p["head.weight"].T + p["head.bias"]


def gradients(p: dict[str, np.ndarray], x: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Cross-entropy gradients of every parameter for one batch (plain backpropagation)."""
    cache = []
    h = x
    for i in (0, 1):
        z = h @ p[f"layers.{i}.weight"].T + p[f"layers.{i}.bias"]
        y, xhat, inv = layer_norm(z, p[f"layers.{i}.norm.weight"], p[f"layers.{i}.norm.bias"])
        cache.append((h, xhat, inv, y))
        h = np.maximum(y, 0)
    logits = h @ p["head.weight"].T + p["head.bias"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    d = e / e.sum(axis=1, keepdims=True)
    d[np.arange(len(labels)), labels] -= 1
    d /= len(labels)
    g = {"head.weight": d.T @ h, "head.bias": d.sum(axis=0)}
    dh = d @ p["head.weight"]
    for i in (1, 0):
        h_in, xhat, inv, y = cache[i]
        dy = dh * (y > 0)
        g[f"layers.{i}.norm.weight"] = (dy * xhat).sum(axis=0)
        g[f"layers.{i}.norm.bias"] = dy.sum(axis=0)
        dxhat = dy * p[f"layers.{i}.norm.weight"]
        dz = inv * (
            dxhat - dxhat.mean(axis=1, keepdims=True) - xhat * (dxhat * xhat).mean(axis=1, keepdims=True)
        )
        g[f"layers.{i}.weight"] = dz.T @ h_in
        g[f"layers.{i}.bias"] = dz.sum(axis=0)
        dh = dz @ p[f"layers.{i}.weight"]
    return {k: v.astype(np.float32) for k, v in g.items()}


def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
    def linear(n_out: int, n_in: int) -> np.ndarray:
        return (rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(np.float32)

    p = {}
    for i, n_in in ((0, 64), (1, HIDDEN)):
        p[f"layers.{i}.weight"] = linear(HIDDEN, n_in)
        p[f"layers.{i}.bias"] = np.zeros(HIDDEN, np.float32)
        p[f"layers.{i}.norm.weight"] = np.ones(HIDDEN, np.float32)
        p[f"layers.{i}.norm.bias"] = np.zeros(HIDDEN, np.float32)
    p["head.weight"] = linear(10, HIDDEN)
    p["head.bias"] = np.zeros(10, np.float32)
    return p


def train(x: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Adam (β 0.9/0.999) on shuffled mini-batches; returns the trained parameters."""
    p = init(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(a) for k, a in p.items()}
    step = 0
    for _ in range(EPOCHS):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            idx = order[start : start + BATCH]
            g = gradients(p, x[idx], labels[idx])
            step += 1
            for k in p:
                m[k] = 0.9 * m[k] + 0.1 * g[k]
                v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
                m_hat = m[k] / (1 - 0.9**step)
                v_hat = v[k] / (1 - 0.999**step)
                p[k] = (p[k] - LR * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(np.float32)
    return p


def main(argv: list[str]) -> None:
    from safetensors.numpy import save_file
    from sklearn.datasets import load_digits

    here = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent
    digits = load_digits()
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(digits.target))
    test, train_idx = order[:TEST], order[TEST:]
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    params = train(x[train_idx], y[train_idx], rng)
    accuracy = float((forward(params, x[test]).argmax(axis=1) == y[test]).mean())
    meta = {
        "model": "digits MLP 64-128-128-10 with LayerNorm",
        "data": "UCI handwritten digits (scikit-learn load_digits)",
        "trained_by": "thermo samples/train_digits_mlp.py",
        "test_accuracy": f"{accuracy:.4f}",
    }
    save_file(
        {k: np.ascontiguousarray(a) for k, a in sorted(params.items())},
        str(here / "digits_mlp.safetensors"),
        metadata=meta,
    )
    np.savez_compressed(
        here / "digits_test.npz", x=digits.data[test].astype(np.uint8), y=digits.target[test].astype(np.uint8)
    )
    print(f"trained: test accuracy {accuracy:.4f} on {TEST} held-out digits")


if __name__ == "__main__":
    main(sys.argv)
