"""SNNConfig: the crate's defaults and validation."""

from __future__ import annotations

import pytest

from thermo_cli.errors import ValidationError
from thermo_cli.operations.snn import SNNConfig


def test_every_crate_default():
    c = SNNConfig()
    assert (c.num_neurons, c.input_dim, c.top_k) == (100, 2048, 10)
    assert (c.stdp_lr, c.homeostasis_target, c.competition_strength) == (0.01, 0.1, 0.5)
    assert (c.decay_rate, c.trace_decay, c.spike_threshold) == (0.001, 0.1, 0.5)
    assert (c.use_ternary, c.ternary_threshold) == (False, 0.3)
    assert (c.learn_prototypes, c.prototype_lr_scale) == (True, 10.0)


def test_dict_round_trip():
    c = SNNConfig(num_neurons=7, input_dim=3, top_k=6, use_ternary=True)
    assert SNNConfig.from_dict(c.to_dict()) == c
    assert SNNConfig.from_dict({"num_neurons": 20}) == SNNConfig(num_neurons=20)
    with pytest.raises(ValidationError, match="unknown setting 'neurons'"):
        SNNConfig.from_dict({"neurons": 5})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"num_neurons": 0}, "num_neurons"),
        ({"num_neurons": 2.0}, "num_neurons"),
        ({"input_dim": -1}, "input_dim"),
        ({"top_k": 101}, "top_k"),
        ({"top_k": 100}, "top_k"),  # k = n would connect every neuron to itself
        ({"num_neurons": 10}, "top_k"),  # the default 10 connections need 11 neurons
        ({"stdp_lr": float("nan")}, "stdp_lr"),
        ({"decay_rate": 2.0}, "decay_rate"),
        ({"competition_strength": -0.1}, "competition_strength"),
        ({"spike_threshold": float("inf")}, "spike_threshold"),
        ({"use_ternary": 1}, "use_ternary"),
        ({"num_neurons": 100_000, "input_dim": 100_000}, "exceeds"),
    ],
)
def test_bad_settings_name_the_field(changes, field):
    with pytest.raises(ValidationError, match=field):
        SNNConfig(**changes)
