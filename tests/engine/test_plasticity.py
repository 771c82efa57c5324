"""Every plasticity formula and preset, with numbers worked out by hand from ENGINE.md."""

from __future__ import annotations

import pytest

from thermo_cli.config.engine import PlasticityPolicy, PlasticityRule
from thermo_cli.engine import plasticity
from thermo_cli.engine import plasticity as p
from thermo_cli.model import Ternary

POS, ZERO, NEG = Ternary.POS, Ternary.ZERO, Ternary.NEG
approx = pytest.approx
DAY = 86400


def rule(policy: PlasticityPolicy, **kw: float) -> PlasticityRule:
    base = dict(
        novelty_threshold=0.6, merge_threshold=0.3, decay_rate=0.01, prune_threshold=0.1, learning_rate=0.1
    )
    base.update(kw)
    return PlasticityRule(policy, **base)


@pytest.mark.parametrize(
    ("name", "policy", "novelty", "merge", "decay", "prune", "lr"),
    [
        ("stdp_like", PlasticityPolicy.STDP, 0.6, 0.3, 0.01, 0.1, 0.1),
        ("conservative", PlasticityPolicy.EMA, 0.8, 0.4, 0.005, 0.05, 0.05),
        ("aggressive", PlasticityPolicy.STDP, 0.4, 0.2, 0.02, 0.2, 0.2),
        ("replace_only", PlasticityPolicy.REPLACE, 1.0, 0.0, 0.0, 0.0, 1.0),
        ("bayesian", PlasticityPolicy.BAYESIAN, 0.7, 0.3, 0.01, 0.1, 0.1),
    ],
)
def test_presets_hold_the_crate_constants(name, policy, novelty, merge, decay, prune, lr):
    r = getattr(PlasticityRule, name)()
    assert (
        r.policy,
        r.novelty_threshold,
        r.merge_threshold,
        r.decay_rate,
        r.prune_threshold,
        r.learning_rate,
    ) == (policy, novelty, merge, decay, prune, lr)
    assert PlasticityRule.preset(name.replace("_", "-")) == r


def test_unknown_preset_is_refused_with_its_name():
    with pytest.raises(ValueError, match=r"plasticity: .*'hebbian'"):
        PlasticityRule.preset("hebbian")


class TestContinuousUpdates:
    def test_stdp_like_at_dt_zero_adds_a_tenth_of_the_new_strength(self):
        # 0.5 * (1 - 0) + 0.1 * 0.8 = 0.58
        assert plasticity.apply_update(PlasticityRule.stdp_like(), 0.5, 0.8, 0) == approx(0.58, abs=1e-7)

    def test_stdp_like_after_one_day_decays_by_the_daily_rate(self):
        # 0.5 * (1 - 0.01 * 86400/86400) + 0.08 = 0.495 + 0.08 = 0.575
        assert plasticity.apply_update(PlasticityRule.stdp_like(), 0.5, 0.8, DAY) == approx(0.575, abs=1e-6)

    def test_aggressive_half_day(self):
        # 0.5 * (1 - 0.02 * 0.5) + 0.2 * 0.8 = 0.495 + 0.16 = 0.655
        assert plasticity.apply_update(PlasticityRule.aggressive(), 0.5, 0.8, DAY // 2) == approx(
            0.655, abs=1e-6
        )

    def test_stdp_clamps_to_one_and_to_zero(self):
        r = PlasticityRule.stdp_like()
        assert plasticity.apply_update(r, 0.95, 1.0, 0) == 1.0  # 1.05 → 1
        # 200 days: 0.5 * (1 - 2) + 0.08 = -0.42 → 0
        assert plasticity.apply_update(r, 0.5, 0.8, 200 * DAY) == 0.0

    def test_stdp_negative_dt_grows_like_the_crate(self):
        # delta older than the entry: 0.5 * (1 + 0.01) + 0.08 = 0.585
        assert plasticity.apply_update(PlasticityRule.stdp_like(), 0.5, 0.8, -DAY) == approx(0.585, abs=1e-6)

    def test_conservative_is_an_ema_with_rate_0_05(self):
        # 0.05 * 1.0 + 0.95 * 0.5 = 0.525
        assert plasticity.apply_update(PlasticityRule.conservative(), 0.5, 1.0, 12345) == approx(
            0.525, abs=1e-7
        )

    def test_ema_with_rate_0_1(self):
        # the crate's own test: 0.1 * 1.0 + 0.9 * 0.5 = 0.55
        assert plasticity.apply_update(rule(PlasticityPolicy.EMA), 0.5, 1.0, 0) == approx(0.55, abs=1e-7)

    def test_replace_takes_the_new_strength(self):
        assert plasticity.apply_update(PlasticityRule.replace_only(), 0.9, 0.2, 99) == approx(0.2)

    def test_bayesian_weights_each_by_itself(self):
        # (0.25 + 0.64) / 1.3 = 0.684615…
        assert plasticity.apply_update(PlasticityRule.bayesian(), 0.5, 0.8, 0) == approx(0.89 / 1.3, abs=1e-6)
        assert plasticity.apply_update(PlasticityRule.bayesian(), 0.0, 0.0, 0) == 0.0

    def test_winner_take_all_keeps_the_larger(self):
        r = rule(PlasticityPolicy.WTA)
        assert plasticity.apply_update(r, 0.3, 0.7, 0) == approx(0.7)
        assert plasticity.apply_update(r, 0.9, 0.7, 0) == approx(0.9)

    def test_results_are_float32_values(self):
        v = plasticity.apply_update(PlasticityRule.stdp_like(), 0.5, 0.8, 0)
        assert p.f32(v) == v


