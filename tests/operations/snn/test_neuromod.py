"""Neuromodulation levels and their sync presets (ENGINE.md "Neuromodulation")."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from thermo_cli.errors import ValidationError
from thermo_cli.operations.snn import NeuromodState, NeuromodSync


def test_baseline_is_one_half_each():
    nm = NeuromodState.baseline()
    assert nm.to_dict() == {"dopamine": 0.5, "serotonin": 0.5, "norepinephrine": 0.5, "acetylcholine": 0.5}


def test_signals_move_the_right_levels_and_clamp():
    nm = NeuromodState().reward(0.3)
    assert nm.dopamine == pytest.approx(0.8)
    nm.stress(0.2)
    assert nm.serotonin == pytest.approx(0.3) and nm.norepinephrine == pytest.approx(0.7)
    nm.focus(0.25)
    assert nm.acetylcholine == pytest.approx(0.75)
    nm.reward(5).stress(5).focus(-5)
    assert (nm.dopamine, nm.serotonin, nm.norepinephrine, nm.acetylcholine) == (1.0, 0.0, 1.0, 0.0)


def test_decay_returns_toward_baseline():
    nm = NeuromodState(dopamine=1.0, serotonin=0.0)
    nm.decay(0.1)
    assert nm.dopamine == pytest.approx(0.95) and nm.serotonin == pytest.approx(0.05)
    nm.decay(1.0)
    assert nm == NeuromodState()


@pytest.mark.parametrize("method", ["reward", "stress", "focus", "decay"])
@pytest.mark.parametrize("amount", [float("nan"), float("inf"), "0.1", True])
def test_non_numbers_are_refused(method, amount):
    nm = NeuromodState()
    with pytest.raises(ValidationError, match=method):
        getattr(nm, method)(amount)
    assert nm == NeuromodState()


@pytest.mark.parametrize("level", [-0.1, 1.5, float("nan")])
def test_levels_outside_the_unit_interval_are_refused(level):
    with pytest.raises(ValidationError, match="dopamine"):
        NeuromodState(dopamine=level)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["reward", "stress", "focus", "decay"]), st.floats(-10, 10, allow_nan=False)
        ),
        max_size=30,
    )
)
def test_levels_always_stay_in_range(ops):
    nm = NeuromodState()
    for name, amount in ops:
        getattr(nm, name)(amount)
    assert all(0.0 <= v <= 1.0 for v in nm.to_dict().values())


def test_dict_round_trip_and_errors():
    nm = NeuromodState(0.1, 0.2, 0.3, 0.4)
    assert NeuromodState.from_dict(nm.to_dict()) == nm
    with pytest.raises(ValidationError, match="missing level 'acetylcholine'"):
        NeuromodState.from_dict({"dopamine": 1, "serotonin": 1, "norepinephrine": 1})
    with pytest.raises(ValidationError, match="unknown level 'cortisol'"):
        NeuromodState.from_dict({**nm.to_dict(), "cortisol": 0.5})


def test_sync_presets_are_the_crates():
    assert NeuromodSync.default() == NeuromodSync(True, 0.1, 100)
    assert NeuromodSync.independent() == NeuromodSync(False, 0.0, 0)
    assert NeuromodSync.full_sync() == NeuromodSync(True, 1.0, 50)
    assert NeuromodSync.preset("full-sync") == NeuromodSync.full_sync()
    with pytest.raises(ValidationError, match="preset"):
        NeuromodSync.preset("eager")


def test_sync_pulls_local_toward_external():
    external = NeuromodState(dopamine=1.0)
    local = NeuromodSync.default().apply(NeuromodState(), external)
    assert local.dopamine == pytest.approx(0.55)
    assert NeuromodSync.full_sync().apply(NeuromodState(), external) == external
    untouched = NeuromodSync.independent().apply(NeuromodState(), external)
    assert untouched == NeuromodState()


def test_sync_interval():
    sync = NeuromodSync.default()
    assert sync.due(None, 0)
    assert not sync.due(1000, 1050)
    assert sync.due(1000, 1100)
    assert not NeuromodSync.independent().due(None, 0)


@pytest.mark.parametrize(("rate", "interval"), [(1.5, 10), (float("nan"), 10), (0.5, -1), (0.5, 1.5)])
def test_bad_sync_config_is_refused(rate, interval):
    with pytest.raises(ValidationError):
        NeuromodSync(True, rate, interval)
