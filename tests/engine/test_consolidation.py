"""Consolidation: the crate's fold with the Merge/Delete/history fixes, pruning, crystallize."""

from __future__ import annotations

import pytest

from thermo_cli.engine import ConsolidationPolicy, PlasticityRule, ThermalConfig, plasticity
from thermo_cli.engine.plasticity import f32
from thermo_cli.integrity import merkle
from thermo_cli.integrity.state import state_digest
from thermo_cli.model import NS_PER_SECOND, Delta, Event, Layer, Ternary

from .conftest import T0, manual, put

HOT, WARM, COOL, COLD = Layer.HOT, Layer.WARM, Layer.COOL, Layer.COLD
approx = pytest.approx
DAY = 86400 * NS_PER_SECOND
NO_PRUNE = ConsolidationPolicy((ConsolidationPolicy.manual().triggers), False, False)


class TestFold:
    def test_update_of_a_hot_entry_uses_the_rule_with_dt_zero(self, tg):
        put(tg, HOT, "k", 0.5)
        tg.update("k", b"new", strength=0.8, timestamp_ns=T0)
        tg.consolidate()
        e = tg.layers[HOT]["k"]
        assert e.strength == approx(0.58, abs=1e-7)
        assert (e.value, e.update_count, e.updated_at_ns) == (b"new", 2, T0)

    def test_update_after_a_day_decays_first(self, tg):
        put(tg, HOT, "k", 0.5)
        tg.update("k", b"new", strength=0.8, timestamp_ns=T0 + DAY)
        tg.consolidate()
        assert tg.layers[HOT]["k"].strength == approx(0.575, abs=1e-6)

    def test_dt_is_whole_seconds(self, tg):
        put(tg, HOT, "k", 0.5)
        # 1.9 s after: the crate's num_seconds() gives 1, not 1.9 (same result as dt=1)
        tg.update("k", b"v", strength=0.8, timestamp_ns=T0 + 1_900_000_000)
        tg.consolidate()
        assert tg.layers[HOT]["k"].strength == plasticity.apply_update(
            PlasticityRule.stdp_like(), f32(0.5), f32(0.8), 1
        )

    def test_create_on_a_new_key_takes_the_delta_strength_and_count_one(self, tg):
        tg.create("k", b"v", strength=0.4, timestamp_ns=T0)
        tg.consolidate()
        e = tg.layers[HOT]["k"]
        assert (e.value, e.strength, e.update_count, e.updated_at_ns) == (b"v", f32(0.4), 1, T0)

    def test_colder_layers_are_shadowed_not_consulted(self, tg):
        put(tg, COLD, "k", 0.9, count=7)
        tg.update("k", b"new", strength=0.3)
        tg.consolidate()
        assert tg.layers[HOT]["k"].strength == f32(0.3)
        assert tg.layers[HOT]["k"].update_count == 1
        assert tg.layers[COLD]["k"].value == b"cold:k"
        assert tg.read("k") == b"new"

    def test_sequence_folds_in_order(self, tg):
        tg.create("k", b"a", strength=0.5, timestamp_ns=T0)
        tg.update("k", b"b", strength=0.8, timestamp_ns=T0)  # 0.58
        tg.update("k", b"c", strength=1.0, timestamp_ns=T0)  # 0.58 + 0.1 = 0.68
        r = tg.consolidate()
        assert (r.processed, r.created, r.updated) == (3, 1, 2)
        assert tg.layers[HOT]["k"].strength == approx(0.68, abs=1e-6)
        assert tg.layers[HOT]["k"].value == b"c"

    def test_replace_policy(self):
        tg = manual(plasticity=PlasticityRule.replace_only())
        put(tg, HOT, "k", 0.9)
        tg.update("k", b"v", strength=0.2)
        tg.consolidate()
        assert tg.layers[HOT]["k"].strength == f32(0.2)


