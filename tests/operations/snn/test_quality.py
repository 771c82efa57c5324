"""The quality check of prototype learning (ENGINE.md FIX), at the issue's full size.

8 clusters in 2048-D, noise of norm 0.3 per sample, 4,000 samples; then every centre turns
30 degrees and 4,000 more samples follow. With learning, every centre gets its own neuron
within cosine 0.9 and nearly every tick spikes; with the crate's frozen random prototypes
the best cosine stays near chance and nothing spikes at threshold 0.5.
"""

from __future__ import annotations

import numpy as np
import pytest

from thermo_cli.operations.snn import EmbeddedSNN, SNNConfig
from thermo_cli.operations.snn.synthetic import alignment, cluster_samples, drift, random_centres

SEED = 20240611


def _feed(net: EmbeddedSNN, samples: np.ndarray) -> float:
    """Process all samples; return the fraction of the last 1,000 ticks with a spike."""
    net.process_batch(samples[:-1000])
    before = net.counters["ticks_with_spikes"]
    net.process_batch(samples[-1000:])
    return (net.counters["ticks_with_spikes"] - before) / 1000


@pytest.fixture(scope="module")
def streams():
    rng = np.random.default_rng(SEED)
    centres = random_centres(rng, 8, 2048)
    first, _ = cluster_samples(rng, centres, 4000, 0.3)
    moved = drift(rng, centres, 30.0)
    second, _ = cluster_samples(rng, moved, 4000, 0.3)
    return centres, first, moved, second


def test_learning_prototypes_find_and_track_the_clusters(streams):
    centres, first, moved, second = streams
    net = EmbeddedSNN(SNNConfig(), seed=SEED)
    spiking = _feed(net, first)
    found = alignment(net.prototypes, centres)
    assert found.worst >= 0.9, found.cosines
    assert found.distinct, found.neurons
    assert spiking >= 0.9
    assert net.counters["recruits"] == 8

    assert alignment(net.prototypes, moved).worst < 0.9  # the drift really moved them away
    spiking = _feed(net, second)
    tracked = alignment(net.prototypes, moved)
    assert tracked.worst >= 0.9, tracked.cosines
    assert tracked.distinct
    assert spiking >= 0.9


def test_frozen_random_prototypes_stay_near_chance(streams):
    centres, first, _, _ = streams
    net = EmbeddedSNN(SNNConfig(learn_prototypes=False), seed=SEED)
    spiking = _feed(net, first)
    frozen = alignment(net.prototypes, centres)
    assert max(frozen.cosines) < 0.15
    assert spiking == 0.0
    assert net.counters["spikes"] == 0