class TestDecisions:
    def test_should_create_new_is_strictly_above_novelty(self):
        r = PlasticityRule.stdp_like()
        assert plasticity.should_create_new(r, 0.7)
        assert not plasticity.should_create_new(r, 0.6)
        assert not plasticity.should_create_new(r, 0.5)

    def test_should_merge_is_strictly_above_one_minus_merge(self):
        r = PlasticityRule.stdp_like()
        assert plasticity.should_merge(r, 0.8)
        assert not plasticity.should_merge(r, 0.7)
        assert not plasticity.should_merge(r, 0.6)

    def test_should_prune_is_strictly_below_prune(self):
        r = PlasticityRule.stdp_like()
        assert plasticity.should_prune(r, 0.05)
        assert not plasticity.should_prune(r, 0.1)
        assert not plasticity.should_prune(PlasticityRule.replace_only(), 0.0)


class TestTernary:
    @pytest.mark.parametrize(
        ("current", "observed", "conf", "expected"),
        [
            (POS, POS, 0.8, POS),  # equal, confident: strengthen (Pos stays)
            (ZERO, ZERO, 0.8, POS),  # equal, confident: Zero → Pos
            (NEG, NEG, 0.8, ZERO),  # equal, confident: Neg → Zero (strengthen is "up")
            (POS, POS, 0.7, ZERO),  # equal but not > 0.7: decay toward zero
            (NEG, POS, 0.6, ZERO),  # differ, > 0.5: one step toward Pos
            (ZERO, NEG, 0.6, NEG),
            (POS, NEG, 0.5, ZERO),  # differ, not > 0.5: decay toward zero
            (ZERO, POS, 0.4, ZERO),
        ],
    )
    def test_stdp(self, current, observed, conf, expected):
        assert plasticity.ternary_update(PlasticityRule.stdp_like(), current, observed, conf) is expected

    @pytest.mark.parametrize("policy", [PlasticityPolicy.REPLACE, PlasticityPolicy.WTA])
    def test_replace_and_wta_take_the_observation_above_half(self, policy):
        r = rule(policy)
        assert plasticity.ternary_update(r, NEG, POS, 0.6) is POS
        assert plasticity.ternary_update(r, NEG, POS, 0.5) is NEG

    def test_ema_takes_a_differing_observation_above_the_learning_rate(self):
        r = PlasticityRule.conservative()  # learning rate 0.05
        assert plasticity.ternary_update(r, NEG, POS, 0.06) is POS
        assert plasticity.ternary_update(r, NEG, POS, 0.05) is NEG
        assert plasticity.ternary_update(r, POS, POS, 1.0) is POS

    def test_bayesian(self):
        r = PlasticityRule.bayesian()
        assert plasticity.ternary_update(r, NEG, POS, 0.8) is POS
        assert plasticity.ternary_update(r, NEG, POS, 0.5) is ZERO
        assert plasticity.ternary_update(r, NEG, POS, 0.3) is NEG
        assert plasticity.ternary_update(r, POS, NEG, 0.2) is POS

    def test_majority_vote(self):
        vote = plasticity.majority_vote
        assert vote([POS, NEG]) is ZERO
        assert vote([POS, ZERO]) is POS
        assert vote([NEG, NEG, POS]) is NEG
        assert vote([ZERO, ZERO]) is ZERO
        assert vote([]) is ZERO

    @pytest.mark.parametrize(
        ("current", "pre", "post", "dt", "expected"),
        [
            (ZERO, True, True, 5.0, POS),
            (POS, True, True, 5.0, POS),
            (POS, True, True, -5.0, ZERO),
            (NEG, True, True, -5.0, NEG),
            (NEG, True, True, 0.0, ZERO),
            (ZERO, True, True, 0.0, ZERO),  # the crate's behaviour; the SNN engine fixes it
            (POS, True, True, 0.0, POS),
            (POS, True, False, 5.0, POS),
            (NEG, False, True, 5.0, NEG),
        ],
    )
    def test_ternary_stdp(self, current, pre, post, dt, expected):
        assert plasticity.ternary_stdp(current, pre, post, dt) is expected

    def test_quantize_at_0_3(self):
        # strengths are float32 values; the threshold is f32(0.3) like the crate's
        assert p.quantize(p.f32(0.3)) is POS
        assert p.quantize(p.f32(0.29)) is ZERO
        assert p.quantize(p.f32(-0.3)) is NEG
        assert p.quantize(0.0) is ZERO

    def test_confidence_from_observation_count(self):
        assert p.observation_confidence(None) == 0.5
        assert p.observation_confidence(3) == approx(0.3)
        assert p.observation_confidence(10) == 1.0
        assert p.observation_confidence(25) == 1.0
