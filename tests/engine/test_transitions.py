"""Thermal transitions, decay, reinforce/weaken, warm: the crate's numbers and order."""

from __future__ import annotations

import pytest

from thermo_cli.codec import records
from thermo_cli.engine import ThermalConfig
from thermo_cli.engine.plasticity import f32
from thermo_cli.errors import NotFoundError, ValidationError
from thermo_cli.integrity import merkle
from thermo_cli.integrity.state import state_digest
from thermo_cli.model import Event, Layer

from .conftest import T0, manual, put

HOT, WARM, COOL, COLD = Layer.HOT, Layer.WARM, Layer.COOL, Layer.COLD
approx = pytest.approx


def where(tg, key):
    return [layer for layer in Layer if key in tg.layers[layer]]


class TestPromotion:
    def test_promotes_at_threshold_with_enough_observations(self, tg):
        put(tg, HOT, "ok", 0.6, count=3)
        put(tg, HOT, "few", 0.9, count=2)
        put(tg, HOT, "weak", 0.59, count=30)
        rep = tg.run_thermal_transitions()
        assert rep.promoted == [1, 0, 0]
        assert where(tg, "ok") == [WARM]
        assert where(tg, "few") == where(tg, "weak") == [HOT]

    def test_float32_threshold_comparison(self, tg):
        # f32(0.9) is below the double 0.9; the crate compares f32 with f32 and promotes
        put(tg, COOL, "k", 0.9, count=50)
        tg.run_thermal_transitions()
        assert where(tg, "k") == [COLD]

    def test_one_call_carries_an_entry_through_several_layers(self):
        cfg = ThermalConfig(promotion_thresholds=(0.5, 0.5, 0.5, 1.0), min_observations=(1, 1, 1, 2**64 - 1))
        tg = manual(thermal=cfg)
        put(tg, HOT, "k", 0.8, count=5)
        rep = tg.run_thermal_transitions()
        assert rep.promoted == [1, 1, 1]
        assert where(tg, "k") == [COLD]

    def test_promotion_merges_into_an_existing_entry(self, tg):
        put(tg, HOT, "k", 0.7, count=3, value=b"hot", at=T0 + 5)
        put(tg, WARM, "k", 0.4, count=2, value=b"warm")
        tg.run_thermal_transitions()
        e = tg.layers[WARM]["k"]
        # 0.3 * 0.4 + 0.7 * 0.7 = 0.61; value and time from the moved entry, counts summed
        assert e.strength == approx(0.61, abs=1e-6)
        assert (e.value, e.update_count, e.updated_at_ns) == (b"hot", 5, T0 + 5)
        assert "k" not in tg.layers[HOT]


class TestDemotion:
    def test_demoted_entry_keeps_95_percent(self, organic):
        put(organic, COOL, "k", 0.3)  # < 0.35 → warm with 0.285 (>= 0.25: stays)
        rep = organic.run_thermal_transitions()
        assert rep.demoted == [0, 1, 0]
        assert where(organic, "k") == [WARM]
        assert organic.layers[WARM]["k"].strength == approx(0.285, abs=1e-7)
        assert organic.layers[WARM]["k"].updated_at_ns > T0

    def test_warm_to_hot(self, tg):
        put(tg, WARM, "k", 0.25)  # < 0.3 → hot 0.2375
        tg.run_thermal_transitions()
        assert tg.layers[HOT]["k"].strength == approx(0.2375, abs=1e-7)

    def test_demotion_cascades_cold_to_hot_in_one_call(self, tg):
        put(tg, COLD, "k", 0.3)
        rep = tg.run_thermal_transitions()
        # 0.3 → cool 0.285 (< 0.4) → warm 0.27075 (< 0.3) → hot 0.2572125
        assert rep.demoted == [1, 1, 1]
        assert tg.layers[HOT]["k"].strength == approx(0.2572125, abs=1e-6)

    def test_demotion_is_skipped_where_not_allowed(self):
        tg = manual(thermal=ThermalConfig.fast_learner())  # cold may not demote
        put(tg, COLD, "k", 0.1)
        rep = tg.run_thermal_transitions()
        assert rep.demoted == [0, 0, 0]
        assert where(tg, "k") == [COLD]

    def test_demotion_floor_is_0_01(self):
        tg = manual(thermal=ThermalConfig(prune_threshold=0.0))
        put(tg, WARM, "k", 0.005)
        tg.run_thermal_transitions()
        assert tg.layers[HOT]["k"].strength == f32(0.01)

    def test_demotion_into_an_existing_entry_keeps_it_and_takes_the_max(self, tg):
        put(tg, HOT, "k", 0.5, count=1, value=b"hot")
        put(tg, WARM, "k", 0.2, count=4, value=b"warm")
        tg.run_thermal_transitions()
        e = tg.layers[HOT]["k"]
        assert (e.value, e.strength, e.update_count) == (b"hot", f32(0.5), 1)
        assert "k" not in tg.layers[WARM]


