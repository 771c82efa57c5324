"""Synthetic activation clusters: the quality check of prototype learning (test and benchmark).

Random unit-norm centres in ``dim`` dimensions; each sample is a centre plus Gaussian
noise scaled to a fixed norm; :func:`drift` turns every centre by a fixed angle toward a
fresh random direction. :func:`alignment` measures how well a network's prototypes cover
the centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def random_centres(rng: np.random.Generator, k: int, dim: int) -> np.ndarray:
    """``k`` random unit vectors, float64 (k, dim)."""
    c = rng.standard_normal((k, dim))
    out: np.ndarray = c / np.linalg.norm(c, axis=1, keepdims=True)
    return out


def cluster_samples(
    rng: np.random.Generator, centres: np.ndarray, n: int, noise_norm: float
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` float32 samples (centre of a uniformly drawn cluster + noise of norm ``noise_norm``)
    and the cluster label of each."""
    labels = rng.integers(0, centres.shape[0], n)
    noise = rng.standard_normal((n, centres.shape[1]), dtype=np.float32)
    noise *= np.float32(noise_norm) / np.linalg.norm(noise, axis=1, keepdims=True)
    noise += centres[labels].astype(np.float32)
    return noise, labels


def drift(rng: np.random.Generator, centres: np.ndarray, degrees: float) -> np.ndarray:
    """Each centre rotated by ``degrees`` toward its own fresh random orthogonal direction."""
    r = rng.standard_normal(centres.shape)
    r -= np.sum(r * centres, axis=1, keepdims=True) * centres
    r /= np.linalg.norm(r, axis=1, keepdims=True)
    a = np.deg2rad(degrees)
    out: np.ndarray = np.cos(a) * centres + np.sin(a) * r
    return out


@dataclass(frozen=True, slots=True)
class Alignment:
    """For each centre: the best-matching neuron and their cosine."""

    neurons: tuple[int, ...]
    cosines: tuple[float, ...]

    @property
    def worst(self) -> float:
        return min(self.cosines)

    @property
    def distinct(self) -> bool:
        return len(set(self.neurons)) == len(self.neurons)


def alignment(prototypes: np.ndarray, centres: np.ndarray) -> Alignment:
    p = prototypes / np.maximum(np.linalg.norm(prototypes, axis=1, keepdims=True), 1e-30)
    c = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    sims = c @ p.T
    best = sims.argmax(axis=1)
    return Alignment(tuple(int(i) for i in best), tuple(float(sims[i, j]) for i, j in enumerate(best)))


def sequential_kmeans(samples: np.ndarray, k: int) -> np.ndarray:
    """One-pass streaming k-means (MacQueen): the first ``k`` samples seed the centroids,
    each later sample moves its nearest centroid by 1/n; then every sample is labelled by its
    nearest centroid. The baseline the concept memory is measured against, run the same
    way (one pass, same order, same inputs)."""
    x = np.asarray(samples, dtype=np.float64)
    centroids = x[:k].copy()
    counts = np.ones(k)
    for row in x[k:]:
        j = int(np.argmin(((centroids - row) ** 2).sum(axis=1)))
        counts[j] += 1
        centroids[j] += (row - centroids[j]) / counts[j]
    squared = (x * x).sum(axis=1)[:, None] - 2 * x @ centroids.T + (centroids * centroids).sum(axis=1)
    labels: np.ndarray = squared.argmin(axis=1)
    return labels
