"""Thermal and consolidation presets hold the crate's constants; triggers fire as it did."""

from __future__ import annotations

import pytest

from thermo_cli.config.engine import (
    ConsolidationPolicy,
    DeltaCount,
    DirtySize,
    Manual,
    ThermalConfig,
    TimePeriod,
)
from thermo_cli.errors import ValidationError
from thermo_cli.model import NS_PER_SECOND, U64_MAX

HOUR = 3600 * NS_PER_SECOND


def test_default_thermal_config():
    c = ThermalConfig.default()
    assert c.decay_rates == (0.1, 0.01, 0.001, 0.0001)
    assert c.promotion_thresholds == (0.6, 0.75, 0.9, 1.0)
    assert c.demotion_thresholds == (0.0, 0.3, 0.4, 0.5)
    assert c.min_observations == (3, 10, 50, U64_MAX)
    assert c.allow_demotion == (False, True, True, True)
    assert (c.prune_threshold, c.crystallization_threshold, c.allow_warming, c.warming_delta) == (
        0.05,
        0.75,
        True,
        0.3,
    )


def test_fast_learner_thermal_config():
    c = ThermalConfig.preset("fast-learner")
    assert c.decay_rates == (0.05, 0.005, 0.0005, 0.00005)
    assert c.promotion_thresholds == (0.5, 0.65, 0.85, 1.0)
    assert c.demotion_thresholds == (0.0, 0.2, 0.3, 0.4)
    assert c.min_observations == (2, 5, 20, U64_MAX)
    assert c.allow_demotion == (False, True, True, False)
    assert (c.prune_threshold, c.crystallization_threshold, c.allow_warming, c.warming_delta) == (
        0.03,
        0.85,
        True,
        0.2,
    )


def test_organic_thermal_config():
    c = ThermalConfig.preset("organic")
    assert c.decay_rates == (0.1, 0.01, 0.001, 0.0001)
    assert c.promotion_thresholds == (0.7, 0.8, 0.95, 1.0)
    assert c.demotion_thresholds == (0.0, 0.25, 0.35, 0.45)
    assert c.min_observations == (5, 15, 100, U64_MAX)
    assert c.allow_demotion == (False, True, True, True)
    assert (c.prune_threshold, c.crystallization_threshold, c.allow_warming, c.warming_delta) == (
        0.05,
        0.95,
        True,
        0.3,
    )


def test_legacy_04_config_maps_onto_four_layers():
    c = ThermalConfig.from_legacy_04(
        crystallization_threshold=0.8,
        min_observations=5,
        prune_threshold=0.1,
        allow_warming=False,
        warming_delta=0.25,
    )
    d = ThermalConfig.default()
    assert c.promotion_thresholds == (0.6, 0.75, 0.8, 1.0)
    assert c.min_observations == (5, 10, 50, U64_MAX)
    assert (c.prune_threshold, c.crystallization_threshold, c.allow_warming, c.warming_delta) == (
        0.1,
        0.8,
        False,
        0.25,
    )
    assert (c.decay_rates, c.demotion_thresholds, c.allow_demotion) == (
        d.decay_rates,
        d.demotion_thresholds,
        d.allow_demotion,
    )
    assert ThermalConfig.from_legacy_04().prune_threshold == 0.1


def test_unknown_thermal_preset():
    with pytest.raises(ValidationError, match="preset"):
        ThermalConfig.preset("tropical")


def test_consolidation_presets():
    assert ConsolidationPolicy.default() == ConsolidationPolicy(
        (DeltaCount(1000), TimePeriod(24)), True, True
    )
    assert ConsolidationPolicy.aggressive() == ConsolidationPolicy(
        (DeltaCount(100), TimePeriod(1)), True, True
    )
    assert ConsolidationPolicy.conservative() == ConsolidationPolicy(
        (DeltaCount(10000), TimePeriod(168)), False, False
    )
    assert ConsolidationPolicy.preset("manual").triggers == (Manual(),)


class TestShouldConsolidate:
    now = 1_000_000 * HOUR

    def test_delta_count_fires_at_n(self):
        p = ConsolidationPolicy.default()
        assert not p.should_consolidate(999, self.now, 0, self.now)
        assert p.should_consolidate(1000, self.now, 0, self.now)

    def test_time_period_fires_after_the_hours(self):
        p = ConsolidationPolicy.default()
        assert not p.should_consolidate(0, self.now - 24 * HOUR + 1, 0, self.now)
        assert p.should_consolidate(0, self.now - 24 * HOUR, 0, self.now)
        assert p.should_consolidate(0, self.now - 25 * HOUR, 0, self.now)

    def test_dirty_size_fires_at_bytes(self):
        p = ConsolidationPolicy((DirtySize(10_000),), True, True)
        assert not p.should_consolidate(10**6, self.now - 10**6 * HOUR, 9_999, self.now)
        assert p.should_consolidate(0, self.now, 10_000, self.now)

    def test_manual_never_fires(self):
        p = ConsolidationPolicy.manual()
        assert not p.should_consolidate(10**9, 0, 10**12, self.now)

    def test_thresholds_summarise_the_triggers(self):
        p = ConsolidationPolicy((DeltaCount(50), DeltaCount(10), TimePeriod(2), Manual()), True, True)
        assert p.thresholds() == (10, 2 * HOUR, None)
        assert ConsolidationPolicy.manual().thresholds() == (None, None, None)