class TestPruneAndDecay:
    def test_transitions_prune_every_layer(self, tg):
        put(tg, COLD, "gone", 0.04, count=1)
        put(tg, HOT, "also", 0.01)
        put(tg, HOT, "kept", 0.05)
        rep = tg.run_thermal_transitions()
        assert rep.pruned == 2
        assert tg.keys() == ["kept"]

    def test_prune(self, tg):
        put(tg, WARM, "a", 0.049)
        put(tg, COOL, "b", 0.5)
        assert tg.prune() == 1
        assert tg.keys() == ["b"]
        assert tg.records[-1].kind == "prune"

    def test_apply_decay_uses_each_layers_rate(self, tg):
        for layer in Layer:
            put(tg, layer, layer.label, 0.5)
        assert tg.apply_decay() == 4
        assert tg.layers[HOT]["hot"].strength == approx(0.45, abs=1e-7)
        assert tg.layers[WARM]["warm"].strength == approx(0.495, abs=1e-7)
        assert tg.layers[COOL]["cool"].strength == approx(0.4995, abs=1e-7)
        assert tg.layers[COLD]["cold"].strength == approx(0.49995, abs=1e-7)
        assert tg.records[-1].kind == "decay" and tg.layers_modified

    def test_decay_never_goes_below_zero(self, tg):
        put(tg, HOT, "k", 0.0)
        tg.apply_decay()
        assert tg.layers[HOT]["k"].strength == 0.0

    def test_nothing_to_do_logs_nothing(self, tg):
        tg.run_thermal_transitions()
        tg.apply_decay()
        tg.prune()
        assert tg.records == [] and not tg.layers_modified


class TestReinforceWeaken:
    def test_reinforce_hottest_layer_caps_at_one(self, tg):
        put(tg, WARM, "k", 0.9, count=4)
        put(tg, COLD, "k", 0.1)
        layer, e = tg.reinforce("k", 0.2)
        assert layer is WARM
        assert (e.strength, e.update_count) == (1.0, 5)
        assert tg.layers[COLD]["k"].strength == f32(0.1)
        ev = tg.records[-1]
        assert isinstance(ev, Event) and ev.kind == "reinforce"
        assert ev.fields == {"key": "k", "amount": 0.2, "layer": "warm", "strength": 1.0}
        assert tg.state_unbound

    def test_reinforce_adds(self, tg):
        put(tg, HOT, "k", 0.5)
        tg.reinforce("k", 0.25)
        assert tg.layers[HOT]["k"].strength == 0.75

    def test_weaken_floors_at_zero_and_keeps_the_count(self, tg):
        put(tg, COOL, "k", 0.3, count=7)
        _, e = tg.weaken("k", 0.5)
        assert (e.strength, e.update_count) == (0.0, 7)
        assert e.updated_at_ns > T0

    def test_unknown_key(self, tg):
        tg.create("only_dirty", b"x")
        with pytest.raises(NotFoundError, match="consolidate first"):
            tg.reinforce("only_dirty", 0.1)
        with pytest.raises(NotFoundError, match="'nope'"):
            tg.weaken("nope", 0.1)

    @pytest.mark.parametrize("amount", [-0.1, float("nan"), float("inf"), "0.1", True])
    def test_bad_amount(self, tg, amount):
        put(tg, HOT, "k", 0.5)
        with pytest.raises(ValidationError, match="amount"):
            tg.reinforce("k", amount)