class TestFixes:
    def test_merge_applies_its_value(self, tg):
        put(tg, HOT, "k", 0.5, value=b"old")
        tg.merge("k", b"merged", strength=0.8, timestamp_ns=T0)
        assert tg.read("k") == b"merged"
        r = tg.consolidate()
        assert r.merged == 1
        e = tg.layers[HOT]["k"]
        assert (e.value, e.update_count) == (b"merged", 2)
        assert e.strength == approx(0.58, abs=1e-7)
        assert tg.read("k") == b"merged"

    def test_merge_on_an_absent_key_creates_it(self, tg):
        tg.merge("weight_1_2", b"\x00\x00\x80?", strength=0.6)
        tg.consolidate()
        e = tg.layers[HOT]["weight_1_2"]
        assert (e.value, e.strength, e.update_count) == (b"\x00\x00\x80?", f32(0.6), 1)

    def test_delete_removes_the_key_from_every_layer(self, tg):
        for layer in Layer:
            put(tg, layer, "k", 0.5)
        tg.delete("k")
        assert tg.read("k") is None
        r = tg.consolidate()
        assert r.deleted == 1
        assert all("k" not in tg.layers[layer] for layer in Layer)
        assert tg.read("k") is None

    def test_keys_omits_keys_deleted_in_dirty_deltas(self, tg):
        put(tg, COLD, "temp", 0.9)
        put(tg, HOT, "kept", 0.9)
        tg.delete("temp")
        tg.create("new", b"x")
        assert tg.keys() == ["kept", "new"]
        tg.create("temp", b"back")
        assert tg.keys() == ["kept", "new", "temp"]

    def test_consolidation_keeps_every_delta_and_marks_the_point(self, tg):
        tg.create("a", b"1")
        tg.update("a", b"2")
        tg.delete("b")
        r = tg.consolidate()
        assert len(tg.records) == 4
        assert [type(x) for x in tg.records] == [Delta, Delta, Delta, Event]
        ev = tg.records[-1]
        assert ev.kind == "consolidate"
        assert ev.fields["processed"] == 3
        assert ev.fields["log_size"] == 3 == r.log_size
        assert tg.dirty_start == 4
        assert tg.dirty_deltas() == []
        assert [d.value for d in tg.history("a")] == [b"1", b"2"]
        assert tg.meta.total_consolidations == 1
        assert tg.layers_modified
        assert tg.verify_chain().ok

    def test_consolidation_event_binds_log_root_and_state_digest(self, tg):
        for i in range(5):
            tg.create(f"k{i}", bytes([i]), strength=0.5)
        r = tg.consolidate()
        ev = tg.records[-1]
        assert ev.fields["log_root"] == merkle.root([rec.encoded for rec in tg.records[:5]]) == r.log_root
        assert ev.fields["state_digest"] == state_digest(tg.layers) == r.state_digest
        tg.create("later", b"x")
        r2 = tg.consolidate()
        assert r2.log_root == merkle.root([rec.encoded for rec in tg.records[:7]])

    def test_tail_loaded_log_uses_the_supplied_compact_range(self, tg):
        for i in range(6):
            tg.create(f"k{i}", b"v")
        full = [rec.encoded for rec in tg.records]
        rng = merkle.CompactRange()
        for data in full[:4]:
            rng.append(merkle.leaf_hash(data))
        tail = manual(
            records=tg.records[4:], log_base=4, head_hash=tg.head_hash, dirty_start=4, log_range=rng
        )
        assert tail.read("k5") == b"v"
        assert tail.log_root() == merkle.root(full)

    def test_tail_without_range_is_refused(self, tg):
        from thermo_cli.errors import ChainError

        for i in range(3):
            tg.create(f"k{i}", b"v")
        tail = manual(records=tg.records[2:], log_base=2, head_hash=tg.head_hash, dirty_start=2)
        with pytest.raises(ChainError, match="not loaded"):
            tail.consolidate()
        assert all(not tail.layers[layer] for layer in Layer)  # refused before any change
        assert tail.dirty_count == 1 and len(tail.records) == 1


class TestTernaryFold:
    def test_continuous_entry_is_quantized_then_updated(self):
        tg = manual(policy=NO_PRUNE)
        put(tg, HOT, "w", 0.5)  # quantized at 0.3 → Pos
        tg.update("w", b"t", ternary=-1, observation_count=8)  # conf 0.8, differ → one step: Zero
        tg.consolidate()
        e = tg.layers[HOT]["w"]
        assert (e.ternary, e.strength, e.update_count) == (Ternary.ZERO, 0.0, 2)

    def test_default_confidence_is_one_half(self):
        tg = manual(policy=NO_PRUNE)
        put(tg, HOT, "w", 0.2)  # quantized → Zero
        tg.update("w", b"t", ternary=1)  # conf 0.5: not > 0.5 → decay toward zero: Zero
        tg.consolidate()
        assert tg.layers[HOT]["w"].ternary is Ternary.ZERO

    def test_agreeing_confident_observation_strengthens(self):
        tg = manual(policy=NO_PRUNE)
        put(tg, HOT, "w", -1.0, ternary=Ternary.NEG)
        tg.update("w", b"t", ternary=-1, observation_count=9)  # conf 0.9, equal → strengthen: Zero
        tg.consolidate()
        assert tg.layers[HOT]["w"].ternary is Ternary.ZERO

    def test_ternary_merge_is_a_majority_vote(self):
        tg = manual(policy=NO_PRUNE)
        put(tg, HOT, "a", 1.0, ternary=Ternary.POS)
        put(tg, HOT, "b", 0.0, ternary=Ternary.ZERO)
        tg.merge("a", b"m", ternary=-1)  # vote(Pos, Neg) → Zero
        tg.merge("b", b"m", ternary=-1)  # vote(Zero, Neg) → Neg
        tg.consolidate()
        assert tg.layers[HOT]["a"].ternary is Ternary.ZERO
        assert (tg.layers[HOT]["b"].ternary, tg.layers[HOT]["b"].strength) == (Ternary.NEG, -1.0)
        assert tg.layers[HOT]["b"].value == b"m"

    def test_ternary_create_keeps_the_ternary_strength(self, tg):
        tg.create("w", b"\x01", ternary=-1)
        tg.consolidate()
        e = tg.layers[HOT]["w"]
        assert (e.ternary, e.strength) == (Ternary.NEG, -1.0)


