"""Property: consolidation never changes what a key reads, except for keys it prunes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from thermo_cli.engine import ConsolidationPolicy, PlasticityRule, ThermalConfig
from thermo_cli.model import NS_PER_SECOND, DeltaType, Layer, Ternary

from .conftest import T0, manual, put

KEYS = ["a", "b", "c", "d", "e"]
strengths = st.floats(0, 1)
ternaries = st.none() | st.sampled_from(list(Ternary))


@st.composite
def scenario(draw):
    layers = draw(
        st.lists(
            st.tuples(st.sampled_from(list(Layer)), st.sampled_from(KEYS), strengths, st.integers(1, 12)),
            max_size=8,
        )
    )
    ops = draw(
        st.lists(
            st.tuples(
                st.sampled_from(list(DeltaType)),
                st.sampled_from(KEYS),
                strengths,
                ternaries,
                st.none() | st.integers(0, 20),
                st.integers(0, 3 * 86400),
            ),
            max_size=12,
        )
    )
    rule = draw(st.sampled_from(["stdp_like", "conservative", "aggressive", "replace_only", "bayesian"]))
    thermal = draw(st.sampled_from(["default", "fast_learner", "organic"]))
    policy = draw(st.sampled_from(["default", "conservative"]))
    return layers, ops, rule, thermal, policy


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_read_is_identical_before_and_after_consolidate(case):
    layers, ops, rule, thermal, policy = case
    tg = manual(plasticity=PlasticityRule.preset(rule), thermal=ThermalConfig.preset(thermal))
    for layer, key, s, count in layers:
        put(tg, layer, key, s, count=count, value=f"{layer.label}-{key}-{s}".encode())
    for n, (op, key, s, tern, obs, dt) in enumerate(ops):
        when = T0 + dt * NS_PER_SECOND
        value = f"{op.label}-{n}".encode()
        if op is DeltaType.DELETE:
            tg.delete(key, timestamp_ns=when)
        else:
            getattr(tg, op.label)(
                key,
                value,
                strength=None if tern is not None else s,
                ternary=tern,
                observation_count=obs,
                timestamp_ns=when,
            )
    tg.set_policy(ConsolidationPolicy.preset(policy))
    before = {k: tg.read(k) for k in KEYS}
    visible = tg.keys()
    report = tg.consolidate()
    pruned = set(report.pruned_keys)
    for key in KEYS:
        if key not in pruned:
            assert tg.read(key) == before[key], key
    after = tg.keys()
    assert [k for k in after if k not in pruned] == [k for k in visible if k not in pruned]
    assert tg.verify_chain().ok