class TestWarm:
    def test_warm_moves_cold_to_hot_paying_a_tenth_of_the_warming_delta(self, tg):
        put(tg, COLD, "k", 0.8, count=5)
        assert tg.warm("k")
        e = tg.layers[HOT]["k"]
        assert e.strength == approx(0.77, abs=1e-7)  # 0.8 - 0.1 * 0.3
        assert e.update_count == 5 and "k" not in tg.layers[COLD]
        assert tg.records[-1].kind == "warm"

    def test_warm_floor_and_preset(self):
        tg = manual(thermal=ThermalConfig.fast_learner())
        put(tg, COLD, "a", 0.8)
        put(tg, COLD, "b", 0.105)
        tg.warm("a")
        tg.warm("b")
        assert tg.layers[HOT]["a"].strength == approx(0.78, abs=1e-7)  # 0.8 - 0.02
        assert tg.layers[HOT]["b"].strength == approx(0.1, abs=1e-7)  # max(0.1, 0.085)

    def test_warm_missing_or_disabled(self):
        tg = manual(thermal=ThermalConfig(allow_warming=False))
        put(tg, COLD, "k", 0.8)
        assert not tg.warm("k")
        assert not tg.warm("absent")
        assert tg.warm_matching("*") == []
        assert tg.records == []

    def test_warm_keeps_a_newer_hot_value(self, tg):
        put(tg, HOT, "k", 0.4, count=1, value=b"new")
        put(tg, COLD, "k", 0.9, count=6, value=b"old")
        assert tg.warm("k")
        e = tg.layers[HOT]["k"]
        assert (e.value, e.update_count) == (b"new", 7)
        assert e.strength == approx(0.87, abs=1e-7)

    def test_warm_matching_glob_and_regex(self, tg):
        for key in ["layer/1", "layer/2", "bias/1", "Layer/3"]:
            put(tg, COLD, key, 0.9)
        assert tg.warm_matching("layer/*") == ["layer/1", "layer/2"]
        assert tg.warm_matching(r"^bias/\d$", regex=True) == ["bias/1"]
        assert tg.warm_matching("ayer", regex=True) == ["Layer/3"]
        assert tg.keys(COLD) == []
        assert tg.records[-1].fields["keys"] == ["Layer/3"]

    def test_bad_regex(self, tg):
        with pytest.raises(ValidationError, match="pattern: invalid regular expression"):
            tg.warm_matching("(", regex=True)


# --- every layer change is logged, and bound once per commit ----------------------------------

LAYER_OPS = {
    "transitions": lambda tg: tg.run_thermal_transitions(),
    "decay": lambda tg: tg.apply_decay(),
    "prune": lambda tg: tg.prune(),
    "reinforce": lambda tg: tg.reinforce("warm", 0.1),
    "weaken": lambda tg: tg.weaken("warm", 0.1),
    "warm": lambda tg: tg.warm("cold"),
    "warm_matching": lambda tg: tg.warm_matching("co*"),
    "crystallize": lambda tg: tg.crystallize(),
}


def _layered(tg):
    tg.update("dirty", b"x", strength=0.5)
    tg.consolidate()
    put(tg, HOT, "hot", 0.9, count=5)
    put(tg, WARM, "warm", 0.5, count=2)
    put(tg, COLD, "cold", 0.6)
    put(tg, COOL, "faint", 0.01)


@pytest.mark.parametrize("op", sorted(LAYER_OPS))
def test_every_layer_change_is_logged_then_bound_once(tg, op):
    _layered(tg)
    assert not tg.state_unbound and tg.bind_state() is None  # the consolidation bound the state
    before = len(tg.records)
    LAYER_OPS[op](tg)
    assert len(tg.records) == before + 1 and tg.layers_modified and tg.state_unbound
    ev = tg.records[-1]
    assert isinstance(ev, Event) and "state_digest" not in ev.fields  # cheap: no pass over the entries
    bound = tg.bind_state()
    assert bound is tg.records[-1] and bound.kind == "bind" and not tg.state_unbound
    f = bound.fields
    assert f["events"] == 1 and f["kinds"] == [ev.kind]
    assert f["log_size"] == before + 1
    assert f["log_root"] == merkle.root([records.encode_record(r) for r in tg.records[: before + 1]])
    assert f["state_digest"] == state_digest(tg.layers)
    assert tg.bind_state() is None and tg.verify_chain().ok


def test_one_binding_covers_a_run_of_operations(tg):
    _layered(tg)
    before = len(tg.records)
    tg.apply_decay()
    tg.reinforce("warm", 0.1)
    tg.run_thermal_transitions()
    assert len(tg.records) == before + 3
    bound = tg.bind_state()
    assert bound.fields["events"] == 3 and bound.fields["kinds"] == ["decay", "reinforce", "transitions"]
    assert bound.fields["state_digest"] == state_digest(tg.layers)


def test_consolidation_and_bound_events_clear_the_pending_binding(tg):
    _layered(tg)
    tg.apply_decay()
    tg.consolidate()
    assert tg.bind_state() is None
    tg.apply_decay()
    tg.append_event("import", {"n": 1}, bind=True)
    assert tg.bind_state() is None
    tg.append_event("quantize", {"n": 1})  # logged elsewhere without binding: bound at commit
    assert tg.bind_state().fields["kinds"] == ["quantize"]
    tg.append_event("signature", {"n": 1})  # never a layer change
    assert tg.bind_state() is None


def test_a_binding_that_cannot_be_computed_appends_nothing(tg):
    put(tg, HOT, "k", 0.5)
    tg.update("d", b"x", strength=0.5)
    tg.log_base, tg.records, tg.dirty_start = 5, tg.records, 5  # a tail without its compact range
    tg.apply_decay()
    n = len(tg.records)
    with pytest.raises(Exception, match="not loaded"):
        tg.bind_state()
    assert len(tg.records) == n and tg.state_unbound