class TestPruning:
    def test_weak_and_zero_ternary_hot_entries_are_pruned(self, tg):
        put(tg, HOT, "weak", 0.05)  # < 0.1 (stdp_like)
        put(tg, HOT, "edge", 0.1)  # not < 0.1
        put(tg, HOT, "zero", 0.9, ternary=Ternary.ZERO)
        put(tg, HOT, "neg", -1.0, ternary=Ternary.NEG)
        put(tg, COLD, "cold_weak", 0.01)  # only hot is pruned here
        r = tg.consolidate()
        assert sorted(r.pruned_keys) == ["weak", "zero"]
        assert r.pruned == 2
        assert sorted(tg.layers[HOT]) == ["edge", "neg"]
        assert "cold_weak" in tg.layers[COLD]

    def test_no_pruning_when_disabled(self):
        tg = manual(policy=NO_PRUNE)
        put(tg, HOT, "weak", 0.01)
        assert tg.consolidate().pruned == 0
        assert "weak" in tg.layers[HOT]


class TestCrystallize:
    def test_consolidate_crystallizes_strong_observed_hot_entries(self, tg):
        put(tg, HOT, "k", 0.8, count=3)
        put(tg, HOT, "young", 0.9, count=2)  # not enough observations
        put(tg, HOT, "weakish", 0.7, count=9)  # below 0.75
        r = tg.consolidate()
        assert (r.crystallized, r.crystal_merged, r.promoted) == (1, 0, 1)
        assert "k" in tg.layers[COLD] and "k" not in tg.layers[HOT]
        assert sorted(tg.layers[HOT]) == ["weakish", "young"]

    def test_crystallize_merges_into_an_existing_cold_entry(self, tg):
        put(tg, HOT, "k", 0.8, count=3, value=b"new")
        put(tg, COLD, "k", 0.5, count=2, value=b"old")
        res = tg.crystallize()
        assert (res.crystallized, res.merged) == (0, 1)
        e = tg.layers[COLD]["k"]
        # 0.3 * 0.5 + 0.7 * 0.8 = 0.71
        assert e.strength == approx(0.71, abs=1e-6)
        assert (e.value, e.update_count) == (b"new", 5)
        assert tg.records[-1].kind == "crystallize"

    def test_crystallize_drops_shadowed_warm_and_cool_copies(self, tg):
        put(tg, HOT, "k", 0.9, count=3, value=b"current")
        put(tg, WARM, "k", 0.5, value=b"stale")
        before = tg.read("k")
        tg.consolidate()
        assert tg.read("k") == before == b"current"

    def test_crystallize_uses_the_configs_threshold(self):
        tg = manual(thermal=ThermalConfig.fast_learner())  # 0.85, min obs 2
        put(tg, HOT, "a", 0.8, count=2)
        put(tg, HOT, "b", 0.85, count=2)
        tg.crystallize()
        assert sorted(tg.layers[COLD]) == ["b"]


class TestAutoConsolidation:
    def test_delta_count(self):
        from thermo_cli.engine import DeltaCount

        tg = manual(policy=ConsolidationPolicy((DeltaCount(3),), True, True))
        tg.create("a", b"1")
        tg.create("b", b"2")
        assert tg.meta.total_consolidations == 0
        tg.create("c", b"3")
        assert tg.meta.total_consolidations == 1
        assert tg.dirty_count == 0
        assert isinstance(tg.records[-1], Event)
        assert sorted(tg.layers[HOT]) == ["a", "b", "c"]

    def test_dirty_size_uses_the_crate_estimate(self):
        from thermo_cli.engine import DirtySize

        tg = manual(policy=ConsolidationPolicy((DirtySize(600),), True, True))
        tg.create("k", b"x" * 99)  # 99 + 1 + 200 = 300
        assert tg.dirty_bytes == 300
        tg.create("k", b"x" * 99)  # 600 >= 600
        assert tg.meta.total_consolidations == 1

    @pytest.mark.clock
    def test_time_period(self, clock):
        """The trigger fires exactly when an hour has passed on the thermogram's clock."""
        from thermo_cli.engine import TimePeriod

        tg = manual(policy=ConsolidationPolicy((TimePeriod(1),), True, True))
        tg.create("a", b"1")
        clock.advance(3600 * NS_PER_SECOND - 1)
        tg.create("b", b"2")
        assert tg.meta.total_consolidations == 0
        clock.advance(1)
        tg.create("c", b"3")
        assert tg.meta.total_consolidations == 1
        assert tg.meta.last_consolidation_ns == clock()

    def test_manual_never_consolidates(self, tg):
        for i in range(50):
            tg.create(f"k{i}", b"v" * 100)
        assert tg.meta.total_consolidations == 0
        assert tg.dirty_count == 50

    def test_replacing_the_policy_takes_effect(self, tg):
        from thermo_cli.engine import DeltaCount

        tg.create("a", b"1")
        tg.set_policy(ConsolidationPolicy((DeltaCount(2),), True, True))
        tg.create("b", b"2")
        assert tg.meta.total_consolidations == 1
